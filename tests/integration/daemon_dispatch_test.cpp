// /v1/dispatch end to end (docs/dispatch.md): a real gridtrustd with a fleet registry,
// setpoints signed by `gridtrust sign` / `sign-batch` with the aggregator signer of
// `gridtrust init`, curl with admin-profile client certificates of each role, the
// CLI's `dispatch` commands, and a SIGKILL between an accept and the next setpoint.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <csignal>

#include "tests/support/daemon_process.h"
#include "tests/support/sql_connection.h"
#include "tests/support/test_support.h"

namespace gt = gridtrust;
namespace json = boost::json;
using gt::test::admin_profile_client;
using gt::test::client_args;
using gt::test::ClientCert;
using gt::test::CommandResult;
using gt::test::curl;
using gt::test::DaemonProcess;
using gt::test::HttpResult;
using gt::test::InitializedPki;
using gt::test::json_post;
using gt::test::read_file;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::TempDir;
using gt::test::write_file;

namespace {

// init's organisation (config/profiles.yaml): its aggregator signer is O=gridtrust demo.
const char* kOrg = "gridtrust demo";

std::string registry_yaml() {
  const long long departure = static_cast<long long>(std::time(nullptr)) + 10 * 3600;
  return std::string(R"(sites:
  - id: depot
    import_limit_w: 30000
    export_limit_w: 20000
    policy: clamp
    stations:
      - id: CS-1
        aggregator: gridtrust demo
        evses:
          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}
          - {id: 2, max_charge_w: 11000, max_discharge_w: 11000}
      - id: CS-OTHER
        aggregator: Fleet B
        evses:
          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}
  - id: strict
    import_limit_w: 20000
    policy: reject
    stations:
      - id: CS-2
        aggregator: gridtrust demo
        evses:
          - {id: 1, max_charge_w: 7400, max_discharge_w: 7400}
sessions:
  - {ev: EV-1, station: CS-1, evse: 1, battery_kwh: 60, soc: 0.5, soc_min: 0.2, soc_max: 0.9,
     max_charge_w: 9000, max_discharge_w: 7000, eta_charge: 0.95, eta_discharge: 0.95, departure: )") +
         std::to_string(departure) + R"(}
  - {ev: EV-2, station: CS-2, evse: 1, battery_kwh: 60, soc: 0.5, soc_min: 0.2, soc_max: 0.9,
     max_charge_w: 7400, max_discharge_w: 7400, departure: )" +
         std::to_string(departure) + "}\n";
}

std::string dispatch_section(const std::string& output) {
  return "dispatch:\n  enabled: true\n  registry: fleet.yaml\n  max_batch: 5\n  output: " + output + "\n";
}

// A SetChargingProfileRequest with one CentralSetpoint (or other mode) period.
std::string setpoint_message(int evse, double w, const std::string& mode = "CentralSetpoint") {
  json::object period{{"startPeriod", 0}, {"operationMode", mode}, {"setpoint", w}};
  json::object schedule{{"id", 1}, {"chargingRateUnit", "W"}, {"duration", 900},
                        {"chargingSchedulePeriod", json::array{period}}};
  json::object profile{{"id", 11}, {"stackLevel", 1}, {"chargingProfilePurpose", "TxDefaultProfile"},
                       {"chargingProfileKind", "Absolute"}, {"chargingSchedule", json::array{schedule}}};
  return json::serialize(json::object{{"evseId", evse}, {"chargingProfile", profile}});
}

ClientCert aggregator_client(const InitializedPki& pki, const TempDir& work, const std::string& name,
                             const std::string& o) {
  ClientCert c{work / (name + ".pem"), work / (name + ".key")};
  std::string csr = work / (name + ".csr");
  auto r = run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + sh_quote(c.key) +
               " -subj " + sh_quote("/CN=" + name + "/O=" + o + "/OU=aggregator") + " -out " + sh_quote(csr));
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto i = pki.gt("issue --profile admin --csr " + sh_quote(csr) + " --out " + sh_quote(c.cert));
  INFO(i.describe());
  REQUIRE(i.exit_code == 0);
  return c;
}

std::string code_of(const CommandResult& r) {
  if (r.err.rfind("error: ", 0) != 0) return "";
  return r.err.substr(7, r.err.find(':', 7) - 7);
}

struct Fixture {
  InitializedPki pki;
  TempDir work;
  std::string root;
  ClientCert admin, auditor, own_aggregator, other_aggregator;
  std::unique_ptr<DaemonProcess> daemon;
  int counter = 0;

