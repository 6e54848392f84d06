// gridtrust sign | sign-batch | verify | verify-batch: signed OCPP commands offline,
// against the data directory's token and store (docs/signed-commands.md), or with
// --server through gridtrustd's /v1/commands routes.
#include <iostream>

#include <boost/json.hpp>

#include "cli/command_signing.h"
#include "cli/commands.h"
#include "cli/pki_context.h"
#include "cli/remote_client.h"
#include "protocol/jcs.h"
#include "protocol/json_text.h"

namespace gridtrust::cli {
namespace json = boost::json;

namespace {

constexpr std::size_t kMaxMessageBytes = 1 << 20;
constexpr std::size_t kMaxBatchBytes = 64 << 20;

Result<std::string> dir_of(const Args& a) {
  std::string d = data_dir_or_default(a.value("data-dir").value_or(""));
  if (d.empty()) return reject("usage.missing_option", "--data-dir is required (or set GRIDTRUST_DATA_DIR)");
  return d;
}

Result<json::value> read_json(const Args& a, const char* command, std::size_t limit) {
  if (a.positional.size() != 1) return reject("usage.missing_argument", std::string(command) + " takes one FILE.json");
  GT_TRY_ASSIGN(Bytes bytes, read_file(a.positional[0], limit));
  auto v = protocol::parse_strict(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                  {limit, 64});
  if (!v.ok()) return reject("usage.bad_input", a.positional[0] + ": " + v.error().code + ": " + v.error().message);
  return std::move(v).value();
}

Result<std::int64_t> seconds_option(const Args& a, const char* name, std::int64_t fallback, std::int64_t max) {
  auto v = a.value(name);
  if (!v) return fallback;
  try {
    std::size_t used = 0;
    long long n = std::stoll(*v, &used);
    if (used != v->size() || n <= 0 || n > max) throw std::invalid_argument(*v);
    return static_cast<std::int64_t>(n);
  } catch (const std::exception&) {
    return reject("usage.bad_value", std::string("--") + name + " takes 1 to " + std::to_string(max) + " seconds");
  }
}

Result<std::unique_ptr<app::PkiContext>> open(const Args& a) {
  GT_TRY_ASSIGN(std::string dir, dir_of(a));
  return app::open_pki(dir);
}

Result<app::VerifyParameters> verify_parameters(const Args& a) {
  app::VerifyParameters p;
  p.station = a.value("station");
  p.action = a.value("action");
  GT_TRY_ASSIGN(p.max_lifetime_s, seconds_option(a, "max-lifetime", 3600, 7 * 86400));
  return p;
}

}  // namespace

Status cmd_sign(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "action", "station", "lifetime", "signer", "out"}, {"x5c"}));
  app::SignParameters p;
  GT_TRY_ASSIGN(p.action, a.required("action"));
  GT_TRY_ASSIGN(p.station, a.required("station"));
  GT_TRY_ASSIGN(p.lifetime_s, seconds_option(a, "lifetime", 300, 86400));
  p.include_x5c = a.flag("x5c");
  GT_TRY(check_output_path(a.value("out")));
  GT_TRY_ASSIGN(json::value message, read_json(a, "sign", kMaxMessageBytes));
  if (!message.is_object()) return reject("sign.not_object", "an OCPP request payload is a JSON object");
  GT_TRY_ASSIGN(auto ctx, open(a));
  app::CommandService service(*ctx->ca, 1);
  if (auto serial = a.value("signer")) {
    GT_TRY_ASSIGN(std::string s, normalise_serial(*serial));
    GT_TRY(service.use_signer(s));
  }
  GT_TRY_ASSIGN(json::object signed_message, service.sign(std::move(message.as_object()), p));
  GT_TRY_ASSIGN(std::string text, protocol::canonicalize(signed_message));  // canonical: stable bytes
  return write_output(a.value("out"), text + "\n");
}

Status cmd_sign_batch(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "lifetime", "signer", "out"}, {"x5c"}));
  GT_TRY_ASSIGN(std::int64_t lifetime, seconds_option(a, "lifetime", 300, 86400));
  GT_TRY(check_output_path(a.value("out")));
  GT_TRY_ASSIGN(json::value items, read_json(a, "sign-batch", kMaxBatchBytes));
  if (!items.is_array())
    return reject("usage.bad_input", "sign-batch takes a JSON array of {\"action\",\"station\",\"message\"}");
  GT_TRY_ASSIGN(auto ctx, open(a));
  app::CommandService service(*ctx->ca, 1);
  if (auto serial = a.value("signer")) {
    GT_TRY_ASSIGN(std::string s, normalise_serial(*serial));
    GT_TRY(service.use_signer(s));
  }
  GT_TRY_ASSIGN(json::array out, service.sign_batch(items.as_array(), lifetime, a.flag("x5c")));
  GT_TRY_ASSIGN(std::string text, protocol::canonicalize(out));
  return write_output(a.value("out"), text + "\n");
}

Status cmd_verify(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "station", "action", "max-lifetime"}, {}));
  GT_TRY_ASSIGN(app::VerifyParameters p, verify_parameters(a));
  GT_TRY_ASSIGN(json::value message, read_json(a, "verify", kMaxMessageBytes));
  if (!message.is_object()) return reject("verify.malformed", "a signed OCPP message is a JSON object");
  GT_TRY_ASSIGN(auto ctx, open(a));
  app::CommandService service(*ctx->ca, 1);
  GT_TRY_ASSIGN(json::object report, service.verify(message.as_object(), p));
  std::cout << json::serialize(report) << "\n";
  return Ok{};
}

