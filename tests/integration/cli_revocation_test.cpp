// Integration: revocation through the real `gridtrust` CLI. CRLs are checked with
// `openssl crl`, `openssl verify -crl_check`, GnuTLS `certtool --verify-crl` and the
// OpenSSL C API; status with `list`/`show`; the keyCompromise cascade of a Sub-CA;
// and the audit chain afterwards.
#include <catch2/catch.hpp>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/json.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace gt = gridtrust;
namespace json = boost::json;
using gt::test::CommandResult;
using gt::test::InitializedPki;
using gt::test::TempDir;
using gt::test::read_file;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::write_file;

namespace {

// The CLI's error contract: one line `error: <code>: <message>` on stderr, non-zero exit.
void require_error(const CommandResult& r, const std::string& code) {
  INFO(describe(r));
  CHECK(r.exit_code != 0);
  CHECK(r.err.rfind("error: " + code + ": ", 0) == 0);
  CHECK(r.err.find('\n') == r.err.size() - 1);
}

using gt::test::parse_cert;
using gt::test::split_pem_certs;

gt::X509CrlPtr parse_crl(const std::string& pem) {
  gt::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  gt::X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return crl;
}

std::string hex_of(const ASN1_OCTET_STRING* os) {
  static const char* digits = "0123456789ABCDEF";
  std::string s;
  if (!os) return s;
  const unsigned char* p = ASN1_STRING_get0_data(os);
  for (int i = 0; i < ASN1_STRING_length(os); ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 0xf];
  }
  return s;
}

std::string serial_hex(const ASN1_INTEGER* ai) {
  gt::BignumPtr bn(ASN1_INTEGER_to_BN(ai, nullptr));
  char* h = BN_bn2hex(bn.get());
  std::string s(h);
  OPENSSL_free(h);
  return s;
}

gt::Asn1IntegerPtr asn1_serial(const std::string& hex) {
  BIGNUM* bn = nullptr;
  REQUIRE(BN_hex2bn(&bn, hex.c_str()) > 0);
  gt::BignumPtr owned(bn);
  return gt::Asn1IntegerPtr(BN_to_ASN1_INTEGER(owned.get(), nullptr));
}

// An empty CRL has no revokedCertificates field at all (OpenSSL then returns null).
int revoked_count(X509_CRL* crl) {
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl);
  return revoked ? sk_X509_REVOKED_num(revoked) : 0;
}

std::int64_t crl_number(X509_CRL* crl) {
  auto* n = static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, NID_crl_number, nullptr, nullptr));
  REQUIRE(n != nullptr);
  std::int64_t v = -1;
  ASN1_INTEGER_get_int64(&v, n);
  ASN1_INTEGER_free(n);
  return v;
}

// The CRL entry for SERIAL: absent; present without a reasonCode (-1); or its reason.
std::optional<int> crl_entry_reason(X509_CRL* crl, const std::string& serial) {
  auto ai = asn1_serial(serial);
  X509_REVOKED* entry = nullptr;
  if (X509_CRL_get0_by_serial(crl, &entry, ai.get()) != 1 || !entry) return std::nullopt;
  int crit = -1;
  auto* code = static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, &crit, nullptr));
  if (!code) return -1;
  long v = ASN1_ENUMERATED_get(code);
  ASN1_ENUMERATED_free(code);
  return static_cast<int>(v);
}

// The `openssl crl -text` block of the entry for SERIAL ("" when not listed).
std::string crl_text_entry(const std::string& text, const std::string& serial) {
  auto pos = text.find("Serial Number: " + serial);
  if (pos == std::string::npos) return {};
  auto next = text.find("Serial Number:", pos + 1);
  auto sig = text.find("Signature Algorithm", pos);
  return text.substr(pos, std::min(next, sig) - pos);
}

struct Issued {
  std::string serial;
  std::string leaf_pem;
  std::string leaf_path;
};

