// Integration: every V2G profile issued through the real `gridtrust` CLI, checked with
// independent verifiers (OpenSSL's `openssl verify -x509_strict`, GnuTLS `certtool`)
// and field by field with the OpenSSL C API against config/profiles.yaml and the
// DESIGN.md "The V2G PKI" table. Also: every private key stays in the token.
#include <catch2/catch.hpp>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace gt = gridtrust;
namespace fs = std::filesystem;
namespace json = boost::json;
using gt::test::CommandResult;
using gt::test::InitializedPki;
using gt::test::TempDir;
using gt::test::read_file;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::write_file;

namespace {

constexpr const char* kDispatchAuthorityOid = "2.25.246562044906794374245508411653687327742";
constexpr const char* kServerAuthOid = "1.3.6.1.5.5.7.3.1";
constexpr const char* kClientAuthOid = "1.3.6.1.5.5.7.3.2";
constexpr const char* kOcspSigningOid = "1.3.6.1.5.5.7.3.9";
constexpr int kCaCount = 11;  // v2g-root, cpo-sub1/2, cps-sub1/2, oem-root/sub1/sub2, mo-root/sub1/sub2
// `gridtrust init` also issues, with HSM keys, gridtrustd's csms-server TLS certificate,
// the first admin client certificate, Sub-CA 2's OCSP signer and the aggregator's
// command signer (aggregator-signer).
constexpr int kInitLeafKeys = 4;

// ---- PEM / X.509 helpers ----------------------------------------------------------

using gt::test::parse_cert;
using gt::test::split_pem_certs;

std::string hex_of(const unsigned char* p, int n) {
  static const char* digits = "0123456789ABCDEF";
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 0xf];
  }
  return s;
}

std::string hex_of(const ASN1_OCTET_STRING* os) {
  return os ? hex_of(ASN1_STRING_get0_data(os), ASN1_STRING_length(os)) : std::string();
}

std::string serial_hex(X509* cert) {
  gt::BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  char* h = BN_bn2hex(bn.get());
  std::string s(h);
  OPENSSL_free(h);
  return s;
}

std::vector<std::string> name_values(const X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0; i = X509_NAME_get_index_by_NID(name, nid, i)) {
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n >= 0) out.emplace_back(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
  }
  return out;
}

std::vector<std::string> subject_values(X509* cert, int nid) { return name_values(X509_get_subject_name(cert), nid); }

bool is_critical(X509* cert, int nid) {
  int idx = X509_get_ext_by_NID(cert, nid, -1);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

bool has_ext(X509* cert, int nid) { return X509_get_ext_by_NID(cert, nid, -1) >= 0; }

std::string oid_text(const ASN1_OBJECT* obj) {
  char buf[128];
  OBJ_obj2txt(buf, sizeof buf, obj, 1);
  return buf;
}

std::set<std::string> eku_oids(X509* cert) {
  std::set<std::string> out;
  auto* eku = static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr));
  if (!eku) return out;
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku); ++i) out.insert(oid_text(sk_ASN1_OBJECT_value(eku, i)));
  EXTENDED_KEY_USAGE_free(eku);
  return out;
}

std::vector<std::string> crl_dp_uris(X509* cert) {
  std::vector<std::string> out;
  auto* dps = static_cast<CRL_DIST_POINTS*>(X509_get_ext_d2i(cert, NID_crl_distribution_points, nullptr, nullptr));
  if (!dps) return out;
  for (int i = 0; i < sk_DIST_POINT_num(dps); ++i) {
    DIST_POINT* dp = sk_DIST_POINT_value(dps, i);
    if (!dp->distpoint || dp->distpoint->type != 0) continue;
    GENERAL_NAMES* names = dp->distpoint->name.fullname;
    for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
      GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, j);
      if (gn->type == GEN_URI)
        out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier)),
                         static_cast<std::size_t>(ASN1_STRING_length(gn->d.uniformResourceIdentifier)));
    }
  }
  CRL_DIST_POINTS_free(dps);
  return out;
}

std::vector<std::string> ocsp_uris(X509* cert) {
  std::vector<std::string> out;
  auto* aia = static_cast<AUTHORITY_INFO_ACCESS*>(X509_get_ext_d2i(cert, NID_info_access, nullptr, nullptr));
  if (!aia) return out;
  for (int i = 0; i < sk_ACCESS_DESCRIPTION_num(aia); ++i) {
    ACCESS_DESCRIPTION* ad = sk_ACCESS_DESCRIPTION_value(aia, i);
    if (OBJ_obj2nid(ad->method) == NID_ad_OCSP && ad->location->type == GEN_URI)
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(ad->location->d.uniformResourceIdentifier)),
                       static_cast<std::size_t>(ASN1_STRING_length(ad->location->d.uniformResourceIdentifier)));
  }
  AUTHORITY_INFO_ACCESS_free(aia);
  return out;
}

std::vector<std::string> san_dns_names(X509* cert, bool* other_types = nullptr) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type == GEN_DNS)
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                       static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
    else if (other_types)
      *other_types = true;
  }
  GENERAL_NAMES_free(names);
  return out;
}

struct BasicConstraintsView {
  bool present = false;
  bool critical = false;
  bool ca = false;
  std::optional<long> path_len;
};

BasicConstraintsView basic_constraints(X509* cert) {
  BasicConstraintsView v;
  int crit = -1;
  auto* bc = static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &crit, nullptr));
  if (!bc) return v;
  v.present = true;
  v.critical = crit == 1;
  v.ca = bc->ca != 0;
  if (bc->pathlen) v.path_len = ASN1_INTEGER_get(bc->pathlen);
  BASIC_CONSTRAINTS_free(bc);
  return v;
}

