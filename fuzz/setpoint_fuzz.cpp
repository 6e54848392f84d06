// The dispatch engine (dispatch/engine.h) on any SetChargingProfileRequest that an
// authorised aggregator signed: what the signature vouches for is still untrusted.
//
// At start: a real PKI (SoftHSM2 token in a temporary directory, CA hierarchy), a
// SQLite store, an aggregator signer, the daemon's HSM-held command signer and a
// fleet of two sites with EVs plugged in. An input is the text of the request; it is
// signed (station by the input's length, the next sequence number) and submitted.
// The simulated clock moves a second per input, so state carries over: setpoints in
// force add up against their site, ramps apply.
//
// Invariants: every decision has a well-formed code and none is internal.error; an
// applied setpoint lies within its EVSE's limits and within the envelope it reports,
// and comes with a command that parses back (dispatch::parse_setpoint) to the same
// EVSE, mode and values; no site's committed power passes its import or export limit.
#include <cmath>
#include <string>

#include <boost/json.hpp>

#include "dispatch/setpoint.h"
#include "fuzz/engine_world.h"
#include "protocol/json_text.h"

using namespace gridtrust;
using namespace gridtrust::dispatch;
namespace json = boost::json;

namespace {

fuzz::World& world() {
  static fuzz::World w;
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::World& w = world();
  auto parsed = protocol::parse_strict(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!parsed.ok() || !parsed->is_object()) return 0;
  const std::string station = fuzz::kStations[size % std::size(fuzz::kStations)];
  ++w.now;
  auto message = protocol::sign_command(parsed->as_object(), w.signer.command_signer(),
                                        {"SetChargingProfile", station, ++w.seqs[station]}, {w.now, 300});
  if (!message.ok()) {  // (what the signer itself refuses: another vendor's customData, inexact numbers)
    FUZZ_CHECK(fuzz::well_formed_code(message.error().code), message.error().code);
    return 0;
  }
  const Decision d = w.engine->submit(*message, w.now);
  const std::string what = json::serialize(d.to_json());
  fuzz::check_decision(d, w.fleet, 0.0);
  fuzz::check_sites(*w.engine, w.now, what);
  return 0;
}