Issued issue_csr(const InitializedPki& pki, const TempDir& work, const std::string& profile,
                 const std::string& subject, const std::string& name) {
  auto key = gt::test::make_key("P-256");
  std::string csr = work / (name + ".csr");
  write_file(csr, gt::test::make_csr_pem(key.get(), subject));
  auto r = pki.gt("issue --profile " + sh_quote(profile) + " --csr " + sh_quote(csr) + " --json");
  INFO("issue " << profile << ": " << describe(r));
  REQUIRE(r.exit_code == 0);
  json::object o = json::parse(r.out).as_object();
  Issued out;
  out.serial = std::string(o.at("serial").as_string());
  out.leaf_pem = split_pem_certs(std::string(o.at("chain_pem").as_string())).at(0);
  out.leaf_path = work / (name + ".pem");
  write_file(out.leaf_path, out.leaf_pem);
  return out;
}

Issued issue_hsm(const InitializedPki& pki, const TempDir& work, const std::string& profile,
                 const std::string& subject, const std::string& name) {
  auto r = pki.gt("issue --profile " + sh_quote(profile) + " --subject " + sh_quote(subject) +
                  " --generate-key --json");
  INFO("issue --generate-key " << profile << ": " << describe(r));
  REQUIRE(r.exit_code == 0);
  json::object o = json::parse(r.out).as_object();
  Issued out;
  out.serial = std::string(o.at("serial").as_string());
  out.leaf_pem = split_pem_certs(std::string(o.at("chain_pem").as_string())).at(0);
  out.leaf_path = work / (name + ".pem");
  write_file(out.leaf_path, out.leaf_pem);
  return out;
}

struct ChainFiles {
  std::vector<std::string> pems;  // direct issuer first, root last
  std::string root;
  std::string intermediates;
};

ChainFiles fetch_chain(const InitializedPki& pki, const std::string& profile, const TempDir& work) {
  auto r = pki.gt("chain --profile " + sh_quote(profile));
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  ChainFiles c;
  c.pems = split_pem_certs(r.out);
  REQUIRE(c.pems.size() == 3);
  c.root = work / (profile + "-root.pem");
  c.intermediates = work / (profile + "-intermediates.pem");
  write_file(c.root, c.pems.back());
  write_file(c.intermediates, c.pems[0] + c.pems[1]);
  return c;
}

std::string fetch_crl(const InitializedPki& pki, const std::string& issuer, const std::string& path) {
  auto r = pki.gt("crl --issuer " + sh_quote(issuer) + " --out " + sh_quote(path));
  INFO("crl --issuer " << issuer << ": " << describe(r));
  REQUIRE(r.exit_code == 0);
  std::string pem = read_file(path);
  REQUIRE(pem.rfind("-----BEGIN X509 CRL-----", 0) == 0);
  return pem;
}

CommandResult verify_with_crls(const ChainFiles& chain, const std::string& crl_path, const std::string& leaf_path,
                               const std::string& mode = "-crl_check") {
  return run("openssl verify -x509_strict " + mode + " -CRLfile " + sh_quote(crl_path) + " -CAfile " +
             sh_quote(chain.root) + " -untrusted " + sh_quote(chain.intermediates) + " " + sh_quote(leaf_path));
}

json::array list_json(const InitializedPki& pki, const std::string& filter) {
  auto r = pki.gt("list " + filter + " --json");
  INFO("list " << filter << ": " << describe(r));
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out).as_array();
}

std::map<std::string, json::object> by_serial(const json::array& rows) {
  std::map<std::string, json::object> out;
  for (auto& v : rows) out[std::string(v.as_object().at("serial").as_string())] = v.as_object();
  return out;
}

json::object show_json(const InitializedPki& pki, const std::string& serial) {
  auto r = pki.gt("show " + sh_quote(serial) + " --json");
  INFO("show " << serial << ": " << describe(r));
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out).as_object();
}