Status cmd_verify_batch(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "station", "action", "max-lifetime"}, {}));
  GT_TRY_ASSIGN(app::VerifyParameters p, verify_parameters(a));
  GT_TRY_ASSIGN(json::value messages, read_json(a, "verify-batch", kMaxBatchBytes));
  if (!messages.is_array()) return reject("verify.malformed", "verify-batch takes a JSON array of batch entries");
  GT_TRY_ASSIGN(auto ctx, open(a));
  app::CommandService service(*ctx->ca, 1);
  GT_TRY_ASSIGN(json::array reports, service.verify_batch(messages.as_array(), p));
  std::cout << json::serialize(reports) << "\n";
  return Ok{};
}

namespace {

// The daemon answers {"message": <JCS>} / {"messages": [...]}: read strictly so that
// every number is the one that was signed, print canonical as the offline commands do.
Result<std::string> signed_member(const std::string& answer, const char* name) {
  auto v = protocol::parse_strict(answer, {answer.size() + 1, 64});
  if (!v.ok() || !v->is_object() || !v->as_object().contains(name))
    return reject("remote.bad_response", std::string("answer has no \"") + name + "\" member");
  GT_TRY_ASSIGN(std::string text, protocol::canonicalize(v->as_object().at(name)));
  return text;
}

Status remote_only_options(const Args& a, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (a.value(name))
      return reject("usage.remote_unsupported", std::string("--") + name +
                                                    " works offline only (the daemon signs with its newest "
                                                    "aggregator signer and its own verification limits)");
  return Ok{};
}

json::object verify_body(const Args& a) {
  json::object body;
  if (auto s = a.value("station")) body["station"] = *s;
  if (auto s = a.value("action")) body["action"] = *s;
  return body;
}

}  // namespace

Status remote_signed_command(const ServerUrl& server, const std::string& command,
                             const std::vector<std::string>& words) {
  if (command == "sign") {
    GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "action", "station", "lifetime", "signer", "out"}, {"x5c"}));
    GT_TRY(remote_only_options(a, {"signer"}));
    json::object body;
    GT_TRY_ASSIGN(std::string action, a.required("action"));
    GT_TRY_ASSIGN(std::string station, a.required("station"));
    GT_TRY_ASSIGN(std::int64_t lifetime, seconds_option(a, "lifetime", 300, 86400));
    GT_TRY(check_output_path(a.value("out")));
    GT_TRY_ASSIGN(json::value message, read_json(a, "sign", kMaxMessageBytes));
    if (!message.is_object()) return reject("sign.not_object", "an OCPP request payload is a JSON object");
    body["action"] = action;
    body["station"] = station;
    body["lifetime_s"] = lifetime;
    body["x5c"] = a.flag("x5c");
    body["message"] = std::move(message);
    GT_TRY_ASSIGN(std::string dir, dir_of(a));
    GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
    GT_TRY_ASSIGN(std::string answer, client->call_text("/v1/commands/sign", body));
    GT_TRY_ASSIGN(std::string text, signed_member(answer, "message"));
    return write_output(a.value("out"), text + "\n");
  }
  if (command == "sign-batch") {
    GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "lifetime", "signer", "out"}, {"x5c"}));
    GT_TRY(remote_only_options(a, {"signer"}));
    GT_TRY_ASSIGN(std::int64_t lifetime, seconds_option(a, "lifetime", 300, 86400));
    GT_TRY(check_output_path(a.value("out")));
    GT_TRY_ASSIGN(json::value items, read_json(a, "sign-batch", kMaxBatchBytes));
    if (!items.is_array())
      return reject("usage.bad_input", "sign-batch takes a JSON array of {\"action\",\"station\",\"message\"}");
    json::object body{{"lifetime_s", lifetime}, {"x5c", a.flag("x5c")}, {"items", std::move(items)}};
    GT_TRY_ASSIGN(std::string dir, dir_of(a));
    GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
    GT_TRY_ASSIGN(std::string answer, client->call_text("/v1/commands/sign-batch", body));
    GT_TRY_ASSIGN(std::string text, signed_member(answer, "messages"));
    return write_output(a.value("out"), text + "\n");
  }
  // verify | verify-batch
  const bool batch = command == "verify-batch";
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "station", "action", "max-lifetime"}, {}));
  GT_TRY(remote_only_options(a, {"max-lifetime"}));
  json::object body = verify_body(a);
  GT_TRY_ASSIGN(json::value input, read_json(a, command.c_str(), batch ? kMaxBatchBytes : kMaxMessageBytes));
  if (batch && !input.is_array()) return reject("verify.malformed", "verify-batch takes a JSON array of batch entries");
  if (!batch && !input.is_object()) return reject("verify.malformed", "a signed OCPP message is a JSON object");
  body[batch ? "messages" : "message"] = std::move(input);
  GT_TRY_ASSIGN(std::string dir, dir_of(a));
  GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
  GT_TRY_ASSIGN(json::value answer, client->call(batch ? "/v1/commands/verify-batch" : "/v1/commands/verify", body));
  if (batch) {
    const json::value* reports = answer.is_object() ? answer.as_object().if_contains("reports") : nullptr;
    if (!reports) return reject("remote.bad_response", "answer has no \"reports\" member");
    std::cout << json::serialize(*reports) << "\n";
  } else {
    std::cout << json::serialize(answer) << "\n";
  }
  return Ok{};
}

}  // namespace gridtrust::cli
