// SIGHUP applies a new configuration without dropping connections (DESIGN.md
// "Daemon"): profiles, limits and client trust anchors change for what comes next,
// a kept-alive TLS connection carries on, a broken file changes nothing (logged,
// audited, counted), and OCSP signers and CRLs pick up what the offline CLI did
// while the daemon ran. One real daemon over a real SoftHSM2 token; every case
// writes the whole configuration it needs before its first SIGHUP.
#include <signal.h>

#include <chrono>
#include <ctime>
#include <future>
#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "tests/support/daemon_process.h"
#include "tests/support/test_support.h"

namespace gt = gridtrust;
namespace json = boost::json;
using gt::test::client_args;
using gt::test::ClientCert;
using gt::test::CommandResult;
using gt::test::contains;
using gt::test::curl;
using gt::test::DaemonProcess;
using gt::test::HttpResult;
using gt::test::InitializedPki;
using gt::test::json_post;
using gt::test::read_file;
using gt::test::replace_all;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::TempDir;
using gt::test::write_file;

namespace {

int occurrences(const std::string& text, const std::string& part) {
  int n = 0;
  for (auto pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + part.size())) ++n;
  return n;
}

// RFC 6960 ResponderID byKey, as `openssl ocsp -resp_text` prints it.
std::string responder_id(const std::string& resp_text) {
  auto at = resp_text.find("Responder Id: ");
  REQUIRE(at != std::string::npos);
  return resp_text.substr(at + 14, resp_text.find('\n', at) - at - 14);
}

std::int64_t unix_of(const std::string& rfc3339) {
  std::tm tm{};
  std::istringstream in(rfc3339);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  REQUIRE(!in.fail());
  return static_cast<std::int64_t>(timegm(&tm));
}

// Replaces the value of `key:` in a YAML text (the first occurrence after `after`).
void set_value(std::string& yaml, const std::string& key, const std::string& value, const std::string& after = "") {
  auto from = after.empty() ? 0 : yaml.find(after);
  REQUIRE(from != std::string::npos);
  auto pos = yaml.find(key + ": ", from);
  REQUIRE(pos != std::string::npos);
  auto start = pos + key.size() + 2;
  yaml.replace(start, yaml.find('\n', start) - start, value);
}

// The secc profile of config/profiles.yaml under another name and validity.
std::string secc_copy(const std::string& name, int validity_days) {
  return "  " + name + ":\n"
         "    kind: leaf\n"
         "    issuer: cpo-sub2\n"
         "    keys: [P-256]\n"
         "    digest: SHA-256\n"
         "    validity_days: " + std::to_string(validity_days) + "\n"
         "    key_usage: [digitalSignature, keyAgreement]\n"
         "    subject: { dc: CPO, cn: secc-id, require: [CN, O, DC], allow: [CN, O, C, DC] }\n\n";
}

struct Fixture {
  InitializedPki pki;
  TempDir work;
  std::unique_ptr<DaemonProcess> daemon;
  std::string root, sub2, chain;  // V2G root; CPO Sub-CA 2; Sub-CA 2 + Sub-CA 1
  ClientCert admin;
  std::string yaml_path, profiles_path, db;
  std::string base_yaml, base_profiles;  // as init wrote them, ports moved
  int api_port = 0;

  Fixture() {
    daemon = std::make_unique<DaemonProcess>(pki, work, GRIDTRUSTD);
    root = work / "root.pem";
    sub2 = work / "sub2.pem";
    chain = work / "chain.pem";
    REQUIRE(pki.gt("chain --profile v2g-root --out " + sh_quote(root)).exit_code == 0);
    REQUIRE(pki.gt("chain --profile cpo-sub2 --out " + sh_quote(chain)).exit_code == 0);
    auto cas = gt::test::split_pem_certs(read_file(chain));
    REQUIRE(cas.size() >= 2);
    write_file(sub2, cas[0]);
    write_file(chain, cas[0] + cas[1]);
    admin = gt::test::admin_profile_client(pki, work, "admin");
    yaml_path = daemon->config_path();
    profiles_path = pki.data_dir() + "/profiles.yaml";
    db = pki.data_dir() + "/gridtrust.db";
    base_yaml = read_file(yaml_path);
    base_profiles = read_file(profiles_path);
    daemon->start();
    api_port = std::stoi(daemon->api().substr(daemon->api().rfind(':') + 1));
  }

