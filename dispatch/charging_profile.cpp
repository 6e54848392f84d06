#include "dispatch/charging_profile.h"

#include <algorithm>
#include <cmath>

#include <boost/json.hpp>

#include "core/time.h"

namespace gridtrust::dispatch {

namespace json = boost::json;

namespace {
// Whole milliwatts: the emitted numbers stay short and exact in JCS.
double tidy(double w) { return std::round(w * 1000.0) / 1000.0 + 0.0; }
}  // namespace

json::object applied_request(const json::object& received, const Setpoint& sp, double lo_w, double hi_w,
                             double envelope_min_w, double envelope_max_w, json::storage_ptr storage) {
  // Everything but customData (for a batch entry, the signature and its Merkle path).
  json::object out(std::move(storage));
  out.reserve(received.size());
  for (const auto& kv : received)
    if (kv.key() != "customData") out.emplace(kv.key(), kv.value());
  json::object& period = out["chargingProfile"]
                             .as_object()["chargingSchedule"]
                             .as_array()[0]
                             .as_object()["chargingSchedulePeriod"]
                             .as_array()[0]
                             .as_object();
  switch (sp.mode) {
    case OperationMode::CentralSetpoint:
      period["setpoint"] = tidy(lo_w);
      // limit bounds the overshoot from above and dischargeLimit from below, each as
      // far as the envelope allows, yet never past zero: OCPP 2.1 wants limit
      // non-negative (a negative one is legacy for a discharge limit) and
      // dischargeLimit at most 0. When the envelope lies wholly below zero (an EVSE
      // ramping back from a discharge) the setpoint still says where to be.
      if (sp.limit_w) period["limit"] = tidy(std::max({0.0, lo_w, std::min(*sp.limit_w, envelope_max_w)}));
      if (sp.discharge_limit_w)
        period["dischargeLimit"] = tidy(std::min({0.0, lo_w, std::max(*sp.discharge_limit_w, envelope_min_w)}));
      break;
    case OperationMode::ExternalSetpoint:
      period["limit"] = tidy(std::max(hi_w, 0.0));
      if (sp.discharge_limit_w || lo_w < 0) period["dischargeLimit"] = tidy(std::min(lo_w, 0.0));
      if (auto* s = period.if_contains("setpoint")) *s = tidy(std::clamp(s->to_number<double>(), lo_w, hi_w));
      break;
    case OperationMode::Idle:
      break;
  }
  return out;
}

json::object setpoint_request(int evse, double w, double duration_s, std::int64_t now, int profile_id) {
  json::object period{{"startPeriod", 0}, {"operationMode", "CentralSetpoint"}, {"setpoint", tidy(w)}};
  json::object schedule{{"id", 1},
                        {"chargingRateUnit", "W"},
                        {"startSchedule", to_rfc3339(from_unix(now))},
                        {"duration", static_cast<std::int64_t>(std::llround(duration_s))},
                        {"chargingSchedulePeriod", json::array{std::move(period)}}};
  json::object profile{{"id", profile_id},
                       {"stackLevel", 0},
                       {"chargingProfilePurpose", "TxDefaultProfile"},
                       {"chargingProfileKind", "Absolute"},
                       {"chargingSchedule", json::array{std::move(schedule)}}};
  return json::object{{"evseId", evse}, {"chargingProfile", std::move(profile)}};
}

}  // namespace gridtrust::dispatch
