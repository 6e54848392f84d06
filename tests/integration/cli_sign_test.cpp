// Signed OCPP commands end to end: `gridtrust sign|verify|sign-batch|verify-batch`
// against an initialised data directory, and the same through gridtrustd's
// /v1/commands routes; refusals with their codes; replays refused across processes.
#include <memory>
#include <string>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "tests/support/daemon_process.h"
#include "tests/support/sql_connection.h"
#include "tests/support/test_support.h"

namespace gt = gridtrust;
namespace json = boost::json;
using gt::test::CommandResult;
using gt::test::DaemonProcess;
using gt::test::InitializedPki;
using gt::test::read_file;
using gt::test::sh_quote;
using gt::test::TempDir;
using gt::test::write_file;

namespace {

const char* kMessage =
    R"({"evseId":1,"chargingProfile":{"id":7,"stackLevel":0,"chargingProfilePurpose":"TxDefaultProfile",)"
    R"("chargingProfileKind":"Absolute","chargingSchedule":[{"id":1,"chargingRateUnit":"W",)"
    R"("chargingSchedulePeriod":[{"startPeriod":0,"limit":-7400.5}]}]}})";

struct Fixture {
  InitializedPki pki;
  TempDir work;
  std::string file(const std::string& name, const std::string& content) {
    std::string p = work / name;
    write_file(p, content);
    return p;
  }
  CommandResult sign(const std::string& args, const std::string& message = kMessage) {
    return pki.gt("sign " + args + " " + sh_quote(file("m.json", message)));
  }
  CommandResult verify(const std::string& signed_text, const std::string& args = "") {
    return pki.gt("verify " + args + " " + sh_quote(file("s.json", signed_text)));
  }
};

}  // namespace

TEST_CASE("gridtrust sign and verify: a command verifies once, with its claims") {
  Fixture f;
  auto s = f.sign("--action SetChargingProfile --station CS-001 --x5c");
  INFO(s.describe());
  REQUIRE(s.exit_code == 0);
  json::object signed_msg = json::parse(s.out).as_object();
  CHECK(signed_msg.at("customData").at("vendorId").as_string() == "org.gridtrust");
  CHECK(signed_msg.at("chargingProfile").at("chargingSchedule").at(0).at("chargingSchedulePeriod").at(0).at("limit")
            .as_double() == -7400.5);
  CHECK(s.out.find("-7400.5") != std::string::npos);  // ECMAScript form, not 7.4005E3

  auto v = f.verify(s.out, "--station CS-001 --action SetChargingProfile");
  INFO(v.describe());
  REQUIRE(v.exit_code == 0);
  json::object report = json::parse(v.out).as_object();
  CHECK(report.at("ok").as_bool());
  CHECK(report.at("seq").as_int64() == 1);
  CHECK(report.at("station").as_string() == "CS-001");

  // Another process, same store: a replay.
  auto again = f.verify(s.out);
  CHECK(error_code_of(again) == "verify.replay");
  CHECK(again.exit_code == 3);

  // The next signature for the same station has the next number; another station starts at 1.
  auto s2 = f.sign("--action SetChargingProfile --station CS-001");
  auto s3 = f.sign("--action SetChargingProfile --station CS-002");
  REQUIRE((s2.exit_code == 0 && s3.exit_code == 0));
  CHECK(json::parse(f.verify(s2.out).out).at("seq").as_int64() == 2);
  CHECK(json::parse(f.verify(s3.out).out).at("seq").as_int64() == 1);
}