  Fixture() {
    root = work / "root.pem";
    REQUIRE(pki.gt("chain --profile v2g-root --out " + sh_quote(root)).exit_code == 0);
    admin = admin_profile_client(pki, work, "admin");
    auditor = admin_profile_client(pki, work, "auditor");
    own_aggregator = aggregator_client(pki, work, "agg-own", kOrg);
    other_aggregator = aggregator_client(pki, work, "agg-b", "Fleet B");
    write_file(pki.data_dir() + "/fleet.yaml", registry_yaml());
    daemon = std::make_unique<DaemonProcess>(pki, work, GRIDTRUSTD);
    configure("return");
    daemon->start();
  }

  // Replaces the dispatch section init wrote (the last one of the file).
  void configure(const std::string& output) {
    std::string yaml = read_file(daemon->config_path());
    auto at = yaml.find("\ndispatch:");
    REQUIRE(at != std::string::npos);
    write_file(daemon->config_path(), yaml.substr(0, at + 1) + dispatch_section(output));
  }

  std::string file(const std::string& name, const std::string& content) {
    std::string p = work / (std::to_string(++counter) + "-" + name);
    write_file(p, content);
    return p;
  }
  // `gridtrust sign`: a setpoint for `station`, signed by init's aggregator signer.
  std::string sign(const std::string& station, int evse, double w, const std::string& mode = "CentralSetpoint") {
    auto s = pki.gt("sign --action SetChargingProfile --station " + sh_quote(station) + " " +
                    sh_quote(file("sp.json", setpoint_message(evse, w, mode))));
    INFO(s.describe());
    REQUIRE(s.exit_code == 0);
    return s.out;
  }
  // `gridtrust sign-batch`: the items ({"action","station","message"}) as one batch.
  std::string sign_batch(const json::array& items) {
    auto b = pki.gt("sign-batch " + sh_quote(file("items.json", json::serialize(items))));
    INFO(b.describe());
    REQUIRE(b.exit_code == 0);
    return b.out;
  }
  HttpResult post(const ClientCert& who, const std::string& route, const std::string& body) {
    return curl(client_args(root, who) + json_post(work, "body" + std::to_string(++counter), body) +
                sh_quote(daemon->api() + route));
  }
  HttpResult get(const ClientCert& who, const std::string& route) {
    return curl(client_args(root, who) + sh_quote(daemon->api() + route));
  }
  HttpResult del(const ClientCert& who, const std::string& route) {
    return curl(client_args(root, who) + "-X DELETE " + sh_quote(daemon->api() + route));
  }
  json::object submit(const std::string& signed_message, const ClientCert* who = nullptr) {
    auto h = post(who ? *who : admin, "/v1/dispatch/setpoints", signed_message);
    INFO(h.body << h.err);
    REQUIRE(h.status == 200);
    return json::parse(h.body).as_object();
  }
  json::object evse_status(const std::string& station, int evse) {
    auto h = get(admin, "/v1/dispatch/stations/" + station);
    INFO(h.body);
    REQUIRE(h.status == 200);
    json::value status = json::parse(h.body);
    for (const auto& e : status.at("evses").as_array())
      if (e.at("evse").as_int64() == evse) return e.as_object();
    FAIL("no EVSE " << evse << " at " << station);
    return {};
  }
  CommandResult remote(const std::string& args) const { return pki.gt("--server " + daemon->api() + " " + args); }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

std::string outcome(const json::object& answer) {
  return std::string(answer.at("decision").at("outcome").as_string());
}
std::string reason(const json::object& answer) { return std::string(answer.at("decision").at("reason").as_string()); }
double number(const json::value& v) { return v.to_number<double>(); }

}  // namespace

TEST_CASE("an in-envelope setpoint is applied and answered with a signed SetChargingProfileRequest") {
  auto& f = fixture();
  json::object a = f.submit(f.sign("CS-1", 1, 4000));
  INFO(json::serialize(a));
  CHECK(outcome(a) == "applied");
  CHECK(reason(a) == "dispatch.applied");
  CHECK(a.at("decision").at("ev").as_string() == "EV-1");
  // Who handed it in: the client certificate's role and subject.
  CHECK(std::string(a.at("decision").at("caller").as_string()).rfind("admin:", 0) == 0);
  REQUIRE(a.contains("command"));
  const json::object& cmd = a.at("command").as_object();
  CHECK(cmd.at("evseId").as_int64() == 1);
  const auto& period = cmd.at("chargingProfile").at("chargingSchedule").at(0).at("chargingSchedulePeriod").at(0);
  CHECK(number(period.at("setpoint")) == 4000);
  CHECK(period.at("operationMode").as_string() == "CentralSetpoint");
  // The station's view: signed by the daemon for CS-1, verifiable with the PKI alone.
  auto v = f.pki.gt("verify --station CS-1 --action SetChargingProfile " +
                    sh_quote(f.file("cmd.json", json::serialize(cmd))));
  INFO(v.describe());
  CHECK(v.exit_code == 0);
}

