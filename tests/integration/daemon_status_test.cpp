// gridtrustd's status listener end to end: OCSP (POST and GET) and CRLs over plain
// HTTP at the URLs written into the certificates, checked with `openssl ocsp`,
// `openssl verify -crl_check` and curl as independent clients.
#include <map>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "tests/support/daemon_process.h"
#include "tests/support/test_support.h"

namespace gt = gridtrust;
using gt::test::ClientCert;
using gt::test::CommandResult;
using gt::test::contains;
using gt::test::curl;
using gt::test::DaemonProcess;
using gt::test::HttpResult;
using gt::test::InitializedPki;
using gt::test::read_file;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::TempDir;
using gt::test::write_file;

namespace {

// A SECC leaf from an openssl key and CSR: leaf.pem (the leaf alone) and its serial.
struct Leaf {
  std::string pem;
  std::string serial;  // hex, as the API takes it
};

Leaf issue_secc(const InitializedPki& pki, const TempDir& work, const std::string& name) {
  std::string key = work / (name + ".key"), csr = work / (name + ".csr"), out = work / (name + "-chain.pem");
  auto r = run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + sh_quote(key) +
               " -subj " + sh_quote("/CN=DE*ABC*E" + name + "/O=gridtrust demo/DC=CPO") + " -out " + sh_quote(csr));
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  auto i = pki.gt("issue --profile secc --csr " + sh_quote(csr) + " --out " + sh_quote(out));
  INFO(describe(i));
  REQUIRE(i.exit_code == 0);
  auto certs = gt::test::split_pem_certs(read_file(out));
  REQUIRE(certs.size() == 3);
  Leaf leaf{work / (name + ".pem"), ""};
  write_file(leaf.pem, certs[0]);
  auto s = run("openssl x509 -noout -serial -in " + sh_quote(leaf.pem));
  REQUIRE(s.exit_code == 0);
  REQUIRE(s.out.rfind("serial=", 0) == 0);
  leaf.serial = s.out.substr(7, s.out.find('\n') - 7);
  return leaf;
}

// The first "URI:" of an extension as `openssl x509 -ext` prints it.
std::string uri_in(const std::string& text) {
  auto at = text.find("URI:");
  if (at == std::string::npos) return {};
  return text.substr(at + 4, text.find('\n', at) - at - 4);
}

// RFC 3986 percent-encoding of base64's '+', '/' and '='.
std::string url_encode_base64(const std::string& b64) {
  std::string out;
  for (char c : b64) {
    if (c == '+') out += "%2B";
    else if (c == '/') out += "%2F";
    else if (c == '=') out += "%3D";
    else out += c;
  }
  return out;
}

// One PKI and one daemon: init, a few SECC leaves (one revoked by the CLI before the
// daemon starts), then gridtrustd on free ports.
struct Fixture {
  InitializedPki pki;
  TempDir work;
  std::unique_ptr<DaemonProcess> daemon;
  std::string root, sub2, chain;  // V2G root; CPO Sub-CA 2; Sub-CA 2 + Sub-CA 1
  ClientCert admin;
  Leaf good, revoked, later;  // `later` is revoked through the API by a test below

  Fixture() {
    // Before issuing: the leaves must carry this daemon's OCSP and CRL URLs.
    daemon = std::make_unique<DaemonProcess>(pki, work, GRIDTRUSTD);
    root = work / "root.pem";
    sub2 = work / "sub2.pem";
    chain = work / "chain.pem";
    REQUIRE(pki.gt("chain --profile v2g-root --out " + sh_quote(root)).exit_code == 0);
    REQUIRE(pki.gt("chain --profile cpo-sub2 --out " + sh_quote(chain)).exit_code == 0);
    auto cas = gt::test::split_pem_certs(read_file(chain));
    REQUIRE(cas.size() >= 2);  // Sub-CA 2, Sub-CA 1 (and the root, which -verify_other ignores)
    write_file(sub2, cas[0]);
    write_file(chain, cas[0] + cas[1]);
    admin = gt::test::admin_profile_client(pki, work, "admin");
    good = issue_secc(pki, work, "9001");
    revoked = issue_secc(pki, work, "9002");
    later = issue_secc(pki, work, "9003");
    auto rv = pki.gt("revoke " + revoked.serial + " --reason keyCompromise");
    INFO(describe(rv));
    REQUIRE(rv.exit_code == 0);
    daemon->start();
  }

