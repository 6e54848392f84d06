// /v1/ocpp end to end: a real gridtrustd, curl with admin-profile client certificates
// (an aggregator of its own organisation among them), the CLI's remote mode, and
// openssl as the independent party (chain verification, `openssl ocsp -respin`).
#include <memory>
#include <string>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "tests/support/daemon_process.h"
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

// An `admin`-profile client of role aggregator for the organisation `o`.
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

std::string csr_pem(const std::string& subject, const std::string& key_type = "P-256") {
  auto key = gt::test::make_key(key_type);
  return gt::test::make_csr_pem(key.get(), subject);
}

struct Fixture {
  InitializedPki pki;
  TempDir work;
  std::string root;  // the V2G root
  ClientCert admin, fleet_a, auditor;
  std::unique_ptr<DaemonProcess> daemon;

  Fixture() {
    root = work / "root.pem";
    REQUIRE(pki.gt("chain --profile v2g-root --out " + sh_quote(root)).exit_code == 0);
    admin = admin_profile_client(pki, work, "admin");
    auditor = admin_profile_client(pki, work, "auditor");
    fleet_a = aggregator_client(pki, work, "fleet-a", "Fleet A");
    daemon = std::make_unique<DaemonProcess>(pki, work, GRIDTRUSTD);
    daemon->start();
  }

  HttpResult post(const ClientCert& who, const std::string& route, const std::string& body,
                  const std::string& name = "body") {
    return curl(client_args(root, who) + json_post(work, name, body) + sh_quote(daemon->api() + route));
  }
  HttpResult get(const ClientCert& who, const std::string& route) {
    return curl(client_args(root, who) + sh_quote(daemon->api() + route));
  }
  std::size_t certificate_count() {
    auto h = get(admin, "/v1/certificates");
    REQUIRE(h.status == 200);
    return json::parse(h.body).as_object().at("certificates").as_array().size();
  }
  CommandResult remote(const std::string& args) const { return pki.gt("--server " + daemon->api() + " " + args); }
  CommandResult offline(const std::string& args) const { return pki.gt(args); }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

std::string envelope(const char* version, const json::object& request) {
  return json::serialize(json::object{{"ocppVersion", version}, {"request", request}});
}

// The chain is leaf first, then the Sub-CAs, no root, and verifies up to the V2G root.
void check_chain(const std::string& chain, const std::string& root) {
  auto certs = gt::test::split_pem_certs(chain);
  REQUIRE(certs.size() == 3);
  TempDir work;
  write_file(work / "leaf.pem", certs[0]);
  write_file(work / "subs.pem", certs[1] + certs[2]);
  auto v = run("openssl verify -CAfile " + sh_quote(root) + " -untrusted " + sh_quote(work / "subs.pem") + " " +
               sh_quote(work / "leaf.pem"));
  INFO(v.describe());
  CHECK(v.exit_code == 0);
  for (const auto& pem : certs) {
    auto c = gt::test::parse_cert(pem);
    CHECK(X509_NAME_cmp(X509_get_subject_name(c.get()), X509_get_issuer_name(c.get())) != 0);
  }
}

// `openssl ocsp -respin` on a base64 ocspResult: the "Cert Status:" line.
std::string ocsp_cert_status(const std::string& base64) {
  TempDir work;
  auto der = gt::base64_decode(base64);
  REQUIRE(der);
  write_file(work / "resp.der", std::string(der->begin(), der->end()));
  auto text = run("openssl ocsp -respin " + sh_quote(work / "resp.der") + " -resp_text -noverify");
  INFO(text.describe());
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("OCSP Response Status: successful") != std::string::npos);
  auto at = text.out.find("Cert Status: ");
  REQUIRE(at != std::string::npos);
  return text.out.substr(at + 13, text.out.find('\n', at) - at - 13);
}

}  // namespace

TEST_CASE("an aggregator has its stations' CSRs signed: CertificateSignedRequest with the chain, leaf first",
          "[integration][daemon][ocpp]") {
  auto& f = fixture();
  json::object request{{"csr", csr_pem("CN=station-a-1,O=Fleet A")}, {"certificateType", "ChargingStationCertificate"}};
  auto h = f.post(f.fleet_a, "/v1/ocpp/sign-certificate", envelope("2.0.1", request));
  INFO(h.body << f.daemon->log());
  REQUIRE(h.status == 200);
  auto answer = json::parse(h.body).as_object();
  CHECK(answer.at("ocppVersion").as_string() == "2.0.1");
  CHECK(answer.at("action").as_string() == "CertificateSigned");
  CHECK(answer.at("profile").as_string() == "charging-station");
  const json::object& response = answer.at("response").as_object();
  CHECK(response.at("certificateType").as_string() == "ChargingStationCertificate");
  CHECK(response.size() == 2);
  check_chain(std::string(response.at("certificateChain").as_string()), f.root);

  // 2.1: an SECC certificate, requestId echoed.
  request = json::object{{"csr", csr_pem("CN=DE*FLA*E0001,O=Fleet A,DC=CPO")},
                         {"certificateType", "V2GCertificate"},
                         {"requestId", 9001}};
  h = f.post(f.fleet_a, "/v1/ocpp/sign-certificate", envelope("2.1", request));
  INFO(h.body);
  REQUIRE(h.status == 200);
  answer = json::parse(h.body).as_object();
  CHECK(answer.at("profile").as_string() == "secc");
  CHECK(answer.at("response").as_object().at("requestId").as_int64() == 9001);
  check_chain(std::string(answer.at("response").as_object().at("certificateChain").as_string()), f.root);
}