// The SHA-1 of the subjectPublicKey BIT STRING (RFC 5280 4.2.1.2 method 1).
std::string key_sha1_hex(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_pubkey_digest(cert, EVP_sha1(), md, &n);
  return hex_of(md, static_cast<int>(n));
}

// ---- running the tools ------------------------------------------------------------

struct ChainFiles {
  std::vector<std::string> pems;  // as printed by `gridtrust chain`: direct issuer first, root last
  std::string root;               // path: the root alone
  std::string intermediates;      // path: every chain certificate but the root
  std::string full;               // path: the whole chain
};

ChainFiles fetch_chain(const InitializedPki& pki, const std::string& profile, const TempDir& work) {
  auto r = pki.gt("chain --profile " + sh_quote(profile));
  INFO("gridtrust chain --profile " << profile << ": " << describe(r));
  REQUIRE(r.exit_code == 0);
  ChainFiles c;
  c.pems = split_pem_certs(r.out);
  REQUIRE(c.pems.size() >= 2);
  c.root = work / (profile + "-root.pem");
  c.intermediates = work / (profile + "-intermediates.pem");
  c.full = work / (profile + "-chain.pem");
  std::string inter;
  for (std::size_t i = 0; i + 1 < c.pems.size(); ++i) inter += c.pems[i];
  write_file(c.root, c.pems.back());
  write_file(c.intermediates, inter);
  write_file(c.full, r.out);
  return c;
}

// openssl verify -x509_strict with the root as the only trust anchor.
CommandResult openssl_verify(const ChainFiles& chain, const std::string& leaf_path, const std::string& extra = "") {
  return run("openssl verify -x509_strict " + extra + " -CAfile " + sh_quote(chain.root) + " -untrusted " +
             sh_quote(chain.intermediates) + " " + sh_quote(leaf_path));
}

// GnuTLS: the leaf plus intermediates checked against the root loaded as trust anchor.
CommandResult certtool_verify(const ChainFiles& chain, const std::string& leaf_path, const TempDir& work,
                              const std::string& extra = "") {
  std::string bundle = work / "certtool-input.pem";
  write_file(bundle, read_file(leaf_path) + read_file(chain.intermediates));
  return run("certtool --verify --load-ca-certificate " + sh_quote(chain.root) + " --infile " + sh_quote(bundle) +
             " " + extra);
}

// GnuTLS: the full chain leaf..root as one list.
CommandResult certtool_verify_chain(const ChainFiles& chain, const std::string& leaf_path, const TempDir& work) {
  std::string bundle = work / "certtool-chain.pem";
  write_file(bundle, read_file(leaf_path) + read_file(chain.full));
  return run("certtool --verify-chain --infile " + sh_quote(bundle));
}

void require_both_verifiers_accept(const ChainFiles& chain, const std::string& leaf_path, const TempDir& work,
                                   const std::string& openssl_extra = "", const std::string& certtool_extra = "") {
  auto o = openssl_verify(chain, leaf_path, openssl_extra);
  INFO("openssl verify " << openssl_extra << ": " << describe(o));
  CHECK(o.exit_code == 0);
  CHECK(o.out.find(": OK") != std::string::npos);
  auto g = certtool_verify(chain, leaf_path, work, certtool_extra);
  INFO("certtool --verify " << certtool_extra << ": " << describe(g));
  CHECK(g.exit_code == 0);
  CHECK(g.out.find("Chain verification output: Verified") != std::string::npos);
  auto gc = certtool_verify_chain(chain, leaf_path, work);
  INFO("certtool --verify-chain: " << describe(gc));
  CHECK(gc.exit_code == 0);
  CHECK(gc.out.find("Chain verification output: Verified") != std::string::npos);
}

// A CSR made by `openssl req` (the tool a charger or vehicle integrator would use).
std::string openssl_req_csr(const TempDir& work, const std::string& name, const std::string& key_type,
                            const std::string& subject) {
  std::string newkey;
  if (key_type == "P-256") newkey = "-newkey ec -pkeyopt ec_paramgen_curve:P-256";
  else if (key_type == "P-384") newkey = "-newkey ec -pkeyopt ec_paramgen_curve:P-384";
  else if (key_type == "P-521") newkey = "-newkey ec -pkeyopt ec_paramgen_curve:P-521";
  else if (key_type == "Ed25519") newkey = "-newkey ed25519";
  else if (key_type == "Ed448") newkey = "-newkey ed448";
  REQUIRE(!newkey.empty());
  // "CN=a,O=b,DC=c" -> "/CN=a/O=b/DC=c"
  std::string subj = "/" + subject;
  std::replace(subj.begin(), subj.end(), ',', '/');
  std::string csr = work / (name + ".csr"), key = work / (name + ".key");
  auto r = run("openssl req -new " + newkey + " -nodes -keyout " + sh_quote(key) + " -subj " + sh_quote(subj) +
               " -out " + sh_quote(csr));
  INFO("openssl req: " << describe(r));
  REQUIRE(r.exit_code == 0);
  return csr;
}

// ---- the profile table under test ---------------------------------------------------

// Every leaf case is issued from a CSR made by `openssl req`, as the acceptance asks.
enum class CsrMaker { OpensslReq };

struct LeafCase {
  std::string profile;
  std::string issuer;             // issuing CA profile
  std::string key_type;
  CsrMaker maker;
  std::string subject;            // "CN=..,O=..,DC=.."
  unsigned long key_usage;        // KU_* bits, exactly
  std::set<std::string> ekus;     // OIDs, exactly (empty: no EKU extension)
  std::optional<std::string> dc;  // subject domainComponent, or none at all
  std::vector<std::string> chain_dcs;  // DC of each chain certificate (direct issuer .. root)
  int signature_nid;              // issuer's signature algorithm
  int validity_days;
  bool san_dns_from_cn = false;
  bool ocsp_nocheck = false;
  std::string openssl_purpose;    // extra `openssl verify -purpose` check, if any
  std::string certtool_purpose;   // extra `certtool --verify-purpose` OID, if any
};