  // `openssl ocsp` against the URL written in the leaf, verifying the response up to
  // the root (the delegated signer chains through Sub-CA 2).
  CommandResult ocsp(const std::string& target) const {
    return run("openssl ocsp -issuer " + sh_quote(sub2) + " " + target + " -url " +
               sh_quote(daemon->status() + "/ocsp") + " -CAfile " + sh_quote(root) + " -verify_other " +
               sh_quote(chain) + " -resp_text");
  }

  // The CRL at the leaf's distribution point, converted to PEM for `openssl verify`.
  std::string fetch_crl(const Leaf& leaf, const std::string& name) const {
    auto ext = run("openssl x509 -noout -ext crlDistributionPoints -in " + sh_quote(leaf.pem));
    std::string url = uri_in(ext.out);
    INFO(describe(ext));
    REQUIRE(url == daemon->status() + "/crl/cpo-sub2.crl");
    std::string der = work / (name + ".crl"), pem = work / (name + ".crl.pem");
    auto get = run("curl -sS -f -o " + sh_quote(der) + " " + sh_quote(url));
    INFO(describe(get));
    REQUIRE(get.exit_code == 0);
    REQUIRE(run("openssl crl -inform DER -in " + sh_quote(der) + " -out " + sh_quote(pem)).exit_code == 0);
    return pem;
  }

  CommandResult verify_with_crl(const Leaf& leaf, const std::string& crl_pem) const {
    return run("openssl verify -crl_check -CRLfile " + sh_quote(crl_pem) + " -CAfile " + sh_quote(root) +
               " -untrusted " + sh_quote(chain) + " " + sh_quote(leaf.pem));
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

TEST_CASE("certificates carry the status listener's OCSP URL and the responder answers good over POST",
          "[integration][daemon][ocsp]") {
  auto& f = fixture();
  auto uri = run("openssl x509 -noout -ocsp_uri -in " + sh_quote(f.good.pem));
  CHECK(uri.out == f.daemon->status() + "/ocsp\n");

  auto r = f.ocsp("-cert " + sh_quote(f.good.pem));
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, "Response verify OK"));
  CHECK(contains(r.out, f.good.pem + ": good"));
  CHECK(contains(r.out, "This Update:"));
  CHECK(contains(r.out, "Next Update:"));
  // Signed by init's delegated signer of Sub-CA 2, not by the CA key (RFC 6960 4.2.2.2).
  CHECK(contains(r.out, "gridtrust OCSP cpo-sub2"));
  CHECK(contains(r.out, "OCSP Signing"));
}

TEST_CASE("OCSP answers revoked with reason and time, and unknown for a serial never issued",
          "[integration][daemon][ocsp]") {
  auto& f = fixture();
  auto r = f.ocsp("-cert " + sh_quote(f.revoked.pem));
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, "Response verify OK"));
  CHECK(contains(r.out, f.revoked.pem + ": revoked"));
  CHECK(contains(r.out, "Reason: keyCompromise"));
  CHECK(contains(r.out, "Revocation Time:"));

  auto u = f.ocsp("-serial 0x7E57000000000000000000000000000000000001");
  INFO(describe(u));
  REQUIRE(u.exit_code == 0);
  CHECK(contains(u.err, "Response verify OK"));
  CHECK(contains(u.out, ": unknown"));
}

TEST_CASE("a revocation through the API shows in the next OCSP answer and in the CRL at once",
          "[integration][daemon][ocsp][crl][revoke]") {
  auto& f = fixture();
  auto before = f.ocsp("-cert " + sh_quote(f.later.pem));
  INFO(describe(before));
  REQUIRE(contains(before.out, f.later.pem + ": good"));
  // Served (and cached) before the revocation: the cache must not outlive it.
  auto old_crl = f.fetch_crl(f.later, "before");
  CHECK(f.verify_with_crl(f.later, old_crl).exit_code == 0);

  auto h = curl(gt::test::client_args(f.root, f.admin) +
                gt::test::json_post(f.work, "revoke", R"({"reason":"superseded"})") +
                sh_quote(f.daemon->api() + "/v1/certificates/" + f.later.serial + "/revoke"));
  INFO(h.body << h.err);
  REQUIRE(h.status == 200);

  auto after = f.ocsp("-cert " + sh_quote(f.later.pem));
  INFO(describe(after));
  REQUIRE(after.exit_code == 0);
  CHECK(contains(after.err, "Response verify OK"));
  CHECK(contains(after.out, f.later.pem + ": revoked"));
  CHECK(contains(after.out, "Reason: superseded"));

  auto crl = f.fetch_crl(f.later, "after");
  auto v = f.verify_with_crl(f.later, crl);
  INFO(describe(v));
  CHECK(v.exit_code != 0);
  CHECK(contains(v.out + v.err, "certificate revoked"));
}

