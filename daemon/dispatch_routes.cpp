#include "daemon/dispatch_routes.h"

#include <cctype>
#include <optional>
#include <set>

#include <boost/json.hpp>

#include "core/encoding.h"
#include "protocol/json_text.h"

namespace gridtrust::daemon {
namespace json = boost::json;
using dispatch::Decision;
using dispatch::Outcome;

namespace {

const std::set<std::string> kSubmitters = {"admin", "operator", "aggregator"};
const std::set<std::string> kReaders = {"admin", "operator", "auditor", "aggregator"};

std::string caller_of(const Request& req) {
  return req.caller ? req.caller->role + ":" + req.caller->subject : std::string("unknown");
}
std::string actor_of(const Request& req) { return "daemon:" + caller_of(req); }

// The body exactly as sent: duplicate member names refused (a signed message must
// mean one thing to every parser), numbers read exactly.
Result<json::object> strict_body(const Request& req) {
  GT_TRY(json_content_type(req));  // with the API's usual code; the body is parsed once, strictly
  auto v = protocol::parse_strict(req.body, {req.body.size(), 32});  // (boost::json::parse's depth)
  if (!v.ok()) return reject("request.bad_json", v.error().code + ": " + v.error().message);
  if (!v->is_object()) return reject("request.bad_json", "request body must be a JSON object");
  return std::move(v->as_object());
}

// The station and sequence number a signed message claims, read without verifying it:
// only to refuse an aggregator caller another organisation's station before the
// engine spends a sequence number on it. The engine verifies everything itself.
struct Claimed {
  std::string station;
  std::uint64_t seq = 0;
  std::string signer;  // x5t#S256
};

std::optional<Claimed> claimed(const json::object& message) {
  const json::value* cd = message.if_contains("customData");
  if (!cd || !cd->is_object()) return std::nullopt;
  const json::object& c = cd->get_object();
  json::value header;
  if (const json::value* sig = c.if_contains("signature"); sig && sig->is_string()) {
    std::string_view text = sig->get_string();
    if (auto h = base64url_decode(text.substr(0, text.find('.')))) {
      boost::system::error_code ec;
      header = json::parse(std::string_view(reinterpret_cast<const char*>(h->data()), h->size()), ec);
      if (ec) header = nullptr;
    }
  }
  const json::object* claims = header.if_object();
  if (const json::value* b = c.if_contains("batch"); b && b->is_object()) claims = &b->get_object();
  if (!claims) return std::nullopt;
  Claimed out;
  const json::value* st = claims->if_contains("station");
  if (!st || !st->is_string()) return std::nullopt;
  out.station = std::string(st->get_string());
  if (const json::value* seq = claims->if_contains("seq")) {
    if (seq->is_uint64()) out.seq = seq->get_uint64();
    else if (seq->is_int64() && seq->get_int64() > 0) out.seq = static_cast<std::uint64_t>(seq->get_int64());
  }
  if (header.is_object())
    if (const json::value* x = header.get_object().if_contains("x5t#S256"); x && x->is_string())
      out.signer = std::string(x->get_string());
  return out;
}

// Stations do not change while the daemon runs (the registry file is read at start),
// so their owners are looked up once.
class Owners {
 public:
  explicit Owners(const dispatch::Fleet& fleet) {
    for (const auto& [id, st] : fleet.stations) owner_[id] = st.aggregator;
  }
  // An aggregator caller may act for its own organisation's stations only; a station
  // not in the registry is left to the engine (dispatch.unknown_station).
  Status check(const Request& req, const std::string& station) const {
    if (!req.caller || req.caller->role != "aggregator") return Ok{};
    auto it = owner_.find(station);
    if (it == owner_.end() || it->second == req.caller->organisation) return Ok{};
    return reject("auth.forbidden_station", "station " + station + " belongs to another aggregator than '" +
                                                req.caller->organisation + "'");
  }
  // What an aggregator caller may read about: its own stations only.
  bool visible(const Request& req, const std::string& station) const {
    if (!req.caller || req.caller->role != "aggregator") return true;
    auto it = owner_.find(station);
    return it != owner_.end() && it->second == req.caller->organisation;
  }