TEST_CASE("an aggregator may not have another organisation's CSR signed; an admin may",
          "[integration][daemon][ocpp]") {
  auto& f = fixture();
  const std::size_t before = f.certificate_count();
  json::object request{{"csr", csr_pem("CN=station-b-1,O=Fleet B")}, {"certificateType", "ChargingStationCertificate"}};
  auto h = f.post(f.fleet_a, "/v1/ocpp/sign-certificate", envelope("2.0.1", request));
  INFO(h.body);
  CHECK(h.status == 400);
  CHECK(h.error_code() == "ocpp.security_error");
  CHECK(json::parse(h.body).as_object().at("error").as_object().at("ocpp_error").as_string() == "SecurityError");
  CHECK(f.certificate_count() == before);

  h = f.post(f.admin, "/v1/ocpp/sign-certificate", envelope("2.0.1", request));
  INFO(h.body);
  CHECK(h.status == 200);
  CHECK(f.certificate_count() == before + 1);

  // An auditor has no OCPP routes.
  h = f.post(f.auditor, "/v1/ocpp/sign-certificate", envelope("2.0.1", request));
  CHECK(h.status == 403);
  CHECK(h.error_code() == "auth.forbidden");
}

TEST_CASE("malformed OCPP bodies are refused with their CallError code and nothing is issued",
          "[integration][daemon][ocpp][bad-input]") {
  auto& f = fixture();
  const std::size_t before = f.certificate_count();
  const std::string csr = json::serialize(json::value(json::string(csr_pem("CN=station-a-2,O=Fleet A"))));
  struct Case {
    const char* name;
    std::string body;
    int status;
    const char* code;
    const char* ocpp_error;  // null: no CallError for this code
  };
  for (const auto& c : std::vector<Case>{
           {"duplicate member in the payload", R"({"ocppVersion":"2.0.1","request":{"csr":)" + csr + R"(,"csr":)" + csr + "}}",
            400, "ocpp.format_violation", "FormatViolation"},
           {"duplicate member in the envelope",
            R"({"ocppVersion":"2.0.1","ocppVersion":"2.1","request":{"csr":)" + csr + "}}", 400,
            "ocpp.format_violation", "FormatViolation"},
           {"non-UTF-8 bytes", "{\"ocppVersion\":\"2.0.1\",\"request\":{\"csr\":\"\xc3\x28\"}}", 400,
            "ocpp.format_violation", "FormatViolation"},
           {"not JSON", "csr=abc", 400, "ocpp.format_violation", "FormatViolation"},
           {"payload not an object", R"({"ocppVersion":"2.0.1","request":"csr"})", 400, "ocpp.format_violation",
            "FormatViolation"},
           {"missing csr", R"({"ocppVersion":"2.0.1","request":{}})", 400, "ocpp.occurrence_constraint_violation",
            "OccurrenceConstraintViolation"},
           {"csr a number", R"({"ocppVersion":"2.0.1","request":{"csr":1}})", 400, "ocpp.type_constraint_violation",
            "TypeConstraintViolation"},
           {"V2G20Certificate under 2.0.1",
            R"({"ocppVersion":"2.0.1","request":{"csr":)" + csr + R"(,"certificateType":"V2G20Certificate"}})", 400,
            "ocpp.property_constraint_violation", "PropertyConstraintViolation"},
           {"an additional property", R"({"ocppVersion":"2.1","request":{"csr":)" + csr + R"(,"nonce":1}})", 400,
            "ocpp.property_constraint_violation", "PropertyConstraintViolation"},
           {"a contract subject for ChargingStationCertificate",
            envelope("2.0.1", json::object{{"csr", csr_pem("CN=DE8AAA2B3C4D5E6,O=Fleet A,DC=MO")}}), 400,
            "ocpp.security_error", "SecurityError"},
           {"no request", R"({"ocppVersion":"2.0.1"})", 400, "request.bad_json", nullptr},
           {"an unknown envelope member", R"({"ocppVersion":"2.0.1","request":{},"x":1})", 400, "request.bad_json",
            nullptr},
           {"OCPP 1.6", R"({"ocppVersion":"1.6","request":{"csr":)" + csr + "}}", 400, "usage.bad_value", nullptr},
       }) {
    INFO(c.name);
    auto h = f.post(f.fleet_a, "/v1/ocpp/sign-certificate", c.body, "bad");
    INFO(h.body);
    CHECK(h.status == c.status);
    CHECK(h.error_code() == c.code);
    auto error = json::parse(h.body).as_object().at("error").as_object();
    if (c.ocpp_error) CHECK(error.at("ocpp_error").as_string() == c.ocpp_error);
    else CHECK(!error.contains("ocpp_error"));
  }
  auto h = curl(client_args(f.root, f.fleet_a) + "-X POST -H 'Content-Type: text/plain' --data-binary '{}' " +
                sh_quote(f.daemon->api() + "/v1/ocpp/sign-certificate"));
  CHECK(h.status == 415);
  CHECK(f.certificate_count() == before);
}

