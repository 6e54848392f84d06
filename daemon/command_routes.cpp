#include "daemon/command_routes.h"

#include <memory>

#include "cli/command_signing.h"
#include "protocol/jcs.h"
#include "protocol/json_text.h"

namespace gridtrust::daemon {
namespace json = boost::json;

namespace {

const std::set<std::string> kSigners = {"admin", "operator", "aggregator"};
const std::set<std::string> kVerifiers = {"admin", "operator", "auditor", "aggregator"};

// Sequence numbers reserved per durable reservation and station: one SQLite commit per
// 64 signatures for a station instead of one per signature.
constexpr std::uint64_t kSeqBlock = 64;

// The body exactly as sent: duplicate member names refused, numbers read exactly.
Result<json::object> strict_body(const Request& req) {
  GT_TRY(json_object_body(req));  // content type and plain JSON, with the API's usual codes
  auto v = protocol::parse_strict(req.body, {req.body.size(), 64});
  if (!v.ok()) return reject("request.bad_json", v.error().message);
  if (!v->is_object()) return reject("request.bad_json", "request body must be a JSON object");
  return std::move(v->as_object());
}

Result<std::int64_t> lifetime(const json::object& body) {
  const json::value* v = body.if_contains("lifetime_s");
  if (!v) return std::int64_t{300};
  if (!v->is_int64() || v->get_int64() <= 0 || v->get_int64() > 86400)
    return reject("request.bad_json", "lifetime_s must be an integer from 1 to 86400");
  return v->get_int64();
}

Result<bool> flag(const json::object& body, const char* name) {
  const json::value* v = body.if_contains(name);
  if (!v) return false;
  if (!v->is_bool()) return reject("request.bad_json", std::string(name) + " must be true or false");
  return v->get_bool();
}

Result<std::optional<std::string>> optional_string(const json::object& body, const char* name) {
  const json::value* v = body.if_contains(name);
  if (!v) return std::optional<std::string>();
  if (!v->is_string()) return reject("request.bad_json", std::string(name) + " must be a string");
  return std::optional<std::string>(std::string(v->get_string()));
}

Result<app::SignParameters> sign_parameters(const json::object& body) {
  app::SignParameters p;
  GT_TRY_ASSIGN(auto action, optional_string(body, "action"));
  GT_TRY_ASSIGN(auto station, optional_string(body, "station"));
  if (!action || !station) return reject("request.bad_json", "action and station are required");
  p.action = *action;
  p.station = *station;
  GT_TRY_ASSIGN(p.lifetime_s, lifetime(body));
  GT_TRY_ASSIGN(p.include_x5c, flag(body, "x5c"));
  return p;
}

Result<app::VerifyParameters> verify_parameters(const json::object& body) {
  app::VerifyParameters p;
  GT_TRY_ASSIGN(p.station, optional_string(body, "station"));
  GT_TRY_ASSIGN(p.action, optional_string(body, "action"));
  return p;
}

// {"<name>": <JCS of value>} as the reply body.
Reply canonical_reply(const char* name, const json::value& value) {
  auto text = protocol::canonicalize(value);
  if (!text.ok()) return error_reply(text.error());
  Reply r;
  r.body = std::string("{\"") + name + "\":" + *text + "}";
  return r;
}

template <typename Fn>
Handler handler(Fn fn) {
  return [fn](const Request& req) -> Reply {
    auto body = strict_body(req);
    if (!body.ok()) return error_reply(body.error());
    return fn(*body);
  };
}

}  // namespace

std::shared_ptr<app::CommandService> make_command_service(pki::CertificateAuthority& ca,
                                                          std::function<TimePoint()> now) {
  return std::make_shared<app::CommandService>(ca, kSeqBlock, std::move(now));
}

void add_command_routes(Router& router, pki::CertificateAuthority& ca, std::shared_ptr<app::CommandService> service) {
  if (!service) service = make_command_service(ca);

  router.add("POST", "/v1/commands/sign", Access::roles, handler([service](const json::object& body) -> Reply {
               auto p = sign_parameters(body);
               if (!p.ok()) return error_reply(p.error());
               const json::value* message = body.if_contains("message");
               if (!message || !message->is_object())
                 return error_reply(reject("request.bad_json", "message must be the OCPP request payload object"));
               auto signed_message = service->sign(message->get_object(), *p);
               if (!signed_message.ok()) return error_reply(signed_message.error());
               return canonical_reply("message", *signed_message);
             }),
             kSigners);

  router.add("POST", "/v1/commands/sign-batch", Access::roles, handler([service](const json::object& body) -> Reply {
               auto life = lifetime(body);
               if (!life.ok()) return error_reply(life.error());
               auto x5c = flag(body, "x5c");
               if (!x5c.ok()) return error_reply(x5c.error());
               const json::value* items = body.if_contains("items");
               if (!items || !items->is_array())
                 return error_reply(reject("request.bad_json", "items must be an array of {action, station, message}"));
               auto signed_entries = service->sign_batch(items->get_array(), *life, *x5c);
               if (!signed_entries.ok()) return error_reply(signed_entries.error());
               return canonical_reply("messages", *signed_entries);
             }),
             kSigners);

  router.add("POST", "/v1/commands/verify", Access::roles, handler([service](const json::object& body) -> Reply {
               auto p = verify_parameters(body);
               if (!p.ok()) return error_reply(p.error());
               const json::value* message = body.if_contains("message");
               if (!message || !message->is_object())
                 return error_reply(reject("request.bad_json", "message must be the signed OCPP message object"));
               auto report = service->verify(message->get_object(), *p);
               if (!report.ok()) return error_reply(report.error());
               return json_reply(*report);
             }),
             kVerifiers);

  router.add("POST", "/v1/commands/verify-batch", Access::roles, handler([service](const json::object& body) -> Reply {
               auto p = verify_parameters(body);
               if (!p.ok()) return error_reply(p.error());
               const json::value* messages = body.if_contains("messages");
               if (!messages || !messages->is_array())
                 return error_reply(reject("request.bad_json", "messages must be an array of batch entries"));
               auto reports = service->verify_batch(messages->get_array(), *p);
               if (!reports.ok()) return error_reply(reports.error());
               return json_reply(json::object{{"reports", std::move(*reports)}});
             }),
             kVerifiers);
}

}  // namespace gridtrust::daemon