const unsigned long kDsKa = KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT;
const std::vector<std::string> kCpoChainDcs = {"V2G", "V2G", "V2G"};

std::vector<LeafCase> leaf_cases() {
  return {
      {"secc", "cpo-sub2", "P-256", CsrMaker::OpensslReq, "CN=DE*ABC*E123456,O=gridtrust demo,DC=CPO", kDsKa, {},
       "CPO", kCpoChainDcs, NID_ecdsa_with_SHA256, 365},
      // RFC 8410 5: an Ed448 subject key only signs, so keyAgreement is left out.
      {"secc-20", "cpo-sub2", "Ed448", CsrMaker::OpensslReq, "CN=DEABCE987654321,O=gridtrust demo,C=DE,DC=CPO",
       KU_DIGITAL_SIGNATURE,
       {}, "CPO", kCpoChainDcs, NID_ecdsa_with_SHA512, 365},
      {"charging-station", "cpo-sub2", "P-384", CsrMaker::OpensslReq, "CN=CS-000042,O=gridtrust demo,OU=depot-7",
       kDsKa, {kClientAuthOid}, std::nullopt, kCpoChainDcs, NID_ecdsa_with_SHA256, 730, false, false, "sslclient",
       kClientAuthOid},
      {"csms-server", "cpo-sub2", "P-256", CsrMaker::OpensslReq, "CN=csms.fleet.example.com,O=gridtrust demo", kDsKa,
       {kServerAuthOid}, std::nullopt, kCpoChainDcs, NID_ecdsa_with_SHA256, 365, true, false, "sslserver",
       kServerAuthOid},
      {"aggregator-signer", "cpo-sub2", "Ed25519", CsrMaker::OpensslReq, "CN=aggregator-01,O=gridtrust demo",
       KU_DIGITAL_SIGNATURE, {kDispatchAuthorityOid}, std::nullopt, kCpoChainDcs, NID_ecdsa_with_SHA256, 180},
      {"ocsp-signer", "cpo-sub2", "P-256", CsrMaker::OpensslReq, "CN=gridtrust OCSP responder,O=gridtrust demo",
       KU_DIGITAL_SIGNATURE, {kOcspSigningOid}, std::nullopt, kCpoChainDcs, NID_ecdsa_with_SHA256, 30, false, true},
      {"admin", "cpo-sub2", "P-256", CsrMaker::OpensslReq, "CN=alice,O=gridtrust demo,OU=operator",
       KU_DIGITAL_SIGNATURE, {kClientAuthOid}, std::nullopt, kCpoChainDcs, NID_ecdsa_with_SHA256, 365, false, false,
       "sslclient", kClientAuthOid},
      {"oem-provisioning", "oem-sub2", "P-256", CsrMaker::OpensslReq, "CN=WP0ZZZ99ZTS392124,O=gridtrust demo,DC=OEM",
       kDsKa, {}, "OEM", {"OEM", "OEM", "OEM"}, NID_ecdsa_with_SHA256, 1460},
      {"contract", "mo-sub2", "P-256", CsrMaker::OpensslReq, "CN=DE8AAA2B3C4D5E6,O=gridtrust demo,DC=MO",
       KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT, {}, "MO",
       {"MO", "MO", "MO"}, NID_ecdsa_with_SHA256, 730},
      {"cps-leaf", "cps-sub2", "P-256", CsrMaker::OpensslReq, "CN=gridtrust CPS leaf,O=gridtrust demo,DC=CPS",
       KU_DIGITAL_SIGNATURE, {}, "CPS", kCpoChainDcs, NID_ecdsa_with_SHA256, 730},
  };
}

const LeafCase& leaf_case(const std::string& profile) {
  static const auto cases = leaf_cases();
  for (auto& c : cases)
    if (c.profile == profile) return c;
  FAIL("no test case for profile " << profile);
  return cases.front();  // unreachable: FAIL throws
}

// One PKI for the per-profile checks (`gridtrust init` costs a couple of seconds).
const InitializedPki& shared_pki() {
  static InitializedPki pki;
  return pki;
}