 private:
  std::map<std::string, std::string> owner_;
};

json::array range(double lo, double hi) { return json::array{lo, hi}; }

json::object session_json(const dispatch::Session& s) { return dispatch::session_to_json(s); }

json::object evse_json(DispatchService& svc, const dispatch::EvseStatus& e, std::int64_t now) {
  json::object o{{"station", e.station}, {"evse", e.evse}};
  o["session"] = e.session ? json::value(session_json(*e.session)) : json::value(nullptr);
  if (e.until > now) {
    o["setpoint_w"] = range(e.lo_w, e.hi_w);
    o["until"] = e.until;
  } else {
    o["setpoint_w"] = nullptr;
  }
  auto env = svc.runtime().engine().envelope_of(e.station, e.evse, now, svc.runtime().config().default_duration_s);
  if (env.ok()) o["envelope_w"] = range(env->min_w, env->max_w);
  return o;
}

// Applied decisions carry the signed command: into the answer, or (output: outbox)
// into the outbox, committed in one transaction before the answer leaves. The answer's
// entries are written as text: a batch's commands (a signed command of ~1 KB per entry)
// are serialised once, not copied into an answer object first.
class Emitted {
 public:
  // One entry of the answer, until it is written: {"decision":..., and then "command",
  // "outbox_id" (or "command" and "outbox_error", when the outbox commit failed) or
  // "command_error"}. A fleet target's entries name station and evse instead of a decision.
  struct Entry {
    std::string head;                     // the members before the command's, without braces
    std::optional<json::object> command;  // signed
    std::string outbox_id;
    std::optional<std::string> command_error;
  };

  Emitted(DispatchService& svc, const Request& req) : svc_(svc), req_(req) {}

  Entry entry(Decision& d) {
    svc_.count(dispatch::to_string(d.outcome), d.reason);
    Entry e;
    e.head = "\"decision\":";
    d.append_json(e.head);  // the text of serialize(d.to_json())
    if (d.command) add(e, std::move(*d.command), d.station);
    else if (d.applied()) e.command_error = d.detail;  // applied, but nothing could be signed
    return e;
  }

  void add(Entry& e, json::object command, const std::string& station) {
    if (svc_.runtime().config().output == app::DispatchOutput::Outbox) {
      auto c = claimed(command);
      store::OutboxEntry o;
      // Sequence numbers are per (signer, station): a re-keyed signer starts again at 1.
      o.id = "dispatch:" + station + ":" + (c ? c->signer.substr(0, 11) + ":" + std::to_string(c->seq) : std::string("?"));
      o.station = station;
      o.profile = "dispatch";
      o.action = dispatch::kSetChargingProfile;
      o.payload = json::serialize(command);
      o.due = o.enqueued_at = svc_.now();
      e.outbox_id = o.id;
      queue_.push_back(std::move(o));
    }
    e.command = std::move(command);  // kept for the answer, should the outbox commit fail
  }

  // One commit for the whole answer.
  void commit() {
    if (queue_.empty()) return;
    json::object what{{"entries", queue_.size()}};
    auto st = svc_.store().enqueue_outbox(
        std::move(queue_), store::AuditEvent{actor_of(req_), "dispatch.outbox", "outbox", json::serialize(what)});
    queue_.clear();
    if (!st.ok()) failure_ = st.error().code + ": " + st.error().message;
  }

  // The entry as an object's text, after commit(). After a failed commit the commands
  // go into the answer instead: the caller can still deliver them.
  void append(const Entry& e, std::string& out) const {
    out += '{';
    out += e.head;
    auto member = [&](const char* name) {
      if (out.back() != '{') out += ',';
      out += '"';
      out += name;
      out += "\":";
    };
    if (!e.outbox_id.empty() && !failure_) {
      member("outbox_id");
      out += json::serialize(json::string_view(e.outbox_id));
    } else if (e.command) {
      member("command");
      out += json::serialize(*e.command);
      if (!e.outbox_id.empty()) {
        member("outbox_error");
        out += json::serialize(json::string_view(*failure_));
      }
    } else if (e.command_error) {
      member("command_error");
      out += json::serialize(json::string_view(*e.command_error));
    }
    out += '}';
  }
  std::string text(const Entry& e) const {
    std::string out;
    append(e, out);
    return out;
  }

