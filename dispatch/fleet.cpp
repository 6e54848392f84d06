#include "dispatch/fleet.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/json.hpp>
#include <yaml-cpp/yaml.h>

#include "protocol/json_text.h"

namespace gridtrust::dispatch {

namespace json = boost::json;

std::string evse_key(const std::string& station, int evse) { return station + "#" + std::to_string(evse); }

const Site* Fleet::site_of_station(const std::string& station) const {
  auto st = stations.find(station);
  if (st == stations.end()) return nullptr;
  auto si = sites.find(st->second.site);
  return si == sites.end() ? nullptr : &si->second;
}

const Session* Fleet::session_of(const std::string& ev) const {
  for (const auto& [k, s] : sessions)
    if (s.ev == ev) return &s;
  return nullptr;
}

namespace {

// One reader for both file forms: YAML is turned into the JSON value model first, so
// the field rules below exist once.
json::value from_yaml(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json::object o;
      for (const auto& kv : n) o[kv.first.as<std::string>()] = from_yaml(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      json::array a;
      for (const auto& e : n) a.push_back(from_yaml(e));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return json::string(s);  // quoted: a string whatever it looks like
      if (s == "true") return true;
      if (s == "false") return false;
      if (!s.empty()) {
        char* end = nullptr;
        errno = 0;
        long long i = std::strtoll(s.c_str(), &end, 10);
        if (*end == '\0' && errno == 0) return static_cast<std::int64_t>(i);
        double d = std::strtod(s.c_str(), &end);
        if (*end == '\0' && std::isfinite(d)) return d;
      }
      return json::string(s);
    }
    default:
      return nullptr;
  }
}

class Reader {
 public:
  Reader(const json::object& o, std::string where) : o_(o), where_(std::move(where)) {}

  Status unknown_fields(std::initializer_list<const char*> allowed) const {
    for (const auto& m : o_) {
      bool ok = false;
      for (const char* a : allowed) ok = ok || m.key() == a;
      if (!ok) return bad(std::string(m.key()), "unknown field");
    }
    return Ok{};
  }
  Result<std::string> str(const char* f) const {
    auto* v = o_.if_contains(f);
    if (!v) return bad(f, "missing");
    if (!v->is_string() || v->get_string().empty()) return bad(f, "must be a non-empty string");
    return std::string(v->get_string());
  }
  Result<double> num(const char* f, std::optional<double> def = std::nullopt) const {
    auto* v = o_.if_contains(f);
    if (!v) {
      if (def) return *def;
      return bad(f, "missing");
    }
    if (!v->is_number()) return bad(f, "must be a number");
    double d = v->to_number<double>();
    if (!std::isfinite(d)) return bad(f, "must be finite");
    return d;
  }
  Result<double> nonneg(const char* f, std::optional<double> def = std::nullopt) const {
    GT_TRY_ASSIGN(double d, num(f, def));
    if (d < 0) return bad(f, "must not be negative");
    return d;
  }
  Result<double> fraction(const char* f, std::optional<double> def = std::nullopt, bool zero_ok = true) const {
    GT_TRY_ASSIGN(double d, num(f, def));
    if (d < 0 || d > 1 || (!zero_ok && d == 0)) return bad(f, zero_ok ? "must be within 0..1" : "must be within (0, 1]");
    return d;
  }
  Result<std::int64_t> integer(const char* f) const {
    auto* v = o_.if_contains(f);
    if (!v) return bad(f, "missing");
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64() && v->get_uint64() < (1ULL << 62)) return static_cast<std::int64_t>(v->get_uint64());
    if (v->is_double() && std::floor(v->get_double()) == v->get_double() && std::fabs(v->get_double()) < 9e15)
      return static_cast<std::int64_t>(v->get_double());
    return bad(f, "must be an integer");
  }
  Result<const json::array*> list(const char* f, bool required) const {
    static const json::array empty;
    auto* v = o_.if_contains(f);
    if (!v) {
      if (required) return bad(f, "missing");
      return &empty;
    }
    if (!v->is_array()) return bad(f, "must be a list");
    return &v->get_array();
  }
  Rejection bad(const std::string& field, const std::string& why) const {
    return reject("dispatch.bad_registry", where_ + "." + field + ": " + why);
  }
  const std::string& where() const { return where_; }

 private:
  const json::object& o_;
  std::string where_;
};

Result<const json::object*> object_at(const json::value& v, const std::string& where) {
  if (!v.is_object()) return reject("dispatch.bad_registry", where + ": must be a mapping");
  return &v.get_object();
}

Result<EnforcementPolicy> policy_from(const json::object& o, const Reader& r) {
  auto* v = o.if_contains("policy");
  if (!v) return EnforcementPolicy::Clamp;
  if (v->is_string() && v->get_string() == "clamp") return EnforcementPolicy::Clamp;
  if (v->is_string() && v->get_string() == "reject") return EnforcementPolicy::Reject;
  return r.bad("policy", "must be clamp or reject");
}