// Everything the profile table says about a leaf, checked on the issued certificate.
void check_leaf_fields(const LeafCase& lc, X509* leaf, X509* issuer, const std::string& subject_cn) {
  INFO("profile " << lc.profile);
  CHECK(X509_get_version(leaf) == X509_VERSION_3);

  // The issuer named in the leaf is the chain's first certificate (the profile's CA).
  CHECK(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(issuer)) == 0);
  CHECK(X509_check_issued(issuer, leaf) == X509_V_OK);
  CHECK(X509_get_signature_nid(leaf) == lc.signature_nid);

  // basicConstraints: critical, CA:FALSE, no pathLen.
  auto bc = basic_constraints(leaf);
  CHECK(bc.present);
  CHECK(bc.critical);
  CHECK_FALSE(bc.ca);
  CHECK_FALSE(bc.path_len.has_value());
  CHECK((X509_get_extension_flags(leaf) & EXFLAG_BCONS) != 0);
  CHECK((X509_get_extension_flags(leaf) & EXFLAG_CA) == 0);
  CHECK(X509_check_ca(leaf) == 0);

  // keyUsage: critical and exactly the profile's bits.
  CHECK((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) != 0);
  CHECK(is_critical(leaf, NID_key_usage));
  CHECK(X509_get_key_usage(leaf) == lc.key_usage);

  // extendedKeyUsage: exactly the profile's purposes, or absent.
  CHECK(eku_oids(leaf) == lc.ekus);
  CHECK(has_ext(leaf, NID_ext_key_usage) == !lc.ekus.empty());
  if (!lc.ekus.empty()) {
    CHECK_FALSE(is_critical(leaf, NID_ext_key_usage));
    std::uint32_t xku = X509_get_extended_key_usage(leaf);
    CHECK(((xku & XKU_SSL_SERVER) != 0) == (lc.ekus.count(kServerAuthOid) == 1));
    CHECK(((xku & XKU_SSL_CLIENT) != 0) == (lc.ekus.count(kClientAuthOid) == 1));
    CHECK(((xku & XKU_OCSP_SIGN) != 0) == (lc.ekus.count(kOcspSigningOid) == 1));
  }

  // subjectKeyIdentifier = SHA-1 of the key; authorityKeyIdentifier keyid = issuer's SKI.
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(leaf);
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(leaf);
  const ASN1_OCTET_STRING* issuer_ski = X509_get0_subject_key_id(issuer);
  REQUIRE(ski != nullptr);
  REQUIRE(aki != nullptr);
  REQUIRE(issuer_ski != nullptr);
  CHECK(hex_of(ski) == key_sha1_hex(leaf));
  CHECK(hex_of(aki) == hex_of(issuer_ski));
  CHECK(hex_of(ski) != hex_of(issuer_ski));
  CHECK_FALSE(is_critical(leaf, NID_subject_key_identifier));
  CHECK_FALSE(is_critical(leaf, NID_authority_key_identifier));

  // CRL distribution point (the issuer's CRL) and OCSP responder.
  auto dps = crl_dp_uris(leaf);
  REQUIRE(dps.size() == 1);
  CHECK(dps[0].rfind("http://", 0) == 0);
  CHECK(dps[0].size() > lc.issuer.size() + 5);
  CHECK(dps[0].substr(dps[0].size() - (lc.issuer.size() + 5)) == "/" + lc.issuer + ".crl");
  auto ocsp = ocsp_uris(leaf);
  REQUIRE(ocsp.size() == 1);
  CHECK(ocsp[0].rfind("http://", 0) == 0);

  // Subject: the CN asked for and the role's DC (or none).
  CHECK(subject_values(leaf, NID_commonName) == std::vector<std::string>{subject_cn});
  if (lc.dc) CHECK(subject_values(leaf, NID_domainComponent) == std::vector<std::string>{*lc.dc});
  else CHECK(subject_values(leaf, NID_domainComponent).empty());

  // subjectAltName: DNS = CN for the CSMS, none for the others.
  bool other_names = false;
  auto dns = san_dns_names(leaf, &other_names);
  if (lc.san_dns_from_cn) {
    CHECK(dns == std::vector<std::string>{subject_cn});
    CHECK_FALSE(other_names);
    CHECK(X509_check_host(leaf, subject_cn.c_str(), subject_cn.size(), 0, nullptr) == 1);
  } else {
    CHECK_FALSE(has_ext(leaf, NID_subject_alt_name));
  }

  // id-pkix-ocsp-nocheck only on the delegated OCSP signer.
  CHECK(has_ext(leaf, NID_id_pkix_OCSP_noCheck) == lc.ocsp_nocheck);

  // Serial: positive, at least 64 bits.
  gt::BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), nullptr));
  CHECK_FALSE(BN_is_negative(serial.get()));
  CHECK(BN_num_bits(serial.get()) >= 64);

  // Validity: at most the profile's days (plus the small backdate), inside the issuer's.
  int days = 0, secs = 0;
  REQUIRE(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf), X509_get0_notAfter(leaf)) == 1);
  CHECK(days <= lc.validity_days);
  int to_issuer_end = ASN1_TIME_compare(X509_get0_notAfter(leaf), X509_get0_notAfter(issuer));
  CHECK(to_issuer_end <= 0);
  // The profile's full validity unless that would outlive the issuer, which then caps it.
  if (to_issuer_end < 0) CHECK((days == lc.validity_days && secs == 0));
  CHECK(ASN1_TIME_compare(X509_get0_notBefore(leaf), X509_get0_notBefore(issuer)) >= 0);
  CHECK(X509_cmp_current_time(X509_get0_notBefore(leaf)) < 0);
}

void check_chain_dcs(const LeafCase& lc, const ChainFiles& chain) {
  REQUIRE(chain.pems.size() == lc.chain_dcs.size());
  for (std::size_t i = 0; i < chain.pems.size(); ++i) {
    auto c = parse_cert(chain.pems[i]);
    REQUIRE(c);
    INFO("chain certificate " << i << " of profile " << lc.profile);
    CHECK(subject_values(c.get(), NID_domainComponent) == std::vector<std::string>{lc.chain_dcs[i]});
  }
}

std::string cn_of(const std::string& subject) {
  auto start = subject.find("CN=") + 3;
  return subject.substr(start, subject.find(',', start) - start);
}

struct IssuedPair {
  std::string leaf_pem;
  std::string issuer_pem;
};

