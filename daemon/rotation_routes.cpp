#include "daemon/rotation_routes.h"

#include <cctype>

namespace gridtrust::daemon {
namespace json = boost::json;

namespace {

const std::set<std::string> kStatusReaders = {"admin", "operator", "auditor", "aggregator"};
const std::set<std::string> kOutboxUsers = {"admin", "aggregator"};

std::string actor_of(const Request& req) {
  return "daemon:" + (req.caller ? req.caller->role + ":" + req.caller->subject : std::string("unknown"));
}

json::object outbox_json(const store::OutboxEntry& e) {
  json::value payload;
  try {
    payload = json::parse(e.payload);
  } catch (const std::exception&) {
    payload = e.payload;  // stored by us as JSON; never expected
  }
  return json::object{{"id", e.id},
                      {"seq", e.seq},
                      {"station", e.station},
                      {"action", e.action},
                      {"payload", std::move(payload)},
                      {"profile", e.profile},
                      {"serial", e.serial},
                      {"due_at", e.due},
                      {"enqueued_at", e.enqueued_at}};
}

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.push_back(json::string(s));
  return a;
}

}  // namespace

void add_rotation_routes(Router& router, RotationScheduler& scheduler, store::Store& store,
                         const app::SchedulerConfig& config) {
  router.add("GET", "/v1/rotation/status", Access::roles,
             [&scheduler](const Request&) {
               auto s = scheduler.status_json();
               return s.ok() ? json_reply(s.value()) : error_reply(s.error());
             },
             kStatusReaders);

  const std::size_t page_max = config.outbox_page_max;
  router.add("GET", "/v1/outbox", Access::roles,
             [&store, page_max](const Request& req) {
               auto limit = req.limit(page_max);
               if (!limit.ok()) return error_reply(limit.error());
               auto rows = store.outbox_entries(limit.value(), false);
               if (!rows.ok()) return error_reply(rows.error());
               auto pending = store.outbox_pending_count();
               if (!pending.ok()) return error_reply(pending.error());
               json::array entries;
               for (const auto& e : rows.value()) entries.push_back(outbox_json(e));
               return json_reply(json::object{{"entries", std::move(entries)}, {"pending", pending.value()}});
             },
             kOutboxUsers);

  router.add("POST", "/v1/outbox/ack", Access::roles,
             [&store, &scheduler, page_max](const Request& req) {
               auto body = json_object_body(req);
               if (!body.ok()) return error_reply(body.error());
               const json::value* ids = body->if_contains("ids");
               if (!ids || !ids->is_array() || ids->get_array().empty() || ids->get_array().size() > page_max)
                 return error_reply(reject("request.bad_json", "ids must be an array of 1 to " +
                                                                   std::to_string(page_max) + " outbox ids"));
               std::vector<std::string> list;
               for (const auto& v : ids->get_array()) {
                 if (!v.is_string() || v.get_string().empty() || v.get_string().size() > 256)
                   return error_reply(reject("request.bad_json", "each outbox id must be a non-empty string"));
                 list.emplace_back(v.get_string());
               }
               auto result = store.ack_outbox(std::move(list), to_unix(scheduler.clock().now()),
                                              store::AuditEvent{actor_of(req), "outbox-ack", "outbox", "{}"});
               if (!result.ok()) return error_reply(result.error());
               return json_reply(json::object{{"acked", strings(result->acked)},
                                              {"already_acked", strings(result->already_acked)},
                                              {"unknown", strings(result->unknown)}});
             },
             kOutboxUsers);
}

}  // namespace gridtrust::daemon