Result<Fleet> build(const json::value& root, const std::string& origin) {
  Fleet fleet;
  GT_TRY_ASSIGN(const json::object* top, object_at(root, origin));
  Reader tr(*top, origin);
  GT_TRY(tr.unknown_fields({"sites", "sessions"}));
  GT_TRY_ASSIGN(const json::array* sites, tr.list("sites", true));
  for (std::size_t i = 0; i < sites->size(); ++i) {
    std::string w = origin + ".sites[" + std::to_string(i) + "]";
    GT_TRY_ASSIGN(const json::object* so, object_at((*sites)[i], w));
    Reader r(*so, w);
    GT_TRY(r.unknown_fields({"id", "import_limit_w", "export_limit_w", "policy", "ramp_w_per_s", "stations"}));
    Site site;
    GT_TRY_ASSIGN(site.id, r.str("id"));
    GT_TRY_ASSIGN(site.import_limit_w, r.nonneg("import_limit_w"));
    GT_TRY_ASSIGN(site.export_limit_w, r.nonneg("export_limit_w", site.import_limit_w));
    GT_TRY_ASSIGN(site.policy, policy_from(*so, r));
    GT_TRY_ASSIGN(site.ramp_w_per_s, r.nonneg("ramp_w_per_s", 0.0));
    if (fleet.sites.count(site.id)) return reject("dispatch.duplicate_id", w + ".id: site " + site.id + " twice");
    GT_TRY_ASSIGN(const json::array* stations, r.list("stations", false));
    for (std::size_t j = 0; j < stations->size(); ++j) {
      std::string ws = w + ".stations[" + std::to_string(j) + "]";
      GT_TRY_ASSIGN(const json::object* sto, object_at((*stations)[j], ws));
      Reader rs(*sto, ws);
      GT_TRY(rs.unknown_fields({"id", "aggregator", "evses"}));
      Station st;
      st.site = site.id;
      GT_TRY_ASSIGN(st.id, rs.str("id"));
      // '#' separates station and EVSE in the registry's keys (evse_key).
      if (st.id.find('#') != std::string::npos) return rs.bad("id", "must not contain '#'");
      GT_TRY_ASSIGN(st.aggregator, rs.str("aggregator"));
      if (fleet.stations.count(st.id)) return reject("dispatch.duplicate_id", ws + ".id: station " + st.id + " twice");
      GT_TRY_ASSIGN(const json::array* evses, rs.list("evses", true));
      if (evses->empty()) return rs.bad("evses", "needs at least one EVSE");
      for (std::size_t k = 0; k < evses->size(); ++k) {
        std::string we = ws + ".evses[" + std::to_string(k) + "]";
        GT_TRY_ASSIGN(const json::object* eo, object_at((*evses)[k], we));
        Reader re(*eo, we);
        GT_TRY(re.unknown_fields({"id", "max_charge_w", "max_discharge_w", "ramp_w_per_s"}));
        Evse e;
        e.station = st.id;
        GT_TRY_ASSIGN(std::int64_t id, re.integer("id"));
        if (id < 1 || id > 1000000) return re.bad("id", "must be an evseId above 0");
        e.id = static_cast<int>(id);
        GT_TRY_ASSIGN(e.max_charge_w, re.nonneg("max_charge_w"));
        GT_TRY_ASSIGN(e.max_discharge_w, re.nonneg("max_discharge_w", 0.0));
        GT_TRY_ASSIGN(e.ramp_w_per_s, re.nonneg("ramp_w_per_s", 0.0));
        if (!fleet.evses.emplace(evse_key(st.id, e.id), e).second)
          return reject("dispatch.duplicate_id", we + ".id: EVSE " + std::to_string(e.id) + " twice at " + st.id);
      }
      fleet.stations.emplace(st.id, st);
    }
    fleet.sites.emplace(site.id, site);
  }
  GT_TRY_ASSIGN(const json::array* sessions, tr.list("sessions", false));
  std::set<std::string> evs;
  for (std::size_t i = 0; i < sessions->size(); ++i) {
    std::string w = origin + ".sessions[" + std::to_string(i) + "]";
    GT_TRY_ASSIGN(const json::object* so, object_at((*sessions)[i], w));
    GT_TRY_ASSIGN(Session s, session_from_json(*so, w));
    GT_TRY(validate_session(fleet, s, w));
    if (!evs.insert(s.ev).second) return reject("dispatch.duplicate_id", w + ".ev: EV " + s.ev + " twice");
    fleet.sessions.emplace(evse_key(s.station, s.evse), std::move(s));
  }
  return fleet;
}

}  // namespace

json::object session_to_json(const Session& s) {
  return json::object{{"ev", s.ev},
                      {"station", s.station},
                      {"evse", s.evse},
                      {"battery_kwh", s.battery_wh / 1000},
                      {"soc", s.soc},
                      {"soc_min", s.soc_min},
                      {"soc_max", s.soc_max},
                      {"max_charge_w", s.max_charge_w},
                      {"max_discharge_w", s.max_discharge_w},
                      {"eta_charge", s.eta_charge},
                      {"eta_discharge", s.eta_discharge},
                      {"departure", s.departure},
                      {"energy_needed_kwh", s.energy_needed_wh / 1000},
                      {"alpha_per_kwh", s.alpha_per_kwh}};
}

