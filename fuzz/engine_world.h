#pragma once
// The engine the dispatch fuzz targets drive (setpoint_fuzz.cpp, fleet_target_fuzz.cpp):
// a real PKI (SoftHSM2 token in a temporary directory, CA hierarchy), a SQLite store,
// an authorised aggregator signer (software key), the daemon's HSM-held command signer
// and the engine tests' fleet (tests/dispatch/dispatch_fixture.h: two sites, clamp and
// reject, one with a ramp) with an EV plugged into every EVSE.
#include <cmath>
#include <map>
#include <memory>
#include <string>

#include <boost/json.hpp>

#include "core/time.h"
#include "dispatch/engine.h"
#include "dispatch/fleet.h"
#include "dispatch/setpoint.h"
#include "fuzz/fuzz_support.h"
#include "protocol/signer_trust.h"
#include "tests/dispatch/dispatch_fixture.h"

namespace gridtrust::fuzz {

using namespace gridtrust::dispatch;

inline const char* const kStations[] = {"CS-001", "CS-002", "CS-101", "CS-201"};

struct World {
  test::DispatchPki pki;
  test::SignerIdentity signer = pki.software_signer("agg-fleet", "Fleet");
  test::SignerIdentity daemon = pki.hsm_signer("gridtrustd", "Fleet");
  protocol::PkiSignerResolver resolver{*pki.ca};
  StoreOutgoingSigner outgoing{daemon.command_signer(), *pki.store};
  std::int64_t now = to_unix(now_seconds());
  Fleet fleet;
  std::unique_ptr<Engine> engine;
  std::map<std::string, std::uint64_t> seqs;

  World() { engine = make_engine(*pki.store, {}); }

  // Another engine on the same PKI with its own store (its own sequence numbers and
  // EVSE states), the same fleet and sessions.
  std::unique_ptr<Engine> make_engine(store::Store& store, EngineOptions options) {
    auto f = load_fleet_yaml_text(test::kFleet, "fleet");
    if (!f.ok()) fail("fleet: " + f.error().message);
    fleet = *f;
    auto e = std::make_unique<Engine>(std::move(*f), resolver, store, std::move(options), &outgoing);
    int n = 0;
    for (auto [station, evse] : {std::pair{"CS-001", 1}, {"CS-001", 2}, {"CS-001", 3}, {"CS-002", 1},
                                 {"CS-101", 1}, {"CS-201", 1}}) {
      Session s = test::ev("EV-" + std::to_string(++n), station, evse, now);
      s.energy_needed_wh = 45000;  // (so that departures bind)
      auto st = e->start_session(s);
      if (!st.ok()) fail("session: " + st.error().message);
    }
    return e;
  }
  std::shared_ptr<store::SqliteStore> open_store(const std::string& name) {
    auto st = store::SqliteStore::open(pki.dir / name);
    if (!st.ok()) fail("store: " + st.error().message);
    return std::move(st).value();
  }
};

// Every invariant about one decision: a well-formed code, never internal.error; if
// applied, finite values inside the envelope it reports and its EVSE's limits, and a
// command that parse_setpoint reads back to the same EVSE, mode and values (within
// `slack` W, plus what an envelope narrower than a milliwatt forces); if rejected, no
// command.
inline void check_decision(const Decision& d, const Fleet& fleet, double slack) {
  namespace json = boost::json;
  const std::string what = json::serialize(d.to_json());
  FUZZ_CHECK(well_formed_code(d.reason), what);
  FUZZ_CHECK(d.reason != "internal.error", what);
  if (!d.applied()) {
    FUZZ_CHECK(!d.command.has_value(), "rejected with a command: " + what);
    return;
  }
  FUZZ_CHECK(d.command.has_value(), "applied without a command: " + what);
  for (double x : {d.applied_lo_w, d.applied_hi_w, d.envelope_min_w, d.envelope_max_w})
    FUZZ_CHECK(std::isfinite(x), what);
  FUZZ_CHECK(d.applied_lo_w <= d.applied_hi_w, what);
  FUZZ_CHECK(d.applied_lo_w >= d.envelope_min_w - 1e-6 && d.applied_hi_w <= d.envelope_max_w + 1e-6,
             "outside its envelope: " + what);
  auto evse = fleet.evses.find(evse_key(d.station, d.evse));
  FUZZ_CHECK(evse != fleet.evses.end(), "applied to an EVSE not in the registry: " + what);
  FUZZ_CHECK(d.applied_hi_w <= evse->second.max_charge_w + 1e-6 && d.applied_lo_w >= -evse->second.max_discharge_w - 1e-6,
             "beyond the EVSE's limits: " + what);
  auto again = parse_setpoint(*d.command, d.station, 900);
  FUZZ_CHECK(again.ok(), "the emitted command does not parse (" + (again.ok() ? "" : again.error().message) +
                             "): " + json::serialize(*d.command) + " for " + what);
  FUZZ_CHECK(again->evse == d.evse && d.mode && again->mode == *d.mode, json::serialize(*d.command) + " for " + what);
  // Decisions and commands both carry whole milliwatts (engine.cpp: milliwatts_within),
  // except in an envelope narrower than a milliwatt with no whole milliwatt inside.
  const double tolerance = slack + (d.envelope_max_w - d.envelope_min_w < 1e-3 ? 5e-4 : 0.0);
  auto same = [&](double command, double decided) {
    return std::fabs(command - decided) <= tolerance + 1e-9 * std::fabs(decided);
  };
  FUZZ_CHECK(same(again->lo_w, d.applied_lo_w) && same(again->hi_w, d.applied_hi_w),
             "the command says other values: " + json::serialize(*d.command) + " for " + what);
}

// Every invariant about sites, after any decision: committed power within both limits.
inline void check_sites(Engine& engine, std::int64_t now, const std::string& after) {
  for (const char* site : {"S1", "S2"}) {
    auto s = engine.site_status(site, now);
    FUZZ_CHECK(s.ok(), site);
    FUZZ_CHECK(s->committed_max_w <= s->site.import_limit_w + 1e-6 && s->committed_min_w >= -s->site.export_limit_w - 1e-6,
               std::string(site) + " over its limits after " + after);
  }
}

}  // namespace gridtrust::fuzz