TEST_CASE("outside the envelope: clamped at a clamp site, rejected at a reject site, each with its code") {
  auto& f = fixture();
  json::object c = f.submit(f.sign("CS-1", 1, 20000));  // EV-1 charges at most 9000 W
  INFO(json::serialize(c));
  CHECK(outcome(c) == "clamped");
  CHECK(reason(c).rfind("dispatch.", 0) == 0);
  CHECK(reason(c) != "dispatch.applied");
  CHECK(number(c.at("decision").at("applied_w").at(1)) <= 9000);
  CHECK(c.contains("command"));

  json::object r = f.submit(f.sign("CS-2", 1, 20000));  // site "strict": policy reject
  INFO(json::serialize(r));
  CHECK(outcome(r) == "rejected");
  CHECK(reason(r).rfind("dispatch.", 0) == 0);
  CHECK_FALSE(r.contains("command"));
}

TEST_CASE("refusals of the engine are decisions with stable reason codes (HTTP 200)") {
  auto& f = fixture();
  CHECK(reason(f.submit(f.sign("CS-999", 1, 1000))) == "dispatch.unknown_station");
  CHECK(reason(f.submit(f.sign("CS-OTHER", 1, 1000))) == "dispatch.wrong_aggregator");
  CHECK(reason(f.submit(f.sign("CS-1", 7, 1000))) == "dispatch.unknown_evse");
  CHECK(reason(f.submit(f.sign("CS-1", 1, 1000, "ChargingOnly"))) == "dispatch.unsupported_mode");
  CHECK(reason(f.submit(setpoint_message(1, 1000))) == "dispatch.unsigned");
  std::string tampered = f.sign("CS-1", 1, 1000);
  auto pos = tampered.find("\"evseId\":1");
  REQUIRE(pos != std::string::npos);
  tampered.replace(pos, 10, "\"evseId\":2");
  CHECK(reason(f.submit(tampered)) == "dispatch.bad_signature");
  std::string once = f.sign("CS-1", 1, 1000);
  CHECK(outcome(f.submit(once)) == "applied");
  CHECK(reason(f.submit(once)) == "dispatch.replay");
}

TEST_CASE("roles: auditors read, aggregators submit for their own organisation only") {
  auto& f = fixture();
  auto h = f.post(f.auditor, "/v1/dispatch/setpoints", f.sign("CS-1", 1, 1000));
  CHECK(h.status == 403);
  CHECK(h.error_code() == "auth.forbidden");
  CHECK(f.get(f.auditor, "/v1/dispatch/decisions?limit=5").status == 200);
  CHECK(f.get(f.auditor, "/v1/dispatch/sites/depot").status == 200);

  auto foreign = f.post(f.other_aggregator, "/v1/dispatch/setpoints", f.sign("CS-1", 1, 1000));
  CHECK(foreign.status == 403);
  CHECK(foreign.error_code() == "auth.forbidden_station");
  CHECK(f.get(f.other_aggregator, "/v1/dispatch/stations/CS-1").error_code() == "auth.forbidden_station");
  json::object own = f.submit(f.sign("CS-1", 1, 1500), &f.own_aggregator);
  CHECK(outcome(own) == "applied");
  // The aggregator's log holds its own stations only.
  auto log = f.get(f.other_aggregator, "/v1/dispatch/decisions");
  REQUIRE(log.status == 200);
  json::value seen = json::parse(log.body);  // held: a range-for over a temporary's member dangles
  for (const auto& d : seen.at("decisions").as_array()) CHECK(d.at("station").as_string() == "CS-OTHER");
}

TEST_CASE("a signed batch: one request, a decision and a command per entry") {
  auto& f = fixture();
  json::array items;
  for (int w : {1000, 2000, 3000})
    items.push_back(json::object{{"action", "SetChargingProfile"},
                                 {"station", w == 2000 ? "CS-2" : "CS-1"},
                                 {"message", json::parse(setpoint_message(1, w))}});
  const std::string b = f.sign_batch(items);
  auto h = f.post(f.admin, "/v1/dispatch/setpoints", "{\"batch\":" + b + "}");
  INFO(h.body);
  REQUIRE(h.status == 200);
  json::object a = json::parse(h.body).as_object();
  REQUIRE(a.at("results").as_array().size() == 3);
  CHECK(a.at("rejected").as_int64() == 0);
  for (const auto& r : a.at("results").as_array()) CHECK(r.as_object().contains("command"));

  // The CLI: the same batch again is a replay everywhere.
  auto again = f.remote("dispatch submit-batch " + sh_quote(f.file("b.json", b)));
  INFO(again.describe());
  REQUIRE(again.exit_code == 0);
  CHECK(json::parse(again.out).at("rejected").as_int64() == 3);
}

