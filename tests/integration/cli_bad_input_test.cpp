// Bad input to the offline CLI: every rejection is exactly one stderr line
// `error: <code>: <message>`, a non-zero exit code from exit_code_for(<code>), and no
// change to the store, the audit chain or the token.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli/app_config.h"
#include "cli/pki_context.h"
#include "core/rejection.h"
#include "hsm/pin_source.h"
#include "hsm/token.h"
#include "pki/certificate_authority.h"
#include "pki/profile_loader.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace gridtrust;
using namespace gridtrust::test;

namespace {

// ---------------------------------------------------------------------------------
// Running the CLI and reading its one error line

struct ErrorLine {
  std::size_t lines = 0;
  std::string code;
  std::string message;
};

ErrorLine parse_error(const std::string& err) {
  ErrorLine e;
  std::vector<std::string> lines;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  e.lines = lines.size();
  if (lines.empty()) return e;
  const std::string& l = lines.front();
  const std::string prefix = "error: ";
  if (l.rfind(prefix, 0) != 0) return e;
  auto end = l.find(": ", prefix.size());
  if (end == std::string::npos) return e;
  e.code = l.substr(prefix.size(), end - prefix.size());
  e.message = l.substr(end + 2);
  return e;
}

// Checks the shape of a rejection; returns the code for further checks.
void check_rejected(const CommandResult& r, const std::string& expected_code) {
  INFO("stdout: " << r.out);
  INFO("stderr: " << r.err);
  ErrorLine e = parse_error(r.err);
  CHECK(e.lines == 1);
  CHECK(e.code == expected_code);
  CHECK_FALSE(e.message.empty());
  CHECK(r.exit_code != 0);
  CHECK(r.exit_code == exit_code_for(expected_code));
}

std::string gt_cmd(const std::string& args) { return sh_quote(cli()) + " " + args; }

// ---------------------------------------------------------------------------------
// What a rejected request must not change: the certificates, the audit chain (its
// head hash), the keys in the token.

struct Snapshot {
  std::string certificates;
  std::string audit;
  std::string keys;
  bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(const std::string& data_dir) {
  auto dd = " --data-dir " + sh_quote(data_dir);
  auto list = run(gt_cmd("list --json" + dd));
  auto audit = run(gt_cmd("audit verify --json" + dd));
  auto keys = run(gt_cmd("keys --json" + dd));
  REQUIRE(list.exit_code == 0);
  REQUIRE(audit.exit_code == 0);  // the chain still verifies
  REQUIRE(keys.exit_code == 0);
  REQUIRE(json::parse(audit.out).as_object().at("ok").as_bool());
  // The token's object order is not promised; compare the keys as a set.
  std::vector<std::string> key_list;
  json::value parsed_keys = json::parse(keys.out);
  for (auto& k : parsed_keys.as_array()) key_list.push_back(json::serialize(k));
  std::sort(key_list.begin(), key_list.end());
  std::string key_text;
  for (auto& k : key_list) key_text += k + "\n";
  return Snapshot{list.out, audit.out, key_text};
}

std::size_t certificate_count(const std::string& data_dir) {
  auto list = run(gt_cmd("list --json --data-dir " + sh_quote(data_dir)));
  REQUIRE(list.exit_code == 0);
  return json::parse(list.out).as_array().size();
}

// The PKI most cases share. Rejections never change it, so one snapshot taken at the
// start stays the expected state for every case that uses it.
const InitializedPki& shared_pki() {
  static InitializedPki pki;
  return pki;
}

const Snapshot& shared_baseline() {
  static Snapshot s = snapshot(shared_pki().data_dir());
  return s;
}

const TempDir& work() {
  static TempDir dir;
  return dir;
}

std::string file_with(const std::string& name, const std::string& content) {
  std::string path = work() / name;
  write_file(path, content);
  return path;
}

std::string file_with(const std::string& name, const Bytes& content) {
  return file_with(name, std::string(content.begin(), content.end()));
}

// Runs `gridtrust <args> --data-dir <shared>` and expects the rejection `code` with the
// shared store, audit chain and token unchanged.
void expect_rejection(const std::string& args, const std::string& code) {
  const Snapshot& before = shared_baseline();
  INFO("gridtrust " << args);
  auto r = shared_pki().gt(args);
  check_rejected(r, code);
  CHECK(r.out.empty());  // nothing half-issued on stdout
  CHECK(snapshot(shared_pki().data_dir()) == before);
}

void expect_csr_rejection(const std::string& profile, const std::string& csr_file, const std::string& code) {
  expect_rejection("issue --profile " + profile + " --csr " + sh_quote(csr_file), code);
}

std::string pem_csr(const std::string& name, const std::string& key_type, const std::string& subject) {
  auto key = make_key(key_type);
  return file_with(name, make_csr_pem(key.get(), subject));
}

constexpr const char* kSeccSubject = "CN=DEABCE1234,O=gridtrust demo,DC=CPO";
constexpr const char* kStationSubject = "CN=station-0001,O=gridtrust demo";

// A CSR whose subject entries are set as raw UTF8String values, bypassing OpenSSL's
// X.520 length table, so that names a careless client could send can be tested.
Bytes raw_subject_csr_der(const std::vector<std::pair<int, std::string>>& entries) {
  auto key = make_key("P-256");
  X509ReqPtr req(X509_REQ_new());
  X509NamePtr name(X509_NAME_new());
  for (auto& [nid, value] : entries)
    REQUIRE(X509_NAME_add_entry_by_NID(name.get(), nid, V_ASN1_UTF8STRING,
                                       reinterpret_cast<const unsigned char*>(value.data()),
                                       static_cast<int>(value.size()), -1, 0) == 1);
  REQUIRE(X509_REQ_set_version(req.get(), 0) == 1);
  REQUIRE(X509_REQ_set_subject_name(req.get(), name.get()) == 1);
  REQUIRE(X509_REQ_set_pubkey(req.get(), key.get()) == 1);
  REQUIRE(X509_REQ_sign(req.get(), key.get(), EVP_sha256()) > 0);
  int n = i2d_X509_REQ(req.get(), nullptr);
  Bytes der(static_cast<std::size_t>(n));
  unsigned char* p = der.data();
  i2d_X509_REQ(req.get(), &p);
  return der;
}

std::string der_to_pem(const Bytes& der, const char* label) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio(bio.get(), label, "", der.data(), static_cast<long>(der.size())) > 0);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// Replaces the first occurrence of `from` in `der` by `to` (same length).
void patch(Bytes& der, const std::string& from, const std::string& to) {
  REQUIRE(from.size() == to.size());
  Bytes needle(from.begin(), from.end());  // compare as unsigned bytes
  auto it = std::search(der.begin(), der.end(), needle.begin(), needle.end());
  REQUIRE(it != der.end());
  std::copy(to.begin(), to.end(), it);
}

std::string cert_pem_of_chain_first(const std::string& chain) {
  auto end = chain.find("-----END CERTIFICATE-----");
  REQUIRE(end != std::string::npos);
  return chain.substr(0, end + std::string("-----END CERTIFICATE-----\n").size());
}

json::object record_of_profile(const std::string& data_dir, const std::string& profile) {
  auto r = run(gt_cmd("list --json --profile " + profile + " --data-dir " + sh_quote(data_dir)));
  REQUIRE(r.exit_code == 0);
  auto arr = json::parse(r.out).as_array();
  REQUIRE(arr.size() == 1);
  return arr.front().as_object();
}

std::string str(const json::value& v) { return std::string(v.as_string().c_str()); }

std::vector<std::string> dir_listing(const std::string& dir) {
  std::vector<std::string> names;
  for (auto& e : fs::recursive_directory_iterator(dir)) names.push_back(e.path().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

// =================================================================================
// CSR keys: type and curve must be one the profile allows

TEST_CASE("a P-384 key is refused for secc, whose profile allows only P-256", "[bad-input][csr][key]") {
  expect_csr_rejection("secc", pem_csr("p384.csr", "P-384", kSeccSubject), "csr.curve_not_allowed");
}

TEST_CASE("a secp256k1 key is refused: the curve is not one gridtrust supports", "[bad-input][csr][key]") {
  expect_csr_rejection("secc", pem_csr("k1.csr", "secp256k1", kSeccSubject), "csr.curve_not_allowed");
}

TEST_CASE("a P-521 key is refused for charging-station, which allows P-256 and P-384", "[bad-input][csr][key]") {
  expect_csr_rejection("charging-station", pem_csr("p521.csr", "P-521", kStationSubject), "csr.curve_not_allowed");
}

TEST_CASE("a P-256 key is refused for secc-20, which requires P-521 or Ed448", "[bad-input][csr][key]") {
  expect_csr_rejection("secc-20", pem_csr("p256-20.csr", "P-256", kSeccSubject), "csr.curve_not_allowed");
}

TEST_CASE("an Ed25519 key is refused where only EC keys are allowed", "[bad-input][csr][key]") {
  expect_csr_rejection("secc", pem_csr("ed25519.csr", "Ed25519", kSeccSubject), "csr.key_type_not_allowed");
}

TEST_CASE("an Ed448 key is refused for charging-station (EC only)", "[bad-input][csr][key]") {
  expect_csr_rejection("charging-station", pem_csr("ed448.csr", "Ed448", kStationSubject),
                       "csr.key_type_not_allowed");
}

TEST_CASE("an RSA key is refused where EC is required", "[bad-input][csr][key]") {
  expect_csr_rejection("secc", pem_csr("rsa.csr", "RSA", kSeccSubject), "csr.key_type_not_allowed");
}

// =================================================================================
// Proof of possession: the CSR signature must verify with the CSR's own key

TEST_CASE("a DER CSR with one byte of its signature flipped fails proof of possession", "[bad-input][csr][pop]") {
  auto key = make_key("P-256");
  Bytes der = make_csr_der(key.get(), kSeccSubject);
  der.back() ^= 0x01;  // the last byte is inside the signature's s value
  expect_csr_rejection("secc", file_with("flipped-sig.der", der), "csr.bad_signature");
}

TEST_CASE("a DER CSR whose subject was altered after signing fails proof of possession", "[bad-input][csr][pop]") {
  auto key = make_key("P-256");
  Bytes der = make_csr_der(key.get(), "CN=DEABCE1234,O=gridtrust demo,DC=CPO");
  patch(der, "DEABCE1234", "DEABCE9999");
  expect_csr_rejection("secc", file_with("altered-subject.der", der), "csr.bad_signature");
}

TEST_CASE("a PEM CSR whose subject was altered after signing fails proof of possession", "[bad-input][csr][pop]") {
  auto key = make_key("P-256");
  Bytes der = make_csr_der(key.get(), "CN=station-0001,O=gridtrust demo");
  patch(der, "station-0001", "station-6666");
  expect_csr_rejection("charging-station", file_with("altered-subject.pem", der_to_pem(der, "CERTIFICATE REQUEST")),
                       "csr.bad_signature");
}

TEST_CASE("a CSR whose public key is not a point on its curve is refused", "[bad-input][csr][pop]") {
  auto key = make_key("P-256");
  Bytes der = make_csr_der(key.get(), kSeccSubject);
  // The uncompressed point 04||X||Y sits in the SubjectPublicKeyInfo; change Y's last byte.
  unsigned char point[65];
  std::size_t len = 0;
  REQUIRE(EVP_PKEY_get_octet_string_param(key.get(), "encoded-pub-key", point, sizeof point, &len) == 1);
  REQUIRE(len == 65);
  std::string from(reinterpret_cast<char*>(point), len), to = from;
  to.back() = static_cast<char>(to.back() ^ 0x01);
  patch(der, from, to);
  expect_csr_rejection("secc", file_with("off-curve.der", der), "csr.bad_public_key");
}

// =================================================================================
// CSR encoding: one PEM CERTIFICATE REQUEST block or DER, nothing else

TEST_CASE("a truncated DER CSR is refused as malformed DER", "[bad-input][csr][encoding]") {
  auto key = make_key("P-256");
  Bytes der = make_csr_der(key.get(), kSeccSubject);
  der.resize(der.size() / 2);
  expect_csr_rejection("secc", file_with("truncated.der", der), "csr.malformed_der");
}

TEST_CASE("garbage bytes are refused as neither PEM nor DER", "[bad-input][csr][encoding]") {
  Bytes garbage;
  std::uint32_t x = 2463534242u;
  for (int i = 0; i < 600; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    garbage.push_back(static_cast<std::uint8_t>(x));
  }
  garbage[0] = 0x13;  // not a SEQUENCE tag, not '-'
  expect_csr_rejection("secc", file_with("garbage.bin", garbage), "csr.malformed_der");
}

TEST_CASE("a truncated PEM CSR is refused as malformed PEM", "[bad-input][csr][encoding]") {
  auto key = make_key("P-256");
  std::string pem = make_csr_pem(key.get(), kSeccSubject);
  expect_csr_rejection("secc", file_with("truncated.pem", pem.substr(0, pem.size() - 60)), "csr.malformed_pem");
}

TEST_CASE("the PEM of a certificate is refused where a CSR is expected", "[bad-input][csr][encoding]") {
  auto chain = shared_pki().gt("chain --profile secc");
  REQUIRE(chain.exit_code == 0);
  expect_csr_rejection("secc", file_with("cert.pem", cert_pem_of_chain_first(chain.out)), "csr.malformed_pem");
}

TEST_CASE("the DER of a certificate is refused where a CSR is expected", "[bad-input][csr][encoding]") {
  auto chain = shared_pki().gt("chain --profile secc");
  REQUIRE(chain.exit_code == 0);
  std::string pem = cert_pem_of_chain_first(chain.out);
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(cert);
  int n = i2d_X509(cert.get(), nullptr);
  Bytes der(static_cast<std::size_t>(n));
  unsigned char* p = der.data();
  i2d_X509(cert.get(), &p);
  expect_csr_rejection("secc", file_with("cert.der", der), "csr.malformed_der");
}

TEST_CASE("the PEM of a private key is refused where a CSR is expected", "[bad-input][csr][encoding]") {
  auto key = make_key("P-256");
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  expect_csr_rejection("secc", file_with("key.pem", std::string(data, static_cast<std::size_t>(n))),
                       "csr.malformed_pem");
}

TEST_CASE("data after the PEM block of a CSR is refused", "[bad-input][csr][encoding]") {
  auto key = make_key("P-256");
  std::string pem = make_csr_pem(key.get(), kSeccSubject) + "trailing garbage\n";
  expect_csr_rejection("secc", file_with("trailing.pem", pem), "csr.malformed_pem");
}

TEST_CASE("a second PEM block after the CSR is refused", "[bad-input][csr][encoding]") {
  auto a = make_key("P-256"), b = make_key("P-256");
  std::string pem = make_csr_pem(a.get(), kSeccSubject) + make_csr_pem(b.get(), "CN=DEABCE5678,O=x,DC=CPO");
  expect_csr_rejection("secc", file_with("two-blocks.pem", pem), "csr.malformed_pem");
}

TEST_CASE("bytes after a DER CSR are refused", "[bad-input][csr][encoding]") {
  auto key = make_key("P-256");
  Bytes der = make_csr_der(key.get(), kSeccSubject);
  der.push_back(0x00);
  der.push_back(0x00);
  expect_csr_rejection("secc", file_with("trailing.der", der), "csr.malformed_der");
}

TEST_CASE("an empty CSR file is refused", "[bad-input][csr][encoding]") {
  expect_csr_rejection("secc", file_with("empty.csr", std::string()), "csr.malformed");
}

TEST_CASE("a CSR file larger than 16 KiB is refused before it is parsed", "[bad-input][csr][encoding]") {
  auto key = make_key("P-256");
  // A valid CSR followed by whitespace (which alone would be accepted) past the limit.
  std::string pem = make_csr_pem(key.get(), kSeccSubject);
  pem.append(16 * 1024 + 1 - pem.size(), '\n');
  REQUIRE(pem.size() == 16 * 1024 + 1);
  expect_csr_rejection("secc", file_with("oversized.pem", pem), "csr.too_large");
}

TEST_CASE("a CSR path that does not exist is refused as unreadable", "[bad-input][csr][file]") {
  expect_csr_rejection("secc", work() / "no-such-file.csr", "usage.unreadable_file");
}

TEST_CASE("a CSR path that is a directory is refused as unreadable, not as an empty CSR", "[bad-input][csr][file]") {
  fs::create_directories(work() / "a-directory");
  expect_csr_rejection("secc", work() / "a-directory", "usage.unreadable_file");
}

// =================================================================================
// Subject rules of the role

TEST_CASE("a contract CN that is not an eMAID is refused", "[bad-input][subject]") {
  expect_csr_rejection("contract", pem_csr("bad-emaid.csr", "P-256", "CN=DE-AB-12,O=gridtrust demo,DC=MO"),
                       "subject.bad_emaid");
}

TEST_CASE("an OEM provisioning CN that is not a PCID is refused", "[bad-input][subject]") {
  expect_csr_rejection("oem-provisioning", pem_csr("bad-pcid.csr", "P-256", "CN=WMI-1234,O=gridtrust demo,DC=OEM"),
                       "subject.bad_pcid");
}

TEST_CASE("a secc CN that is not an EVSE (SECC) ID is refused", "[bad-input][subject]") {
  expect_csr_rejection("secc", pem_csr("bad-secc-id.csr", "P-256", "CN=charger 7,O=gridtrust demo,DC=CPO"),
                       "subject.bad_secc_id");
}

TEST_CASE("a csms-server CN that is not a host name is refused", "[bad-input][subject]") {
  expect_csr_rejection("csms-server",
                       pem_csr("bad-host.csr", "P-256", "CN=csms_server.example.com,O=gridtrust demo"),
                       "subject.bad_hostname");
}

TEST_CASE("a wildcard host name is refused for an HSM-held csms-server key, and no key is left in the token",
          "[bad-input][subject]") {
  expect_rejection("issue --profile csms-server --generate-key --subject " + sh_quote("CN=*.example.com,O=demo"),
                   "subject.bad_hostname");
}

TEST_CASE("a secc subject without DC is refused: the role's DC is required", "[bad-input][subject]") {
  expect_csr_rejection("secc", pem_csr("no-dc.csr", "P-256", "CN=DEABCE1234,O=gridtrust demo"), "subject.dc_missing");
}

TEST_CASE("a secc subject with the wrong DC value is refused", "[bad-input][subject]") {
  expect_csr_rejection("secc", pem_csr("dc-v2g.csr", "P-256", "CN=DEABCE1234,O=gridtrust demo,DC=V2G"),
                       "subject.dc_mismatch");
}

TEST_CASE("a secc subject with two DC values is refused", "[bad-input][subject]") {
  expect_csr_rejection("secc", pem_csr("dc-two.csr", "P-256", "CN=DEABCE1234,O=gridtrust demo,DC=CPO,DC=CPO"),
                       "subject.dc_mismatch");
}

TEST_CASE("an OU is refused on secc, whose subject may not carry one", "[bad-input][subject]") {
  expect_csr_rejection("secc", pem_csr("ou-secc.csr", "P-256", "CN=DEABCE1234,O=gridtrust demo,OU=ops,DC=CPO"),
                       "subject.attribute_not_allowed");
}

TEST_CASE("a DC is refused on charging-station, whose profile names no DC", "[bad-input][subject]") {
  expect_csr_rejection("charging-station", pem_csr("dc-cs.csr", "P-256", "CN=station-0001,O=gridtrust demo,DC=CPO"),
                       "subject.attribute_not_allowed");
}

TEST_CASE("a locality is refused on charging-station (not in its allow list)", "[bad-input][subject]") {
  expect_csr_rejection("charging-station", pem_csr("l-cs.csr", "P-256", "CN=station-0001,O=gridtrust demo,L=Berlin"),
                       "subject.attribute_not_allowed");
}

TEST_CASE("an admin OU outside admin/operator/auditor is refused and no key is generated",
          "[bad-input][subject]") {
  expect_rejection("issue --profile admin --generate-key --subject " + sh_quote("CN=alice,O=gridtrust demo,OU=root"),
                   "subject.ou_not_allowed");
}

TEST_CASE("an admin CSR with an OU outside the list is refused", "[bad-input][subject]") {
  expect_csr_rejection("admin", pem_csr("admin-ou.csr", "P-256", "CN=bob,O=gridtrust demo,OU=superuser"),
                       "subject.ou_not_allowed");
}

TEST_CASE("a subject with two CNs is refused", "[bad-input][subject]") {
  expect_csr_rejection("charging-station",
                       pem_csr("two-cn.csr", "P-256", "CN=station-0001,CN=station-0002,O=gridtrust demo"),
                       "subject.duplicate_attribute");
}

TEST_CASE("a charging-station subject without O is refused", "[bad-input][subject]") {
  expect_csr_rejection("charging-station", pem_csr("no-o.csr", "P-256", "CN=station-0001"),
                       "subject.missing_attribute");
}

TEST_CASE("a CN longer than the X.520 bound of 64 characters is refused", "[bad-input][subject]") {
  Bytes der = raw_subject_csr_der({{NID_commonName, std::string(65, 'a')}, {NID_organizationName, "demo"}});
  expect_csr_rejection("charging-station", file_with("long-cn.der", der), "subject.too_long");
}

TEST_CASE("a CN with an embedded NUL byte is refused", "[bad-input][subject]") {
  Bytes der = raw_subject_csr_der({{NID_commonName, std::string("station\0evil", 12)}, {NID_organizationName, "demo"}});
  expect_csr_rejection("charging-station", file_with("nul-cn.der", der), "subject.bad_encoding");
}

TEST_CASE("a --subject without TYPE=value is refused as malformed", "[bad-input][subject]") {
  expect_rejection("issue --profile aggregator-signer --generate-key --subject " + sh_quote("aggregator-1"),
                   "subject.malformed");
}

TEST_CASE("a --subject with an attribute type gridtrust does not know is refused", "[bad-input][subject]") {
  expect_rejection("issue --profile aggregator-signer --generate-key --subject " + sh_quote("CN=agg,O=demo,XX=1"),
                   "subject.attribute_not_allowed");
}

TEST_CASE("an empty --subject is refused", "[bad-input][subject]") {
  expect_rejection("issue --profile aggregator-signer --generate-key --subject ''", "subject.empty");
}

// =================================================================================
// Profiles

TEST_CASE("an unknown profile is refused", "[bad-input][profile]") {
  expect_csr_rejection("no-such-profile", pem_csr("ok1.csr", "P-256", kSeccSubject), "profile.unknown");
}

TEST_CASE("a CA profile cannot be used to issue a leaf", "[bad-input][profile]") {
  expect_csr_rejection("cpo-sub2", pem_csr("ok2.csr", "P-256", kSeccSubject), "profile.not_leaf");
}

TEST_CASE("--generate-key is refused for a profile whose key the subject holds", "[bad-input][profile]") {
  expect_rejection("issue --profile secc --generate-key --subject " + sh_quote(kSeccSubject), "profile.no_hsm_key");
}

TEST_CASE("--key-type outside the profile's keys makes no key in the token", "[bad-input][profile]") {
  // ocsp-signer allows P-256 only; aggregator-signer allows P-256/384/521 and Ed25519.
  expect_rejection("issue --profile ocsp-signer --generate-key --key-type P-384 --subject " + sh_quote("CN=ocsp,O=b"),
                   "csr.curve_not_allowed");
  expect_rejection("issue --profile ocsp-signer --generate-key --key-type Ed25519 --subject " + sh_quote("CN=ocsp,O=b"),
                   "csr.key_type_not_allowed");
  expect_rejection("issue --profile aggregator-signer --generate-key --key-type Ed448 --subject " + sh_quote("CN=a,O=b"),
                   "csr.key_type_not_allowed");
}

TEST_CASE("--key-type must name a key type and goes with --generate-key", "[bad-input][usage]") {
  expect_rejection("issue --profile aggregator-signer --generate-key --key-type RSA --subject " + sh_quote("CN=a,O=b"),
                   "usage.bad_value");
  expect_rejection("issue --profile aggregator-signer --key-type P-384 --csr " +
                       sh_quote(pem_csr("kt1.csr", "P-384", "CN=a,O=b")),
                   "usage.bad_combination");
}

TEST_CASE("a CRL cannot be made for a leaf profile", "[bad-input][profile]") {
  expect_rejection("crl --issuer secc", "profile.not_ca");
}

TEST_CASE("a CRL for an unknown issuer is refused", "[bad-input][profile]") {
  expect_rejection("crl --issuer no-such-ca", "profile.unknown");
}

TEST_CASE("the chain of an unknown profile is refused", "[bad-input][profile]") {
  expect_rejection("chain --profile no-such-profile", "profile.unknown");
}

// =================================================================================
// Validity

TEST_CASE("--validity-days beyond the profile's maximum is refused", "[bad-input][validity]") {
  expect_rejection("issue --profile secc --validity-days 366 --csr " + sh_quote(pem_csr("v1.csr", "P-256", kSeccSubject)),
                   "validity.exceeds_profile");
}

TEST_CASE("--validity-days 0 is refused", "[bad-input][validity]") {
  expect_rejection("issue --profile secc --validity-days 0 --csr " + sh_quote(pem_csr("v2.csr", "P-256", kSeccSubject)),
                   "validity.invalid");
}

TEST_CASE("a negative --validity-days is refused", "[bad-input][validity]") {
  expect_rejection("issue --profile secc --validity-days -5 --csr " + sh_quote(pem_csr("v3.csr", "P-256", kSeccSubject)),
                   "validity.invalid");
}

TEST_CASE("a non-numeric --validity-days is refused", "[bad-input][validity]") {
  auto csr = sh_quote(pem_csr("v4.csr", "P-256", kSeccSubject));
  for (const char* v : {"thirty", "30days", "3.5", "''", "99999999999"}) {
    SECTION(std::string("value ") + v) {
      expect_rejection("issue --profile secc --validity-days " + std::string(v) + " --csr " + csr, "usage.bad_value");
    }
  }
}

// =================================================================================
// Usage

TEST_CASE("an unknown option is refused", "[bad-input][usage]") {
  expect_rejection("issue --profile secc --csr " + sh_quote(pem_csr("u1.csr", "P-256", kSeccSubject)) + " --force",
                   "usage.unknown_option");
}

TEST_CASE("a flag given a value is refused", "[bad-input][usage]") {
  expect_rejection("list --json=yes", "usage.unknown_option");
}

TEST_CASE("an unknown command is refused", "[bad-input][usage]") {
  expect_rejection("isue --profile secc", "usage.unknown_command");
}

TEST_CASE("audit without the verify subcommand is refused", "[bad-input][usage]") {
  expect_rejection("audit", "usage.unknown_command");
}

TEST_CASE("issue without --profile is refused", "[bad-input][usage]") {
  expect_rejection("issue --csr " + sh_quote(pem_csr("u2.csr", "P-256", kSeccSubject)), "usage.missing_option");
}

TEST_CASE("an option without its value is refused", "[bad-input][usage]") {
  auto csr = pem_csr("u3.csr", "P-256", kSeccSubject);
  const Snapshot& before = shared_baseline();
  auto r = run(gt_cmd("issue --profile secc --csr " + sh_quote(csr) + " --data-dir " +
                      sh_quote(shared_pki().data_dir()) + " --validity-days"));
  check_rejected(r, "usage.missing_value");
  CHECK(snapshot(shared_pki().data_dir()) == before);
}

TEST_CASE("--csr and --generate-key together are refused", "[bad-input][usage]") {
  expect_rejection("issue --profile aggregator-signer --generate-key --subject " + sh_quote("CN=a,O=b") + " --csr " +
                       sh_quote(pem_csr("u4.csr", "P-256", "CN=a,O=b")),
                   "usage.bad_combination");
}

TEST_CASE("issue with neither --csr nor --generate-key is refused", "[bad-input][usage]") {
  expect_rejection("issue --profile secc", "usage.bad_combination");
}

TEST_CASE("--generate-key without --subject is refused", "[bad-input][usage]") {
  expect_rejection("issue --profile aggregator-signer --generate-key", "usage.missing_option");
}

TEST_CASE("a stray positional argument is refused, not ignored", "[bad-input][usage]") {
  expect_rejection("issue --profile secc " + sh_quote(pem_csr("u5.csr", "P-256", kSeccSubject)),
                   "usage.unexpected_argument");
  expect_rejection("list extra", "usage.unexpected_argument");
}

TEST_CASE("list --status accepts only valid or revoked", "[bad-input][usage]") {
  expect_rejection("list --status expired", "usage.bad_value");
}

TEST_CASE("show without a serial is refused", "[bad-input][usage]") {
  expect_rejection("show", "usage.missing_argument");
}

TEST_CASE("show with a serial that is not hexadecimal is refused as a bad serial", "[bad-input][usage]") {
  expect_rejection("show XYZ-123", "usage.bad_serial");
}

TEST_CASE("show with an unknown serial is not found", "[bad-input][notfound]") {
  expect_rejection("show 0123456789ABCDEF", "notfound.certificate");
}

TEST_CASE("an --out path in a missing directory is refused before anything is issued", "[bad-input][usage]") {
  expect_rejection("issue --profile secc --csr " + sh_quote(pem_csr("u6.csr", "P-256", kSeccSubject)) + " --out " +
                       sh_quote(work() / "missing-dir/leaf.pem"),
                   "usage.unwritable_file");
}

TEST_CASE("a CRL --out path in a missing directory is refused before a CRL number is used", "[bad-input][usage]") {
  expect_rejection("crl --issuer cpo-sub2 --out " + sh_quote(work() / "missing-dir/crl.pem"), "usage.unwritable_file");
}

TEST_CASE("issue-bulk with an unreadable CSR list is refused", "[bad-input][usage]") {
  expect_rejection("issue-bulk --profile charging-station --csr-list " + sh_quote(work() / "no-such-list"),
                   "usage.unreadable_file");
}

TEST_CASE("a command without --data-dir (and no GRIDTRUST_DATA_DIR) is refused", "[bad-input][usage]") {
  for (const char* args : {"list", "audit verify", "init"}) {
    SECTION(args) {
      auto r = run("env -u GRIDTRUST_DATA_DIR " + gt_cmd(args));
      check_rejected(r, "usage.missing_option");
    }
  }
  auto r = run("env -u GRIDTRUST_DATA_DIR " + gt_cmd("issue --profile secc --csr " +
                                                     sh_quote(pem_csr("u7.csr", "P-256", kSeccSubject))));
  check_rejected(r, "usage.missing_option");
  CHECK(snapshot(shared_pki().data_dir()) == shared_baseline());
}

// =================================================================================
// Data directories

TEST_CASE("a data directory that was never initialised is refused and left untouched", "[bad-input][config]") {
  TempDir dir;
  std::string empty = dir / "empty";
  fs::create_directories(empty);
  auto csr = pem_csr("c1.csr", "P-256", kSeccSubject);
  for (const std::string& args : {std::string("list"), std::string("issue --profile secc --csr ") + sh_quote(csr),
                                  std::string("revoke 01 --reason keyCompromise"), std::string("audit verify")}) {
    INFO(args);
    check_rejected(run(gt_cmd(args + " --data-dir " + sh_quote(empty))), "config.missing");
    CHECK(fs::is_empty(empty));
  }
  std::string missing = dir / "missing";
  check_rejected(run(gt_cmd("list --data-dir " + sh_quote(missing))), "config.missing");
  CHECK_FALSE(fs::exists(missing));
}

TEST_CASE("init refuses a directory that is not empty and leaves it as it was", "[bad-input][init]") {
  TempDir dir;
  write_file(dir / "precious.txt", "keep me");
  auto before = dir_listing(dir.str());
  check_rejected(run(gt_cmd("init --data-dir " + sh_quote(dir.str()))), "init.dir_not_empty");
  CHECK(dir_listing(dir.str()) == before);
  CHECK(read_file(dir / "precious.txt") == "keep me");

  // An initialised PKI is not empty either: a second init must not replace it.
  const Snapshot& pki_before = shared_baseline();
  check_rejected(run(gt_cmd("init --data-dir " + sh_quote(shared_pki().data_dir()))), "init.dir_not_empty");
  CHECK(snapshot(shared_pki().data_dir()) == pki_before);
}

TEST_CASE("init refuses a data directory path that is a file", "[bad-input][init]") {
  TempDir dir;
  write_file(dir / "file", "x");
  check_rejected(run(gt_cmd("init --data-dir " + sh_quote(dir / "file"))), "init.not_a_directory");
  CHECK(read_file(dir / "file") == "x");
}

TEST_CASE("init refuses invalid profiles before it creates anything", "[bad-input][init]") {
  TempDir dir;
  std::string profiles = dir / "profiles.yaml";
  write_file(profiles, "profiles:\n  broken:\n    kind: leaf\n    issuer: nowhere\n");
  std::string data = dir / "data";
  fs::create_directories(data);
  check_rejected(run(gt_cmd("init --profiles " + sh_quote(profiles) + " --data-dir " + sh_quote(data))),
                 "config.invalid");
  CHECK(fs::is_empty(data));
}

// =================================================================================
// Revocation

TEST_CASE("an unknown revocation reason is refused", "[bad-input][revocation]") {
  auto root = record_of_profile(shared_pki().data_dir(), "cpo-sub2");
  expect_rejection("revoke " + str(root.at("serial")) + " --reason becauseISaidSo", "revocation.bad_reason");
}

TEST_CASE("revoking a serial the store does not hold is not found", "[bad-input][revocation]") {
  expect_rejection("revoke 7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF --reason keyCompromise", "notfound.certificate");
}

TEST_CASE("revoking a serial that is not hexadecimal is refused", "[bad-input][revocation]") {
  expect_rejection("revoke not-a-serial --reason keyCompromise", "usage.bad_serial");
  expect_rejection("revoke " + std::string(42, 'A') + " --reason keyCompromise", "usage.bad_serial");
}

TEST_CASE("revoke without a serial is refused", "[bad-input][revocation]") {
  expect_rejection("revoke --reason keyCompromise", "usage.missing_argument");
}

TEST_CASE("a revoked issuer issues nothing, and revoking it twice is a conflict", "[bad-input][issuer]") {
  InitializedPki pki;
  // `gridtrust init` issues gridtrustd's TLS certificate, the first admin certificate
  // the OCSP signer and the command signer under CPO Sub-CA 2. Revoke them first: a second keyCompromise
  // revocation of a CA still completes an unfinished cascade, and only a CA with
  // nothing left below it makes that second revocation the conflict tested here.
  for (const char* leaf : {"csms-server", "admin", "ocsp-signer", "aggregator-signer"})
    REQUIRE(pki.gt("revoke " + str(record_of_profile(pki.data_dir(), leaf).at("serial")) + " --reason superseded")
                .exit_code == 0);
  auto sub2 = record_of_profile(pki.data_dir(), "cpo-sub2");
  std::string serial = str(sub2.at("serial"));
  // superseded: no cascade, so only the issuer's own status stops issuance.
  auto rv = pki.gt("revoke " + serial + " --reason superseded");
  REQUIRE(rv.exit_code == 0);
  Snapshot before = snapshot(pki.data_dir());

  auto csr = pem_csr("revoked-issuer.csr", "P-256", kSeccSubject);
  check_rejected(pki.gt("issue --profile secc --csr " + sh_quote(csr)), "issuer.revoked");
  check_rejected(pki.gt("issue --profile aggregator-signer --generate-key --subject " + sh_quote("CN=agg-1,O=demo")),
                 "issuer.revoked");
  check_rejected(pki.gt("revoke " + serial + " --reason keyCompromise"), "conflict.already_revoked");
  CHECK(snapshot(pki.data_dir()) == before);
}

TEST_CASE("an explicit validity past the issuer's notAfter is refused; the default is capped at it",
          "[bad-input][validity][issuer]") {
  // A profile set in which cpo-sub2 lives 10 days and secc leaves up to 365.
  std::string profiles = read_file(std::string(GRIDTRUST_SOURCE_DIR) + "/config/profiles.yaml");
  auto at = profiles.find("\n  cpo-sub2:\n");
  REQUIRE(at != std::string::npos);
  auto vd = profiles.find("validity_days:", at);
  auto eol = profiles.find('\n', vd);
  profiles.replace(vd, eol - vd, "validity_days: 10");
  auto secc = profiles.find("\n  secc:\n");
  REQUIRE(secc != std::string::npos);
  auto svd = profiles.find("validity_days:", secc);
  REQUIRE(profiles.substr(svd, profiles.find('\n', svd) - svd) == "validity_days: 365");

  TempDir dir;
  std::string profiles_file = dir / "profiles-short-sub2.yaml";
  write_file(profiles_file, profiles);
  std::string data = dir / "pki";
  auto init = run(gt_cmd("init --profiles " + sh_quote(profiles_file) + " --data-dir " + sh_quote(data)));
  REQUIRE(init.exit_code == 0);
  auto sub2 = record_of_profile(data, "cpo-sub2");

  Snapshot before = snapshot(data);
  auto csr = pem_csr("beyond.csr", "P-256", kSeccSubject);
  auto r = run(gt_cmd("issue --profile secc --validity-days 30 --csr " + sh_quote(csr) + " --data-dir " + sh_quote(data)));
  check_rejected(r, "validity.beyond_issuer");
  CHECK(snapshot(data) == before);

  // Within the issuer's life an explicit validity is fine...
  auto ok = run(gt_cmd("issue --profile secc --validity-days 5 --json --csr " + sh_quote(csr) + " --data-dir " +
                       sh_quote(data)));
  REQUIRE(ok.exit_code == 0);
  // ...and without one the leaf ends exactly when its issuer does.
  auto capped = run(gt_cmd("issue --profile secc --json --csr " + sh_quote(csr) + " --data-dir " + sh_quote(data)));
  REQUIRE(capped.exit_code == 0);
  auto rec = json::parse(capped.out).as_object();
  CHECK(str(rec.at("not_after")) == str(sub2.at("not_after")));
  std::string chain = str(rec.at("chain_pem"));
  BioPtr bio(BIO_new_mem_buf(chain.data(), static_cast<int>(chain.size())));
  X509Ptr leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  X509Ptr issuer(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(leaf);
  REQUIRE(issuer);
  CHECK(ASN1_TIME_compare(X509_get0_notAfter(leaf.get()), X509_get0_notAfter(issuer.get())) == 0);
  CHECK(certificate_count(data) == json::parse(before.certificates).as_array().size() + 2);
}

// =================================================================================
// Issuer life, with the CA's injectable clock (in-process)

namespace {

struct InProcessCa {
  std::shared_ptr<hsm::Token> token;
  std::shared_ptr<store::SqliteStore> store;
  std::unique_ptr<pki::CertificateAuthority> ca;
};

InProcessCa open_ca_at(const std::string& data_dir, std::function<TimePoint()> clock) {
  auto config = app::load_app_config(data_dir);
  REQUIRE(config.ok());
  auto profiles = pki::load_profiles(config->profiles_path);
  REQUIRE(profiles.ok());
  app::use_softhsm2_conf(*config);
  auto pin = hsm::read_pin(config->pin);
  REQUIRE(pin.ok());
  hsm::TokenConfig tc;
  tc.module_path = config->module_path;
  tc.token_uri = config->token_uri;
  tc.pin = std::move(pin).value();
  auto token = hsm::Token::open(std::move(tc));
  REQUIRE(token.ok());
  auto st = store::SqliteStore::open(config->store_path);
  REQUIRE(st.ok());
  InProcessCa out;
  out.token = std::shared_ptr<hsm::Token>(std::move(token).value());
  out.store = std::shared_ptr<store::SqliteStore>(std::move(st).value());
  pki::PkiConfig pc;
  pc.endpoints = config->endpoints;
  pc.now = std::move(clock);
  out.ca = std::make_unique<pki::CertificateAuthority>(std::move(profiles).value(), out.token, out.store, pc);
  return out;
}

}  // namespace

TEST_CASE("an issuer past its notAfter issues nothing; one before its notBefore neither", "[bad-input][issuer]") {
  InitializedPki pki;
  Snapshot before = snapshot(pki.data_dir());
  auto key = make_key("P-256");
  Bytes csr = make_csr_der(key.get(), kSeccSubject);
  pki::IssueOptions opt;
  opt.actor = "test";
  {
    // 50 years on, every CA of the chain has expired; cpo-sub2 is checked first.
    auto ca = open_ca_at(pki.data_dir(), [] { return now_seconds() + std::chrono::days(50 * 365); });
    auto r = ca.ca->issue_from_csr("secc", csr, opt);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "issuer.expired");
    CHECK(exit_code_for(r.error().code) == 5);
    CHECK(http_status_for(r.error().code) == 409);
    auto g = ca.ca->issue_with_hsm_key("aggregator-signer", "CN=agg-1,O=demo", opt);
    REQUIRE_FALSE(g.ok());
    CHECK(g.error().code == "issuer.expired");
  }
  {
    // A clock a year behind: the issuer is not valid yet.
    auto ca = open_ca_at(pki.data_dir(), [] { return now_seconds() - std::chrono::days(365); });
    auto r = ca.ca->issue_from_csr("secc", csr, opt);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "issuer.not_yet_valid");
  }
  CHECK(snapshot(pki.data_dir()) == before);
}