 private:
  DispatchService& svc_;
  const Request& req_;
  std::vector<store::OutboxEntry> queue_;
  std::optional<std::string> failure_;
};

Reply setpoints(DispatchService& svc, const Owners& owners, const Request& req) {
  auto body = strict_body(req);
  if (!body.ok()) return error_reply(body.error());
  auto& engine = svc.runtime().engine();
  Emitted emitted(svc, req);
  // {"batch":[...]}: entries under one signature; {"setpoints":[...]}: single-signed
  // messages that travel together; anything else: one single-signed message.
  const char* list_key = body->contains("batch") ? "batch" : body->contains("setpoints") ? "setpoints" : nullptr;
  const json::value* batch = list_key ? body->if_contains(list_key) : nullptr;
  const bool single_signed = list_key && std::string_view(list_key) == "setpoints";
  const std::string what = single_signed ? "setpoints" : "batch";
  if (!batch) {
    auto c = claimed(*body);
    if (c)
      if (auto st = owners.check(req, c->station); !st.ok()) return error_reply(st.error());
    Decision d = svc.intake().submit_wait(*body, c ? c->station : std::string(), caller_of(req));
    Emitted::Entry e = emitted.entry(d);
    emitted.commit();
    return json_text_reply(emitted.text(e));
  }
  if (body->size() != 1)
    return error_reply(reject("dispatch.bad_batch", "a " + what + " list is {\"" + what + "\":[...]} and nothing else"));
  if (!batch->is_array() || batch->get_array().empty())
    return error_reply(reject("dispatch.bad_batch", what + (single_signed ? " must be a non-empty array of signed messages"
                                                                          : " must be a non-empty array of signed batch entries")));
  const std::size_t max = svc.runtime().config().max_batch;
  if (batch->get_array().size() > max)
    return error_reply(reject("dispatch.batch_too_large", "a " + what + " list holds at most " + std::to_string(max) +
                                                              " entries (dispatch.max_batch), not " +
                                                              std::to_string(batch->get_array().size())));
  std::vector<json::object> entries;
  json::array& list = body->at(list_key).get_array();
  entries.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    json::value& e = list[i];
    if (!e.is_object())
      return error_reply(reject("dispatch.bad_batch", what + " entry " + std::to_string(i) + " is not an object"));
    if (auto c = claimed(e.get_object()))
      if (auto st = owners.check(req, c->station); !st.ok()) return error_reply(st.error());
    entries.push_back(std::move(e.get_object()));  // (the body is not read again)
  }
  std::vector<Decision> ds = single_signed
                                 ? engine.submit_many(entries, svc.now(), std::vector<std::string>(entries.size(), caller_of(req)))
                                 : engine.submit_batch(entries, svc.now(), caller_of(req));
  std::vector<Emitted::Entry> results;
  results.reserve(ds.size());
  std::size_t counts[3] = {0, 0, 0};
  for (auto& d : ds) {
    ++counts[static_cast<int>(d.outcome)];
    results.push_back(emitted.entry(d));
  }
  emitted.commit();
  std::string out = "{\"results\":[";
  out.reserve(results.size() * 1600);
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i) out += ',';
    emitted.append(results[i], out);
  }
  out += "],\"applied\":" + std::to_string(counts[static_cast<int>(Outcome::Applied)]) +
         ",\"clamped\":" + std::to_string(counts[static_cast<int>(Outcome::Clamped)]) +
         ",\"rejected\":" + std::to_string(counts[static_cast<int>(Outcome::Rejected)]) + "}";
  return json_text_reply(std::move(out));
}

Reply target(DispatchService& svc, const Owners& owners, const Request& req) {
  auto body = strict_body(req);
  if (!body.ok()) return error_reply(body.error());
  if (const json::value* stations = body->if_contains("stations"); stations && stations->is_array())
    for (const auto& s : stations->get_array())
      if (s.is_string())
        if (auto st = owners.check(req, std::string(s.get_string())); !st.ok()) return error_reply(st.error());
  dispatch::FleetDecision fd = svc.runtime().engine().submit_target(*body, svc.now(), caller_of(req));
  svc.count(dispatch::to_string(fd.outcome), fd.reason);
  Emitted emitted(svc, req);
  std::vector<Emitted::Entry> commands;
  commands.reserve(fd.setpoints.size());
  for (auto& d : fd.setpoints) {
    Emitted::Entry e;
    e.head = "\"station\":" + json::serialize(json::string_view(d.station)) + ",\"evse\":" + std::to_string(d.evse);
    if (d.command) emitted.add(e, std::move(*d.command), d.station);
    commands.push_back(std::move(e));
  }
  emitted.commit();
  std::string out = "{\"decision\":" + json::serialize(fd.to_json()) + ",\"commands\":[";
  for (std::size_t i = 0; i < commands.size(); ++i) {
    if (i) out += ',';
    emitted.append(commands[i], out);
  }
  out += "]}";
  return json_text_reply(std::move(out));
}

