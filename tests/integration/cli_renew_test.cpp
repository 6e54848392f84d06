// `gridtrust renew` and `gridtrust rekey`, offline and with --server against a real
// gridtrustd: the new certificates are checked with `openssl verify -x509_strict`, the
// public keys with `openssl x509 -pubkey`, a superseded certificate in list, show,
// OCSP and the CRL, and every refusal against docs/error-codes.md in both modes.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "tests/support/daemon_process.h"
#include "tests/support/test_support.h"

namespace gt = gridtrust;
namespace json = boost::json;
using gt::test::ClientCert;
using gt::test::CommandResult;
using gt::test::contains;
using gt::test::DaemonProcess;
using gt::test::InitializedPki;
using gt::test::read_file;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::TempDir;
using gt::test::write_file;

namespace {

json::object parse_object(const CommandResult& r) {
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out).as_object();
}

std::string text(const json::object& o, const char* name) { return std::string(o.at(name).as_string()); }

std::vector<std::string> keys_of(const json::object& o) {
  std::vector<std::string> out;
  for (const auto& kv : o) out.emplace_back(kv.key());
  return out;
}

// A certificate as the tests hold it: its serial and its leaf PEM in a file.
struct Cert {
  std::string serial;
  std::string pem;
};

// One PKI and one daemon for the whole file. Leaves are issued after the daemon's
// ports are chosen, so they carry its OCSP and CRL URLs.
struct Fixture {
  InitializedPki pki;
  TempDir work;
  std::unique_ptr<DaemonProcess> daemon;
  std::string root, sub2, chain;  // V2G root; CPO Sub-CA 2; Sub-CA 2 + Sub-CA 1
  ClientCert operator_client, auditor_client;
  int made = 0;

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
    operator_client = gt::test::admin_profile_client(pki, work, "operator");
    auditor_client = gt::test::admin_profile_client(pki, work, "auditor");
    daemon->start();
  }

  CommandResult offline(const std::string& args) const { return pki.gt(args); }
  // The daemon's certificate names localhost.
  CommandResult remote(const std::string& args) const { return pki.gt("--server " + daemon->api() + " " + args); }
  CommandResult in(bool remote_mode, const std::string& args) const {
    return remote_mode ? remote(args) : offline(args);
  }

  std::string fresh(const std::string& stem) { return work / (stem + "-" + std::to_string(++made)); }

  // A CSR file for `subject` with a new software key (kept, for a same-key CSR).
  std::string csr(const std::string& subject, gt::EvpPkeyPtr* key_out = nullptr) {
    auto key = gt::test::make_key("P-256");
    std::string path = fresh("req") + ".csr";
    write_file(path, gt::test::make_csr_pem(key.get(), subject));
    if (key_out) *key_out = std::move(key);
    return path;
  }

  // The leaf of an issue/renew/rekey --json answer, written to a file.
  Cert leaf_of(const json::object& answer) {
    auto certs = gt::test::split_pem_certs(text(answer, "chain_pem"));
    REQUIRE(certs.size() == 3);  // leaf, Sub-CA 2, Sub-CA 1
    Cert c{text(answer, "serial"), fresh("leaf") + ".pem"};
    write_file(c.pem, certs[0]);
    return c;
  }

  Cert issue(const std::string& args) { return leaf_of(parse_object(offline("issue " + args + " --json"))); }
  Cert secc(const std::string& id, gt::EvpPkeyPtr* key_out = nullptr) {
    return issue("--profile secc --csr " + sh_quote(csr(secc_subject(id), key_out)));
  }
  static std::string secc_subject(const std::string& id) { return "CN=DE*ABC*E" + id + ",O=gridtrust demo,DC=CPO"; }

  // openssl verify -x509_strict up to the V2G root.
  void verifies(const Cert& c) const {
    auto v = run("openssl verify -x509_strict -CAfile " + sh_quote(root) + " -untrusted " + sh_quote(chain) + " " +
                 sh_quote(c.pem));
    INFO(describe(v));
    CHECK(v.exit_code == 0);
    CHECK(contains(v.out, ": OK"));
  }
  static std::string x509(const Cert& c, const std::string& what) {
    auto r = run("openssl x509 -noout " + what + " -in " + sh_quote(c.pem));
    INFO(describe(r));
    REQUIRE(r.exit_code == 0);
    REQUIRE_FALSE(r.out.empty());
    return r.out;
  }
  static std::string spki(const Cert& c) { return x509(c, "-pubkey"); }
  static std::string subject(const Cert& c) { return x509(c, "-subject -nameopt RFC2253"); }

  json::object show(const std::string& serial) const { return parse_object(offline("show " + serial + " --json")); }

  std::string ocsp(const Cert& c) const {
    auto r = run("openssl ocsp -issuer " + sh_quote(sub2) + " -cert " + sh_quote(c.pem) + " -url " +
                 sh_quote(daemon->status() + "/ocsp") + " -CAfile " + sh_quote(root) + " -verify_other " +
                 sh_quote(chain) + " -resp_text");
    INFO(describe(r));
    REQUIRE(r.exit_code == 0);
    return r.out;
  }
  std::string crl_text() const {
    std::string der = work / "cpo-sub2.crl";
    auto get = run("curl -sS -f -o " + sh_quote(der) + " " + sh_quote(daemon->status() + "/crl/cpo-sub2.crl"));
    INFO(describe(get));
    REQUIRE(get.exit_code == 0);
    auto r = run("openssl crl -inform DER -in " + sh_quote(der) + " -noout -text");
    INFO(describe(r));
    REQUIRE(r.exit_code == 0);
    return r.out;
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

TEST_CASE("renew issues a new serial for the same subject and key, offline and through the daemon",
          "[integration][renew]") {
  auto& f = fixture();
  std::vector<std::string> answer_keys[2];
  for (bool remote : {false, true}) {
    INFO((remote ? "remote" : "offline"));
    Cert old = f.secc(remote ? "7002" : "7001");
    auto answer = parse_object(f.in(remote, "renew " + old.serial + " --json"));
    Cert renewed = f.leaf_of(answer);
    answer_keys[remote] = keys_of(answer);
    CHECK(text(answer, "replaces") == old.serial);
    CHECK(renewed.serial != old.serial);
    CHECK(text(answer, "profile") == "secc");
    CHECK(text(answer, "issuer") == "cpo-sub2");
    CHECK(text(answer, "status") == "valid");
    f.verifies(renewed);
    CHECK(Fixture::spki(renewed) == Fixture::spki(old));
    CHECK(Fixture::subject(renewed) == Fixture::subject(old));
    CHECK(Fixture::x509(renewed, "-serial") != Fixture::x509(old, "-serial"));
    // Overlap: without --revoke-old the old certificate stays valid.
    CHECK(text(f.show(old.serial), "status") == "valid");
    CHECK(text(f.show(renewed.serial), "status") == "valid");

    // Without --json: the chain, as issue writes it, here to --out.
    std::string out = f.fresh("renewed") + ".pem";
    auto pem = f.in(remote, "renew 0x" + old.serial + " --out " + sh_quote(out));
    INFO(describe(pem));
    REQUIRE(pem.exit_code == 0);
    CHECK(pem.out.empty());
    CHECK(gt::test::split_pem_certs(read_file(out)).size() == 3);
  }
  // The same answer, member for member, in both modes.
  CHECK(answer_keys[0] == answer_keys[1]);
  CHECK(answer_keys[0] == std::vector<std::string>{"serial", "issuer", "profile", "subject", "not_before", "not_after",
                                                   "status", "chain_pem", "replaces"});
}

TEST_CASE("renew --revoke-old leaves the old certificate revoked as superseded in list, show, OCSP and the CRL",
          "[integration][renew]") {
  auto& f = fixture();
  Cert offline_old = f.secc("7011");
  auto r = f.offline("renew " + offline_old.serial + " --revoke-old");
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  CHECK(gt::test::split_pem_certs(r.out).size() == 3);

  Cert remote_old = f.secc("7012");
  CHECK(contains(f.ocsp(remote_old), "Cert Status: good"));
  CHECK_FALSE(contains(f.crl_text(), remote_old.serial));  // the daemon's CRL, now cached
  auto answer = parse_object(f.remote("renew " + remote_old.serial + " --revoke-old --json"));
  Cert renewed = f.leaf_of(answer);
  f.verifies(renewed);

  for (const Cert* old : {&offline_old, &remote_old}) {
    INFO(old->serial);
    auto shown = f.show(old->serial);
    CHECK(text(shown, "status") == "revoked");
    CHECK(text(shown, "reason") == "superseded");
    CHECK(contains(f.offline("show " + old->serial).out, "(superseded)"));
    CHECK(f.remote("show " + old->serial).out == f.offline("show " + old->serial).out);
    CHECK(contains(f.offline("list --status revoked").out, old->serial + "  secc  revoked"));
  }
  CHECK(f.remote("list --status revoked --json").out == f.offline("list --status revoked --json").out);
  CHECK(text(f.show(renewed.serial), "status") == "valid");

  // Revoked through the daemon: its status listener says so at once.
  auto status = f.ocsp(remote_old);
  CHECK(contains(status, "Cert Status: revoked"));
  CHECK(contains(status, "Revocation Reason: superseded"));
  CHECK(contains(f.ocsp(renewed), "Cert Status: good"));
  std::string crl = f.crl_text();
  CHECK(contains(crl, "Serial Number: " + remote_old.serial));
  CHECK(contains(crl, "Superseded"));
}

TEST_CASE("rekey with a CSR certifies the subject's new key, offline and through the daemon",
          "[integration][rekey]") {
  auto& f = fixture();
  for (bool remote : {false, true}) {
    INFO((remote ? "remote" : "offline"));
    std::string id = remote ? "7022" : "7021";
    Cert old = f.secc(id);
    std::string csr = f.csr(Fixture::secc_subject(id));
    auto answer = parse_object(f.in(remote, "rekey " + old.serial + " --csr " + sh_quote(csr) + " --revoke-old --json"));
    Cert rekeyed = f.leaf_of(answer);
    CHECK(text(answer, "replaces") == old.serial);
    f.verifies(rekeyed);
    CHECK(Fixture::spki(rekeyed) != Fixture::spki(old));
    auto csr_key = run("openssl req -noout -pubkey -in " + sh_quote(csr));
    REQUIRE(csr_key.exit_code == 0);
    CHECK(Fixture::spki(rekeyed) == csr_key.out);
    CHECK(Fixture::subject(rekeyed) == Fixture::subject(old));
    CHECK(text(f.show(old.serial), "reason") == "superseded");
    CHECK(text(f.show(rekeyed.serial), "status") == "valid");
  }
}

TEST_CASE("an HSM-held leaf: renew keeps its token key, rekey --generate-key makes a new one",
          "[integration][rekey][hsm]") {
  auto& f = fixture();
  for (bool remote : {false, true}) {
    INFO((remote ? "remote" : "offline"));
    std::string cn = remote ? "aggregator-remote" : "aggregator-offline";
    auto issued = parse_object(f.offline("issue --profile aggregator-signer --subject " +
                                         sh_quote("CN=" + cn + ",O=gridtrust demo") + " --generate-key --json"));
    Cert old = f.leaf_of(issued);
    std::string old_label = text(issued, "hsm_key_label");

    auto renewed_answer = parse_object(f.in(remote, "renew " + old.serial + " --json"));
    Cert renewed = f.leaf_of(renewed_answer);
    CHECK(text(renewed_answer, "hsm_key_label") == old_label);
    CHECK(Fixture::spki(renewed) == Fixture::spki(old));
    f.verifies(renewed);

    auto rekeyed_answer = parse_object(f.in(remote, "rekey " + renewed.serial + " --generate-key --revoke-old --json"));
    Cert rekeyed = f.leaf_of(rekeyed_answer);
    std::string new_label = text(rekeyed_answer, "hsm_key_label");
    CHECK(new_label != old_label);
    CHECK(Fixture::spki(rekeyed) != Fixture::spki(old));
    CHECK(Fixture::subject(rekeyed) == Fixture::subject(old));
    f.verifies(rekeyed);
    CHECK(text(f.show(renewed.serial), "reason") == "superseded");
    CHECK(text(f.show(old.serial), "status") == "valid");  // only the replaced one was revoked
    // The old key stays in the token: it verifies what it signed until its certificate expires.
    auto keys = f.offline("keys --json");
    REQUIRE(keys.exit_code == 0);
    CHECK(contains(keys.out, "\"" + old_label + "\""));
    CHECK(contains(keys.out, "\"" + new_label + "\""));
  }
}

TEST_CASE("renew and rekey refusals carry the documented codes, offline and remote alike, and change nothing",
          "[integration][renew][rekey][errors]") {
  auto& f = fixture();
  gt::EvpPkeyPtr key;
  Cert valid = f.secc("7031", &key);
  Cert revoked = f.secc("7032");
  REQUIRE(f.offline("revoke " + revoked.serial + " --reason keyCompromise").exit_code == 0);
  std::string ca = text(json::parse(f.offline("list --profile cpo-sub2 --json").out).as_array().at(0).as_object(),
                        "serial");
  std::string good = f.csr(Fixture::secc_subject("7031"));
  std::string other = f.csr(Fixture::secc_subject("7039"));
  std::string same = f.fresh("same") + ".csr";
  write_file(same, gt::test::make_csr_pem(key.get(), Fixture::secc_subject("7031")));

  struct Case {
    std::string args, code;
    int exit;
  };
  const std::vector<Case> cases = {
      {"renew 0BADC0FFEE", "notfound.certificate", 4},
      {"renew not-hex", "usage.bad_serial", 2},
      {"renew", "usage.missing_argument", 2},
      {"renew " + valid.serial + " --reason superseded", "usage.unknown_option", 2},
      {"renew " + revoked.serial, "renew.revoked", 3},
      {"renew " + ca + " --revoke-old", "renew.ca_certificate", 3},
      {"rekey " + valid.serial, "usage.bad_combination", 2},
      {"rekey " + valid.serial + " --csr " + sh_quote(good) + " --generate-key", "usage.bad_combination", 2},
      {"rekey " + valid.serial + " --csr " + sh_quote(f.work / "no-such.csr"), "usage.unreadable_file", 2},
      {"rekey " + valid.serial + " --csr " + sh_quote(other), "rekey.subject_mismatch", 3},
      {"rekey " + valid.serial + " --csr " + sh_quote(same) + " --revoke-old", "rekey.same_key", 3},
      {"rekey " + valid.serial + " --generate-key", "profile.no_hsm_key", 3},
      {"rekey " + revoked.serial + " --csr " + sh_quote(good), "rekey.revoked", 3},
      {"rekey " + ca + " --csr " + sh_quote(good), "rekey.ca_certificate", 3},
      {"rekey 0BADC0FFEE --generate-key", "notfound.certificate", 4},
  };
  std::string certificates = f.offline("list --json").out;
  std::string keys = f.offline("keys --json").out;
  for (const auto& c : cases) {
    auto offline = f.offline(c.args);
    auto remote = f.remote(c.args);
    INFO(c.args << "\noffline: " << describe(offline) << "\nremote: " << describe(remote));
    CHECK(error_code_of(offline) == c.code);
    CHECK(offline.exit_code == c.exit);
    CHECK(offline.out.empty());
    CHECK(std::count(offline.err.begin(), offline.err.end(), '\n') == 1);
    CHECK(remote.err == offline.err);
    CHECK(remote.exit_code == offline.exit_code);
    CHECK(remote.out.empty());
  }
  CHECK(f.offline("list --json").out == certificates);
  CHECK(f.offline("keys --json").out == keys);
  CHECK(text(f.show(valid.serial), "status") == "valid");
}

TEST_CASE("the API: operators renew and rekey, auditors may not; malformed bodies are refused",
          "[integration][renew][rekey][api]") {
  auto& f = fixture();
  Cert old = f.secc("7041");
  std::string url = f.daemon->api() + "/v1/certificates/" + old.serial;
  auto as_operator = gt::test::client_args(f.root, f.operator_client);

  auto renewed = gt::test::curl(as_operator + "-X POST " + sh_quote(url + "/renew"));  // no body: revoke_old false
  INFO(renewed.body << renewed.err);
  REQUIRE(renewed.status == 201);
  auto body = json::parse(renewed.body).as_object();
  CHECK(text(body, "replaces") == old.serial);
  CHECK(gt::test::split_pem_certs(text(body, "chain_pem")).size() == 3);
  CHECK(text(f.show(old.serial), "status") == "valid");

  auto forbidden = gt::test::curl(gt::test::client_args(f.root, f.auditor_client) +
                                  gt::test::json_post(f.work, "renew-auditor", "{}") + sh_quote(url + "/renew"));
  CHECK(forbidden.status == 403);
  CHECK(contains(forbidden.body, "\"auth.forbidden\""));

  struct Case {
    std::string route, body, code;
    int status;
  };
  std::string pem = read_file(f.csr(Fixture::secc_subject("7041")));
  for (const auto& c : std::vector<Case>{
           {"/renew", R"({"revoke_old":"yes"})", "request.bad_json", 400},
           {"/renew", "[]", "request.bad_json", 400},
           {"/rekey", "{}", "usage.bad_combination", 400},
           {"/rekey", json::serialize(json::object{{"csr", pem}, {"hsm", true}}), "usage.bad_combination", 400},
           {"/rekey", R"({"hsm":"true"})", "request.bad_json", 400},
           {"/rekey", R"({"csr":42})", "request.bad_json", 400},
           {"/rekey", R"({"hsm":true})", "profile.no_hsm_key", 400},
       }) {
    auto r = gt::test::curl(as_operator + gt::test::json_post(f.work, "bad", c.body) + sh_quote(url + c.route));
    INFO(c.route << " " << c.body << " -> " << r.status << " " << r.body);
    CHECK(r.status == c.status);
    CHECK(contains(r.body, "\"code\":\"" + c.code + "\""));
  }
  auto rekeyed = gt::test::curl(as_operator +
                                gt::test::json_post(f.work, "rekey", json::serialize(json::object{
                                                                         {"csr", pem}, {"revoke_old", true}})) +
                                sh_quote(url + "/rekey"));
  INFO(rekeyed.body);
  REQUIRE(rekeyed.status == 201);
  CHECK(text(json::parse(rekeyed.body).as_object(), "replaces") == old.serial);
  CHECK(text(f.show(old.serial), "reason") == "superseded");
}

TEST_CASE("when revoking the old certificate fails, the new one is written and the failure is the command's error",
          "[integration][renew][errors]") {
  auto& f = fixture();
  Cert offline_old = f.secc("7051");
  Cert remote_old = f.secc("7052");
  // Another hand on the database refuses exactly these two revocations.
  auto trigger = run("sqlite3 " + sh_quote(f.pki.data_dir() + "/gridtrust.db") + " " +
                     sh_quote("CREATE TRIGGER keep_old BEFORE UPDATE OF status ON certificates WHEN OLD.serial IN ('" +
                              offline_old.serial + "','" + remote_old.serial +
                              "') BEGIN SELECT RAISE(ABORT, 'kept by the test'); END;"));
  INFO(describe(trigger));
  REQUIRE(trigger.exit_code == 0);
  for (bool remote : {false, true}) {
    const Cert& old = remote ? remote_old : offline_old;
    auto r = f.in(remote, "renew " + old.serial + " --revoke-old --json");
    INFO((remote ? "remote " : "offline ") << describe(r));
    // The trigger's RAISE(ABORT) is a constraint failure to SQLite: conflict.constraint, exit 5.
    CHECK(r.exit_code == 5);
    CHECK(error_code_of(r) == "conflict.constraint");
    auto answer = json::parse(r.out).as_object();
    CHECK(text(answer, "replaces") == old.serial);
    CHECK(answer.at("revoke_old_error").as_object().at("code").as_string() == "conflict.constraint");
    CHECK(contains(r.err, "new certificate " + text(answer, "serial") + " is stored"));
    CHECK(contains(r.err, "gridtrust revoke " + old.serial + " --reason superseded"));
    CHECK(text(f.show(text(answer, "serial")), "status") == "valid");
    CHECK(text(f.show(old.serial), "status") == "valid");
  }
  auto drop = run("sqlite3 " + sh_quote(f.pki.data_dir() + "/gridtrust.db") + " 'DROP TRIGGER keep_old;'");
  REQUIRE(drop.exit_code == 0);
}