TEST_CASE("GetCertificateStatus through the API is the daemon's OCSP answer: good, then revoked",
          "[integration][daemon][ocpp][ocsp]") {
  auto& f = fixture();
  auto s = f.post(f.fleet_a, "/v1/ocpp/sign-certificate",
                  envelope("2.0.1", json::object{{"csr", csr_pem("CN=station-a-3,O=Fleet A")}}));
  REQUIRE(s.status == 200);
  std::string serial(json::parse(s.body).as_object().at("serial").as_string());

  auto hash = f.get(f.fleet_a, "/v1/ocpp/certificate-hash/" + serial);
  INFO(hash.body);
  REQUIRE(hash.status == 200);
  auto hash_answer = json::parse(hash.body).as_object();
  CHECK(hash_answer.at("action").as_string() == "DeleteCertificate");
  json::object data = hash_answer.at("request").as_object().at("certificateHashData").as_object();
  CHECK(data == hash_answer.at("certificateHashData").as_object());
  data["responderURL"] = f.daemon->status() + "/ocsp";
  const std::string body = envelope("2.0.1", json::object{{"ocspRequestData", data}});

  auto ask = [&]() {
    auto h = f.post(f.fleet_a, "/v1/ocpp/certificate-status", body, "status");
    INFO(h.body);
    REQUIRE(h.status == 200);
    auto answer = json::parse(h.body).as_object();
    CHECK(answer.at("action").as_string() == "GetCertificateStatus");
    const json::object& response = answer.at("response").as_object();
    REQUIRE(response.at("status").as_string() == "Accepted");
    return ocsp_cert_status(std::string(response.at("ocspResult").as_string()));
  };
  CHECK(ask() == "good");
  auto revoked = f.post(f.admin, "/v1/certificates/" + serial + "/revoke", R"({"reason":"keyCompromise"})", "revoke");
  INFO(revoked.body);
  REQUIRE(revoked.status == 200);
  CHECK(ask() == "revoked");

  auto bad = f.post(f.fleet_a, "/v1/ocpp/certificate-status",
                    R"({"ocppVersion":"2.0.1","request":{"ocspRequestData":{"hashAlgorithm":"SHA1"}}})", "bad-status");
  CHECK(bad.status == 400);
  CHECK(bad.error_code() == "ocpp.occurrence_constraint_violation");
}

TEST_CASE("the builders: InstallCertificate, DeleteCertificate and TriggerMessage payloads",
          "[integration][daemon][ocpp]") {
  auto& f = fixture();
  auto h = f.get(f.fleet_a, "/v1/ocpp/install-certificate/v2g-root?ocppVersion=2.1&certificateType=V2GRootCertificate");
  INFO(h.body);
  REQUIRE(h.status == 200);
  auto answer = json::parse(h.body).as_object();
  CHECK(answer.at("request").as_object().at("certificateType").as_string() == "V2GRootCertificate");
  CHECK(std::string(answer.at("request").as_object().at("certificate").as_string()) == read_file(f.root));
  CHECK(answer.at("expectedCertificateHashDataChain").as_object().at("certificateType").as_string() ==
        "V2GRootCertificate");

  h = f.get(f.fleet_a, "/v1/ocpp/install-certificate/v2g-root?certificateType=OEMRootCertificate");
  CHECK(h.status == 400);
  CHECK(h.error_code() == "ocpp.property_constraint_violation");
  h = f.get(f.fleet_a, "/v1/ocpp/install-certificate/v2g-root");
  CHECK(h.error_code() == "usage.missing_option");

  h = f.get(f.fleet_a, "/v1/ocpp/trigger/SignV2G20Certificate?ocppVersion=2.1");
  REQUIRE(h.status == 200);
  CHECK(json::parse(h.body).as_object().at("request") ==
        json::value(json::object{{"requestedMessage", "SignV2G20Certificate"}}));
  h = f.get(f.fleet_a, "/v1/ocpp/trigger/Heartbeat");
  CHECK(h.error_code() == "ocpp.not_supported");
  CHECK(json::parse(h.body).as_object().at("error").as_object().at("ocpp_error").as_string() == "NotSupported");

  h = f.get(f.fleet_a, "/v1/ocpp/certificate-hash/0BADC0FFEE");
  CHECK(h.status == 404);
  CHECK(h.error_code() == "notfound.certificate");
}