TEST_CASE("single-signed setpoints travelling together: one request, each verified on its own") {
  auto& f = fixture();
  const std::string a = f.sign("CS-1", 1, 1500), b = f.sign("CS-2", 1, 1500);
  auto h = f.post(f.admin, "/v1/dispatch/setpoints", "{\"setpoints\":[" + a + "," + b + "," + a + "]}");
  INFO(h.body);
  REQUIRE(h.status == 200);
  json::object answer = json::parse(h.body).as_object();
  const json::array& results = answer.at("results").as_array();
  REQUIRE(results.size() == 3);
  CHECK(results[0].at("decision").at("reason").as_string() == "dispatch.applied");
  CHECK(results[1].at("decision").at("reason").as_string() == "dispatch.applied");
  CHECK(results[2].at("decision").at("reason").as_string() == "dispatch.replay");
  CHECK(answer.at("rejected").as_int64() == 1);
  for (const auto& r : results) CHECK(std::string(r.at("decision").at("caller").as_string()).rfind("admin:", 0) == 0);
  // Each applied one is answered with its own command, addressed to its station (the
  // two share one daemon signature: entries of one batch).
  REQUIRE(results[0].as_object().contains("command"));
  REQUIRE(results[1].as_object().contains("command"));
  CHECK(results[0].at("command").at("customData").at("batch").at("station").as_string() == "CS-1");
  CHECK(results[1].at("command").at("customData").at("batch").at("station").as_string() == "CS-2");
  // A batch entry is not a single-signed message, and the list is checked like a batch.
  CHECK(f.post(f.admin, "/v1/dispatch/setpoints", R"({"setpoints":[]})").error_code() == "dispatch.bad_batch");
  CHECK(f.post(f.admin, "/v1/dispatch/setpoints", R"({"setpoints":[1]})").error_code() == "dispatch.bad_batch");
  CHECK(f.post(f.admin, "/v1/dispatch/setpoints", "{\"setpoints\":[" + a + "],\"x\":1}").error_code() ==
        "dispatch.bad_batch");
  CHECK(f.post(f.admin, "/v1/dispatch/setpoints", R"({"setpoints":[{},{},{},{},{},{}]})").error_code() ==
        "dispatch.batch_too_large");
}

TEST_CASE("sessions and SoC telemetry change the envelope") {
  auto& f = fixture();
  json::object empty = f.evse_status("CS-1", 2);
  CHECK(empty.at("session").is_null());
  const double before = number(empty.at("envelope_w").at(1));

  const long long departure = static_cast<long long>(std::time(nullptr)) + 8 * 3600;
  auto start = f.post(f.admin, "/v1/dispatch/sessions",
                      R"({"ev":"EV-3","station":"CS-1","evse":2,"battery_kwh":40,"soc":0.4,"soc_min":0.1,"soc_max":0.95,)"
                      R"("max_charge_w":7000,"max_discharge_w":5000,"departure":)" +
                          std::to_string(departure) + "}");
  INFO(start.body);
  REQUIRE(start.status == 200);
  json::object plugged = f.evse_status("CS-1", 2);
  CHECK(plugged.at("session").at("ev").as_string() == "EV-3");
  CHECK(number(plugged.at("envelope_w").at(1)) != before);
  CHECK(number(plugged.at("envelope_w").at(1)) <= 7000);

  // Full: nothing more to charge.
  auto t = f.post(f.admin, "/v1/dispatch/telemetry", R"({"ev":"EV-3","soc":0.95})");
  INFO(t.body);
  REQUIRE(t.status == 200);
  CHECK(number(f.evse_status("CS-1", 2).at("envelope_w").at(1)) <= 0);

  auto stop = f.del(f.admin, "/v1/dispatch/sessions/EV-3");
  INFO(stop.body);
  REQUIRE(stop.status == 200);
  CHECK(f.evse_status("CS-1", 2).at("session").is_null());
  CHECK(f.del(f.admin, "/v1/dispatch/sessions/EV-3").error_code() == "dispatch.unknown_ev");
}

