#include "dispatch/envelope.h"

#include <algorithm>
#include <cmath>

namespace gridtrust::dispatch {

namespace {

class Clipper {
 public:
  explicit Clipper(Envelope& e) : e_(e) {}
  // Raises the lower bound to `w`, never above the upper one.
  void floor(double w, const char* why) {
    w = std::min(w, e_.max_w);
    if (w > e_.min_w) {
      e_.min_w = w;
      e_.min_reason = why;
    }
  }
  void ceiling(double w, const char* why) {
    w = std::max(w, e_.min_w);
    if (w < e_.max_w) {
      e_.max_w = w;
      e_.max_reason = why;
    }
  }

 private:
  Envelope& e_;
};

}  // namespace

double dc_power(const Session& s, double w) { return w >= 0 ? w * s.eta_charge : w / s.eta_discharge; }

double stored_after(const Session& s, double w, double seconds) {
  return s.stored_wh() + dc_power(s, w) * seconds / 3600.0;
}

Envelope compute_envelope(const EnvelopeInput& in) {
  Envelope e;
  if (!in.session) {
    e.min_w = e.max_w = 0;
    e.min_reason = e.max_reason = reason::kNoVehicle;
    return e;
  }
  const Evse& evse = *in.evse;
  const Session& s = *in.session;
  const Site& site = *in.site;
  const double d = std::max(in.duration_s, 1.0);
  e.min_w = -evse.max_discharge_w;
  e.max_w = evse.max_charge_w;
  e.min_reason = e.max_reason = reason::kEvseLimit;
  Clipper c(e);
  c.floor(-s.max_discharge_w, reason::kEvLimit);
  c.ceiling(s.max_charge_w, reason::kEvLimit);

  // SoC floor and ceiling at the end of the duration (power is constant over it, so
  // the end is the extreme).
  const double stored = s.stored_wh();
  const double floor_wh = s.soc_min * s.battery_wh;
  const double ceiling_wh = s.soc_max * s.battery_wh;
  c.floor(stored <= floor_wh ? 0.0 : -(stored - floor_wh) * s.eta_discharge * 3600.0 / d, reason::kSocFloor);
  c.ceiling(stored >= ceiling_wh ? 0.0 : (ceiling_wh - stored) * 3600.0 / (s.eta_charge * d), reason::kSocCeiling);

  // Departure: after this setpoint, charging at the EV's full power until departure
  // must still reach the needed energy.
  const double full_charge_w = std::min(evse.max_charge_w, s.max_charge_w);
  const double after_s = std::max<double>(0.0, static_cast<double>(s.departure) - static_cast<double>(in.now) - d);
  const double required_wh = s.energy_needed_wh - full_charge_w * s.eta_charge * after_s / 3600.0;
  double lowest_w;  // the lowest power over `d` that ends at required_wh
  if (required_wh >= stored) lowest_w = (required_wh - stored) * 3600.0 / (s.eta_charge * d);
  else lowest_w = -(stored - required_wh) * s.eta_discharge * 3600.0 / d;
  c.floor(std::min(lowest_w, 0.0), reason::kDepartureEnergy);

  c.floor(-site.export_limit_w - in.others_min_w, reason::kSiteLimit);
  c.ceiling(site.import_limit_w - in.others_max_w, reason::kSiteLimit);

  const double ramp = evse.ramp_w_per_s > 0 ? evse.ramp_w_per_s : site.ramp_w_per_s;
  if (in.apply_ramp && ramp > 0 && in.last_w) {
    const double dt = std::max<double>(1.0, static_cast<double>(in.now - in.last_at));
    c.floor(*in.last_w - ramp * dt, reason::kRampRate);
    c.ceiling(*in.last_w + ramp * dt, reason::kRampRate);
  }
  e.need_w = std::clamp(lowest_w, 0.0, std::max(e.max_w, 0.0));
  return e;
}

}  // namespace gridtrust::dispatch