// Issues a profile's certificate from a CSR and checks everything the table says.
IssuedPair issue_from_csr_and_check(const std::string& profile) {
  const LeafCase& lc = leaf_case(profile);
  const auto& pki = shared_pki();
  TempDir work;
  std::string csr = openssl_req_csr(work, profile, lc.key_type, lc.subject);
  auto r = pki.gt("issue --profile " + sh_quote(profile) + " --csr " + sh_quote(csr) + " --json");
  INFO("issue: " << describe(r));
  REQUIRE(r.exit_code == 0);
  json::object rec = json::parse(r.out).as_object();
  CHECK(rec.at("profile").as_string() == profile);
  CHECK(rec.at("issuer").as_string() == lc.issuer);
  CHECK(rec.at("status").as_string() == "valid");
  CHECK_FALSE(rec.contains("hsm_key_label"));  // the subject holds this key
  auto issued = split_pem_certs(std::string(rec.at("chain_pem").as_string()));
  REQUIRE(issued.size() == 3);  // leaf, Sub-CA 2, Sub-CA 1 (no root)
  std::string leaf_path = work / "leaf.pem";
  write_file(leaf_path, issued[0]);
  auto leaf = parse_cert(issued[0]);
  REQUIRE(leaf);
  CHECK(serial_hex(leaf.get()) == std::string(rec.at("serial").as_string()));

  // The certificate carries the CSR's key.
  gt::BioPtr bio(BIO_new_file(csr.c_str(), "r"));
  gt::X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(req);
  CHECK(EVP_PKEY_eq(X509_get0_pubkey(leaf.get()), X509_REQ_get0_pubkey(req.get())) == 1);

  auto chain = fetch_chain(pki, profile, work);
  // `issue` prints the same intermediates as `chain`, in the same order.
  CHECK(issued[1] == chain.pems[0]);
  CHECK(issued[2] == chain.pems[1]);
  auto issuer = parse_cert(chain.pems.front());
  REQUIRE(issuer);
  check_leaf_fields(lc, leaf.get(), issuer.get(), cn_of(lc.subject));
  check_chain_dcs(lc, chain);
  require_both_verifiers_accept(chain, leaf_path, work,
                                lc.openssl_purpose.empty() ? "" : "-purpose " + lc.openssl_purpose,
                                lc.certtool_purpose.empty() ? "" : "--verify-purpose=" + lc.certtool_purpose);
  return {issued[0], chain.pems.front()};
}

// Issues a profile's certificate with a key generated in the HSM and checks everything.
std::string issue_with_hsm_key_and_check(const InitializedPki& pki, const std::string& profile,
                                         const std::string& subject) {
  LeafCase lc = leaf_case(profile);
  TempDir work;
  auto r = pki.gt("issue --profile " + sh_quote(profile) + " --subject " + sh_quote(subject) +
                  " --generate-key --json");
  INFO("issue --generate-key: " << describe(r));
  REQUIRE(r.exit_code == 0);
  json::object rec = json::parse(r.out).as_object();
  CHECK(rec.at("profile").as_string() == profile);
  REQUIRE(rec.contains("hsm_key_label"));
  std::string label(rec.at("hsm_key_label").as_string());
  CHECK(label.rfind(profile + "-", 0) == 0);
  auto issued = split_pem_certs(std::string(rec.at("chain_pem").as_string()));
  REQUIRE(issued.size() == 3);
  std::string leaf_path = work / "leaf.pem";
  write_file(leaf_path, issued[0]);
  auto leaf = parse_cert(issued[0]);
  REQUIRE(leaf);
  auto chain = fetch_chain(pki, profile, work);
  auto issuer = parse_cert(chain.pems.front());
  REQUIRE(issuer);
  // HSM keys use the profile's first algorithm: P-256 for these roles.
  EVP_PKEY* pub = X509_get0_pubkey(leaf.get());
  CHECK(EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC);
  CHECK(EVP_PKEY_get_bits(pub) == 256);
  check_leaf_fields(lc, leaf.get(), issuer.get(), cn_of(subject));
  check_chain_dcs(lc, chain);
  require_both_verifiers_accept(chain, leaf_path, work,
                                lc.openssl_purpose.empty() ? "" : "-purpose " + lc.openssl_purpose,
                                lc.certtool_purpose.empty() ? "" : "--verify-purpose=" + lc.certtool_purpose);
  return label;
}

}  // namespace

// ---- leaves issued from CSRs --------------------------------------------------------

TEST_CASE("a SECC certificate from an openssl-made CSR is CA:false, digitalSignature+keyAgreement, DC=CPO, "
          "and verifies with openssl -x509_strict and certtool",
          "[integration][profiles]") {
  issue_from_csr_and_check("secc");
}

TEST_CASE("an ISO 15118-20 SECC certificate for an Ed448 key is signed with SHA-512 and verifies with openssl "
          "and certtool",
          "[integration][profiles]") {
  issue_from_csr_and_check("secc-20");
}

TEST_CASE("an ISO 15118-20 SECC certificate for a P-521 key verifies with openssl and certtool",
          "[integration][profiles]") {
  LeafCase lc = leaf_case("secc-20");
  lc.key_usage = kDsKa;  // an EC key keeps the profile's keyAgreement
  const auto& pki = shared_pki();
  TempDir work;
  std::string csr = openssl_req_csr(work, "secc20-p521", "P-521", "CN=NL*XYZ*E0001,O=gridtrust demo,DC=CPO");
  auto r = pki.gt("issue --profile secc-20 --csr " + sh_quote(csr) + " --out " + sh_quote(work / "issued.pem"));
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  auto issued = split_pem_certs(read_file(work / "issued.pem"));
  REQUIRE(issued.size() == 3);
  write_file(work / "leaf.pem", issued[0]);
  auto leaf = parse_cert(issued[0]);
  auto chain = fetch_chain(pki, "secc-20", work);
  auto issuer = parse_cert(chain.pems.front());
  REQUIRE(leaf);
  CHECK(EVP_PKEY_get_bits(X509_get0_pubkey(leaf.get())) == 521);
  check_leaf_fields(lc, leaf.get(), issuer.get(), "NL*XYZ*E0001");
  require_both_verifiers_accept(chain, work / "leaf.pem", work);
}

TEST_CASE("a charging-station certificate carries clientAuth and passes the TLS-client purpose checks of "
          "openssl and certtool",
          "[integration][profiles]") {
  issue_from_csr_and_check("charging-station");
}