TEST_CASE("bad input gets a code and never takes the daemon down") {
  auto& f = fixture();
  CHECK(f.post(f.admin, "/v1/dispatch/setpoints", "{not json").error_code() == "request.bad_json");
  CHECK(f.post(f.admin, "/v1/dispatch/setpoints", R"({"a":1,"a":2})").error_code() == "request.bad_json");
  CHECK(f.post(f.admin, "/v1/dispatch/setpoints", "[1,2]").error_code() == "request.bad_json");
  CHECK(f.post(f.admin, "/v1/dispatch/setpoints", R"({"batch":"x"})").error_code() == "dispatch.bad_batch");
  CHECK(f.post(f.admin, "/v1/dispatch/setpoints", R"({"batch":[]})").error_code() == "dispatch.bad_batch");
  CHECK(f.post(f.admin, "/v1/dispatch/setpoints", R"({"batch":[1]})").error_code() == "dispatch.bad_batch");
  CHECK(f.post(f.admin, "/v1/dispatch/setpoints", R"({"batch":[{},{},{},{},{},{}]})").error_code() ==
        "dispatch.batch_too_large");
  // Wrong types inside a signed-looking message are the engine's: a decision.
  json::object odd = f.submit(R"({"evseId":"one","customData":{"vendorId":"org.gridtrust","signature":7}})");
  CHECK(outcome(odd) == "rejected");
  CHECK(f.post(f.admin, "/v1/dispatch/targets", "{}").status == 200);
  CHECK(f.post(f.admin, "/v1/dispatch/telemetry", R"({"ev":"EV-1","soc":"high"})").error_code() == "request.bad_json");
  CHECK(f.post(f.admin, "/v1/dispatch/telemetry", R"({"ev":"EV-1","soc":2})").error_code() == "dispatch.bad_registry");
  CHECK(f.post(f.admin, "/v1/dispatch/telemetry", R"({"ev":"EV-404","soc":0.5})").error_code() == "dispatch.unknown_ev");
  CHECK(f.post(f.admin, "/v1/dispatch/telemetry", R"({"ev":"EV-1","soc":0.5,"x":1})").error_code() == "request.bad_json");
  CHECK(f.post(f.admin, "/v1/dispatch/sessions", R"({"ev":"EV-9","station":"CS-404","evse":1})").status == 400);
  CHECK(f.post(f.admin, "/v1/dispatch/sessions", R"({"ev":7})").status == 400);
  CHECK(f.get(f.admin, "/v1/dispatch/stations/CS-404").error_code() == "dispatch.unknown_station");
  CHECK(f.get(f.admin, "/v1/dispatch/sites/nowhere").error_code() == "dispatch.unknown_site");
  CHECK(f.get(f.admin, "/v1/dispatch/decisions?limit=0").error_code() == "usage.bad_value");
  CHECK(f.get(f.admin, "/v1/dispatch/decisions?limit=abc").error_code() == "usage.bad_value");
  CHECK(f.get(f.admin, "/v1/dispatch/decisions?limit=1000000000").error_code() == "usage.bad_value");
  // The outbox's listing takes its limit the same way (Request::limit).
  CHECK(f.get(f.admin, "/v1/outbox?limit=0").error_code() == "usage.bad_value");
  CHECK(f.get(f.admin, "/v1/outbox?limit=-1").error_code() == "usage.bad_value");
  CHECK(f.get(f.admin, "/v1/outbox?limit=1").status == 200);
  auto wrong_type = curl(client_args(f.root, f.admin) + "-X POST -H 'Content-Type: text/plain' --data 'x' " +
                         sh_quote(f.daemon->api() + "/v1/dispatch/setpoints"));
  CHECK(wrong_type.error_code() == "request.bad_content_type");
  CHECK(curl(sh_quote(f.daemon->status() + "/healthz")).status == 200);
}