TEST_CASE("gridtrust verify refuses changed, misdirected and malformed messages with their codes") {
  Fixture f;
  auto s = f.sign("--action SetChargingProfile --station CS-001");
  REQUIRE(s.exit_code == 0);
  std::string changed = s.out;
  changed.replace(changed.find("\"evseId\":1"), 10, "\"evseId\":2");
  CHECK(error_code_of(f.verify(changed)) == "jws.bad_signature");
  CHECK(error_code_of(f.verify(s.out, "--station CS-999")) == "verify.wrong_station");
  CHECK(error_code_of(f.verify(s.out, "--action RequestStartTransaction")) == "verify.wrong_action");
  CHECK(error_code_of(f.verify(s.out, "--max-lifetime 10")) == "verify.lifetime_too_long");
  CHECK(error_code_of(f.verify(kMessage)) == "verify.unsigned");
  CHECK(error_code_of(f.verify("{\"a\":1,\"a\":2}")) == "usage.bad_input");  // duplicate member names
  CHECK(error_code_of(f.verify("[1,2]")) == "verify.malformed");
  CHECK(error_code_of(f.verify("not json")) == "usage.bad_input");
  CHECK(error_code_of(f.sign("--action SetChargingProfile --station CS-1", "[]")) == "sign.not_object");
  CHECK(error_code_of(f.sign("--station CS-1")) == "usage.missing_option");
  CHECK(error_code_of(f.sign("--action A --station CS-1 --lifetime 0")) == "usage.bad_value");
  CHECK(error_code_of(f.sign("--action A --station CS-1", R"({"customData":{"vendorId":"com.example"}})")) ==
        "sign.custom_data_in_use");
  CHECK(error_code_of(f.sign("--action A --station CS-1", R"({"big":9007199254740993})")) == "sign.inexact_number");
  CHECK(error_code_of(f.sign("--action A --station CS-1 --signer 00")) == "notfound.certificate");
  // The original still verifies: no refusal above consumed its sequence number.
  CHECK(f.verify(s.out).exit_code == 0);
}

TEST_CASE("a revoked signer's next command is refused") {
  Fixture f;
  auto s = f.sign("--action SetChargingProfile --station CS-1");
  REQUIRE(s.exit_code == 0);
  auto list = f.pki.gt("list --profile aggregator-signer --json");
  REQUIRE(list.exit_code == 0);
  std::string serial(json::parse(list.out).as_array().at(0).at("serial").as_string());
  REQUIRE(f.pki.gt("revoke " + serial + " --reason keyCompromise").exit_code == 0);
  CHECK(error_code_of(f.verify(s.out)) == "verify.signer_revoked");
  CHECK(error_code_of(f.sign("--action SetChargingProfile --station CS-1")) == "commands.no_signer");
}

TEST_CASE("gridtrust sign-batch and verify-batch: one signature, every entry checkable alone") {
  Fixture f;
  std::string items = "[";
  for (int i = 0; i < 25; ++i) {
    if (i) items += ",";
    items += R"({"action":"SetChargingProfile","station":"CS-)" + std::to_string(i % 4) + R"(","message":)" +
             kMessage + "}";
  }
  items += "]";
  auto b = f.pki.gt("sign-batch " + sh_quote(f.file("items.json", items)));
  INFO(b.describe());
  REQUIRE(b.exit_code == 0);
  json::array entries = json::parse(b.out).as_array();
  REQUIRE(entries.size() == 25);
  // One entry alone, as its charger would check it.
  auto one = f.verify(json::serialize(entries[7]), "--station CS-3");
  INFO(one.describe());
  CHECK(one.exit_code == 0);
  // The whole batch: entry 7 was already accepted, so the batch is a replay there.
  auto all = f.pki.gt("verify-batch " + sh_quote(f.file("b.json", b.out)));
  CHECK(error_code_of(all) == "verify.replay");
  auto b2 = f.pki.gt("sign-batch " + sh_quote(f.file("items.json", items)));
  REQUIRE(b2.exit_code == 0);
  auto all2 = f.pki.gt("verify-batch " + sh_quote(f.file("b2.json", b2.out)));
  INFO(all2.describe());
  REQUIRE(all2.exit_code == 0);
  CHECK(json::parse(all2.out).as_array().size() == 25);
  // A changed entry breaks the batch.
  json::array tampered = json::parse(b2.out).as_array();
  tampered[3].as_object()["evseId"] = 5;
  CHECK(error_code_of(f.pki.gt("verify-batch " + sh_quote(f.file("t.json", json::serialize(tampered))))) ==
        "jws.bad_signature");
  CHECK(error_code_of(f.pki.gt("sign-batch " + sh_quote(f.file("bad.json", "[{\"action\":\"A\"}]")))) == "usage.bad_input");
}