TEST_CASE("the CLI's remote mode: ocpp sign-certificate and certificate-status print the OCPP payloads",
          "[integration][remote][ocpp]") {
  auto& f = fixture();
  std::string file = f.work / "sign.json";
  write_file(file, json::serialize(json::object{{"csr", csr_pem("CN=DE*GTD*E0002,O=gridtrust demo,DC=CPO")},
                                                {"certificateType", "V2GCertificate"},
                                                {"requestId", 5}}));
  auto r = f.remote("ocpp sign-certificate " + sh_quote(file) + " --ocpp-version 2.1");
  INFO(r.describe() << f.daemon->log());
  REQUIRE(r.exit_code == 0);
  auto payload = json::parse(r.out).as_object();
  CHECK(payload.at("certificateType").as_string() == "V2GCertificate");
  CHECK(payload.at("requestId").as_int64() == 5);
  CHECK(payload.size() == 3);
  std::string chain(payload.at("certificateChain").as_string());
  check_chain(chain, f.root);

  auto leaf = gt::test::parse_cert(gt::test::split_pem_certs(chain)[0]);
  gt::BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf.get()), nullptr));
  char* hex = BN_bn2hex(bn.get());
  std::string serial(hex);
  OPENSSL_free(hex);

  auto hash = f.remote("ocpp certificate-hash " + serial + " --json");
  INFO(hash.describe());
  REQUIRE(hash.exit_code == 0);
  CHECK(hash.out == f.offline("ocpp certificate-hash " + serial + " --json").out);
  json::object data = json::parse(hash.out).as_object().at("certificateHashData").as_object();
  CHECK(json::parse(hash.out).as_object().at("expectedCertificateHashDataChain").as_object().at("certificateType")
            .as_string() == "V2GCertificateChain");
  data["responderURL"] = f.daemon->status() + "/ocsp";
  std::string status_file = f.work / "status.json";
  write_file(status_file, json::serialize(json::object{{"ocspRequestData", data}}));
  auto st = f.remote("ocpp certificate-status " + sh_quote(status_file));
  INFO(st.describe());
  REQUIRE(st.exit_code == 0);
  auto response = json::parse(st.out).as_object();
  REQUIRE(response.at("status").as_string() == "Accepted");
  CHECK(ocsp_cert_status(std::string(response.at("ocspResult").as_string())) == "good");

  // The builders print the same remotely and offline.
  for (std::string args : {"ocpp trigger SignChargingStationCertificate",
                           "ocpp install-certificate mo-root --type MORootCertificate --json",
                           "ocpp install-certificate v2g-root --type CSMSRootCertificate --hash SHA512"}) {
    auto remote = f.remote(args);
    INFO(args << "\n" << remote.describe());
    REQUIRE(remote.exit_code == 0);
    CHECK(remote.out == f.offline(args).out);
  }

  // Refusals: the same code and exit status as offline.
  std::string dup = f.work / "dup.json";
  write_file(dup, R"({"csr":"a","csr":"b"})");
  auto remote = f.remote("ocpp sign-certificate " + sh_quote(dup));
  CHECK(error_code_of(remote) == "ocpp.format_violation");
  CHECK(remote.exit_code == f.offline("ocpp sign-certificate " + sh_quote(dup)).exit_code);
  std::string wrong_type = f.work / "wrong-type.json";
  write_file(wrong_type, R"({"csr":"x","certificateType":"V2G20Certificate"})");
  remote = f.remote("ocpp sign-certificate " + sh_quote(wrong_type));
  CHECK(error_code_of(remote) == "ocpp.property_constraint_violation");
  CHECK(error_code_of(f.offline("ocpp sign-certificate " + sh_quote(wrong_type))) ==
        "ocpp.property_constraint_violation");
  CHECK(error_code_of(f.remote("ocpp sign-certificate " + sh_quote(file) + " --ocpp-version 1.6")) ==
        "usage.bad_value");
  CHECK(error_code_of(f.remote("ocpp renew")) == "usage.unknown_command");
}