TEST_CASE("a batch may be as large as max_batch_body_bytes; other routes and callers keep max_body_bytes") {
  auto& f = fixture();
  auto post = [&](const ClientCert& who, const std::string& route, const std::string& body,
                  const std::string& extra = "") {
    return curl(client_args(f.root, who) + extra + json_post(f.work, "big" + std::to_string(++f.counter), body) +
                sh_quote(f.daemon->api() + route));
  };
  // 300 KB: over the general 64 KiB, within the batch limit (4 MiB by default). Read
  // whole and judged by the handler: not an array of entries.
  const std::string big = "{\"batch\":\"" + std::string(300000, 'x') + "\"}";
  auto h = post(f.admin, "/v1/dispatch/setpoints", big);
  INFO(h.body << h.err);
  CHECK(h.status == 400);
  CHECK(h.error_code() == "dispatch.bad_batch");
  CHECK(post(f.own_aggregator, "/v1/dispatch/setpoints", big).error_code() == "dispatch.bad_batch");
  // The same body sent in chunks (no Content-Length): the parser counts as it reads.
  CHECK(post(f.admin, "/v1/dispatch/setpoints", big, "-H 'Transfer-Encoding: chunked' ").error_code() ==
        "dispatch.bad_batch");
  // A route that carries no batches keeps the general limit, declared or chunked.
  auto t = post(f.admin, "/v1/dispatch/targets", big);
  CHECK(t.status == 413);
  CHECK(t.error_code() == "request.too_large");
  CHECK(post(f.admin, "/v1/dispatch/targets", big, "-H 'Transfer-Encoding: chunked' ").status == 413);
  // So does a caller the batch route does not admit: its large body is never read.
  auto a = post(f.auditor, "/v1/dispatch/setpoints", big);
  CHECK(a.status == 413);
  CHECK(a.error_code() == "request.too_large");
  // Above the batch limit: refused on its declared length, or once the chunks pass it.
  const std::string huge = "{\"batch\":\"" + std::string(4194304, 'x') + "\"}";
  auto over = post(f.admin, "/v1/dispatch/setpoints", huge);
  CHECK(over.status == 413);
  CHECK(over.error_code() == "request.too_large");
  CHECK(over.body.find("4194304 body bytes") != std::string::npos);  // the limit of this route
  CHECK(t.body.find("65536 body bytes") != std::string::npos);
  CHECK(post(f.admin, "/v1/dispatch/setpoints", huge, "-H 'Transfer-Encoding: chunked' ").status == 413);
  // A client that asks first (Expect: 100-continue) is told to go on, and sends the body.
  auto asked = post(f.admin, "/v1/dispatch/setpoints", big, "-v -H 'Expect: 100-continue' ");
  CHECK(asked.error_code() == "dispatch.bad_batch");
  CHECK(asked.err.find("HTTP/1.1 100 Continue") != std::string::npos);
  // ... and is answered at once, without sending it, when the body would be too large.
  auto refused = post(f.admin, "/v1/dispatch/targets", big, "-v -H 'Expect: 100-continue' ");
  CHECK(refused.status == 413);
  CHECK(refused.err.find("100 Continue") == std::string::npos);
  CHECK(f.get(f.admin, "/v1/dispatch/decisions?limit=1").status == 200);
}

TEST_CASE("status and decision log routes, remote and offline CLI") {
  auto& f = fixture();
  auto site = f.get(f.admin, "/v1/dispatch/sites/depot");
  INFO(site.body);
  REQUIRE(site.status == 200);
  json::object s = json::parse(site.body).as_object();
  CHECK(s.at("policy").as_string() == "clamp");
  CHECK(s.at("evses").as_array().size() == 3);

  auto log = f.get(f.admin, "/v1/dispatch/decisions?limit=3");
  REQUIRE(log.status == 200);
  CHECK(json::parse(log.body).at("decisions").as_array().size() == 3);

  auto rs = f.remote("dispatch status --station CS-1");
  INFO(rs.describe());
  CHECK(rs.exit_code == 0);
  CHECK(json::parse(rs.out).at("station").as_string() == "CS-1");
  auto rd = f.remote("dispatch decisions --limit 2");
  INFO(rd.describe());
  CHECK(json::parse(rd.out).at("decisions").as_array().size() == 2);
  CHECK(code_of(f.pki.gt("dispatch status --site depot")) == "usage.remote_only");
  CHECK(code_of(f.pki.gt("dispatch status")) == "usage.bad_combination");
  CHECK(code_of(f.pki.gt("dispatch frobnicate")) == "usage.unknown_command");

  // Remote submit: a refused setpoint is the command's error (exit 3), the answer still printed.
  auto refused = f.remote("dispatch submit " + sh_quote(f.file("r.json", f.sign("CS-OTHER", 1, 1000))));
  CHECK(code_of(refused) == "dispatch.wrong_aggregator");
  CHECK(refused.exit_code == 3);
  CHECK(json::parse(refused.out).at("decision").at("outcome").as_string() == "rejected");
  // Offline, while the daemon runs on the same data directory: refused, as a second
  // engine would count only its own setpoints against the site's limit.
  std::string signed_msg = f.sign("CS-1", 1, 2500);
  auto off = f.pki.gt("dispatch submit " + sh_quote(f.file("o.json", signed_msg)));
  INFO(off.describe());
  CHECK(code_of(off) == "conflict.dispatch_engine_busy");
  CHECK(off.exit_code == 5);
  CHECK(off.err.find("--server") != std::string::npos);
  CHECK(outcome(f.submit(signed_msg)) == "applied");  // nothing of it was spent offline
  CHECK(reason(f.submit(signed_msg)) == "dispatch.replay");

  auto metrics = f.get(f.admin, "/metrics");
  CHECK(metrics.body.find("gridtrust_dispatch_decisions_total{outcome=\"applied\",reason=\"dispatch.applied\"}") !=
        std::string::npos);
  CHECK(metrics.body.find("\ngridtrust_dispatch_groups_waiting_to_sign 0\n") != std::string::npos);  // idle
  CHECK(metrics.body.find("\ngridtrust_dispatch_setpoints_waiting_to_decide 0\n") != std::string::npos);
}

