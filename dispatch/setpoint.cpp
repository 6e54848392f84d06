#include "dispatch/setpoint.h"

#include <cmath>

#include <boost/json.hpp>

namespace gridtrust::dispatch {

namespace json = boost::json;

const char* to_string(OperationMode m) {
  switch (m) {
    case OperationMode::CentralSetpoint: return "CentralSetpoint";
    case OperationMode::ExternalSetpoint: return "ExternalSetpoint";
    case OperationMode::Idle: return "Idle";
  }
  return "?";
}

namespace {

Rejection bad(const std::string& why) { return reject("dispatch.bad_setpoint", why); }

std::optional<double> number(const json::object& o, const char* f, bool& wrong_type) {
  auto* v = o.if_contains(f);
  if (!v) return std::nullopt;
  if (!v->is_number() || !std::isfinite(v->to_number<double>())) {
    wrong_type = true;
    return std::nullopt;
  }
  return v->to_number<double>();
}

std::optional<std::int64_t> integer(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() < (1ULL << 53)) return static_cast<std::int64_t>(v->get_uint64());
  return std::nullopt;
}

}  // namespace

Result<Setpoint> parse_setpoint(const json::object& req, const std::string& station, double default_duration_s) {
  Setpoint sp;
  sp.station = station;
  auto evse = integer(req.if_contains("evseId"));
  if (!evse || *evse < 1 || *evse > 1000000) return bad("evseId must be an EVSE above 0");
  sp.evse = static_cast<int>(*evse);
  auto* profile = req.if_contains("chargingProfile");
  if (!profile || !profile->is_object()) return bad("chargingProfile missing");
  auto* schedules = profile->get_object().if_contains("chargingSchedule");
  if (!schedules || !schedules->is_array() || schedules->get_array().size() != 1 ||
      !schedules->get_array()[0].is_object())
    return bad("exactly one chargingSchedule is supported");
  const json::object& sched = schedules->get_array()[0].get_object();
  auto* unit = sched.if_contains("chargingRateUnit");
  if (!unit || !unit->is_string() || unit->get_string() != "W") return bad("chargingRateUnit must be W");
  sp.duration_s = default_duration_s;
  if (auto* dur = sched.if_contains("duration")) {
    auto d = integer(dur);
    if (!d || *d < 1 || *d > 7 * 86400) return bad("duration must be 1 s to 7 days");
    sp.duration_s = static_cast<double>(*d);
  }
  auto* periods = sched.if_contains("chargingSchedulePeriod");
  if (!periods || !periods->is_array() || periods->get_array().size() != 1 || !periods->get_array()[0].is_object())
    return bad("exactly one chargingSchedulePeriod is supported");
  const json::object& period = periods->get_array()[0].get_object();
  auto start = integer(period.if_contains("startPeriod"));
  if (!start || *start != 0) return bad("startPeriod must be 0");
  bool wrong = false;
  auto setpoint = number(period, "setpoint", wrong);
  sp.limit_w = number(period, "limit", wrong);
  sp.discharge_limit_w = number(period, "dischargeLimit", wrong);
  if (wrong) return bad("setpoint, limit and dischargeLimit must be finite numbers");
  if (sp.discharge_limit_w && *sp.discharge_limit_w > 0) return bad("dischargeLimit must not be above 0");
  if (sp.limit_w && *sp.limit_w < 0) return bad("limit must not be negative");
  auto* mode = period.if_contains("operationMode");
  if (!mode || !mode->is_string()) return reject("dispatch.unsupported_mode", "operationMode is absent (ChargingOnly)");
  const std::string_view m = mode->get_string();
  if (m == "CentralSetpoint") {
    sp.mode = OperationMode::CentralSetpoint;
    if (!setpoint) return bad("CentralSetpoint needs a setpoint");
    if ((sp.limit_w && *setpoint > *sp.limit_w) || (sp.discharge_limit_w && *setpoint < *sp.discharge_limit_w))
      return bad("the setpoint lies outside its own limit/dischargeLimit");
    sp.lo_w = sp.hi_w = *setpoint;
  } else if (m == "ExternalSetpoint") {
    sp.mode = OperationMode::ExternalSetpoint;
    if (!sp.limit_w) return bad("ExternalSetpoint needs a limit");
    sp.lo_w = sp.discharge_limit_w.value_or(0.0);
    sp.hi_w = *sp.limit_w;
    if (setpoint && (*setpoint < sp.lo_w || *setpoint > sp.hi_w))
      return bad("the setpoint lies outside its own limit/dischargeLimit");
  } else if (m == "Idle") {
    sp.mode = OperationMode::Idle;
    sp.lo_w = sp.hi_w = 0;
  } else {
    return reject("dispatch.unsupported_mode", "operationMode " + std::string(m) + " is not a dispatch setpoint");
  }
  return sp;
}

std::string fleet_target_station(const std::string& group) { return "fleet:" + group; }

Result<FleetTarget> parse_fleet_target(const json::object& msg, double default_duration_s) {
  auto badt = [](const std::string& why) { return reject("dispatch.bad_target", why); };
  FleetTarget t;
  for (const auto& m : msg)
    if (m.key() != "group" && m.key() != "targetW" && m.key() != "stations" && m.key() != "durationS" &&
        m.key() != "customData")
      return badt("unknown member " + std::string(m.key()));
  auto* g = msg.if_contains("group");
  if (!g || !g->is_string() || g->get_string().empty()) return badt("group must be a non-empty string");
  t.group = std::string(g->get_string());
  auto* w = msg.if_contains("targetW");
  if (!w || !w->is_number() || !std::isfinite(w->to_number<double>())) return badt("targetW must be a number");
  t.target_w = w->to_number<double>();
  auto* st = msg.if_contains("stations");
  if (!st || !st->is_array() || st->get_array().empty()) return badt("stations must be a non-empty list");
  for (const auto& s : st->get_array()) {
    if (!s.is_string() || s.get_string().empty()) return badt("stations must hold station identities");
    t.stations.emplace_back(s.get_string());
  }
  t.duration_s = default_duration_s;
  if (auto* d = msg.if_contains("durationS")) {
    auto v = integer(d);
    if (!v || *v < 1 || *v > 86400) return badt("durationS must be 1 s to 1 day");
    t.duration_s = static_cast<double>(*v);
  }
  return t;
}

json::object fleet_target_message(const FleetTarget& t) {
  json::array st;
  for (const auto& s : t.stations) st.emplace_back(s);
  json::object o{{"group", t.group}, {"targetW", t.target_w}, {"stations", std::move(st)}};
  if (t.duration_s > 0) o["durationS"] = static_cast<std::int64_t>(t.duration_s);
  return o;
}

}  // namespace gridtrust::dispatch
