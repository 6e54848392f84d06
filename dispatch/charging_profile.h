#pragma once
// The OCPP 2.1 SetChargingProfileRequest the engine sends for an applied setpoint.
// Both forms validate against the OCPP 2.1 JSON schema (tests/interop checks them
// with ocpp-rpc's strict mode).
#include <cstdint>

#include <boost/json/object.hpp>

#include "dispatch/setpoint.h"

namespace gridtrust::dispatch {

// The received request as applied: its customData dropped, its one period's values
// replaced by the applied range (setpoint, limit, dischargeLimit kept consistent).
// Built in `storage` (default: the default resource).
boost::json::object applied_request(const boost::json::object& received, const Setpoint& sp, double lo_w,
                                    double hi_w, double envelope_min_w, double envelope_max_w,
                                    boost::json::storage_ptr storage = {});

// A fresh CentralSetpoint profile for an EVSE's share of a fleet target.
boost::json::object setpoint_request(int evse, double w, double duration_s, std::int64_t now, int profile_id);

}  // namespace gridtrust::dispatch
