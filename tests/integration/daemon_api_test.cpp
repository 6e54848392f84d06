// gridtrustd end to end: `gridtrust init`, the daemon as a child process on free
// loopback ports, and curl/openssl as independent clients.
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
using gt::test::curl;
using gt::test::DaemonProcess;
using gt::test::InitializedPki;
using gt::test::json_post;
using gt::test::read_file;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::TempDir;
using gt::test::write_file;

namespace {

// One PKI and one daemon for the API checks below (init and start-up take seconds).
struct Fixture {
  InitializedPki pki;
  TempDir work;
  std::string root;  // the V2G root, the only trust anchor clients need
  ClientCert op;
  ClientCert admin;
  std::unique_ptr<DaemonProcess> daemon;

  Fixture() {
    root = work / "root.pem";
    auto c = pki.gt("chain --profile v2g-root --out " + sh_quote(root));
    REQUIRE(c.exit_code == 0);
    op = admin_profile_client(pki, work, "operator");
    admin = admin_profile_client(pki, work, "admin");
    daemon = std::make_unique<DaemonProcess>(pki, work, GRIDTRUSTD);
    daemon->start();
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

TEST_CASE("gridtrust init writes the daemon section, its TLS certificate and the admin chain",
          "[integration][daemon]") {
  auto& f = fixture();
  std::string yaml = read_file(f.pki.data_dir() + "/gridtrust.yaml");
  CHECK(yaml.find("server_cert_label: \"csms-server-") != std::string::npos);
  CHECK(yaml.find("admin_cert_label: \"admin-") != std::string::npos);
  CHECK(yaml.find("max_body_bytes: 65536") != std::string::npos);
  auto server = gt::test::split_pem_certs(read_file(f.pki.data_dir() + "/server-chain.pem"));
  auto admin = gt::test::split_pem_certs(read_file(f.pki.data_dir() + "/admin-chain.pem"));
  REQUIRE(server.size() == 3);  // leaf, CPO Sub-CA 2, CPO Sub-CA 1
  REQUIRE(admin.size() == 3);
  CHECK(read_file(f.pki.data_dir() + "/server-chain.pem").find("PRIVATE KEY") == std::string::npos);
  auto subject = run("printf '%s' " + sh_quote(server[0]) + " | openssl x509 -noout -subject -nameopt RFC2253");
  CHECK(subject.out.find("CN=localhost") != std::string::npos);
  subject = run("printf '%s' " + sh_quote(admin[0]) + " | openssl x509 -noout -subject -nameopt RFC2253");
  CHECK(subject.out.find("OU=admin") != std::string::npos);
  CHECK(subject.out.find("CN=admin") != std::string::npos);
}

TEST_CASE("the API refuses a TLS client without a certificate", "[integration][daemon][mtls]") {
  auto& f = fixture();
  auto h = curl("--cacert " + sh_quote(f.root) + " " + sh_quote(f.daemon->api() + "/healthz"));
  INFO(h.err);
  CHECK(h.curl_exit != 0);
  CHECK(h.status == 0);
}

TEST_CASE("the API refuses a client certificate from a foreign CA", "[integration][daemon][mtls]") {
  auto& f = fixture();
  std::string ca_key = f.work / "foreign-ca.key", ca = f.work / "foreign-ca.pem";
  std::string key = f.work / "foreign.key", csr = f.work / "foreign.csr", cert = f.work / "foreign.pem";
  auto r = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -keyout " +
               sh_quote(ca_key) + " -subj '/CN=gridtrust V2G Root CA/O=gridtrust demo/C=DE/DC=V2G' -out " + sh_quote(ca) +
               " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + sh_quote(key) +
               " -subj '/CN=mallory/O=gridtrust demo/OU=admin' -out " + sh_quote(csr) +
               " && openssl x509 -req -in " + sh_quote(csr) + " -CA " + sh_quote(ca) + " -CAkey " + sh_quote(ca_key) +
               " -CAcreateserial -days 1 -out " + sh_quote(cert));
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto h = curl(client_args(f.root, ClientCert{cert, key}) + sh_quote(f.daemon->api() + "/healthz"));
  INFO(h.err);
  CHECK(h.curl_exit != 0);
  CHECK(h.status == 0);
}

TEST_CASE("an operator may read and issue but revoking is admin only: 403 auth.forbidden",
          "[integration][daemon][roles]") {
  auto& f = fixture();
  auto health = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/healthz"));
  INFO(health.err);
  REQUIRE(health.status == 200);

  auto list = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/v1/certificates?profile=admin"));
  REQUIRE(list.status == 200);
  auto certs = json::parse(list.body).as_object().at("certificates").as_array();
  CHECK(certs.size() == 3);  // init's admin, and the operator and admin clients of this test

  std::string serial(certs[0].as_object().at("serial").as_string());
  auto h = curl(client_args(f.root, f.op) + json_post(f.work, "op-revoke", R"({"reason":"superseded"})") +
                sh_quote(f.daemon->api() + "/v1/certificates/" + serial + "/revoke"));
  INFO(h.body);
  CHECK(h.status == 403);
  CHECK(h.error_code() == "auth.forbidden");
  auto show = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/v1/certificates/" + serial));
  REQUIRE(show.status == 200);
  CHECK(json::parse(show.body).as_object().at("status").as_string() == "valid");
}

TEST_CASE("an admin issues a certificate from a CSR and revokes it; the status listener's CRL lists it",
          "[integration][daemon][issue][revoke][crl]") {
  auto& f = fixture();
  auto key = gt::test::make_key("P-256");
  json::object req{{"profile", "secc"},
                   {"csr", gt::test::make_csr_pem(key.get(), "CN=DE*ABC*E9001,O=gridtrust demo,DC=CPO")}};
  auto issued = curl(client_args(f.root, f.admin) + json_post(f.work, "issue", json::serialize(req)) +
                     sh_quote(f.daemon->api() + "/v1/certificates"));
  INFO(issued.body << issued.err);
  REQUIRE(issued.status == 201);
  auto body = json::parse(issued.body).as_object();
  std::string serial(body.at("serial").as_string());
  CHECK(body.at("profile").as_string() == "secc");
  CHECK(gt::test::split_pem_certs(std::string(body.at("chain_pem").as_string())).size() == 3);

  auto revoked = curl(client_args(f.root, f.admin) + json_post(f.work, "revoke", R"({"reason":"keyCompromise"})") +
                      sh_quote(f.daemon->api() + "/v1/certificates/" + serial + "/revoke"));
  INFO(revoked.body);
  REQUIRE(revoked.status == 200);
  CHECK(json::parse(revoked.body).as_object().at("status").as_string() == "revoked");
  CHECK(json::parse(revoked.body).as_object().at("reason").as_string() == "keyCompromise");

  // The CRL, over plain HTTP at the URL written into certificates, as DER.
  std::string crl = f.work / "cpo-sub2.crl", chain = f.work / "cpo-sub2-chain.pem";
  REQUIRE(f.pki.gt("chain --profile cpo-sub2 --out " + sh_quote(chain)).exit_code == 0);
  auto get = run("curl -sS -f -o " + sh_quote(crl) + " " + sh_quote(f.daemon->status() + "/crl/cpo-sub2.crl"));
  INFO(get.describe());
  REQUIRE(get.exit_code == 0);
  auto v = run("openssl crl -inform DER -in " + sh_quote(crl) + " -CAfile " + sh_quote(chain) + " -noout -verify -text");
  INFO(v.describe());
  CHECK(v.exit_code == 0);
  CHECK(v.err.find("verify OK") != std::string::npos);
  CHECK(v.out.find("Serial Number: " + serial) != std::string::npos);

  // The chain and an unknown CRL issuer through the API.
  auto ch = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/v1/chain/secc"));
  REQUIRE(ch.status == 200);
  auto missing = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/v1/crl/no-such-ca"));
  CHECK(missing.status == 400);
  CHECK(missing.error_code() == "profile.unknown");
}

TEST_CASE("malformed requests get JSON errors: 400 bad JSON, 415 content type, 413 too large, 404 route",
          "[integration][daemon][errors]") {
  auto& f = fixture();
  const std::string url = sh_quote(f.daemon->api() + "/v1/certificates");

  auto bad_json = curl(client_args(f.root, f.op) + json_post(f.work, "bad", "{\"profile\": ") + url);
  CHECK(bad_json.status == 400);
  CHECK(bad_json.error_code() == "request.bad_json");

  std::string body = f.work / "plain.txt";
  write_file(body, "{}");
  auto wrong_type = curl(client_args(f.root, f.op) + "-X POST -H 'Content-Type: text/plain' --data-binary @" +
                         sh_quote(body) + " " + url);
  CHECK(wrong_type.status == 415);
  CHECK(wrong_type.error_code() == "request.bad_content_type");

  std::string big(100000, ' ');
  auto too_large = curl(client_args(f.root, f.op) + json_post(f.work, "big", "{\"csr\":\"" + big + "\"}") + url);
  INFO(too_large.err);
  CHECK(too_large.status == 413);
  CHECK(too_large.error_code() == "request.too_large");

  auto no_route = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/v2/nothing"));
  CHECK(no_route.status == 404);
  CHECK(no_route.error_code() == "notfound.route");
}

TEST_CASE("gridtrustd exits 0 on SIGTERM", "[integration][daemon][signals]") {
  InitializedPki pki;  // its own daemon: the shared one keeps serving the cases above
  TempDir work;
  DaemonProcess d(pki, work, GRIDTRUSTD);
  d.start();
  CHECK(run("curl -sf " + sh_quote(d.status() + "/healthz")).exit_code == 0);
  CHECK(d.terminate() == 0);
  CHECK(d.log().find("stopped") != std::string::npos);
  CHECK(d.log().find(read_file(pki.data_dir() + "/secrets/user.pin").substr(0, 32)) == std::string::npos);
}