TEST_CASE("replay protection survives a SIGKILL between an accept and the next setpoint") {
  auto& f = fixture();
  std::string older = f.sign("CS-2", 1, 1000);  // N-1
  std::string n = f.sign("CS-2", 1, 1100);      // N
  std::string newer = f.sign("CS-2", 1, 1200);  // N+1
  CHECK(outcome(f.submit(n)) == "applied");
  // Sessions changed through the API survive too: EV-9 plugged in at CS-1 #2 and
  // reporting 60 %, EV-1 of the registry file gone.
  const long long departure = static_cast<long long>(std::time(nullptr)) + 8 * 3600;
  REQUIRE(f.post(f.admin, "/v1/dispatch/sessions",
                 R"({"ev":"EV-9","station":"CS-1","evse":2,"battery_kwh":40,"soc":0.4,"soc_min":0.1,"soc_max":0.95,)"
                 R"("max_charge_w":7000,"max_discharge_w":5000,"departure":)" + std::to_string(departure) + "}")
              .status == 200);
  REQUIRE(f.post(f.admin, "/v1/dispatch/telemetry", R"({"ev":"EV-9","soc":0.6})").status == 200);
  REQUIRE(f.del(f.admin, "/v1/dispatch/sessions/EV-1").status == 200);
  f.daemon->send_signal(SIGKILL);  // right after the accept answer
  CHECK(f.daemon->wait_for_exit() == 128 + SIGKILL);
  // The killed daemon's engine lock went with it: the offline CLI runs the engine on the
  // same store, and finds the durable replay state (the older number is a replay).
  auto offline = f.pki.gt("dispatch submit " + sh_quote(f.file("older.json", older)));
  INFO(offline.describe());
  CHECK(code_of(offline) == "dispatch.replay");
  CHECK(offline.exit_code == 3);
  {
    // A lock file that is not a plain file of its own (here a symlink) is not followed.
    const std::filesystem::path lock = f.pki.data_dir() + "/gridtrust.db-dispatch.lock";
    REQUIRE(std::filesystem::exists(lock));
    const std::filesystem::path aside = lock.string() + ".aside";
    std::filesystem::rename(lock, aside);
    std::filesystem::create_symlink(aside, lock);
    auto linked = f.pki.gt("dispatch submit " + sh_quote(f.file("older.json", older)));
    INFO(linked.describe());
    CHECK(code_of(linked) == "store.lock_failed");
    CHECK(linked.exit_code == 1);
    std::filesystem::remove(lock);
    std::filesystem::rename(aside, lock);
  }

  f.configure("outbox");  // and the restart switches to the outbox
  {
    // gridtrustd waits (up to 10 s) for an offline command that holds the engine's lock
    // as it starts: held here for 1.5 s.
    const std::string lock = f.pki.data_dir() + "/gridtrust.db-dispatch.lock";
    const int fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
    std::thread release([fd] {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      ::close(fd);
    });
    f.daemon->start();
    release.join();
  }
  json::object moved = f.evse_status("CS-1", 2);
  INFO(json::serialize(moved));
  REQUIRE(moved.at("session").is_object());
  CHECK(moved.at("session").at("ev").as_string() == "EV-9");
  CHECK(number(moved.at("session").at("soc")) == 0.6);
  CHECK(f.evse_status("CS-1", 1).at("session").is_null());
  // What CS-2 #1 was told before the kill still holds, and counts against its site.
  json::object told = f.evse_status("CS-2", 1);
  INFO(json::serialize(told));
  REQUIRE(told.at("setpoint_w").is_array());
  CHECK(number(told.at("setpoint_w").at(0)) == 1100);
  json::object again = f.submit(n);
  CHECK(reason(again) == "dispatch.replay");
  CHECK(reason(f.submit(older)) == "dispatch.replay");
  json::object next = f.submit(newer);
  INFO(json::serialize(next));
  CHECK(outcome(next) == "applied");
  // output: outbox: the signed command waits in the outbox for the aggregator.
  REQUIRE(next.contains("outbox_id"));
  CHECK_FALSE(next.contains("command"));
  auto box = f.get(f.admin, "/v1/outbox?limit=1000");
  INFO(box.body);
  REQUIRE(box.status == 200);
  bool found = false;
  json::value outbox = json::parse(box.body);
  for (const auto& e : outbox.at("entries").as_array())
    if (e.at("id") == next.at("outbox_id")) {
      found = true;
      CHECK(e.at("action").as_string() == "SetChargingProfile");
      CHECK(e.at("station").as_string() == "CS-2");
      auto v = f.pki.gt("verify --station CS-2 --action SetChargingProfile " +
                        sh_quote(f.file("queued.json", json::serialize(e.at("payload")))));
      INFO(v.describe());
      CHECK(v.exit_code == 0);
    }
  CHECK(found);
}

