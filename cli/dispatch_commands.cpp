// gridtrust dispatch ...: the dispatch engine (docs/dispatch.md) through gridtrustd's
// /v1/dispatch routes (--server, or GRIDTRUST_SERVER), or for submissions offline on
// the data directory's store and registry (dispatch.registry). Both print the API's
// answer. Offline, the engine starts empty each time: it knows none of the setpoints a
// running daemon has committed, so its site sums are those of this one call; replay
// state is the store's, shared with the daemon.
#include <iostream>

#include <boost/json.hpp>

#include "cli/commands.h"
#include "cli/dispatch_runtime.h"
#include "cli/pki_context.h"
#include "cli/remote_client.h"
#include "protocol/json_text.h"

namespace gridtrust::cli {
namespace json = boost::json;

namespace {

constexpr std::size_t kMaxInputBytes = 16 << 20;

const char* kSubcommands = "dispatch takes submit, submit-batch, target, status or decisions";

struct Call {
  std::string sub;
  Args args;
};

Result<Call> parse_call(const std::vector<std::string>& words) {
  if (words.empty()) return reject("usage.unknown_command", kSubcommands);
  Call c;
  c.sub = words.front();
  std::vector<std::string> rest(words.begin() + 1, words.end());
  std::set<std::string> values{"data-dir", "out", "server"};
  if (c.sub == "submit" || c.sub == "submit-batch" || c.sub == "target") {
    GT_TRY_ASSIGN(c.args, parse_args(rest, values, {}));
    if (c.args.positional.size() != 1)
      return reject("usage.missing_argument", "dispatch " + c.sub + " takes one FILE.json");
  } else if (c.sub == "status") {
    values.insert({"site", "station"});
    GT_TRY_ASSIGN(c.args, parse_args(rest, values, {}));
    GT_TRY(no_positionals(c.args, "dispatch status"));
    if (c.args.value("site").has_value() == c.args.value("station").has_value())
      return reject("usage.bad_combination", "dispatch status takes exactly one of --site S and --station S");
  } else if (c.sub == "decisions") {
    values.insert("limit");
    GT_TRY_ASSIGN(c.args, parse_args(rest, values, {}));
    GT_TRY(no_positionals(c.args, "dispatch decisions"));
    if (auto l = c.args.value("limit")) {
      bool digits = !l->empty() && l->size() <= 9;
      for (char ch : *l) digits = digits && std::isdigit(static_cast<unsigned char>(ch));
      if (!digits || std::stoul(*l) == 0) return reject("usage.bad_value", "--limit must be a whole number above 0");
    }
  } else {
    return reject("usage.unknown_command", std::string(kSubcommands) + ", not '" + c.sub + "'");
  }
  GT_TRY(check_output_path(c.args.value("out")));
  return c;
}

// The input file, read as the API reads it (duplicate member names refused).
Result<json::value> read_input(const std::string& path) {
  GT_TRY_ASSIGN(Bytes bytes, read_file(path, kMaxInputBytes));
  if (bytes.size() > kMaxInputBytes)
    return reject("usage.bad_input", path + " is larger than " + std::to_string(kMaxInputBytes) + " bytes");
  auto v = protocol::parse_strict(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                  {kMaxInputBytes, 64});
  if (!v.ok()) return reject("usage.bad_input", path + ": " + v.error().code + ": " + v.error().message);
  return std::move(v).value();
}

Result<json::object> input_object(const std::string& path) {
  GT_TRY_ASSIGN(json::value v, read_input(path));
  if (!v.is_object()) return reject("usage.bad_input", path + " must hold one signed message (a JSON object)");
  return std::move(v.as_object());
}

// submit-batch FILE: the array `gridtrust sign-batch` prints, or {"batch":[...]}.
Result<json::array> input_batch(const std::string& path) {
  GT_TRY_ASSIGN(json::value v, read_input(path));
  if (v.is_object() && v.as_object().size() == 1 && v.as_object().contains("batch") &&
      v.as_object().at("batch").is_array())
    return std::move(v.as_object().at("batch").as_array());
  if (!v.is_array()) return reject("usage.bad_input", path + " must hold the entries of a signed batch (a JSON array)");
  return std::move(v.as_array());
}

Result<std::string> dir_of(const Args& a) {
  std::string d = data_dir_or_default(a.value("data-dir").value_or(""));
  if (d.empty()) return reject("usage.missing_option", "--data-dir is required (or set GRIDTRUST_DATA_DIR)");
  return d;
}

std::string actor() {
  const char* user = std::getenv("USER");
  return std::string("cli:") + (user ? user : "unknown");
}

json::object entry_json(dispatch::Decision& d) {
  json::object out{{"decision", d.to_json()}};
  if (d.command) out["command"] = std::move(*d.command);
  else if (d.applied()) out["command_error"] = d.detail;
  return out;
}

// What POST /v1/dispatch/... would answer, computed on the data directory (output is
// always `return` offline: the commands are in the answer).
Result<json::object> offline_answer(const Call& c) {
  const std::string& file = c.args.positional.front();
  json::value input;
  if (c.sub == "submit-batch") {
    GT_TRY_ASSIGN(input, input_batch(file));
  } else {
    GT_TRY_ASSIGN(input, input_object(file));
  }
  GT_TRY_ASSIGN(std::string dir, dir_of(c.args));
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
  // One call signs a few commands: reserve sequence numbers one by one, not in blocks.
  auto commands = std::make_shared<app::CommandService>(*ctx->ca, 1);
  GT_TRY_ASSIGN(auto rt, app::DispatchRuntime::open(ctx->config.dispatch, *ctx->ca, commands, actor(), ctx->config.store_path));
  const std::int64_t now = to_unix(now_seconds());
  if (c.sub == "submit") {
    dispatch::Decision d = rt->engine().submit(input.as_object(), now);
    return entry_json(d);
  }
  if (c.sub == "target") {
    dispatch::FleetDecision fd = rt->engine().submit_target(input.as_object(), now);
    json::array cmds;
    for (auto& d : fd.setpoints) {
      json::object one{{"station", d.station}, {"evse", d.evse}};
      if (d.command) one["command"] = std::move(*d.command);
      cmds.push_back(std::move(one));
    }
    return json::object{{"decision", fd.to_json()}, {"commands", std::move(cmds)}};
  }
  const json::array& arr = input.as_array();
  if (arr.empty()) return reject("dispatch.bad_batch", "batch must be a non-empty array of signed batch entries");
  if (arr.size() > ctx->config.dispatch.max_batch)
    return reject("dispatch.batch_too_large", "a batch holds at most " + std::to_string(ctx->config.dispatch.max_batch) +
                                                  " entries (dispatch.max_batch)");
  std::vector<json::object> entries;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    if (!arr[i].is_object()) return reject("dispatch.bad_batch", "batch entry " + std::to_string(i) + " is not an object");
    entries.push_back(arr[i].as_object());
  }
  auto ds = rt->engine().submit_batch(entries, now);
  json::array results;
  std::size_t counts[3] = {0, 0, 0};
  for (auto& d : ds) {
    ++counts[static_cast<int>(d.outcome)];
    results.push_back(entry_json(d));
  }
  return json::object{{"results", std::move(results)},
                      {"applied", counts[static_cast<int>(dispatch::Outcome::Applied)]},
                      {"clamped", counts[static_cast<int>(dispatch::Outcome::Clamped)]},
                      {"rejected", counts[static_cast<int>(dispatch::Outcome::Rejected)]}};
}

Result<json::object> remote_answer(const ServerUrl& server, const Call& c) {
  std::string target;
  std::optional<json::object> body;
  if (c.sub == "submit") {
    target = "/v1/dispatch/setpoints";
    GT_TRY_ASSIGN(body, input_object(c.args.positional.front()));
  } else if (c.sub == "submit-batch") {
    target = "/v1/dispatch/setpoints";
    GT_TRY_ASSIGN(json::array entries, input_batch(c.args.positional.front()));
    body = json::object{{"batch", std::move(entries)}};
  } else if (c.sub == "target") {
    target = "/v1/dispatch/targets";
    GT_TRY_ASSIGN(body, input_object(c.args.positional.front()));
  } else if (c.sub == "status") {
    if (auto site = c.args.value("site")) target = "/v1/dispatch/sites/" + percent_encode(*site);
    else target = "/v1/dispatch/stations/" + percent_encode(*c.args.value("station"));
  } else {
    target = "/v1/dispatch/decisions";
    if (auto l = c.args.value("limit")) target += "?limit=" + *l;
  }
  GT_TRY_ASSIGN(std::string dir, dir_of(c.args));
  GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
  GT_TRY_ASSIGN(json::value v, client->call(target, body));
  if (!v.is_object()) return reject("remote.bad_response", "answer is not a JSON object");
  return std::move(v.as_object());
}

// The answer on stdout (or --out); then a single refused setpoint or target is the
// command's error too (its reason code, exit 3), so scripts can branch on it.
Status write_answer(const Call& c, const json::object& answer) {
  GT_TRY(write_output(c.args.value("out"), json::serialize(answer) + "\n"));
  if (c.sub != "submit" && c.sub != "target") return Ok{};
  const json::value* d = answer.if_contains("decision");
  if (!d || !d->is_object()) return reject("remote.bad_response", "answer has no object member \"decision\"");
  const json::object& o = d->as_object();
  const json::value* outcome = o.if_contains("outcome");
  if (outcome && outcome->is_string() && outcome->as_string() == "rejected") {
    const json::value* reason = o.if_contains("reason");
    const json::value* detail = o.if_contains("detail");
    return reject(reason && reason->is_string() ? std::string(reason->as_string()) : "dispatch.rejected",
                  detail && detail->is_string() ? std::string(detail->as_string()) : "setpoint rejected");
  }
  return Ok{};
}

}  // namespace

Status cmd_dispatch(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Call c, parse_call(words));
  if (auto server = c.args.value("server")) {
    GT_TRY_ASSIGN(ServerUrl url, parse_server_url(*server));
    GT_TRY_ASSIGN(json::object answer, remote_answer(url, c));
    return write_answer(c, answer);
  }
  if (c.sub == "status" || c.sub == "decisions")
    return reject("usage.remote_only", "dispatch " + c.sub +
                                           " reads the running engine's state: give --server https://HOST:PORT "
                                           "(or set GRIDTRUST_SERVER)");
  GT_TRY_ASSIGN(json::object answer, offline_answer(c));
  return write_answer(c, answer);
}

Status remote_dispatch(const ServerUrl& server, const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Call c, parse_call(words));
  ServerUrl url = server;
  if (auto s = c.args.value("server")) {
    GT_TRY_ASSIGN(url, parse_server_url(*s));
  }
  GT_TRY_ASSIGN(json::object answer, remote_answer(url, c));
  return write_answer(c, answer);
}

}  // namespace gridtrust::cli