  std::string api(const std::string& path) const { return sh_quote(daemon->api() + path); }

  std::string reload_verdicts() const {
    std::string log = daemon->log();
    std::string out;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);)
      if (contains(line, "configuration reloaded") || contains(line, "reload refused")) out += line + "\n";
    return out;
  }

  int reload_audits() const {
    auto r = run("sqlite3 " + sh_quote(db) + " \"SELECT count(*) FROM audit WHERE action='config-reload'\"");
    return std::atoi(r.out.c_str());
  }

  // SIGHUP, then waits for the daemon's verdict line and its audit entry; the line.
  std::string reload() const {
    int lines = occurrences(reload_verdicts(), "\n");
    int audits = reload_audits();
    daemon->send_signal(SIGHUP);
    for (int i = 0; i < 200; ++i) {
      std::string verdicts = reload_verdicts();
      if (occurrences(verdicts, "\n") > lines && reload_audits() > audits) {
        verdicts.pop_back();
        return verdicts.substr(verdicts.rfind('\n') + 1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL("no reload verdict after 10 s: " << daemon->log());
    return {};
  }

  std::string last_reload_audit() const {
    return run("sqlite3 " + sh_quote(db) +
               " \"SELECT details FROM audit WHERE action='config-reload' ORDER BY id DESC LIMIT 1\"")
        .out;
  }

  // A secc certificate through the API; the response body.
  HttpResult issue(const std::string& profile, const std::string& secc_id) const {
    auto key = gt::test::make_key("P-256");
    json::object req{{"profile", profile},
                     {"csr", gt::test::make_csr_pem(key.get(), "CN=DE*ABC*E" + secc_id + ",O=gridtrust demo,DC=CPO")}};
    return curl(client_args(root, admin) + json_post(work, "issue-" + secc_id, json::serialize(req)) +
                api("/v1/certificates"));
  }

  // Validity of an issued certificate in whole days (notBefore is backdated by minutes).
  static std::int64_t validity_days(const HttpResult& issued) {
    auto o = json::parse(issued.body).as_object();
    auto nb = unix_of(std::string(o.at("not_before").as_string()));
    auto na = unix_of(std::string(o.at("not_after").as_string()));
    return (na - nb) / 86400;
  }

  // `openssl ocsp` for one certificate, verified up to the root; -resp_text output.
  CommandResult ocsp(const std::string& cert_pem) const {
    return run("openssl ocsp -issuer " + sh_quote(sub2) + " -cert " + sh_quote(cert_pem) + " -url " +
               sh_quote(daemon->status() + "/ocsp") + " -CAfile " + sh_quote(root) + " -verify_other " +
               sh_quote(chain) + " -resp_text");
  }

  std::string metric(const std::string& name) const {
    auto m = run("curl -sf " + client_args(root, admin) + api("/metrics"));
    std::istringstream lines(m.out);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind(name + " ", 0) == 0) return line.substr(name.size() + 1);
    return "?";
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

TEST_CASE("a kept-alive TLS connection carries on across SIGHUP, and its next request gets the new limits",
          "[integration][daemon][reload][connections]") {
  auto& f = fixture();
  write_file(f.yaml_path, f.base_yaml);
  write_file(f.profiles_path, f.base_profiles);
  f.reload();

  // Three requests on one connection: before the SIGHUP, after it, and after it a body
  // over the lowered limit. The client waits for the file `go` between the first two.
  std::string go = f.work / "go";
  std::string body(3000, 'x');
  std::string cmd =
      "(printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'; "
      "while [ ! -f " + sh_quote(go) + " ]; do sleep 0.05; done; "
      "printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'; sleep 0.5; "
      "printf 'POST /v1/certificates HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Type: application/json\\r\\n"
      "Content-Length: 3000\\r\\n\\r\\n" + body + "'; sleep 2) | "
      "timeout 30 openssl s_client -quiet -connect 127.0.0.1:" + std::to_string(f.api_port) +
      " -servername localhost -CAfile " + sh_quote(f.root) + " -cert " + sh_quote(f.admin.cert) + " -key " +
      sh_quote(f.admin.key) + " -verify_return_error";
  int served = occurrences(f.daemon->log(), "api GET /healthz 200 admin");
  auto client = std::async(std::launch::async, [cmd] { return run(cmd); });

  // The first request has been answered once the daemon logged it.
  for (int i = 0; i < 200 && occurrences(f.daemon->log(), "api GET /healthz 200 admin") == served; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::string yaml = f.base_yaml;
  set_value(yaml, "max_body_bytes", "2000");
  write_file(f.yaml_path, yaml);
  std::string verdict = f.reload();
  CHECK(contains(verdict, "configuration reloaded: applied daemon.limits.max_body_bytes"));
  write_file(go, "");

  auto r = client.get();
  INFO(r.describe() << f.daemon->log());
  CHECK(occurrences(r.out, "HTTP/1.1 200 OK") == 2);
  CHECK(occurrences(r.out, "HTTP/1.1 413") == 1);
  CHECK(contains(r.out, "request.too_large"));
  CHECK(contains(r.out, "exceeds 2000 body bytes"));
}

TEST_CASE("after SIGHUP, issuance uses the changed and the added profiles", "[integration][daemon][reload][profiles]") {
  auto& f = fixture();
  write_file(f.yaml_path, f.base_yaml);
  write_file(f.profiles_path, f.base_profiles);
  f.reload();

  auto before = f.issue("secc", "1001");
  INFO(before.body << before.err);
  REQUIRE(before.status == 201);
  CHECK(Fixture::validity_days(before) == 365);
  auto unknown = f.issue("secc-short", "1002");
  CHECK(unknown.status == 400);
  CHECK(unknown.error_code() == "profile.unknown");

  std::string profiles = f.base_profiles;
  set_value(profiles, "validity_days", "100", "\n  secc:\n");
  replace_all(profiles, "\n  secc-20:\n", "\n" + secc_copy("secc-short", 7) + "  secc-20:\n");
  write_file(f.profiles_path, profiles);
  std::string verdict = f.reload();
  CHECK(contains(verdict, "configuration reloaded: applied profile secc, profile secc-short added"));
  CHECK(contains(f.last_reload_audit(), R"({"ok":true,"changed":["profile secc","profile secc-short added"])"));

  auto changed = f.issue("secc", "1003");
  INFO(changed.body << changed.err);
  REQUIRE(changed.status == 201);
  CHECK(Fixture::validity_days(changed) == 100);
  auto added = f.issue("secc-short", "1004");
  INFO(added.body << added.err);
  REQUIRE(added.status == 201);
  CHECK(Fixture::validity_days(added) == 7);
  CHECK(json::parse(added.body).as_object().at("profile").as_string() == "secc-short");
}

TEST_CASE("after SIGHUP lowers max_body_bytes, a body above it is request.too_large",
          "[integration][daemon][reload][limits]") {
  auto& f = fixture();
  write_file(f.yaml_path, f.base_yaml);
  write_file(f.profiles_path, f.base_profiles);
  f.reload();
  std::string big = "{\"profile\":\"secc\",\"csr\":\"" + std::string(3000, 'A') + "\"}";
  auto accepted = curl(client_args(f.root, f.admin) + json_post(f.work, "big", big) + f.api("/v1/certificates"));
  CHECK(accepted.status == 400);  // read in full, then refused as a CSR
  CHECK(accepted.error_code() != "request.too_large");

  std::string yaml = f.base_yaml;
  set_value(yaml, "max_body_bytes", "2000");
  write_file(f.yaml_path, yaml);
  CHECK(contains(f.reload(), "applied daemon.limits.max_body_bytes"));
  auto refused = curl(client_args(f.root, f.admin) + json_post(f.work, "big", big) + f.api("/v1/certificates"));
  INFO(refused.body << refused.err);
  CHECK(refused.status == 413);
  CHECK(refused.error_code() == "request.too_large");
  CHECK(curl(client_args(f.root, f.admin) + f.api("/healthz")).status == 200);
}

TEST_CASE("a broken gridtrust.yaml, profile, limit or trust anchor changes nothing, is logged, audited and counted",
          "[integration][daemon][reload][broken]") {
  auto& f = fixture();
  // A known good state: secc at 200 days, bodies up to 2000 bytes.
  std::string good_profiles = f.base_profiles;
  set_value(good_profiles, "validity_days", "200", "\n  secc:\n");
  std::string good_yaml = f.base_yaml;
  set_value(good_yaml, "max_body_bytes", "2000");
  write_file(f.yaml_path, good_yaml);
  write_file(f.profiles_path, good_profiles);
  REQUIRE(contains(f.reload(), "configuration reloaded"));
  std::string failures_before = f.metric("gridtrustd_config_reload_failures_total");

  // Each broken change comes with a good one beside it, which must not apply either:
  // secc at 50 days and bodies up to 100000 bytes.
  std::string other_profiles = good_profiles;
  set_value(other_profiles, "validity_days", "50", "\n  secc:\n");
  std::string other_yaml = good_yaml;
  set_value(other_yaml, "max_body_bytes", "100000");

  struct Broken {
    const char* what;
    std::string yaml;
    std::string profiles;
    const char* why;  // in the log line
  };
  std::string bad_profile = other_profiles;
  set_value(bad_profile, "digest", "MD5", "\n  secc:\n");
  std::string bad_limit = other_yaml;
  set_value(bad_limit, "max_header_bytes", "-1");
  std::string missing_anchor = other_yaml;
  replace_all(missing_anchor, "\ndaemon:\n", "\ndaemon:\n  client_ca_files: [no-such-ca.pem]\n");
  std::string leaf_anchor = other_yaml;
  write_file(f.pki.data_dir() + "/not-a-ca.pem", read_file(f.admin.cert));
  replace_all(leaf_anchor, "\ndaemon:\n", "\ndaemon:\n  client_ca_files: [not-a-ca.pem]\n");
  const Broken cases[] = {
      {"YAML that does not parse", "hsm: [this is not: a mapping\n", other_profiles, "config.invalid"},
      {"a profile with an unknown digest", other_yaml, bad_profile, "digest"},
      {"a negative limit", bad_limit, other_profiles, "daemon.limits.max_header_bytes: must be positive"},
      {"a trust anchor file that is missing", missing_anchor, other_profiles, "cannot read"},
      {"a trust anchor that is not a CA", leaf_anchor, other_profiles, "is not a CA certificate"},
  };
  int refused = 0;
  for (const auto& c : cases) {
    INFO(c.what);
    write_file(f.yaml_path, c.yaml);
    write_file(f.profiles_path, c.profiles);
    std::string verdict = f.reload();
    ++refused;
    CHECK(contains(verdict, "reload refused, keeping the running configuration: config.invalid: "));
    CHECK(contains(verdict, c.why));
    CHECK(contains(f.last_reload_audit(), R"({"ok":false,"code":"config.invalid"})"));

    auto issued = f.issue("secc", "200" + std::to_string(refused));
    INFO(issued.body << issued.err);
    REQUIRE(issued.status == 201);
    CHECK(Fixture::validity_days(issued) == 200);
    std::string big = "{\"csr\":\"" + std::string(3000, 'A') + "\"}";
    auto too_large = curl(client_args(f.root, f.admin) + json_post(f.work, "big", big) + f.api("/v1/certificates"));
    CHECK(too_large.status == 413);
  }
  CHECK(f.metric("gridtrustd_config_reload_failures_total") ==
        std::to_string(std::stoi(failures_before) + refused));

  // Fixed files apply as usual.
  write_file(f.yaml_path, other_yaml);
  write_file(f.profiles_path, other_profiles);
  CHECK(contains(f.reload(), "applied profile secc, daemon.limits.max_body_bytes"));
  auto issued = f.issue("secc", "2099");
  REQUIRE(issued.status == 201);
  CHECK(Fixture::validity_days(issued) == 50);
}

TEST_CASE("an OCSP signer issued by the offline CLI signs OCSP answers after SIGHUP, and an offline revocation "
          "shows in the CRL",
          "[integration][daemon][reload][ocsp][crl]") {
  auto& f = fixture();
  write_file(f.yaml_path, f.base_yaml);
  write_file(f.profiles_path, f.base_profiles);
  f.reload();

  auto issued = f.issue("secc", "3001");
  INFO(issued.body << issued.err);
  REQUIRE(issued.status == 201);
  auto body = json::parse(issued.body).as_object();
  std::string serial(body.at("serial").as_string());
  std::string leaf = f.work / "ocsp-leaf.pem";
  write_file(leaf, gt::test::split_pem_certs(std::string(body.at("chain_pem").as_string())).front());

  auto first = f.ocsp(leaf);
  INFO(first.describe());
  REQUIRE(contains(first.err, "Response verify OK"));
  CHECK(contains(first.out, "Subject: CN=gridtrust OCSP cpo-sub2, O="));

  // A second signer for Sub-CA 2 that lives a little longer than init's. The daemon
  // keeps answering with the one it chose until SIGHUP.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto cli = f.pki.gt("issue --profile ocsp-signer --subject " +
                      sh_quote("CN=gridtrust OCSP cpo-sub2 renewed,O=gridtrust demo") + " --generate-key");
  INFO(cli.describe());
  REQUIRE(cli.exit_code == 0);
  auto still = f.ocsp(leaf);
  CHECK(!contains(still.out, "OCSP cpo-sub2 renewed"));
  CHECK(responder_id(still.out) == responder_id(first.out));

  CHECK(contains(f.reload(), "configuration reloaded"));
  auto renewed = f.ocsp(leaf);
  INFO(renewed.describe() << f.daemon->log());
  CHECK(contains(renewed.err, "Response verify OK"));
  CHECK(contains(renewed.out, "Subject: CN=gridtrust OCSP cpo-sub2 renewed, O="));
  CHECK(responder_id(renewed.out) != responder_id(first.out));
  CHECK(contains(renewed.out, "Cert Status: good"));

  // A revocation by the offline CLI: the cached CRL does not know it; after SIGHUP it does.
  std::string crl_url = f.daemon->status() + "/crl/cpo-sub2.crl";
  std::string der = f.work / "sub2.crl";
  auto crl_lists_serial = [&] {
    REQUIRE(run("curl -sS -f -o " + sh_quote(der) + " " + sh_quote(crl_url)).exit_code == 0);
    auto text = run("openssl crl -inform DER -noout -text -in " + sh_quote(der));
    return contains(text.out, "Serial Number: " + serial);
  };
  CHECK(!crl_lists_serial());
  auto revoked = f.pki.gt("revoke " + serial + " --reason keyCompromise");
  INFO(revoked.describe());
  REQUIRE(revoked.exit_code == 0);
  CHECK(!crl_lists_serial());
  f.reload();
  CHECK(crl_lists_serial());
  CHECK(contains(f.ocsp(leaf).out, "Cert Status: revoked"));
}

TEST_CASE("daemon.client_ca_files: a CA added on SIGHUP admits its clients as verified peers, removing it shuts "
          "out new connections only",
          "[integration][daemon][reload][trust]") {
  auto& f = fixture();
  write_file(f.yaml_path, f.base_yaml);
  write_file(f.profiles_path, f.base_profiles);
  f.reload();

  // A monitoring system's CA, foreign to this PKI, and a client certificate under it.
  std::string ca = f.work / "mon-ca.pem", ca_key = f.work / "mon-ca.key";
  ClientCert mon{f.work / "mon.pem", f.work / "mon.key"};
  std::string csr = f.work / "mon.csr", ext = f.work / "mon.ext";
  write_file(ext, "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n");
  auto made = run(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + sh_quote(ca_key) +
      " -out " + sh_quote(ca) + " -subj '/CN=Monitoring CA/O=elsewhere' -days 30"
      " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign && "
      "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + sh_quote(mon.key) +
      " -out " + sh_quote(csr) + " -subj '/CN=prometheus/O=elsewhere/OU=admin' && "
      "openssl x509 -req -in " + sh_quote(csr) + " -CA " + sh_quote(ca) + " -CAkey " + sh_quote(ca_key) +
      " -CAcreateserial -days 10 -extfile " + sh_quote(ext) + " -out " + sh_quote(mon.cert));
  INFO(made.describe());
  REQUIRE(made.exit_code == 0);

  auto shut_out = curl(client_args(f.root, mon) + f.api("/healthz"));
  CHECK(shut_out.status == 0);  // the handshake fails: unknown CA

  write_file(f.pki.data_dir() + "/monitoring-ca.pem", read_file(ca));
  std::string yaml = f.base_yaml;
  replace_all(yaml, "\ndaemon:\n", "\ndaemon:\n  client_ca_files: [monitoring-ca.pem]\n");
  write_file(f.yaml_path, yaml);
  std::string verdict = f.reload();
  CHECK(contains(verdict, "applied daemon.client_ca_files, client trust anchors"));

  auto health = curl(client_args(f.root, mon) + f.api("/healthz"));
  INFO(health.body << health.err << f.daemon->log());
  CHECK(health.status == 200);
  CHECK(curl(client_args(f.root, mon) + f.api("/metrics")).status == 200);
  // A verified peer is not a caller with a role: that takes an admin-profile
  // certificate of this PKI, whatever the OU says.
  auto list = curl(client_args(f.root, mon) + f.api("/v1/certificates"));
  CHECK(list.status == 401);
  CHECK(list.error_code() == "auth.unknown_certificate");
  CHECK(curl(client_args(f.root, f.admin) + f.api("/v1/certificates?profile=admin")).status == 200);

  // A connection opened under the old anchors outlives their removal; new ones are refused.
  std::string go = f.work / "go-trust";
  std::string cmd =
      "(printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'; "
      "while [ ! -f " + sh_quote(go) + " ]; do sleep 0.05; done; "
      "printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n'; sleep 2) | "
      "timeout 30 openssl s_client -quiet -connect 127.0.0.1:" + std::to_string(f.api_port) +
      " -servername localhost -CAfile " + sh_quote(f.root) + " -cert " + sh_quote(mon.cert) + " -key " +
      sh_quote(mon.key) + " -verify_return_error";
  int served = occurrences(f.daemon->log(), "api GET /healthz 200 -");
  auto client = std::async(std::launch::async, [cmd] { return run(cmd); });
  for (int i = 0; i < 200 && occurrences(f.daemon->log(), "api GET /healthz 200 -") == served; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  write_file(f.yaml_path, f.base_yaml);
  CHECK(contains(f.reload(), "applied daemon.client_ca_files, client trust anchors"));
  CHECK(curl(client_args(f.root, mon) + f.api("/healthz")).status == 0);
  write_file(go, "");
  auto r = client.get();
  INFO(r.describe());
  CHECK(occurrences(r.out, "HTTP/1.1 200 OK") == 2);
  CHECK(curl(client_args(f.root, f.admin) + f.api("/healthz")).status == 200);
}