TEST_CASE("a CSMS server certificate from a CSR has SAN DNS equal to its CN and passes the TLS-server purpose "
          "checks",
          "[integration][profiles]") {
  issue_from_csr_and_check("csms-server");
}

TEST_CASE("an aggregator command signer certificate carries only digitalSignature and the dispatchAuthority EKU",
          "[integration][profiles]") {
  issue_from_csr_and_check("aggregator-signer");
}

TEST_CASE("an OCSP signer certificate carries OCSPSigning and id-pkix-ocsp-nocheck", "[integration][profiles]") {
  issue_from_csr_and_check("ocsp-signer");
}

TEST_CASE("an admin certificate from an openssl-made CSR carries clientAuth and its OU role",
          "[integration][profiles]") {
  issue_from_csr_and_check("admin");
  // The OU role survives into the certificate.
  const auto& pki = shared_pki();
  auto r = pki.gt("list --profile admin --json");
  REQUIRE(r.exit_code == 0);
  auto arr = json::parse(r.out).as_array();
  REQUIRE_FALSE(arr.empty());
  CHECK(std::string(arr.back().as_object().at("subject").as_string()).find("OU=operator") != std::string::npos);
}

TEST_CASE("an OEM provisioning certificate with a PCID CN chains to the OEM root with DC=OEM throughout",
          "[integration][profiles]") {
  auto issued = issue_from_csr_and_check("oem-provisioning");
  // The profile allows 1460 days, OEM Sub-CA 2 lives 730: the issuer's notAfter caps it.
  auto leaf = parse_cert(issued.leaf_pem);
  auto issuer = parse_cert(issued.issuer_pem);
  REQUIRE(leaf);
  REQUIRE(issuer);
  CHECK(ASN1_TIME_compare(X509_get0_notAfter(leaf.get()), X509_get0_notAfter(issuer.get())) == 0);
}

TEST_CASE("a contract certificate with an eMAID CN has the four ISO 15118-2 key usages and chains to the MO root",
          "[integration][profiles]") {
  issue_from_csr_and_check("contract");
}

TEST_CASE("a CPS leaf certificate has DC=CPS and chains through the CPS Sub-CAs to the V2G root",
          "[integration][profiles]") {
  issue_from_csr_and_check("cps-leaf");
}

// ---- the CA certificates ------------------------------------------------------------

TEST_CASE("every CA chain has a self-signed critical-CA root and Sub-CAs with pathLen 1 and 0, "
          "keyCertSign+cRLSign and the branch's DC",
          "[integration][profiles]") {
  const auto& pki = shared_pki();
  TempDir work;
  struct Branch {
    std::string leaf_profile;
    std::vector<std::string> ca_profiles;  // direct issuer .. root
    std::string dc;
  };
  const std::vector<Branch> branches = {
      {"secc", {"cpo-sub2", "cpo-sub1", "v2g-root"}, "V2G"},
      {"cps-leaf", {"cps-sub2", "cps-sub1", "v2g-root"}, "V2G"},
      {"oem-provisioning", {"oem-sub2", "oem-sub1", "oem-root"}, "OEM"},
      {"contract", {"mo-sub2", "mo-sub1", "mo-root"}, "MO"},
  };
  std::map<std::string, std::string> root_pem_by_branch;
  for (const auto& b : branches) {
    INFO("chain of " << b.leaf_profile);
    auto chain = fetch_chain(pki, b.leaf_profile, work);
    REQUIRE(chain.pems.size() == 3);
    std::vector<gt::X509Ptr> certs;
    for (auto& p : chain.pems) {
      certs.push_back(parse_cert(p));
      REQUIRE(certs.back());
    }
    X509* sub2 = certs[0].get();
    X509* sub1 = certs[1].get();
    X509* root = certs[2].get();
    root_pem_by_branch[b.leaf_profile] = chain.pems[2];

    // Root: self-signed (name and signature), CA critical, no pathLen in the profile.
    CHECK(X509_NAME_cmp(X509_get_subject_name(root), X509_get_issuer_name(root)) == 0);
    CHECK(X509_check_issued(root, root) == X509_V_OK);
    CHECK(X509_verify(root, X509_get0_pubkey(root)) == 1);
    CHECK((X509_get_extension_flags(root) & EXFLAG_SS) != 0);
    // No CRL DP / OCSP on a root: nothing above it could revoke it.
    CHECK_FALSE(has_ext(root, NID_crl_distribution_points));
    CHECK_FALSE(has_ext(root, NID_info_access));

    // Each CA signed by the next one up.
    CHECK(X509_check_issued(sub1, sub2) == X509_V_OK);
    CHECK(X509_check_issued(root, sub1) == X509_V_OK);
    CHECK(X509_verify(sub2, X509_get0_pubkey(sub1)) == 1);
    CHECK(X509_verify(sub1, X509_get0_pubkey(root)) == 1);

    const std::vector<std::optional<long>> path_lens = {0L, 1L, std::nullopt};
    for (std::size_t i = 0; i < 3; ++i) {
      X509* c = certs[i].get();
      INFO("CA " << b.ca_profiles[i]);
      auto bc = basic_constraints(c);
      CHECK(bc.present);
      CHECK(bc.critical);
      CHECK(bc.ca);
      CHECK(bc.path_len == path_lens[i]);
      CHECK(X509_check_ca(c) == 1);
      CHECK((X509_get_extension_flags(c) & EXFLAG_CA) != 0);
      CHECK(is_critical(c, NID_key_usage));
      CHECK(X509_get_key_usage(c) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
      CHECK_FALSE(has_ext(c, NID_ext_key_usage));
      CHECK(subject_values(c, NID_domainComponent) == std::vector<std::string>{b.dc});
      CHECK(X509_get_version(c) == X509_VERSION_3);
      // SKI = SHA-1 of the key; AKI keyid = parent's SKI (the root's own for the root).
      const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(c);
      const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(c);
      REQUIRE(ski != nullptr);
      REQUIRE(aki != nullptr);
      CHECK(hex_of(ski) == key_sha1_hex(c));
      X509* parent = i + 1 < 3 ? certs[i + 1].get() : root;
      CHECK(hex_of(aki) == hex_of(X509_get0_subject_key_id(parent)));
      gt::BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr));
      CHECK_FALSE(BN_is_negative(serial.get()));
      CHECK(BN_num_bits(serial.get()) >= 64);
    }

    // Independent verifiers accept the CA chain itself (sub2 as the end of the path).
    write_file(work / "sub2.pem", chain.pems[0]);
    write_file(chain.intermediates, chain.pems[1]);
    auto o = run("openssl verify -x509_strict -CAfile " + sh_quote(chain.root) + " -untrusted " +
                 sh_quote(chain.intermediates) + " " + sh_quote(work / "sub2.pem"));
    INFO(describe(o));
    CHECK(o.exit_code == 0);
    auto g = run("certtool --verify-chain --infile " + sh_quote(chain.full));
    INFO(describe(g));
    CHECK(g.exit_code == 0);
    CHECK(g.out.find("Chain verification output: Verified") != std::string::npos);
  }
  // The CPO and CPS branches share the one V2G root.
  CHECK(root_pem_by_branch["secc"] == root_pem_by_branch["cps-leaf"]);
  CHECK(root_pem_by_branch["secc"] != root_pem_by_branch["contract"]);
  CHECK(root_pem_by_branch["secc"] != root_pem_by_branch["oem-provisioning"]);
  CHECK(root_pem_by_branch["contract"] != root_pem_by_branch["oem-provisioning"]);
}