// A session's owner: the station it is (or is to be) plugged into.
Status check_ev(DispatchService& svc, const Owners& owners, const Request& req, const std::string& ev) {
  if (!req.caller || req.caller->role != "aggregator") return Ok{};
  dispatch::Fleet fleet = svc.runtime().engine().fleet();
  const dispatch::Session* s = fleet.session_of(ev);
  if (!s) return Ok{};  // the engine answers dispatch.unknown_ev
  return owners.check(req, s->station);
}

Reply start_session(DispatchService& svc, const Owners& owners, const Request& req) {
  auto body = strict_body(req);
  if (!body.ok()) return error_reply(body.error());
  auto s = dispatch::session_from_json(*body, "session");
  if (!s.ok()) return error_reply(s.error());
  if (auto st = owners.check(req, s->station); !st.ok()) return error_reply(st.error());
  if (auto st = check_ev(svc, owners, req, s->ev); !st.ok()) return error_reply(st.error());
  json::object out{{"session", session_json(*s)}};
  const std::string ev = s->ev;
  if (auto st = svc.runtime().engine().start_session(std::move(*s)); !st.ok()) return error_reply(st.error());
  if (auto st = svc.runtime().record_session(ev, svc.now()); !st.ok()) return error_reply(st.error());
  return json_reply(out);
}

Reply stop_session(DispatchService& svc, const Owners& owners, const Request& req) {
  const std::string& ev = req.param("ev");
  if (auto st = check_ev(svc, owners, req, ev); !st.ok()) return error_reply(st.error());
  if (auto st = svc.runtime().engine().stop_session(ev); !st.ok()) return error_reply(st.error());
  if (auto st = svc.runtime().record_session(ev, svc.now()); !st.ok()) return error_reply(st.error());
  return json_reply(json::object{{"stopped", ev}});
}

Reply telemetry(DispatchService& svc, const Owners& owners, const Request& req) {
  auto body = strict_body(req);
  if (!body.ok()) return error_reply(body.error());
  for (const auto& m : *body)
    if (m.key() != "ev" && m.key() != "soc" && m.key() != "at")
      return error_reply(reject("request.bad_json", "unknown member \"" + std::string(m.key().substr(0, 64)) +
                                                        "\" (expected ev, soc and optionally at)"));
  auto ev = json_string_member(*body, "ev");
  if (!ev.ok()) return error_reply(ev.error());
  const json::value* soc = body->if_contains("soc");
  if (!soc || !soc->is_number())
    return error_reply(reject("request.bad_json", "soc must be a number from 0 to 1 (state of charge)"));
  std::int64_t at = svc.now();
  if (const json::value* a = body->if_contains("at")) {
    if (!a->is_int64()) return error_reply(reject("request.bad_json", "at must be a Unix time in seconds"));
    at = a->get_int64();
  }
  if (auto st = check_ev(svc, owners, req, *ev); !st.ok()) return error_reply(st.error());
  const double value = soc->to_number<double>();
  if (auto st = svc.runtime().engine().update_soc(*ev, value, at); !st.ok()) return error_reply(st.error());
  if (auto st = svc.runtime().record_session(*ev, svc.now()); !st.ok()) return error_reply(st.error());
  return json_reply(json::object{{"ev", *ev}, {"soc", value}, {"at", at}});
}

Reply station(DispatchService& svc, const Owners& owners, const Request& req) {
  const std::string& id = req.param("station");
  if (auto st = owners.check(req, id); !st.ok()) return error_reply(st.error());
  const std::int64_t now = svc.now();
  auto evses = svc.runtime().engine().station_status(id, now);
  if (!evses.ok()) return error_reply(evses.error());
  json::array list;
  for (const auto& e : *evses) list.push_back(evse_json(svc, e, now));
  return json_reply(json::object{{"station", id}, {"at", now}, {"evses", std::move(list)}});
}

Reply site(DispatchService& svc, const Owners& owners, const Request& req) {
  const std::int64_t now = svc.now();
  auto s = svc.runtime().engine().site_status(req.param("site"), now);
  if (!s.ok()) return error_reply(s.error());
  json::array list;
  for (const auto& e : s->evses)
    if (owners.visible(req, e.station)) list.push_back(evse_json(svc, e, now));
  return json_reply(json::object{
      {"site", s->site.id},
      {"at", now},
      {"import_limit_w", s->site.import_limit_w},
      {"export_limit_w", s->site.export_limit_w},
      {"policy", s->site.policy == dispatch::EnforcementPolicy::Reject ? "reject" : "clamp"},
      {"committed_w", range(s->committed_min_w, s->committed_max_w)},
      {"evses", std::move(list)}});
}