TEST_CASE("a station or action a signed command may not name is refused before a sequence number is spent") {
  Fixture f;
  const std::string long_station(256, 's');
  CHECK(error_code_of(f.sign("--action SetChargingProfile --station " + long_station)) == "sign.bad_claims");
  CHECK(error_code_of(f.sign("--action " + std::string(65, 'a') + " --station CS-1")) == "sign.bad_claims");
  const std::string items = R"([{"action":"SetChargingProfile","station":"CS-ok","message":)" + std::string(kMessage) +
                            R"(},{"action":"SetChargingProfile","station":")" + long_station +
                            R"(","message":)" + kMessage + "}]";
  CHECK(error_code_of(f.pki.gt("sign-batch " + sh_quote(f.file("items.json", items)))) == "sign.bad_claims");
  gt::test::SqlConnection db(f.pki.data_dir() + "/gridtrust.db");
  CHECK(db.scalar("SELECT count(*) FROM command_sequences WHERE station IN ('" + long_station + "', 'CS-1', 'CS-ok')") == 0);
  // The longest allowed still signs.
  CHECK(f.sign("--action SetChargingProfile --station " + std::string(255, 's')).exit_code == 0);
}

TEST_CASE("gridtrustd /v1/commands: sign and verify over mTLS, roles enforced") {
  Fixture f;
  DaemonProcess daemon(f.pki, f.work, GRIDTRUSTD);
  daemon.start();
  std::string root = f.work / "root.pem";
  REQUIRE(f.pki.gt("chain --profile v2g-root --out " + sh_quote(root)).exit_code == 0);
  auto admin = gt::test::admin_profile_client(f.pki, f.work, "admin");
  auto auditor = gt::test::admin_profile_client(f.pki, f.work, "auditor");
  std::string as_admin = gt::test::client_args(root, admin);
  auto post = [&](const std::string& who, const std::string& path, const std::string& body) {
    return gt::test::curl(who + " " + gt::test::json_post(f.work, "body.json", body) + " " + daemon.api() + path);
  };
  auto signed_reply = post(as_admin, "/v1/commands/sign",
                           std::string(R"({"action":"SetChargingProfile","station":"CS-7","x5c":true,"message":)") +
                               kMessage + "}");
  INFO(signed_reply.body);
  REQUIRE(signed_reply.status == 200);
  json::object message = json::parse(signed_reply.body).at("message").as_object();
  // The CLI verifies what the daemon signed (same store, another process).
  auto v = f.verify(json::serialize(message), "--station CS-7");
  INFO(v.describe());
  CHECK(v.exit_code == 0);
  // And the daemon refuses it again as a replay.
  auto replay = post(as_admin, "/v1/commands/verify", "{\"message\":" + json::serialize(message) + "}");
  CHECK(replay.status == 400);
  CHECK(replay.error_code() == "verify.replay");
  // A fresh one verifies through the daemon.
  auto fresh = post(as_admin, "/v1/commands/sign",
                    std::string(R"({"action":"SetChargingProfile","station":"CS-7","message":)") + kMessage + "}");
  REQUIRE(fresh.status == 200);
  auto ok = post(gt::test::client_args(root, auditor), "/v1/commands/verify",
                 "{\"station\":\"CS-7\",\"message\":" + json::serialize(json::parse(fresh.body).at("message")) + "}");
  INFO(ok.body);
  CHECK(ok.status == 200);
  // An auditor may verify but not sign.
  auto forbidden = post(gt::test::client_args(root, auditor), "/v1/commands/sign",
                        std::string(R"({"action":"A","station":"CS-7","message":{}})"));
  CHECK(forbidden.status == 403);
  // Bad bodies.
  CHECK(post(as_admin, "/v1/commands/sign", R"({"action":"A","station":"S","message":{},"message":{}})").error_code() ==
        "request.bad_json");
  CHECK(post(as_admin, "/v1/commands/sign", R"({"station":"S","message":{}})").error_code() == "request.bad_json");
  CHECK(post(as_admin, "/v1/commands/sign", R"({"action":"A","station":"S","message":[]})").error_code() ==
        "request.bad_json");
  CHECK(post(as_admin, "/v1/commands/sign", R"({"action":"A","station":"S","lifetime_s":-1,"message":{}})")
            .error_code() == "request.bad_json");
  // Batch through the daemon.
  auto batch = post(as_admin, "/v1/commands/sign-batch",
                    std::string(R"({"items":[{"action":"A","station":"S1","message":{"x":1}},)"
                                R"({"action":"A","station":"S2","message":{"x":2.5}}]})"));
  INFO(batch.body);
  REQUIRE(batch.status == 200);
  auto checked = post(as_admin, "/v1/commands/verify-batch",
                      "{\"messages\":" + json::serialize(json::parse(batch.body).at("messages")) + "}");
  INFO(checked.body);
  CHECK(checked.status == 200);
  CHECK(json::parse(checked.body).at("reports").as_array().size() == 2);
}

