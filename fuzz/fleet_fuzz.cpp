// The fleet registry loader (dispatch/fleet.h) on any YAML or JSON text: the operator's
// file, or a registry pushed through the API. The first byte picks the format (even:
// YAML, odd: JSON); the rest is the text.
//
// Invariants: a refusal has a well-formed code and a message; what loads is a
// registry the engine can stand on (finite, non-negative limits; every station on a
// site; every EVSE on a station; every session on an EVSE, with 0 <= floor <= SoC <=
// ceiling <= 1 and a positive battery), and the engine built on it gives every EVSE an
// envelope with finite ends, min <= max, within the EVSE's limits.
#include <cmath>
#include <string>

#include "dispatch/engine.h"
#include "dispatch/fleet.h"
#include "fuzz/fuzz_support.h"
#include "protocol/signed_command.h"

using namespace gridtrust;
using namespace gridtrust::dispatch;

namespace {

struct NoSigners final : protocol::SignerResolver {
  Result<std::shared_ptr<const protocol::SignerCertificate>> find(const std::string&, const std::vector<Bytes>&) override {
    return reject("verify.unknown_signer", "none here");
  }
  Status judge(const protocol::SignerCertificate&, std::int64_t) override { return reject("verify.untrusted", "none"); }
};

bool nonneg(double x) { return std::isfinite(x) && x >= 0; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto f = data[0] % 2 == 0 ? load_fleet_yaml_text(text, "fuzz") : load_fleet_json_text(text, "fuzz");
  if (!f.ok()) {
    FUZZ_CHECK(fuzz::well_formed_code(f.error().code), "code '" + f.error().code + "'");
    FUZZ_CHECK(f.error().code != "internal.error", f.error().message);
    FUZZ_CHECK(!f.error().message.empty(), f.error().code);
    return 0;
  }
  const Fleet& fleet = *f;
  for (const auto& [id, site] : fleet.sites) {
    FUZZ_CHECK(id == site.id && !id.empty(), id);
    FUZZ_CHECK(nonneg(site.import_limit_w) && nonneg(site.export_limit_w) && nonneg(site.ramp_w_per_s), id);
  }
  for (const auto& [id, station] : fleet.stations) {
    FUZZ_CHECK(id == station.id && !id.empty(), id);
    FUZZ_CHECK(fleet.sites.count(station.site), "station " + id + " on no site");
  }
  for (const auto& [key, evse] : fleet.evses) {
    FUZZ_CHECK(key == evse_key(evse.station, evse.id), key);
    FUZZ_CHECK(evse.id > 0 && fleet.stations.count(evse.station), key);
    FUZZ_CHECK(nonneg(evse.max_charge_w) && nonneg(evse.max_discharge_w) && nonneg(evse.ramp_w_per_s), key);
  }
  for (const auto& [key, s] : fleet.sessions) {
    FUZZ_CHECK(fleet.evses.count(key) && key == evse_key(s.station, s.evse), "session " + s.ev + " on " + key);
    FUZZ_CHECK(std::isfinite(s.battery_wh) && s.battery_wh > 0, s.ev);
    FUZZ_CHECK(0 <= s.soc_min && s.soc_min <= s.soc_max && s.soc_max <= 1, s.ev);
    FUZZ_CHECK(std::isfinite(s.soc) && s.soc >= 0 && s.soc <= 1, s.ev);
    FUZZ_CHECK(nonneg(s.max_charge_w) && nonneg(s.max_discharge_w) && nonneg(s.energy_needed_wh), s.ev);
    FUZZ_CHECK(s.eta_charge > 0 && s.eta_charge <= 1 && s.eta_discharge > 0 && s.eta_discharge <= 1, s.ev);
  }
  if (fleet.evses.size() > 1000) return 0;  // (enough checked; keep each input quick)
  NoSigners resolver;
  Engine engine(*f, resolver, nullptr);
  const std::int64_t now = 1'800'000'000;
  for (const auto& [key, evse] : fleet.evses) {
    auto e = engine.envelope_of(evse.station, evse.id, now, 900);
    FUZZ_CHECK(e.ok(), key + ": " + (e.ok() ? "" : e.error().code));
    FUZZ_CHECK(std::isfinite(e->min_w) && std::isfinite(e->max_w) && e->min_w <= e->max_w + 1e-9, key);
    FUZZ_CHECK(e->max_w <= evse.max_charge_w + 1e-6 && e->min_w >= -evse.max_discharge_w - 1e-6, key);
  }
  return 0;
}
