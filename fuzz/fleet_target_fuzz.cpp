// The dispatch engine on any fleet target (dispatch/setpoint.h: FleetTarget) that an
// authorised aggregator signed: the allocation across EVs (dispatch/allocation.h).
//
// The engine of engine_world.h. An input is the text of the target message; it is
// signed for its own group (station "fleet:<group>", action gridtrust.FleetTarget, the
// next sequence number) and submitted; the simulated clock moves a second per input.
// Even-length inputs go to an engine splitting in proportion to headroom, odd-length
// ones to one splitting by least degradation cost (each with its own store and state,
// on the same PKI).
//
// Invariants: a refused target has a well-formed code, never internal.error, and no
// setpoints; an allocated one has every setpoint as valid as a single one would be
// (fuzz::check_decision; commands within a milliwatt), the setpoints add up to what
// it says it delivered, the shortfall is target - delivered (0 within 1 mW), and a
// shortfall is real: every EV is at the end of its envelope it would have to pass (or
// at its departure need, going down), or its site is at that limit.
#include <cmath>
#include <map>
#include <memory>
#include <string>

#include <boost/json.hpp>

#include "dispatch/setpoint.h"
#include "fuzz/engine_world.h"
#include "protocol/json_text.h"

using namespace gridtrust;
using namespace gridtrust::dispatch;
namespace json = boost::json;

namespace {

struct Engines {
  fuzz::World world;
  std::shared_ptr<store::SqliteStore> store = world.open_store("least-degradation.db");
  std::unique_ptr<Engine> cheapest = world.make_engine(*store, [] {
    EngineOptions o;
    o.split = SplitPolicy::LeastDegradation;
    return o;
  }());
  std::map<std::string, std::uint64_t> cheapest_seqs;
};

Engines& engines() {
  static Engines e;
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parsed = protocol::parse_strict(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!parsed.ok() || !parsed->is_object()) return 0;
  Engines& all = engines();
  fuzz::World& w = all.world;
  const bool least_degradation = size % 2 == 1;
  Engine& engine = least_degradation ? *all.cheapest : *w.engine;
  auto& seqs = least_degradation ? all.cheapest_seqs : w.seqs;
  const json::object& message = parsed->as_object();
  std::string group = "g";
  if (auto* g = message.if_contains("group"); g && g->is_string() && !g->get_string().empty())
    group = std::string(g->get_string());
  const std::string station = fleet_target_station(group);
  ++w.now;
  auto signed_message = protocol::sign_command(message, w.signer.command_signer(),
                                               {kFleetTargetAction, station, ++seqs[station]}, {w.now, 300});
  if (!signed_message.ok()) {
    FUZZ_CHECK(fuzz::well_formed_code(signed_message.error().code), signed_message.error().code);
    return 0;
  }
  const FleetDecision fd = engine.submit_target(*signed_message, w.now);
  const std::string what = json::serialize(fd.to_json());
  FUZZ_CHECK(fuzz::well_formed_code(fd.reason), what);
  FUZZ_CHECK(fd.reason != "internal.error", what);
  if (fd.outcome == Outcome::Rejected) {
    for (const auto& d : fd.setpoints) FUZZ_CHECK(!d.applied(), "a refused target applied a setpoint: " + what);
    fuzz::check_sites(engine, w.now, what);
    return 0;
  }
  FUZZ_CHECK(std::isfinite(fd.delivered_w) && std::isfinite(fd.shortfall_w), what);
  double sum = 0;
  for (const auto& d : fd.setpoints) {
    fuzz::check_decision(d, w.fleet, 5e-4);
    FUZZ_CHECK(d.applied_lo_w == d.applied_hi_w, "a target's setpoint is a range: " + what);
    sum += d.applied_lo_w;
  }
  FUZZ_CHECK(std::fabs(sum - fd.delivered_w) <= 1e-6 * (1.0 + static_cast<double>(fd.setpoints.size())) + 1e-9 * std::fabs(sum),
             "setpoints add up to " + std::to_string(sum) + ": " + what);
  if (fd.shortfall_w == 0) {
    FUZZ_CHECK(std::fabs(fd.target_w - fd.delivered_w) <= 1e-3 + 1e-9 * std::fabs(fd.target_w),
               "met, yet delivered " + std::to_string(fd.delivered_w) + ": " + what);
    FUZZ_CHECK(fd.outcome == Outcome::Applied && fd.reason == kApplied, what);
  } else {
    FUZZ_CHECK(std::fabs(fd.shortfall_w - (fd.target_w - fd.delivered_w)) <= 1e-6 * (1.0 + std::fabs(fd.target_w)),
               "shortfall is not target - delivered: " + what);
    FUZZ_CHECK(fd.outcome == Outcome::Clamped && fd.reason == "dispatch.shortfall", what);
    // Real: nothing left to give in the direction of the target.
    const bool up = fd.shortfall_w > 0;
    for (const auto& d : fd.setpoints) {
      const Site* site = w.fleet.site_of_station(d.station);
      FUZZ_CHECK(site, d.station);
      auto status = engine.site_status(site->id, w.now);
      FUZZ_CHECK(status.ok(), site->id);
      const bool site_at_limit = up ? status->committed_max_w >= site->import_limit_w - 1e-3
                                    : status->committed_min_w <= -site->export_limit_w + 1e-3;
      const bool ev_at_end = up ? d.applied_lo_w >= d.envelope_max_w - 1e-3
                                : d.applied_lo_w <= std::max(d.envelope_min_w, std::min(d.need_w, d.envelope_max_w)) + 1e-3;
      FUZZ_CHECK(ev_at_end || site_at_limit, "a shortfall while " + d.station + "#" + std::to_string(d.evse) +
                                                 " could still move: " + what);
    }
  }
  fuzz::check_sites(engine, w.now, what);
  return 0;
}
