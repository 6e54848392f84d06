#pragma once
// The physical envelope of one EVSE: the range of AC power [min_w, max_w] a setpoint
// may hold for `duration_s` from `now` without breaking a limit of the charger, the
// vehicle, the battery's state of charge, the vehicle's departure need, the site, or
// the ramp rate. Pure functions of the state handed in.
//
// Constraints apply in this order, each clipping what the earlier ones left (so a
// later one never overrides an earlier one, and the ramp rate, last, yields to every
// safety limit): EVSE power, EV power, SoC floor and ceiling, departure energy, site
// limit, ramp rate. Each bound remembers the constraint that set it (the first in
// that order among equally tight ones): that is the reason code of a clamp or
// rejection.
#include <cstdint>
#include <optional>
#include <string>

#include "dispatch/fleet.h"

namespace gridtrust::dispatch {

namespace reason {
inline constexpr const char* kEvseLimit = "dispatch.evse_limit";
inline constexpr const char* kEvLimit = "dispatch.ev_limit";
inline constexpr const char* kSocFloor = "dispatch.soc_floor";
inline constexpr const char* kSocCeiling = "dispatch.soc_ceiling";
inline constexpr const char* kDepartureEnergy = "dispatch.departure_energy";
inline constexpr const char* kSiteLimit = "dispatch.site_limit";
inline constexpr const char* kRampRate = "dispatch.ramp_rate";
inline constexpr const char* kNoVehicle = "dispatch.no_vehicle";
}  // namespace reason

struct Envelope {
  double min_w = 0, max_w = 0;
  const char* min_reason = reason::kEvseLimit;
  const char* max_reason = reason::kEvseLimit;
  // Charge the EV needs now to keep its departure energy reachable (>= 0, <= max_w):
  // the allocator's floor. Setpoints are not forced up to it; only a discharge that
  // would make the departure need unreachable is cut (min_w).
  double need_w = 0;
};

struct EnvelopeInput {
  const Evse* evse = nullptr;
  const Session* session = nullptr;  // null: no vehicle plugged in, the envelope is {0}
  const Site* site = nullptr;
  // The other EVSEs of the site: sums of the upper and lower ends of what they were
  // last told (a point setpoint counts at both ends).
  double others_max_w = 0;
  double others_min_w = 0;
  std::optional<double> last_w;  // the last applied setpoint of this EVSE, for the ramp rate
  std::int64_t last_at = 0;
  bool apply_ramp = true;
  std::int64_t now = 0;
  double duration_s = 900;
};

Envelope compute_envelope(const EnvelopeInput& in);

// Stored energy after holding AC power `w` for `seconds` (one-way efficiencies: DC
// in = AC x eta_charge; DC out = AC / eta_discharge).
double stored_after(const Session& s, double w, double seconds);
// DC power at the battery for AC power `w`.
double dc_power(const Session& s, double w);

}  // namespace gridtrust::dispatch