void require_audit_ok(const InitializedPki& pki) {
  auto a = pki.gt("audit verify");
  INFO("audit verify: " << describe(a));
  CHECK(a.exit_code == 0);
  CHECK(a.out.rfind("audit chain ok: ", 0) == 0);
  auto j = pki.gt("audit verify --json");
  INFO("audit verify --json: " << describe(j));
  REQUIRE(j.exit_code == 0);
  json::object o = json::parse(j.out).as_object();
  CHECK(o.at("ok").as_bool());
  CHECK(o.at("entries").to_number<std::int64_t>() > 0);
}

// One PKI with leaves under CPO Sub-CA 2, three of them revoked with different reasons
// and the CRL fetched once. Built by whichever test case needs it first.
struct RevokedFixture {
  InitializedPki pki;
  TempDir work;
  Issued key_compromised, superseded, unspecified, good;
  ChainFiles chain;
  std::string crl_path;
  std::string crl_pem;

  RevokedFixture() {
    key_compromised = issue_csr(pki, work, "secc", "CN=DE*ABC*E1001,O=gridtrust demo,DC=CPO", "kc");
    superseded = issue_csr(pki, work, "charging-station", "CN=CS-2002,O=gridtrust demo", "sup");
    unspecified = issue_hsm(pki, work, "csms-server", "CN=csms.revoked.example.com,O=gridtrust demo", "uns");
    good = issue_csr(pki, work, "secc", "CN=DE*ABC*E1004,O=gridtrust demo,DC=CPO", "good");
    auto r1 = pki.gt("revoke " + key_compromised.serial + " --reason keyCompromise");
    INFO(describe(r1));
    REQUIRE(r1.exit_code == 0);
    CHECK(r1.out == "revoked " + key_compromised.serial + " (keyCompromise)\n");
    // Serials are case-insensitive hex on input.
    std::string lower = superseded.serial;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto r2 = pki.gt("revoke " + lower + " --reason superseded");
    INFO(describe(r2));
    REQUIRE(r2.exit_code == 0);
    auto r3 = pki.gt("revoke " + unspecified.serial + " --reason unspecified --json");
    INFO(describe(r3));
    REQUIRE(r3.exit_code == 0);
    json::object o = json::parse(r3.out).as_object();
    CHECK(o.at("status").as_string() == "revoked");
    chain = fetch_chain(pki, "secc", work);
    crl_path = work / "cpo-sub2.crl.pem";
    crl_pem = fetch_crl(pki, "cpo-sub2", crl_path);
  }
};

RevokedFixture& revoked_fixture() {
  static RevokedFixture f;
  return f;
}

}  // namespace