TEST_CASE("openssl verify -crl_check with the served CRL: revoked leaf refused, good leaf OK",
          "[integration][daemon][crl]") {
  auto& f = fixture();
  auto crl = f.fetch_crl(f.good, "check");
  auto ok = f.verify_with_crl(f.good, crl);
  INFO(describe(ok));
  CHECK(ok.exit_code == 0);
  CHECK(contains(ok.out, ": OK"));
  auto bad = f.verify_with_crl(f.revoked, crl);
  INFO(describe(bad));
  CHECK(bad.exit_code != 0);
  CHECK(contains(bad.out + bad.err, "certificate revoked"));
}

TEST_CASE("two CRL GETs without a revocation in between return the same bytes (one signature, cached)",
          "[integration][daemon][crl]") {
  auto& f = fixture();
  const std::string url = f.daemon->status() + "/crl/cpo-sub2.crl";
  std::string a = f.work / "a.crl", b = f.work / "b.crl";
  auto ga = run("curl -sS -f -o " + sh_quote(a) + " -w '%{content_type}' " + sh_quote(url));
  auto gb = run("curl -sS -f -o " + sh_quote(b) + " " + sh_quote(url));
  REQUIRE(ga.exit_code == 0);
  REQUIRE(gb.exit_code == 0);
  CHECK(ga.out == "application/pkix-crl");
  REQUIRE(!read_file(a).empty());
  CHECK(read_file(a) == read_file(b));
}

TEST_CASE("OCSP GET: the URL-encoded base64 request in the path answers the same as POST",
          "[integration][daemon][ocsp]") {
  auto& f = fixture();
  std::string req = f.work / "get-req.der", resp = f.work / "get-resp.der";
  auto mk = run("openssl ocsp -issuer " + sh_quote(f.sub2) + " -cert " + sh_quote(f.revoked.pem) +
                " -no_nonce -reqout " + sh_quote(req));
  INFO(describe(mk));
  REQUIRE(mk.exit_code == 0);
  auto b64 = run("base64 -w0 " + sh_quote(req));
  REQUIRE(b64.exit_code == 0);
  auto get = run("curl -sS -f -o " + sh_quote(resp) + " -w '%{content_type}' " +
                 sh_quote(f.daemon->status() + "/ocsp/" + url_encode_base64(b64.out)));
  INFO(describe(get));
  REQUIRE(get.exit_code == 0);
  CHECK(get.out == "application/ocsp-response");
  auto parsed = run("openssl ocsp -respin " + sh_quote(resp) + " -resp_text -CAfile " + sh_quote(f.root) +
                    " -verify_other " + sh_quote(f.chain));
  INFO(describe(parsed));
  CHECK(parsed.exit_code == 0);
  CHECK(contains(parsed.err, "Response verify OK"));
  CHECK(contains(parsed.out, "OCSP Response Status: successful"));
  CHECK(contains(parsed.out, "Cert Status: revoked"));
  CHECK(contains(parsed.out, "Revocation Reason: keyCompromise"));

  // Garbage in the path is a signed-nothing malformedRequest, still 200 (RFC 6960 2.3).
  auto bad = run("curl -sS -f -o " + sh_quote(resp) + " " + sh_quote(f.daemon->status() + "/ocsp/not-base64!"));
  REQUIRE(bad.exit_code == 0);
  auto text = run("openssl ocsp -respin " + sh_quote(resp) + " -resp_text -noverify");
  CHECK(contains(text.out, "malformedrequest"));
}

TEST_CASE("OCSP POST refuses a wrong content type (415) and a body over 16 KiB (413)",
          "[integration][daemon][ocsp][errors]") {
  auto& f = fixture();
  std::string small = f.work / "small.der", big = f.work / "big.der";
  write_file(small, std::string("\x30\x00", 2));
  write_file(big, std::string(16 * 1024 + 1, '\x30'));
  HttpResult wrong = curl("-X POST -H 'Content-Type: application/octet-stream' --data-binary @" + sh_quote(small) +
                          " " + sh_quote(f.daemon->status() + "/ocsp"));
  CHECK(wrong.status == 415);
  CHECK(contains(wrong.body, "request.bad_content_type"));
  HttpResult large = curl("-X POST -H 'Content-Type: application/ocsp-request' --data-binary @" + sh_quote(big) +
                          " " + sh_quote(f.daemon->status() + "/ocsp"));
  CHECK(large.status == 413);
  CHECK(contains(large.body, "request.too_large"));
}