// ---- HSM-held leaf keys ---------------------------------------------------------------

TEST_CASE("HSM-held CSMS server, aggregator signer and OCSP signer certificates verify with openssl and certtool",
          "[integration][profiles][hsm]") {
  const auto& pki = shared_pki();
  std::set<std::string> labels;
  labels.insert(issue_with_hsm_key_and_check(pki, "csms-server", "CN=csms-hsm.fleet.example.com,O=gridtrust demo"));
  labels.insert(issue_with_hsm_key_and_check(pki, "aggregator-signer", "CN=aggregator-hsm-01,O=gridtrust demo"));
  labels.insert(issue_with_hsm_key_and_check(pki, "ocsp-signer", "CN=OCSP responder (HSM),O=gridtrust demo"));
  CHECK(labels.size() == 3);
  // Each key is in the token under the label the store recorded.
  auto k = pki.gt("keys --json");
  REQUIRE(k.exit_code == 0);
  std::set<std::string> in_token;
  const json::array keys = json::parse(k.out).as_array();
  for (auto& v : keys) in_token.insert(std::string(v.as_object().at("label").as_string()));
  for (auto& l : labels) CHECK(in_token.count(l) == 1);
}

TEST_CASE("a profile whose key its subject holds refuses --generate-key", "[integration][profiles][hsm]") {
  const auto& pki = shared_pki();
  auto r = pki.gt("issue --profile secc --subject " + sh_quote("CN=DE*ABC*E1,O=gridtrust demo,DC=CPO") +
                  " --generate-key");
  INFO(describe(r));
  CHECK(r.exit_code != 0);
  CHECK(r.err.rfind("error: profile.no_hsm_key: ", 0) == 0);
}

// ---- serial numbers ---------------------------------------------------------------------

TEST_CASE("serial numbers are positive, at least 64 bits and unique across 50 issuances",
          "[integration][profiles][serial]") {
  const auto& pki = shared_pki();
  TempDir work;
  std::set<std::string> serials;
  std::vector<std::string> csr_paths;
  auto key = gt::test::make_key("P-256");
  for (int i = 0; i < 50; ++i) {
    // Same key and subject every time: the serial alone must tell the certificates apart.
    std::string csr = work / ("cs" + std::to_string(i) + ".csr");
    write_file(csr, gt::test::make_csr_pem(key.get(), "CN=CS-serial,O=gridtrust demo"));
    csr_paths.push_back(csr);
  }
  for (int i = 0; i < 50; ++i) {
    auto r = pki.gt("issue --profile charging-station --csr " + sh_quote(csr_paths[i]));
    INFO("issuance " << i << ": " << describe(r));
    REQUIRE(r.exit_code == 0);
    auto pems = split_pem_certs(r.out);
    REQUIRE_FALSE(pems.empty());
    auto cert = parse_cert(pems[0]);
    REQUIRE(cert);
    const ASN1_INTEGER* ai = X509_get0_serialNumber(cert.get());
    CHECK(ASN1_STRING_type(ai) == V_ASN1_INTEGER);  // not V_ASN1_NEG_INTEGER
    gt::BignumPtr bn(ASN1_INTEGER_to_BN(ai, nullptr));
    CHECK_FALSE(BN_is_negative(bn.get()));
    CHECK_FALSE(BN_is_zero(bn.get()));
    CHECK(BN_num_bits(bn.get()) >= 64);
    CHECK(BN_num_bytes(bn.get()) <= 20);  // RFC 5280 4.1.2.2
    serials.insert(serial_hex(cert.get()));
  }
  CHECK(serials.size() == 50);
  // The store knows every one of them.
  auto l = pki.gt("list --profile charging-station --json");
  REQUIRE(l.exit_code == 0);
  std::set<std::string> listed;
  const json::array rows = json::parse(l.out).as_array();
  for (auto& v : rows) listed.insert(std::string(v.as_object().at("serial").as_string()));
  for (auto& s : serials) CHECK(listed.count(s) == 1);
}