TEST_CASE("output: outbox: a failed outbox commit puts the signed commands into the answer, with outbox_error") {
  auto& f = fixture();  // in outbox mode since the SIGKILL case
  auto db = std::make_unique<gt::test::SqlConnection>(f.pki.data_dir() + "/gridtrust.db");
  auto batch = [&](double w) {
    json::array items;
    for (const char* st : {"CS-1", "CS-2"})
      items.push_back(json::object{{"action", "SetChargingProfile"}, {"station", st}, {"message", json::parse(setpoint_message(1, w))}});
    auto h = f.post(f.admin, "/v1/dispatch/setpoints", "{\"batch\":" + f.sign_batch(items) + "}");
    INFO(h.body);
    REQUIRE(h.status == 200);
    return json::parse(h.body).as_object();
  };
  db->exec("CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'refused'); END");
  json::object failed = batch(900);
  db->exec("DROP TRIGGER refuse_outbox");
  db.reset();
  REQUIRE(failed.at("results").as_array().size() == 2);
  CHECK(failed.at("applied").as_int64() + failed.at("clamped").as_int64() == 2);
  json::array delivered;
  for (const auto& r : failed.at("results").as_array()) {
    INFO(json::serialize(r));
    CHECK_FALSE(r.as_object().contains("outbox_id"));
    REQUIRE(r.as_object().contains("command"));
    CHECK(r.at("outbox_error").as_string().find("refused") != std::string::npos);
    CHECK(r.at("decision").at("outcome").as_string() != "rejected");
    delivered.push_back(r.at("command"));
  }
  // The commands in the answer are the daemon's signed batch of two, whole. (Not
  // verified here with `gridtrust verify-batch`: that would judge their sequence numbers
  // against the ones this data directory accepted from the same signer as a dispatch
  // intake; a station keeps its own.)
  REQUIRE(delivered.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const json::object& custom = delivered[i].at("customData").as_object();
    CHECK(custom.at("signature") == delivered[0].at("customData").at("signature"));
    CHECK(custom.at("batch").at("size").as_int64() == 2);
    CHECK(custom.at("batch").at("index").as_int64() == static_cast<std::int64_t>(i));
    CHECK(custom.at("batch").at("station").as_string() == (i == 0 ? "CS-1" : "CS-2"));
    CHECK(delivered[i].at("chargingProfile").is_object());
  }
  // The outbox takes the next ones again.
  json::object queued = batch(800);
  for (const auto& r : queued.at("results").as_array()) {
    INFO(json::serialize(r));
    CHECK(r.as_object().contains("outbox_id"));
    CHECK_FALSE(r.as_object().contains("command"));
    CHECK_FALSE(r.as_object().contains("outbox_error"));
  }
}

TEST_CASE("a bad dispatch section is refused with config.invalid naming the field") {
  auto& f = fixture();
  const std::string good = read_file(f.daemon->config_path());
  auto with = [&](const std::string& section) {
    write_file(f.daemon->config_path(), good.substr(0, good.find("\ndispatch:") + 1) + section);
    return f.pki.gt("list --json");
  };
  auto bad_output = with("dispatch:\n  enabled: true\n  output: mail\n");
  CHECK(code_of(bad_output) == "config.invalid");
  CHECK(bad_output.err.find("dispatch.output") != std::string::npos);
  auto bad_split = with("dispatch:\n  split: random\n");
  CHECK(bad_split.err.find("dispatch.split") != std::string::npos);
  auto bad_number = with("dispatch:\n  max_lifetime_s: -5\n");
  CHECK(bad_number.err.find("dispatch.max_lifetime_s") != std::string::npos);
  auto unknown = with("dispatch:\n  colour: blue\n");
  CHECK(unknown.err.find("dispatch.colour") != std::string::npos);
  write_file(f.daemon->config_path(), good);
  CHECK(f.pki.gt("list --json").exit_code == 0);
}