TEST_CASE("the CRL of CPO Sub-CA 2 lists each revoked serial with its reason and omits the reason code for "
          "unspecified",
          "[integration][revocation][crl]") {
  auto& f = revoked_fixture();

  // As `openssl crl -text` shows it.
  auto t = run("openssl crl -in " + sh_quote(f.crl_path) + " -noout -text");
  INFO("openssl crl -text: " << describe(t));
  REQUIRE(t.exit_code == 0);
  CHECK(t.out.find("Version 2") != std::string::npos);
  CHECK(t.out.find("X509v3 CRL Number") != std::string::npos);
  CHECK(t.out.find("X509v3 Authority Key Identifier") != std::string::npos);
  std::string kc = crl_text_entry(t.out, f.key_compromised.serial);
  std::string sup = crl_text_entry(t.out, f.superseded.serial);
  std::string uns = crl_text_entry(t.out, f.unspecified.serial);
  CHECK(kc.find("Key Compromise") != std::string::npos);
  CHECK(sup.find("Superseded") != std::string::npos);
  CHECK_FALSE(uns.empty());
  CHECK(uns.find("CRL Reason Code") == std::string::npos);  // RFC 5280 5.3.1: absent for unspecified
  CHECK(crl_text_entry(t.out, f.good.serial).empty());

  // And parsed with the C API.
  auto crl = parse_crl(f.crl_pem);
  REQUIRE(crl);
  CHECK(X509_CRL_get_version(crl.get()) == X509_CRL_VERSION_2);
  CHECK(revoked_count(crl.get()) == 3);
  CHECK(crl_entry_reason(crl.get(), f.key_compromised.serial) == std::optional<int>(CRL_REASON_KEY_COMPROMISE));
  CHECK(crl_entry_reason(crl.get(), f.superseded.serial) == std::optional<int>(CRL_REASON_SUPERSEDED));
  CHECK(crl_entry_reason(crl.get(), f.unspecified.serial) == std::optional<int>(-1));
  CHECK_FALSE(crl_entry_reason(crl.get(), f.good.serial).has_value());

  // Issued by Sub-CA 2: its name, its key identifier, its signature, a sane update window.
  auto sub2 = parse_cert(f.chain.pems[0]);
  REQUIRE(sub2);
  CHECK(X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(sub2.get())) == 0);
  CHECK(X509_CRL_verify(crl.get(), X509_get0_pubkey(sub2.get())) == 1);
  auto* aki = static_cast<AUTHORITY_KEYID*>(X509_CRL_get_ext_d2i(crl.get(), NID_authority_key_identifier, nullptr,
                                                                 nullptr));
  REQUIRE(aki != nullptr);
  CHECK(hex_of(aki->keyid) == hex_of(X509_get0_subject_key_id(sub2.get())));
  AUTHORITY_KEYID_free(aki);
  REQUIRE(X509_CRL_get0_nextUpdate(crl.get()) != nullptr);
  CHECK(ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl.get()), X509_CRL_get0_nextUpdate(crl.get())) < 0);
  CHECK(X509_cmp_current_time(X509_CRL_get0_nextUpdate(crl.get())) > 0);
}

TEST_CASE("the CRL verifies against the Sub-CA 2 certificate with openssl crl -verify and certtool",
          "[integration][revocation][crl]") {
  auto& f = revoked_fixture();
  std::string sub2 = f.work / "sub2.pem";
  write_file(sub2, f.chain.pems[0]);
  auto o = run("openssl crl -in " + sh_quote(f.crl_path) + " -noout -verify -CAfile " + sh_quote(sub2));
  INFO("openssl crl -verify: " << describe(o));
  CHECK(o.exit_code == 0);
  CHECK((o.out + o.err).find("verify OK") != std::string::npos);
  auto g = run("certtool --verify-crl --load-ca-certificate " + sh_quote(sub2) + " --infile " + sh_quote(f.crl_path));
  INFO("certtool --verify-crl: " << describe(g));
  CHECK(g.exit_code == 0);
  CHECK(g.out.find("Verification output: Verified") != std::string::npos);
  // Not by another CA.
  std::string sub1 = f.work / "sub1.pem";
  write_file(sub1, f.chain.pems[1]);
  auto bad = run("openssl crl -in " + sh_quote(f.crl_path) + " -noout -verify -CAfile " + sh_quote(sub1));
  INFO("openssl crl -verify with the wrong CA: " << describe(bad));
  CHECK((bad.exit_code != 0 || (bad.out + bad.err).find("verify OK") == std::string::npos));
}