// ---- private keys never leave the token ---------------------------------------------------

TEST_CASE("every private key in the token is sensitive and never extractable, and none is on disk",
          "[integration][profiles][hsm][keys]") {
  InitializedPki pki;  // a PKI of its own: the key count below is exact
  TempDir work;
  std::set<std::string> hsm_labels;
  for (auto [profile, subject] : std::vector<std::pair<std::string, std::string>>{
           {"csms-server", "CN=csms.keys.example.com,O=gridtrust demo"},
           {"aggregator-signer", "CN=aggregator-keys,O=gridtrust demo"},
           {"ocsp-signer", "CN=OCSP keys,O=gridtrust demo"},
           {"admin", "CN=bob,O=gridtrust demo,OU=auditor"}}) {
    auto r = pki.gt("issue --profile " + profile + " --subject " + sh_quote(subject) + " --generate-key --json");
    INFO(describe(r));
    REQUIRE(r.exit_code == 0);
    hsm_labels.insert(std::string(json::parse(r.out).as_object().at("hsm_key_label").as_string()));
  }
  // Leaves whose key the subject holds add nothing to the token.
  std::string csr = openssl_req_csr(work, "secc", "P-256", "CN=DE*ABC*E7,O=gridtrust demo,DC=CPO");
  auto r = pki.gt("issue --profile secc --csr " + sh_quote(csr));
  REQUIRE(r.exit_code == 0);
  const std::size_t expected = kCaCount + kInitLeafKeys + hsm_labels.size();

  // pkcs11-tool (OpenSC), an independent PKCS#11 client, lists the token's private keys.
  std::string dir = pki.data_dir();
  auto p = run("SOFTHSM2_CONF=" + sh_quote(dir + "/softhsm2.conf") + " pkcs11-tool --module " +
               sh_quote(gt::test::kSoftHsmModule) + " --login --pin \"$(cat " + sh_quote(dir + "/secrets/user.pin") +
               ")\" --list-objects --type privkey");
  INFO("pkcs11-tool: " << describe(p));
  REQUIRE(p.exit_code == 0);
  std::map<std::string, std::string> access_by_label;
  {
    std::istringstream in(p.out);
    std::string line, label;
    std::size_t objects = 0;
    while (std::getline(in, line)) {
      if (line.rfind("Private Key Object", 0) == 0) {
        ++objects;
        label.clear();
      }
      auto trim = [](std::string s) {
        s.erase(0, s.find_first_not_of(" \t"));
        return s;
      };
      std::string t = trim(line);
      if (t.rfind("label:", 0) == 0) label = trim(t.substr(6));
      if (t.rfind("Access:", 0) == 0) access_by_label[label] = trim(t.substr(7));
    }
    CHECK(objects == expected);
  }
  CHECK(access_by_label.size() == expected);
  for (auto& [label, access] : access_by_label) {
    INFO("key " << label << " access: " << access);
    std::set<std::string> flags;
    std::istringstream in(access);
    std::string f;
    while (std::getline(in, f, ',')) {
      f.erase(0, f.find_first_not_of(' '));
      flags.insert(f);
    }
    CHECK(flags.count("sensitive") == 1);
    CHECK(flags.count("always sensitive") == 1);
    CHECK(flags.count("never extractable") == 1);
    CHECK(flags.count("extractable") == 0);
    CHECK(flags.count("local") == 1);  // generated inside the token
  }
  for (auto& l : hsm_labels) CHECK(access_by_label.count(l) == 1);
  for (auto ca : {"v2g-root", "cpo-sub1", "cpo-sub2", "cps-sub1", "cps-sub2", "oem-root", "oem-sub1", "oem-sub2",
                  "mo-root", "mo-sub1", "mo-sub2"})
    CHECK(access_by_label.count(std::string("ca-") + ca) == 1);

  // `gridtrust keys --json` agrees key by key.
  auto k = pki.gt("keys --json");
  INFO("keys --json: " << describe(k));
  REQUIRE(k.exit_code == 0);
  auto arr = json::parse(k.out).as_array();
  CHECK(arr.size() == expected);
  std::set<std::string> key_labels;
  for (auto& v : arr) {
    auto& o = v.as_object();
    key_labels.insert(std::string(o.at("label").as_string()));
    INFO("key " << o.at("label"));
    CHECK(o.at("sensitive").as_bool());
    CHECK_FALSE(o.at("extractable").as_bool());
    CHECK(o.at("always_sensitive").as_bool());
    CHECK(o.at("never_extractable").as_bool());
  }
  std::set<std::string> tool_labels;
  for (auto& [label, access] : access_by_label) tool_labels.insert(label);
  CHECK(key_labels == tool_labels);

  // No file under the data directory holds a private key in any form OpenSSL reads.
  std::size_t files = 0;
  for (auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    std::string bytes = read_file(entry.path().string());
    INFO("file " << entry.path().string() << " (" << bytes.size() << " bytes)");
    CHECK(bytes.find("PRIVATE KEY") == std::string::npos);
    const auto* der = reinterpret_cast<const unsigned char*>(bytes.data());
    const unsigned char* pder = der;
    gt::EvpPkeyPtr from_der(d2i_AutoPrivateKey(nullptr, &pder, static_cast<long>(bytes.size())));
    CHECK_FALSE(from_der);
    gt::BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
    // A callback that supplies no passphrase: an encrypted PEM key must not prompt.
    auto no_pass = [](char*, int, int, void*) -> int { return -1; };
    gt::EvpPkeyPtr from_pem(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_pass, nullptr));
    CHECK_FALSE(from_pem);
    ERR_clear_error();
  }
  CHECK(files >= 5);  // store, config, profiles, PINs, SoftHSM2 objects
}
