#pragma once
// Setpoints as they arrive: an OCPP 2.1 SetChargingProfileRequest whose one schedule
// period has operationMode CentralSetpoint, ExternalSetpoint or Idle, and the fleet
// target (gridtrust's own signed message: total power for a set of stations).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "core/rejection.h"

namespace gridtrust::dispatch {

inline constexpr const char* kSetChargingProfile = "SetChargingProfile";
inline constexpr const char* kFleetTargetAction = "gridtrust.FleetTarget";

enum class OperationMode { CentralSetpoint, ExternalSetpoint, Idle };
const char* to_string(OperationMode m);

struct Setpoint {
  std::string station;
  int evse = 0;
  OperationMode mode = OperationMode::CentralSetpoint;
  // What the EVSE may do: a point for CentralSetpoint (the setpoint) and Idle (0), the
  // range [dischargeLimit, limit] for ExternalSetpoint (an external actor moves it).
  double lo_w = 0, hi_w = 0;
  std::optional<double> discharge_limit_w;  // as sent (<= 0)
  std::optional<double> limit_w;            // as sent
  double duration_s = 0;
};

// Codes: dispatch.bad_setpoint (schema-level problems: evseId, one schedule in W with
// one period starting at 0, numbers, a setpoint outside its own limits),
// dispatch.unsupported_mode (operationMode absent or other than the three).
Result<Setpoint> parse_setpoint(const boost::json::object& request, const std::string& station,
                                double default_duration_s);

// {"group": G, "targetW": W, "stations": [S...], "durationS": D}; signed with action
// gridtrust.FleetTarget and station "fleet:G".
struct FleetTarget {
  std::string group;
  double target_w = 0;
  std::vector<std::string> stations;
  double duration_s = 0;
};
// Code dispatch.bad_target.
Result<FleetTarget> parse_fleet_target(const boost::json::object& message, double default_duration_s);
boost::json::object fleet_target_message(const FleetTarget& t);
std::string fleet_target_station(const std::string& group);

}  // namespace gridtrust::dispatch