TEST_CASE("openssl verify -crl_check rejects a revoked leaf as \"certificate revoked\" and accepts a good one",
          "[integration][revocation][crl]") {
  auto& f = revoked_fixture();
  for (const Issued* revoked : {&f.key_compromised, &f.superseded, &f.unspecified}) {
    auto r = verify_with_crls(f.chain, f.crl_path, revoked->leaf_path);
    INFO("revoked " << revoked->serial << ": " << describe(r));
    CHECK(r.exit_code != 0);
    CHECK((r.out + r.err).find("certificate revoked") != std::string::npos);
    // Without the CRL the same certificate is fine: the CRL is what rejects it.
    auto plain = run("openssl verify -x509_strict -CAfile " + sh_quote(f.chain.root) + " -untrusted " +
                     sh_quote(f.chain.intermediates) + " " + sh_quote(revoked->leaf_path));
    CHECK(plain.exit_code == 0);
  }
  auto ok = verify_with_crls(f.chain, f.crl_path, f.good.leaf_path);
  INFO("good leaf: " << describe(ok));
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find(": OK") != std::string::npos);

  // Full-chain checking with the CRLs of every CA on the path (root, Sub-CA 1, Sub-CA 2).
  std::string all = f.work / "all-crls.pem";
  write_file(all, f.crl_pem + fetch_crl(f.pki, "cpo-sub1", f.work / "cpo-sub1.crl.pem") +
                      fetch_crl(f.pki, "v2g-root", f.work / "v2g-root.crl.pem"));
  auto all_ok = verify_with_crls(f.chain, all, f.good.leaf_path, "-crl_check_all");
  INFO("good leaf, -crl_check_all: " << describe(all_ok));
  CHECK(all_ok.exit_code == 0);
  auto all_bad = verify_with_crls(f.chain, all, f.key_compromised.leaf_path, "-crl_check_all");
  INFO("revoked leaf, -crl_check_all: " << describe(all_bad));
  CHECK(all_bad.exit_code != 0);
  CHECK((all_bad.out + all_bad.err).find("certificate revoked") != std::string::npos);
}

TEST_CASE("each new CRL of an issuer has a higher CRL number", "[integration][revocation][crl]") {
  auto& f = revoked_fixture();
  auto first = parse_crl(fetch_crl(f.pki, "cpo-sub2", f.work / "n1.pem"));
  auto second = parse_crl(fetch_crl(f.pki, "cpo-sub2", f.work / "n2.pem"));
  REQUIRE(first);
  REQUIRE(second);
  std::int64_t n1 = crl_number(first.get()), n2 = crl_number(second.get());
  CHECK(n1 >= 1);
  CHECK(n2 > n1);
  // Another issuer's numbering is its own and the revocation list is unchanged.
  auto other = parse_crl(fetch_crl(f.pki, "oem-sub2", f.work / "oem.pem"));
  REQUIRE(other);
  CHECK(crl_number(other.get()) >= 1);
  CHECK(revoked_count(other.get()) == 0);
  CHECK(revoked_count(second.get()) == 3);
  // The text view shows the same number.
  auto t = run("openssl crl -in " + sh_quote(f.work / "n2.pem") + " -noout -crlnumber");
  INFO(describe(t));
  CHECK(t.exit_code == 0);
  CHECK(t.out.find("crlNumber=") != std::string::npos);
}

TEST_CASE("list --status revoked and show --json report the status and reason of each certificate",
          "[integration][revocation][status]") {
  auto& f = revoked_fixture();
  auto revoked = by_serial(list_json(f.pki, "--status revoked"));
  CHECK(revoked.size() == 3);
  const std::map<std::string, std::string> expected = {{f.key_compromised.serial, "keyCompromise"},
                                                       {f.superseded.serial, "superseded"},
                                                       {f.unspecified.serial, "unspecified"}};
  for (auto& [serial, reason] : expected) {
    INFO("serial " << serial);
    REQUIRE(revoked.count(serial) == 1);
    auto& row = revoked[serial];
    CHECK(row.at("status").as_string() == "revoked");
    CHECK(row.at("reason").as_string() == reason);
    CHECK(row.contains("revoked_at"));
    CHECK(row.at("issuer").as_string() == "cpo-sub2");

    json::object s = show_json(f.pki, serial);
    CHECK(s.at("status").as_string() == "revoked");
    CHECK(s.at("reason").as_string() == reason);
    CHECK(s.contains("revoked_at"));
  }
  CHECK(revoked.count(f.good.serial) == 0);

  auto valid = by_serial(list_json(f.pki, "--status valid"));
  CHECK(valid.count(f.good.serial) == 1);
  for (auto& [serial, reason] : expected) CHECK(valid.count(serial) == 0);

  json::object g = show_json(f.pki, f.good.serial);
  CHECK(g.at("status").as_string() == "valid");
  CHECK_FALSE(g.contains("reason"));
  CHECK_FALSE(g.contains("revoked_at"));
  CHECK(std::string(g.at("pem").as_string()) == f.good.leaf_pem);

  // The human-readable view says the same.
  auto text = f.pki.gt("show " + f.key_compromised.serial);
  INFO(describe(text));
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("status:     revoked") != std::string::npos);
  CHECK(text.out.find("(keyCompromise)") != std::string::npos);
}