Result<Session> session_from_json(const json::object& o, const std::string& w) {
  Reader r(o, w);
  GT_TRY(r.unknown_fields({"ev", "station", "evse", "battery_kwh", "soc", "soc_min", "soc_max", "max_charge_w",
                           "max_discharge_w", "eta_charge", "eta_discharge", "departure", "energy_needed_kwh",
                           "alpha_per_kwh"}));
  Session s;
  GT_TRY_ASSIGN(s.ev, r.str("ev"));
  GT_TRY_ASSIGN(s.station, r.str("station"));
  GT_TRY_ASSIGN(std::int64_t evse, r.integer("evse"));
  if (evse < 1 || evse > 1000000) return r.bad("evse", "must be an evseId above 0");
  s.evse = static_cast<int>(evse);
  GT_TRY_ASSIGN(double kwh, r.nonneg("battery_kwh"));
  if (kwh <= 0) return r.bad("battery_kwh", "must be above 0");
  s.battery_wh = kwh * 1000;
  if (!std::isfinite(s.battery_wh)) return r.bad("battery_kwh", "is too large");
  GT_TRY_ASSIGN(s.soc, r.fraction("soc"));
  GT_TRY_ASSIGN(s.soc_min, r.fraction("soc_min", 0.0));
  GT_TRY_ASSIGN(s.soc_max, r.fraction("soc_max", 1.0));
  if (s.soc_min > s.soc_max) return r.bad("soc_min", "is above soc_max");
  GT_TRY_ASSIGN(s.max_charge_w, r.nonneg("max_charge_w"));
  GT_TRY_ASSIGN(s.max_discharge_w, r.nonneg("max_discharge_w", 0.0));
  GT_TRY_ASSIGN(s.eta_charge, r.fraction("eta_charge", 1.0, false));
  GT_TRY_ASSIGN(s.eta_discharge, r.fraction("eta_discharge", 1.0, false));
  GT_TRY_ASSIGN(s.departure, r.integer("departure"));
  if (s.departure < 0 || s.departure > kLastDeparture)
    return r.bad("departure", "must be seconds since 1970, up to the year 9999");
  GT_TRY_ASSIGN(double need, r.nonneg("energy_needed_kwh", 0.0));
  s.energy_needed_wh = need * 1000;
  if (s.energy_needed_wh > s.soc_max * s.battery_wh + 1e-9)
    return r.bad("energy_needed_kwh", "is above what soc_max lets the battery hold");
  GT_TRY_ASSIGN(s.alpha_per_kwh, r.nonneg("alpha_per_kwh", 0.05));
  return s;
}

Status validate_session(const Fleet& fleet, const Session& s, const std::string& where) {
  if (!fleet.stations.count(s.station))
    return reject("dispatch.unknown_reference", where + ".station: no station " + s.station + " in the registry");
  if (!fleet.evses.count(evse_key(s.station, s.evse)))
    return reject("dispatch.unknown_reference",
                  where + ".evse: station " + s.station + " has no EVSE " + std::to_string(s.evse));
  if (!(std::isfinite(s.battery_wh) && s.battery_wh > 0) || s.departure < 0 || s.departure > kLastDeparture ||
      s.soc < 0 || s.soc > 1 || s.soc_min < 0 || s.soc_max > 1 || s.soc_min > s.soc_max || s.eta_charge <= 0 || s.eta_charge > 1 || s.eta_discharge <= 0 || s.eta_discharge > 1 || s.max_charge_w < 0 ||
      s.max_discharge_w < 0 || s.energy_needed_wh < 0 || s.energy_needed_wh > s.soc_max * s.battery_wh + 1e-9)
    return reject("dispatch.bad_registry", where + ": session values out of range");
  auto it = fleet.sessions.find(evse_key(s.station, s.evse));
  if (it != fleet.sessions.end() && it->second.ev != s.ev)
    return reject("dispatch.duplicate_id", where + ".evse: EVSE " + s.station + "#" + std::to_string(s.evse) +
                                               " already has EV " + it->second.ev + " plugged in");
  return Ok{};
}

Result<Fleet> load_fleet_yaml_text(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return reject("dispatch.bad_registry", origin + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  try {
    return build(from_yaml(root), origin);
  } catch (const YAML::Exception& e) {
    return reject("dispatch.bad_registry", origin + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Result<Fleet> load_fleet_json_text(const std::string& text, const std::string& origin) {
  auto v = protocol::parse_strict(text, {std::size_t(64) << 20, 32});
  if (!v.ok()) return reject("dispatch.bad_registry", origin + ": " + v.error().code + ": " + v.error().message);
  return build(*v, origin);
}

Result<Fleet> load_fleet_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return reject("usage.unreadable_file", "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto ends = [&](const char* ext) {
    std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".json")) return load_fleet_json_text(ss.str(), path);
  return load_fleet_yaml_text(ss.str(), path);
}

}  // namespace gridtrust::dispatch
