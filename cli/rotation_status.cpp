#include "cli/rotation_status.h"

#include <iomanip>
#include <sstream>

namespace gridtrust::app {
namespace json = boost::json;

namespace {

json::value when(std::int64_t t) {
  if (t <= 0) return nullptr;
  return json::value(to_rfc3339(from_unix(t)));
}

std::string text_of(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_null()) return "-";
  return json::serialize(v);
}

}  // namespace

Result<json::object> rotation_status_json(store::Store& st, TimePoint now, std::size_t upcoming) {
  const std::int64_t t = to_unix(now);
  json::object out{{"now", t}, {"now_rfc3339", to_rfc3339(now)}};
  GT_TRY_ASSIGN(auto entries, st.rotation_entries());
  json::array keys;
  for (const auto& e : entries) {
    keys.push_back(json::object{{"role", e.role},
                                {"key_label", e.key_label},
                                {"issuer", e.issuer},
                                {"serial", e.serial},
                                {"generation", e.generation},
                                {"interval_days", e.interval_days},
                                {"rotations", e.rotations},
                                {"last_rotated_at", e.last_rotated_at},
                                {"last_rotated", when(e.last_rotated_at)},
                                {"next_due_at", e.next_due},
                                {"next_due", when(e.next_due)},
                                {"state", e.state},
                                {"overdue", e.next_due <= t}});
  }
  out["keys"] = std::move(keys);
  GT_TRY_ASSIGN(auto retired, st.retired_keys());
  json::array ret;
  for (const auto& r : retired) {
    json::object o{{"role", r.role},
                   {"key_label", r.key_label},
                   {"issuer", r.issuer},
                   {"serial", r.serial},
                   {"retired_at", r.retired_at},
                   {"destroy_after_at", r.destroy_after},
                   {"destroy_after", when(r.destroy_after)},
                   {"pending_destruction", !r.destroyed_at.has_value()}};
    if (r.destroyed_at) o["destroyed_at"] = *r.destroyed_at;
    ret.push_back(std::move(o));
  }
  out["retired_keys"] = std::move(ret);
  json::object renewals;
  for (const char* state : {"scheduled", "queued", "superseded"}) renewals[state] = 0;
  GT_TRY_ASSIGN(auto counts, st.renewal_counts());
  for (const auto& [state, n] : counts) renewals[state] = n;
  GT_TRY_ASSIGN(auto next, st.renewals(std::string("scheduled"), upcoming));
  json::array upcoming_list;
  for (const auto& r : next)
    upcoming_list.push_back(json::object{{"profile", r.profile},
                                         {"issuer", r.issuer},
                                         {"serial", r.serial},
                                         {"subject", r.subject},
                                         {"due_at", r.due},
                                         {"due", when(r.due)}});
  renewals["next"] = std::move(upcoming_list);
  out["renewals"] = std::move(renewals);
  GT_TRY_ASSIGN(std::int64_t pending, st.outbox_pending_count());
  out["outbox"] = json::object{{"pending", pending}};
  return out;
}

std::string rotation_status_text(const json::object& s) {
  std::ostringstream o;
  o << "now: " << text_of(s.at("now_rfc3339")) << "\n";
  if (const json::value* sched = s.if_contains("scheduler")) {
    const json::object& so = sched->as_object();
    o << "scheduler: " << (so.at("enabled").as_bool() ? "enabled" : "disabled");
    if (const json::value* p = so.if_contains("processed_through")) o << ", processed through " << text_of(*p);
    if (so.contains("simulated_clock") && so.at("simulated_clock").as_bool()) o << " (SIMULATED CLOCK)";
    o << "\n";
  }
  o << "daemon keys:\n";
  const auto& keys = s.at("keys").as_array();
  if (keys.empty()) o << "  (none scheduled yet: gridtrustd schedules its keys when it starts)\n";
  for (const auto& kv : keys) {
    const auto& k = kv.as_object();
    o << "  " << std::left << std::setw(18) << text_of(k.at("role")) << " gen " << std::setw(3)
      << json::serialize(k.at("generation")) << " every " << std::setw(4) << json::serialize(k.at("interval_days"))
      << "d  next " << text_of(k.at("next_due")) << (k.at("overdue").as_bool() ? " (due)" : "") << "  last "
      << text_of(k.at("last_rotated")) << "  " << text_of(k.at("state")) << "  key " << text_of(k.at("key_label"))
      << "\n";
  }
  std::size_t pending = 0;
  for (const auto& rv : s.at("retired_keys").as_array())
    if (rv.as_object().at("pending_destruction").as_bool()) ++pending;
  o << "retired keys pending destruction: " << pending << "\n";
  for (const auto& rv : s.at("retired_keys").as_array()) {
    const auto& r = rv.as_object();
    if (!r.at("pending_destruction").as_bool()) continue;
    o << "  " << std::left << std::setw(18) << text_of(r.at("role")) << " " << text_of(r.at("key_label"))
      << "  destroyed after " << text_of(r.at("destroy_after")) << "\n";
  }
  const auto& rn = s.at("renewals").as_object();
  o << "station renewals: " << json::serialize(rn.at("scheduled")) << " scheduled, " << json::serialize(rn.at("queued"))
    << " queued, " << json::serialize(rn.at("superseded")) << " superseded; outbox: "
    << json::serialize(s.at("outbox").as_object().at("pending")) << " pending\n";
  for (const auto& nv : rn.at("next").as_array()) {
    const auto& n = nv.as_object();
    o << "  " << text_of(n.at("due")) << "  " << text_of(n.at("profile")) << " " << text_of(n.at("serial")) << "  "
      << text_of(n.at("subject")) << "\n";
  }
  return o.str();
}

}  // namespace gridtrust::app