TEST_CASE("revoking a certificate twice fails with conflict.already_revoked and changes nothing",
          "[integration][revocation][errors]") {
  auto& f = revoked_fixture();
  require_error(f.pki.gt("revoke " + f.key_compromised.serial + " --reason keyCompromise"),
                "conflict.already_revoked");
  // Not even with another reason: the first reason stands.
  require_error(f.pki.gt("revoke " + f.superseded.serial + " --reason keyCompromise"), "conflict.already_revoked");
  CHECK(show_json(f.pki, f.superseded.serial).at("reason").as_string() == "superseded");
  // Neighbouring errors keep their own codes.
  require_error(f.pki.gt("revoke " + f.good.serial + " --reason notAReason"), "revocation.bad_reason");
  require_error(f.pki.gt("revoke 0123456789ABCDEF0123456789ABCDEF --reason keyCompromise"), "notfound.certificate");
  require_error(f.pki.gt("revoke xyz --reason keyCompromise"), "usage.bad_serial");
  CHECK(show_json(f.pki, f.good.serial).at("status").as_string() == "valid");
  require_audit_ok(f.pki);
}

TEST_CASE("revoking CPO Sub-CA 2 for keyCompromise revokes every certificate under it and blocks further "
          "issuance with issuer.revoked",
          "[integration][revocation][cascade]") {
  InitializedPki pki;  // its own PKI: this revokes a CA
  TempDir work;
  Issued secc = issue_csr(pki, work, "secc", "CN=DE*ABC*E2001,O=gridtrust demo,DC=CPO", "secc");
  Issued cs = issue_csr(pki, work, "charging-station", "CN=CS-3003,O=gridtrust demo", "cs");
  Issued csms = issue_hsm(pki, work, "csms-server", "CN=csms.cascade.example.com,O=gridtrust demo", "csms");
  Issued already = issue_csr(pki, work, "secc", "CN=DE*ABC*E2004,O=gridtrust demo,DC=CPO", "already");
  Issued cps = issue_csr(pki, work, "cps-leaf", "CN=cps leaf,O=gridtrust demo,DC=CPS", "cps");
  Issued oem = issue_csr(pki, work, "oem-provisioning", "CN=WP0ZZZ99ZTS392124,O=gridtrust demo,DC=OEM", "oem");
  REQUIRE(pki.gt("revoke " + already.serial + " --reason superseded").exit_code == 0);

  ChainFiles chain = fetch_chain(pki, "secc", work);
  std::string sub2_crl_before = fetch_crl(pki, "cpo-sub2", work / "sub2-before.crl.pem");

  // The Sub-CA's own certificate is in the store under its issuer, Sub-CA 1.
  auto sub2_rows = list_json(pki, "--profile cpo-sub2");
  REQUIRE(sub2_rows.size() == 1);
  json::object sub2_row = sub2_rows[0].as_object();
  std::string sub2_serial(sub2_row.at("serial").as_string());
  CHECK(sub2_row.at("issuer").as_string() == "cpo-sub1");
  auto sub2_cert = parse_cert(chain.pems[0]);
  REQUIRE(sub2_cert);
  CHECK(serial_hex(X509_get0_serialNumber(sub2_cert.get())) == sub2_serial);

  auto k0 = pki.gt("keys --json");
  REQUIRE(k0.exit_code == 0);
  const std::size_t keys_before = json::parse(k0.out).as_array().size();

  auto r = pki.gt("revoke " + sub2_serial + " --reason keyCompromise");
  INFO("revoke cpo-sub2: " << describe(r));
  REQUIRE(r.exit_code == 0);

  // Everything Sub-CA 2 issued is revoked now; what was revoked before keeps its reason.
  auto revoked = by_serial(list_json(pki, "--status revoked"));
  REQUIRE(revoked.count(sub2_serial) == 1);
  CHECK(revoked[sub2_serial].at("reason").as_string() == "keyCompromise");
  for (const Issued* leaf : {&secc, &cs, &csms}) {
    INFO("leaf " << leaf->serial);
    REQUIRE(revoked.count(leaf->serial) == 1);
    CHECK(revoked[leaf->serial].at("reason").as_string() == "cACompromise");
    CHECK(show_json(pki, leaf->serial).at("status").as_string() == "revoked");
  }
  REQUIRE(revoked.count(already.serial) == 1);
  CHECK(revoked[already.serial].at("reason").as_string() == "superseded");
  // Sub-CA 2, its four leaves above and the three leaves `gridtrust init` issued under
  // it (gridtrustd's TLS certificate, the first admin certificate, the OCSP signer,
  // the command signer); nothing else.
  CHECK(revoked.size() == 9);

  // Other branches and the CAs above are untouched.
  auto valid = by_serial(list_json(pki, "--status valid"));
  CHECK(valid.count(cps.serial) == 1);
  CHECK(valid.count(oem.serial) == 1);
  for (auto ca : {"cpo-sub1", "v2g-root", "cps-sub2", "oem-sub2", "mo-sub2"}) {
    INFO("CA " << ca);
    auto rows = list_json(pki, std::string("--profile ") + ca);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].as_object().at("status").as_string() == "valid");
  }

  // No further issuance under the revoked Sub-CA, from a CSR or with an HSM key; the
  // refused HSM issuance leaves no key behind in the token.
  auto key = gt::test::make_key("P-256");
  write_file(work / "after.csr", gt::test::make_csr_pem(key.get(), "CN=DE*ABC*E2009,O=gridtrust demo,DC=CPO"));
  require_error(pki.gt("issue --profile secc --csr " + sh_quote(work / "after.csr")), "issuer.revoked");
  require_error(pki.gt("issue --profile csms-server --subject " +
                       sh_quote("CN=csms.after.example.com,O=gridtrust demo") + " --generate-key"),
                "issuer.revoked");
  auto k1 = pki.gt("keys --json");
  REQUIRE(k1.exit_code == 0);
  CHECK(json::parse(k1.out).as_array().size() == keys_before);
  // A sibling branch under the same root still issues.
  issue_csr(pki, work, "cps-leaf", "CN=cps leaf 2,O=gridtrust demo,DC=CPS", "cps2");

  // Revoking a cascaded leaf again is a conflict like any other.
  require_error(pki.gt("revoke " + secc.serial + " --reason keyCompromise"), "conflict.already_revoked");

  // Sub-CA 1's CRL names Sub-CA 2 as key-compromised, so relying parties checking the
  // whole chain reject even a leaf whose own CRL predates the cascade.
  std::string sub1_crl = fetch_crl(pki, "cpo-sub1", work / "sub1.crl.pem");
  auto crl1 = parse_crl(sub1_crl);
  REQUIRE(crl1);
  CHECK(crl_entry_reason(crl1.get(), sub2_serial) == std::optional<int>(CRL_REASON_KEY_COMPROMISE));
  std::string all = work / "all.crl.pem";
  write_file(all, sub2_crl_before + sub1_crl + fetch_crl(pki, "v2g-root", work / "root.crl.pem"));
  auto v = verify_with_crls(chain, all, secc.leaf_path, "-crl_check_all");
  INFO("secc leaf after the cascade, -crl_check_all: " << describe(v));
  CHECK(v.exit_code != 0);
  CHECK((v.out + v.err).find("certificate revoked") != std::string::npos);

  // The audit chain still verifies after all of it.
  require_audit_ok(pki);
}
