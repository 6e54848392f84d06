#pragma once
// The SetChargingProfileRequest both dispatch benchmarks send: EVSE 1, one
// CentralSetpoint period of `w` watts for 60 s.
#include <boost/json.hpp>

namespace gridtrust::bench {

inline boost::json::object setpoint_message(double w) {
  namespace json = boost::json;
  json::object period{{"startPeriod", 0}, {"operationMode", "CentralSetpoint"}, {"setpoint", w}};
  json::object schedule{{"id", 1}, {"chargingRateUnit", "W"}, {"duration", 60},
                        {"chargingSchedulePeriod", json::array{period}}};
  return json::object{{"evseId", 1},
                      {"chargingProfile", json::object{{"id", 1}, {"stackLevel", 0},
                                                       {"chargingProfilePurpose", "TxDefaultProfile"},
                                                       {"chargingProfileKind", "Absolute"},
                                                       {"chargingSchedule", json::array{schedule}}}}};
}

}  // namespace gridtrust::bench