TEST_CASE("gridtrust --server sign|sign-batch|verify|verify-batch go through the daemon") {
  Fixture f;
  DaemonProcess daemon(f.pki, f.work, GRIDTRUSTD);
  daemon.start();
  const std::string server = "--server " + daemon.api() + " ";
  // A number that a lax JSON reader rounds to a neighbouring double: the signed message
  // must come back with the value that was signed.
  const std::string message = R"({"evseId":1,"x":333333333.33333329,"limit":-7400.5})";
  auto s = f.pki.gt(server + "sign --action SetChargingProfile --station CS-R1 " + sh_quote(f.file("r.json", message)));
  INFO(s.describe());
  REQUIRE(s.exit_code == 0);
  // Verified offline (another process, the same store), then refused as a replay remotely.
  auto offline = f.verify(s.out, "--station CS-R1 --action SetChargingProfile");
  INFO(offline.describe());
  CHECK(offline.exit_code == 0);
  auto replay = f.pki.gt(server + "verify " + sh_quote(f.file("r-signed.json", s.out)));
  CHECK(error_code_of(replay) == "verify.replay");
  // Signed offline, verified remotely.
  auto s2 = f.sign("--action SetChargingProfile --station CS-R2");
  REQUIRE(s2.exit_code == 0);
  auto remote_ok = f.pki.gt(server + "verify --station CS-R2 " + sh_quote(f.file("r2.json", s2.out)));
  INFO(remote_ok.describe());
  REQUIRE(remote_ok.exit_code == 0);
  CHECK(json::parse(remote_ok.out).at("station").as_string() == "CS-R2");
  auto wrong_station = f.pki.gt(server + "verify --station CS-OTHER " + sh_quote(f.file("r2b.json", s2.out)));
  CHECK(error_code_of(wrong_station) == "verify.wrong_station");
  // A batch, signed remotely, checked remotely and offline.
  std::string items = R"([{"action":"A","station":"CS-B1","message":{"v":0.1}},)"
                      R"({"action":"A","station":"CS-B2","message":{"v":333333333.33333329}}])";
  auto b = f.pki.gt(server + "sign-batch " + sh_quote(f.file("items.json", items)));
  INFO(b.describe());
  REQUIRE(b.exit_code == 0);
  auto vb = f.pki.gt(server + "verify-batch " + sh_quote(f.file("batch.json", b.out)));
  INFO(vb.describe());
  REQUIRE(vb.exit_code == 0);
  CHECK(json::parse(vb.out).as_array().size() == 2);
  // Options the daemon does not take are refused before anything is sent.
  CHECK(error_code_of(f.pki.gt(server + "sign --signer 01 --action A --station S " + sh_quote(f.file("m2.json", "{}")))) ==
        "usage.remote_unsupported");
  CHECK(error_code_of(f.pki.gt(server + "verify --max-lifetime 60 " + sh_quote(f.file("r3.json", s.out)))) ==
        "usage.remote_unsupported");
  // A refusal from the daemon arrives with its code.
  CHECK(error_code_of(f.pki.gt(server + "verify " + sh_quote(f.file("bad.json", R"({"evseId":1})")))) ==
        "verify.unsigned");
}