Reply decisions(DispatchService& svc, const Owners& owners, const Request& req) {
  const std::size_t max = std::max<std::size_t>(1, svc.runtime().config().decision_log);
  auto limit = req.limit(max);
  if (!limit.ok()) return error_reply(limit.error());
  const bool aggregator = req.caller && req.caller->role == "aggregator";
  // An aggregator sees the decisions about its own stations: look further back for them.
  auto ds = svc.runtime().engine().decisions(aggregator ? max : *limit);
  json::array out;
  std::vector<const Decision*> shown;
  for (auto it = ds.rbegin(); it != ds.rend() && shown.size() < *limit; ++it)
    if (!aggregator || owners.visible(req, it->station))
      shown.push_back(&*it);
  for (auto it = shown.rbegin(); it != shown.rend(); ++it) out.push_back((*it)->to_json());
  return json_reply(json::object{{"decisions", std::move(out)}});
}

}  // namespace

void DispatchService::count(const std::string& outcome, const std::string& reason) {
  std::lock_guard g(mu_);
  ++decisions_[{outcome, reason}];
}

std::string DispatchService::metrics_text() const {
  std::lock_guard g(mu_);
  std::string out =
      "# HELP gridtrust_dispatch_decisions_total Setpoint and fleet-target decisions by outcome and reason code.\n"
      "# TYPE gridtrust_dispatch_decisions_total counter\n";
  for (const auto& [key, n] : decisions_)
    out += "gridtrust_dispatch_decisions_total{outcome=\"" + key.first + "\",reason=\"" + key.second + "\"} " +
           std::to_string(n) + "\n";
  // Grows when the daemon's key signs slower than groups are recorded (a slow or busy HSM).
  out +=
      "# HELP gridtrust_dispatch_groups_waiting_to_sign Decided and recorded groups whose commands wait for their "
      "turn to be signed.\n"
      "# TYPE gridtrust_dispatch_groups_waiting_to_sign gauge\n"
      "gridtrust_dispatch_groups_waiting_to_sign " +
      std::to_string(runtime_.engine().groups_waiting_to_sign()) + "\n";
  // Grows when groups are decided, recorded and signed slower than setpoints are verified.
  out +=
      "# HELP gridtrust_dispatch_setpoints_waiting_to_decide Single setpoints verified by the intake and waiting to "
      "be decided.\n"
      "# TYPE gridtrust_dispatch_setpoints_waiting_to_decide gauge\n"
      "gridtrust_dispatch_setpoints_waiting_to_decide " +
      std::to_string(intake_.waiting_to_decide()) + "\n";
  return out;
}

void add_dispatch_routes(Router& router, DispatchService& service) {
  auto owners = std::make_shared<const Owners>(service.runtime().engine().fleet());
  DispatchService* svc = &service;
  auto bind = [svc, owners](Reply (*fn)(DispatchService&, const Owners&, const Request&)) -> Handler {
    return [svc, owners, fn](const Request& req) { return fn(*svc, *owners, req); };
  };
  router.add("POST", "/v1/dispatch/setpoints", Access::roles, bind(setpoints), kSubmitters, Body::batch);
  router.add("POST", "/v1/dispatch/targets", Access::roles, bind(target), kSubmitters);
  router.add("POST", "/v1/dispatch/sessions", Access::roles, bind(start_session), kSubmitters);
  router.add("DELETE", "/v1/dispatch/sessions/{ev}", Access::roles, bind(stop_session), kSubmitters);
  router.add("POST", "/v1/dispatch/telemetry", Access::roles, bind(telemetry), kSubmitters);
  router.add("GET", "/v1/dispatch/sites/{site}", Access::roles, bind(site), kReaders);
  router.add("GET", "/v1/dispatch/stations/{station}", Access::roles, bind(station), kReaders);
  router.add("GET", "/v1/dispatch/decisions", Access::roles, bind(decisions), kReaders);
}

void add_dispatch_disabled_routes(Router& router) {
  Handler off = [](const Request&) {
    return error_reply(reject("dispatch.disabled", "the dispatch engine is off (dispatch.enabled in gridtrust.yaml)"));
  };
  for (const char* method : {"GET", "POST", "DELETE"})
    router.add(method, "/v1/dispatch/{rest...}", Access::roles, off, kReaders);
}

}  // namespace gridtrust::daemon
