// protocol/ocpp_certificates.h: OCPP 2.0.1/2.1 certificate management against a real
// CA in a SoftHSM2 token, checked with OpenSSL as the independent party (chain
// verification, `openssl ocsp` CertIDs and responses).
#include <catch2/catch.hpp>

#include <regex>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "pki/certificate_builder.h"
#include "pki/profile_loader.h"
#include "pki/subject.h"
#include "protocol/ocpp_certificates.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

using namespace gridtrust;
namespace json = boost::json;
namespace ocpp = protocol::ocpp;
using ocpp::Version;

namespace {

constexpr const char* kFleet = "gridtrust demo";

struct Fixture {
  test::SoftHsmToken hsm;
  test::TempDir dir;
  std::shared_ptr<store::SqliteStore> store;
  std::unique_ptr<pki::CertificateAuthority> ca;
  std::unique_ptr<pki::OcspResponder> ocsp;

  Fixture() {
    auto profiles = pki::load_profiles(std::string(GRIDTRUST_SOURCE_DIR) + "/config/profiles.yaml");
    REQUIRE(profiles.ok());
    // A root outside the ISO 15118 PKIs (no DC): the only kind a
    // ManufacturerRootCertificate may be.
    pki::Profile mfr = profiles->profiles.at("v2g-root");
    mfr.name = mfr.issuer = "mfr-root";
    mfr.subject.dc.reset();
    mfr.subject.required = {"CN", "O"};
    mfr.subject.allowed = {"CN", "O", "C"};
    mfr.default_subject = "CN=gridtrust Manufacturer Root,O=gridtrust demo,C=DE";
    profiles->profiles["mfr-root"] = mfr;
    auto st = store::SqliteStore::open(dir / "pki.db");
    REQUIRE(st.ok());
    store = std::move(st).value();
    pki::PkiConfig cfg;
    cfg.endpoints = {"http://127.0.0.1:8081/crl/", "http://127.0.0.1:8081/ocsp"};
    ca = std::make_unique<pki::CertificateAuthority>(std::move(*profiles), hsm.token(), store, cfg);
    REQUIRE(ca->create_hierarchy("test").ok());
    pki::OcspResponderConfig oc;
    oc.log = [](const Rejection&) {};
    auto r = pki::OcspResponder::create(*ca, std::move(oc), now_seconds());
    REQUIRE(r.ok());
    ocsp = std::move(r).value();
  }

  std::string pem_of_chain(const std::string& profile) {
    auto chain = ca->chain(profile);
    REQUIRE(chain.ok());
    std::string out;
    for (const auto& der : *chain) out += pki::certificate_pem(pki::certificate_from_der(der)->get());
    return out;
  }
  std::string root_pem(const std::string& profile) {
    auto chain = ca->chain(profile);
    REQUIRE(chain.ok());
    return pki::certificate_pem(pki::certificate_from_der(chain->back())->get());
  }
  std::size_t certificate_count() {
    auto rows = store->list({});
    REQUIRE(rows.ok());
    return rows->size();
  }
  std::string audit_head() {
    auto head = store->audit_head();
    REQUIRE(head.ok());
    return head->hash;
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

std::string csr(const std::string& key_type, const std::string& subject) {
  auto key = test::make_key(key_type);
  return test::make_csr_pem(key.get(), subject);
}

json::value payload(const std::string& text) {
  auto v = ocpp::parse_payload(text);
  REQUIRE(v.ok());
  return std::move(v).value();
}

std::string json_text(const std::string& s) { return json::serialize(json::value(json::string(s))); }

const ocpp::Requester kAdmin{"test", std::nullopt};

std::string code_of_sign(Version v, const std::string& text, const ocpp::Requester& who = kAdmin) {
  auto& f = fixture();
  auto p = ocpp::parse_payload(text);
  if (!p.ok()) return p.error().code;
  auto r = ocpp::sign_certificate(*f.ca, v, *p, who);
  return r.ok() ? "ok" : r.error().code;
}

std::string code_of_status(Version v, const std::string& text) {
  auto& f = fixture();
  auto p = ocpp::parse_payload(text);
  if (!p.ok()) return p.error().code;
  auto r = ocpp::certificate_status(*f.ocsp, v, *p, now_seconds());
  return r.ok() ? "ok" : r.error().code;
}

// `openssl ocsp -req_text` of a request: the CertID fields, as printed.
struct OpensslCertId {
  std::string name_hash, key_hash, serial;
};
OpensslCertId certid_text(const std::string& printed) {
  // openssl wraps long hashes: a backslash, a newline, the indent.
  const std::string text = std::regex_replace(printed, std::regex("\\\\\n\\s*"), "");
  OpensslCertId out;
  std::smatch m;
  if (std::regex_search(text, m, std::regex("Issuer Name Hash: ([0-9A-Fa-f]+)"))) out.name_hash = m[1];
  if (std::regex_search(text, m, std::regex("Issuer Key Hash: ([0-9A-Fa-f]+)"))) out.key_hash = m[1];
  if (std::regex_search(text, m, std::regex("Serial Number: ([0-9A-Fa-f]+)"))) out.serial = m[1];
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string no_leading_zeros(std::string s) {
  auto nz = s.find_first_not_of('0');
  return nz == std::string::npos ? "0" : s.substr(nz);
}

// An independent CertID for (cert, issuer) from the openssl command line.
OpensslCertId openssl_certid(const std::string& cert_pem, const std::string& issuer_pem, const char* digest) {
  test::TempDir work;
  test::write_file(work / "cert.pem", cert_pem);
  test::write_file(work / "issuer.pem", issuer_pem);
  auto made = test::run("openssl ocsp -" + std::string(digest) + " -issuer " + test::sh_quote(work / "issuer.pem") +
                        " -cert " + test::sh_quote(work / "cert.pem") + " -no_nonce -reqout " +
                        test::sh_quote(work / "req.der"));
  INFO(made.describe());
  REQUIRE(made.exit_code == 0);
  auto text = test::run("openssl ocsp -reqin " + test::sh_quote(work / "req.der") + " -req_text");
  INFO(text.describe());
  REQUIRE(text.exit_code == 0);
  return certid_text(text.out);
}

// Signs a CSR through the OCPP payload and checks the chain: leaf first (the CSR's
// subject), then the Sub-CAs, no root, verifying with OpenSSL up to the profile's root.
json::object sign_and_check(Version v, const json::object& request, const std::string& profile,
                            const std::string& cn, const ocpp::Requester& who = kAdmin) {
  auto& f = fixture();
  auto r = ocpp::sign_certificate(*f.ca, v, request, who);
  INFO(json::serialize(request));
  if (!r.ok()) FAIL(r.error().code << ": " << r.error().message);
  CHECK(r->record.profile == profile);
  const json::object& out = r->payload;
  std::string chain(out.at("certificateChain").as_string());
  auto certs = test::split_pem_certs(chain);
  REQUIRE(certs.size() == 3);  // leaf, Sub-CA 2, Sub-CA 1
  auto leaf = test::parse_cert(certs[0]);
  REQUIRE(leaf);
  CHECK(pki::common_name(X509_get_subject_name(leaf.get())) == cn);
  for (const auto& pem : certs) {
    auto c = test::parse_cert(pem);
    CHECK(X509_NAME_cmp(X509_get_subject_name(c.get()), X509_get_issuer_name(c.get())) != 0);  // no root
  }
  test::TempDir work;
  test::write_file(work / "root.pem", f.root_pem(profile));
  test::write_file(work / "leaf.pem", certs[0]);
  test::write_file(work / "subs.pem", certs[1] + certs[2]);
  auto verified = test::run("openssl verify -CAfile " + test::sh_quote(work / "root.pem") + " -untrusted " +
                            test::sh_quote(work / "subs.pem") + " " + test::sh_quote(work / "leaf.pem"));
  INFO(verified.describe());
  CHECK(verified.exit_code == 0);
  CHECK(verified.out.find(": OK") != std::string::npos);
  return out;
}

json::object sign_request(const std::string& csr_pem, std::optional<std::string> type = std::nullopt) {
  json::object o{{"csr", csr_pem}};
  if (type) o["certificateType"] = *type;
  return o;
}

}  // namespace

TEST_CASE("OCPP 2.0.1: each certificateType is signed under its profile, leaf first, without the root",
          "[protocol][ocpp]") {
  auto out = sign_and_check(Version::v2_0_1,
                            sign_request(csr("P-256", "CN=station-0001,O=gridtrust demo"), "ChargingStationCertificate"),
                            "charging-station", "station-0001");
  CHECK(out.at("certificateType").as_string() == "ChargingStationCertificate");
  CHECK(out.size() == 2);  // certificateChain, certificateType: no requestId in 2.0.1

  out = sign_and_check(Version::v2_0_1,
                       sign_request(csr("P-256", "CN=DE*ABC*E9001,O=gridtrust demo,DC=CPO"), "V2GCertificate"), "secc",
                       "DE*ABC*E9001");
  CHECK(out.at("certificateType").as_string() == "V2GCertificate");

  // Without certificateType: one certificate for both connections, issued as a
  // charging-station one; the answer has no certificateType either.
  out = sign_and_check(Version::v2_0_1, sign_request(csr("P-384", "CN=station-0002,O=gridtrust demo")),
                       "charging-station", "station-0002");
  CHECK(!out.contains("certificateType"));
}

TEST_CASE("OCPP 2.1: requestId is echoed, V2G20Certificate is an ISO 15118-20 SECC, hashRootCertificate selects the PKI",
          "[protocol][ocpp]") {
  auto& f = fixture();
  json::object req = sign_request(csr("P-256", "CN=station-0003,O=gridtrust demo"), "ChargingStationCertificate");
  req["requestId"] = 42;
  req["customData"] = json::object{{"vendorId", "org.example"}, {"anything", json::array{1, 2}}};
  auto out = sign_and_check(Version::v2_1, req, "charging-station", "station-0003");
  CHECK(out.at("requestId").as_int64() == 42);
  CHECK(out.at("certificateType").as_string() == "ChargingStationCertificate");

  auto root = test::parse_cert(f.root_pem("secc-20"));
  auto root_hash = protocol::certificate_hash_data(root.get(), root.get(), protocol::HashAlgorithm::sha384);
  REQUIRE(root_hash.ok());
  req = sign_request(csr("P-521", "CN=DE*ABC*E9020,O=gridtrust demo,DC=CPO"), "V2G20Certificate");
  json::object hash = root_hash->to_json();
  // Case is not fixed by OCPP: upper-case hex names the same root.
  for (const char* k : {"issuerNameHash", "issuerKeyHash", "serialNumber"}) {
    std::string s(hash.at(k).as_string());
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    hash[k] = s;
  }
  req["hashRootCertificate"] = hash;
  req["requestId"] = 7.0;  // JSON Schema integer: a zero fraction counts
  out = sign_and_check(Version::v2_1, req, "secc-20", "DE*ABC*E9020");
  CHECK(out.at("certificateType").as_string() == "V2G20Certificate");
  CHECK(out.at("requestId").as_int64() == 7);

  out = sign_and_check(Version::v2_1,
                       sign_request(csr("P-256", "CN=DE*ABC*E9002,O=gridtrust demo,DC=CPO"), "V2GCertificate"), "secc",
                       "DE*ABC*E9002");
  CHECK(!out.contains("requestId"));
}

TEST_CASE("an aggregator has CSRs of its own organisation signed", "[protocol][ocpp]") {
  ocpp::Requester aggregator{"daemon:aggregator:test", std::string(kFleet)};
  sign_and_check(Version::v2_0_1,
                 sign_request(csr("P-256", "CN=station-0004,O=gridtrust demo"), "ChargingStationCertificate"),
                 "charging-station", "station-0004", aggregator);
}

TEST_CASE("certificateHashData matches openssl ocsp's CertID for leaves and CAs, serial without leading zeros",
          "[protocol][ocpp][interop]") {
  auto& f = fixture();
  auto signed_ = ocpp::sign_certificate(
      *f.ca, Version::v2_0_1,
      payload(json::serialize(sign_request(csr("P-256", "CN=DE*ABC*E9003,O=gridtrust demo,DC=CPO"), "V2GCertificate"))),
      kAdmin);
  REQUIRE(signed_.ok());
  auto certs = test::split_pem_certs(std::string(signed_->payload.at("certificateChain").as_string()));
  REQUIRE(certs.size() == 3);
  const std::string serial = signed_->record.serial;

  for (auto [alg, digest] : {std::pair{protocol::HashAlgorithm::sha256, "sha256"},
                             std::pair{protocol::HashAlgorithm::sha384, "sha384"},
                             std::pair{protocol::HashAlgorithm::sha512, "sha512"}}) {
    auto answer = ocpp::certificate_hash(*f.ca, Version::v2_0_1, serial, alg);
    REQUIRE(answer.ok());
    const json::object& hd = answer->at("request").as_object().at("certificateHashData").as_object();
    auto theirs = openssl_certid(certs[0], certs[1], digest);
    CHECK(std::string(hd.at("issuerNameHash").as_string()) == lower(theirs.name_hash));
    CHECK(std::string(hd.at("issuerKeyHash").as_string()) == lower(theirs.key_hash));
    CHECK(std::string(hd.at("serialNumber").as_string()) == lower(no_leading_zeros(theirs.serial)));
    CHECK(hd.at("serialNumber").as_string().front() != '0');
    CHECK(answer->at("action").as_string() == "DeleteCertificate");

    // The SECC leaf is reported as a V2GCertificateChain with its Sub-CAs as children.
    const json::object& entry = answer->at("expectedCertificateHashDataChain").as_object();
    CHECK(entry.at("certificateType").as_string() == "V2GCertificateChain");
    CHECK(entry.at("certificateHashData") == json::value(hd));
    const json::array& children = entry.at("childCertificateHashData").as_array();
    REQUIRE(children.size() == 2);
    auto sub2 = openssl_certid(certs[1], certs[2], digest);
    CHECK(std::string(children[0].as_object().at("issuerNameHash").as_string()) == lower(sub2.name_hash));
    CHECK(std::string(children[0].as_object().at("issuerKeyHash").as_string()) == lower(sub2.key_hash));
  }

  // A serial with leading zero octets and nibbles: "a0b", never "0a0b" or "000a0b".
  X509Ptr cert(X509_new());
  Asn1IntegerPtr s(ASN1_INTEGER_new());
  ASN1_INTEGER_set(s.get(), 0x0a0b);
  X509_set_serialNumber(cert.get(), s.get());
  auto issuer = test::parse_cert(certs[1]);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer.get()));
  auto hd = protocol::certificate_hash_data(cert.get(), issuer.get());
  REQUIRE(hd.ok());
  CHECK(hd->serial_number == "a0b");
}

TEST_CASE("the OCSP request built from ocspRequestData is the CertID openssl reads back", "[protocol][ocpp][interop]") {
  auto& f = fixture();
  auto chain = test::split_pem_certs(f.pem_of_chain("secc"));
  auto theirs = openssl_certid(chain[0], chain[1], "sha256");  // Sub-CA 2 under Sub-CA 1
  ocpp::OcspRequestData data;
  data.issuer_name_hash = *from_hex(theirs.name_hash);
  data.issuer_key_hash = *from_hex(theirs.key_hash);
  std::string serial = theirs.serial.size() % 2 ? "0" + theirs.serial : theirs.serial;
  data.serial = *from_hex(serial);
  test::TempDir work;
  Bytes der = ocpp::ocsp_request_der(data);
  test::write_file(work / "ours.der", std::string(der.begin(), der.end()));
  auto text = test::run("openssl ocsp -reqin " + test::sh_quote(work / "ours.der") + " -req_text");
  INFO(text.describe());
  REQUIRE(text.exit_code == 0);
  auto back = certid_text(text.out);
  CHECK(lower(back.name_hash) == lower(theirs.name_hash));
  CHECK(lower(back.key_hash) == lower(theirs.key_hash));
  CHECK(no_leading_zeros(back.serial) == no_leading_zeros(theirs.serial));
  CHECK(text.out.find("sha256") != std::string::npos);
}

TEST_CASE("GetCertificateStatus answers good, then revoked, with an ocspResult openssl parses",
          "[protocol][ocpp][interop]") {
  auto& f = fixture();
  for (Version v : {Version::v2_0_1, Version::v2_1}) {
    auto signed_ = ocpp::sign_certificate(
        *f.ca, v,
        payload(json::serialize(sign_request(csr("P-256", "CN=station-0100,O=gridtrust demo"), "ChargingStationCertificate"))),
        kAdmin);
    REQUIRE(signed_.ok());
    auto hash = ocpp::certificate_hash(*f.ca, v, signed_->record.serial);
    REQUIRE(hash.ok());
    json::object data = hash->at("certificateHashData").as_object();
    data["responderURL"] = v == Version::v2_1 ? "http://127.0.0.1:8081/ocsp/" + std::string(1000, 'a')
                                               : std::string("http://127.0.0.1:8081/ocsp");
    json::object request{{"ocspRequestData", data}};

    auto ask = [&](const char* expect) {
      auto r = ocpp::certificate_status(*f.ocsp, v, request, now_seconds());
      REQUIRE(r.ok());
      INFO(json::serialize(*r));
      REQUIRE(r->at("status").as_string() == "Accepted");
      auto der = base64_decode(std::string(r->at("ocspResult").as_string()));
      REQUIRE(der);
      test::TempDir work;
      test::write_file(work / "resp.der", std::string(der->begin(), der->end()));
      auto text = test::run("openssl ocsp -respin " + test::sh_quote(work / "resp.der") + " -resp_text -noverify");
      INFO(text.describe());
      REQUIRE(text.exit_code == 0);
      CHECK(text.out.find("OCSP Response Status: successful") != std::string::npos);
      CHECK(text.out.find(std::string("Cert Status: ") + expect) != std::string::npos);
      CHECK(text.out.find(signed_->record.serial) != std::string::npos);
      // Signed by the CA that issued it (no delegated signer in this PKI).
      auto chain = test::split_pem_certs(f.pem_of_chain("charging-station"));
      test::write_file(work / "signer.pem", chain[0]);
      auto verified = test::run("openssl ocsp -respin " + test::sh_quote(work / "resp.der") + " -VAfile " +
                                test::sh_quote(work / "signer.pem") + " -no_nonce");
      INFO(verified.describe());
      CHECK(verified.exit_code == 0);
      CHECK(verified.err.find("Response verify OK") != std::string::npos);
    };
    ask("good");
    REQUIRE(f.ca->revoke(signed_->record.serial, "keyCompromise", "test").ok());
    ask("revoked");
  }
}

TEST_CASE("GetCertificateStatus for an issuer this PKI does not have is Failed, not an error", "[protocol][ocpp]") {
  auto& f = fixture();
  json::object request{{"ocspRequestData",
                        {{"hashAlgorithm", "SHA256"},
                         {"issuerNameHash", std::string(64, 'a')},
                         {"issuerKeyHash", std::string(64, 'b')},
                         {"serialNumber", "1234"},
                         {"responderURL", "http://ocsp.example.com"}}}};
  auto r = ocpp::certificate_status(*f.ocsp, Version::v2_0_1, request, now_seconds());
  REQUIRE(r.ok());
  CHECK(r->at("status").as_string() == "Failed");
  CHECK(r->at("statusInfo").as_object().at("reasonCode").as_string() == "Unauthorized");
  CHECK(!r->contains("ocspResult"));
}

TEST_CASE("InstallCertificateRequest for each root type, with the entry GetInstalledCertificateIds will report",
          "[protocol][ocpp]") {
  auto& f = fixture();
  struct Case {
    Version v;
    const char* profile;
    const char* type;
  };
  for (auto c : {Case{Version::v2_0_1, "v2g-root", "V2GRootCertificate"},
                 Case{Version::v2_0_1, "mo-root", "MORootCertificate"},
                 Case{Version::v2_0_1, "v2g-root", "CSMSRootCertificate"},
                 Case{Version::v2_0_1, "mfr-root", "ManufacturerRootCertificate"},
                 Case{Version::v2_1, "oem-root", "OEMRootCertificate"},
                 Case{Version::v2_1, "v2g-root", "V2GRootCertificate"}}) {
    INFO(c.profile << " " << c.type);
    auto r = ocpp::install_certificate(*f.ca, c.v, c.profile, c.type);
    if (!r.ok()) FAIL(r.error().code << ": " << r.error().message);
    CHECK(r->at("action").as_string() == "InstallCertificate");
    const json::object& req = r->at("request").as_object();
    CHECK(req.size() == 2);
    CHECK(req.at("certificateType").as_string() == c.type);
    std::string pem(req.at("certificate").as_string());
    CHECK(pem == f.root_pem(c.profile));
    auto theirs = openssl_certid(pem, pem, "sha256");
    const json::object& entry = r->at("expectedCertificateHashDataChain").as_object();
    CHECK(entry.at("certificateType").as_string() == c.type);
    const json::object& hd = entry.at("certificateHashData").as_object();
    CHECK(std::string(hd.at("issuerNameHash").as_string()) == lower(theirs.name_hash));
    CHECK(std::string(hd.at("issuerKeyHash").as_string()) == lower(theirs.key_hash));
    CHECK(std::string(hd.at("serialNumber").as_string()) == lower(no_leading_zeros(theirs.serial)));
  }
  CHECK(ocpp::install_certificate(*f.ca, Version::v2_0_1, "oem-root", "OEMRootCertificate").error().code ==
        "ocpp.property_constraint_violation");  // 2.1 only
  CHECK(ocpp::install_certificate(*f.ca, Version::v2_0_1, "cpo-sub2", "V2GRootCertificate").error().code ==
        "profile.not_root");
  CHECK(ocpp::install_certificate(*f.ca, Version::v2_0_1, "mo-root", "V2GRootCertificate").error().code ==
        "profile.root_type_mismatch");
  // An ISO 15118 root must never become a firmware-signing trust anchor.
  CHECK(ocpp::install_certificate(*f.ca, Version::v2_0_1, "v2g-root", "ManufacturerRootCertificate").error().code ==
        "profile.root_type_mismatch");
  CHECK(ocpp::install_certificate(*f.ca, Version::v2_0_1, "nope", "V2GRootCertificate").error().code ==
        "profile.unknown");
}

TEST_CASE("TriggerMessageRequest for the certificate triggers of each version", "[protocol][ocpp]") {
  for (auto [v, msg] : {std::pair{Version::v2_0_1, "SignChargingStationCertificate"},
                        std::pair{Version::v2_0_1, "SignV2GCertificate"},
                        std::pair{Version::v2_0_1, "SignCombinedCertificate"},
                        std::pair{Version::v2_1, "SignV2G20Certificate"}}) {
    auto r = ocpp::trigger_message(v, msg);
    REQUIRE(r.ok());
    CHECK(r->at("request") == json::value(json::object{{"requestedMessage", msg}}));
  }
  CHECK(ocpp::trigger_message(Version::v2_0_1, "SignV2G20Certificate").error().code ==
        "ocpp.property_constraint_violation");
  CHECK(ocpp::trigger_message(Version::v2_1, "Heartbeat").error().code == "ocpp.not_supported");
  CHECK(ocpp::trigger_message(Version::v2_1, "signv2gcertificate").error().code ==
        "ocpp.property_constraint_violation");
}

TEST_CASE("malformed OCPP payloads each get their CallError code, nothing is issued and nothing crashes",
          "[protocol][ocpp][bad-input]") {
  auto& f = fixture();
  const std::size_t certificates_before = f.certificate_count();
  const std::string head_before = f.audit_head();

  const std::string cs = csr("P-256", "CN=station-0200,O=gridtrust demo");
  const std::string secc = csr("P-256", "CN=DE*ABC*E9200,O=gridtrust demo,DC=CPO");
  const std::string q = json_text(cs);
  const std::string qs = json_text(secc);
  auto mo_root = test::parse_cert(f.root_pem("contract"));
  auto mo_hash = protocol::certificate_hash_data(mo_root.get(), mo_root.get());
  REQUIRE(mo_hash.ok());
  std::string cert_pem = f.root_pem("secc");
  // The last octet of the signature's s changed: still DER, no longer the key's signature.
  auto bad_key = test::make_key("P-256");
  Bytes bad_der = test::make_csr_der(bad_key.get(), "CN=station-0203,O=gridtrust demo");
  bad_der.back() ^= 0x01;
  std::string bad_b64 = base64_encode(bad_der), bad_sig = "-----BEGIN CERTIFICATE REQUEST-----\n";
  for (std::size_t i = 0; i < bad_b64.size(); i += 64) bad_sig += bad_b64.substr(i, 64) + "\n";
  bad_sig += "-----END CERTIFICATE REQUEST-----\n";
  std::string hash_root = R"({"hashAlgorithm":"SHA256","issuerNameHash":")" + std::string(64, 'a') +
                          R"(","issuerKeyHash":")" + std::string(64, 'b') + R"(","serialNumber":"1")";

  struct Case {
    const char* name;
    Version v;
    std::string text;
    const char* code;
    ocpp::Requester who = kAdmin;
  };
  const ocpp::Requester other_fleet{"daemon:aggregator:x", std::string("Other Fleet")};
  std::vector<Case> cases = {
      {"an array", Version::v2_0_1, "[]", "ocpp.format_violation"},
      {"a string", Version::v2_0_1, "\"csr\"", "ocpp.format_violation"},
      {"truncated JSON", Version::v2_0_1, "{\"csr\":", "ocpp.format_violation"},
      {"duplicate csr", Version::v2_0_1, "{\"csr\":" + q + ",\"csr\":" + q + "}", "ocpp.format_violation"},
      {"duplicate certificateType", Version::v2_1,
       "{\"csr\":" + q + ",\"certificateType\":\"V2GCertificate\",\"certificateType\":\"ChargingStationCertificate\"}",
       "ocpp.format_violation"},
      {"non-UTF-8 bytes", Version::v2_0_1, "{\"csr\":\"\xff\xfe\"}", "ocpp.format_violation"},
      {"a lone UTF-16 surrogate", Version::v2_0_1, "{\"csr\":\"\\ud800\"}", "ocpp.format_violation"},
      {"no csr", Version::v2_0_1, "{}", "ocpp.occurrence_constraint_violation"},
      {"only certificateType", Version::v2_1, R"({"certificateType":"V2GCertificate"})",
       "ocpp.occurrence_constraint_violation"},
      {"csr a number", Version::v2_0_1, R"({"csr":5})", "ocpp.type_constraint_violation"},
      {"csr null", Version::v2_0_1, R"({"csr":null})", "ocpp.type_constraint_violation"},
      {"csr an object", Version::v2_1, R"({"csr":{"pem":"x"}})", "ocpp.type_constraint_violation"},
      {"certificateType a number", Version::v2_0_1, "{\"csr\":" + q + ",\"certificateType\":1}",
       "ocpp.type_constraint_violation"},
      {"certificateType unknown", Version::v2_0_1, "{\"csr\":" + q + ",\"certificateType\":\"FooCertificate\"}",
       "ocpp.property_constraint_violation"},
      {"certificateType in the wrong case", Version::v2_1, "{\"csr\":" + q + ",\"certificateType\":\"v2gcertificate\"}",
       "ocpp.property_constraint_violation"},
      {"V2G20Certificate under 2.0.1", Version::v2_0_1, "{\"csr\":" + qs + ",\"certificateType\":\"V2G20Certificate\"}",
       "ocpp.property_constraint_violation"},
      {"requestId under 2.0.1", Version::v2_0_1, "{\"csr\":" + q + ",\"requestId\":1}",
       "ocpp.property_constraint_violation"},
      {"hashRootCertificate under 2.0.1", Version::v2_0_1, "{\"csr\":" + q + ",\"hashRootCertificate\":" + hash_root + "}}",
       "ocpp.property_constraint_violation"},
      {"an additional property", Version::v2_1, "{\"csr\":" + q + ",\"extra\":true}",
       "ocpp.property_constraint_violation"},
      {"csr over 5500 characters", Version::v2_0_1, "{\"csr\":\"" + std::string(5501, 'A') + "\"}",
       "ocpp.property_constraint_violation"},
      {"requestId a string", Version::v2_1, "{\"csr\":" + q + ",\"requestId\":\"1\"}", "ocpp.type_constraint_violation"},
      {"requestId a fraction", Version::v2_1, "{\"csr\":" + q + ",\"requestId\":1.5}", "ocpp.type_constraint_violation"},
      {"requestId a boolean", Version::v2_1, "{\"csr\":" + q + ",\"requestId\":true}", "ocpp.type_constraint_violation"},
      {"customData a string", Version::v2_0_1, "{\"csr\":" + q + ",\"customData\":\"x\"}",
       "ocpp.type_constraint_violation"},
      {"customData without vendorId", Version::v2_0_1, "{\"csr\":" + q + ",\"customData\":{}}",
       "ocpp.occurrence_constraint_violation"},
      {"vendorId over 255 characters", Version::v2_1,
       "{\"csr\":" + q + ",\"customData\":{\"vendorId\":\"" + std::string(256, 'v') + "\"}}",
       "ocpp.property_constraint_violation"},
      {"vendorId a number", Version::v2_1, "{\"csr\":" + q + ",\"customData\":{\"vendorId\":7}}",
       "ocpp.type_constraint_violation"},
      {"hashRootCertificate without serialNumber", Version::v2_1,
       "{\"csr\":" + q +
           R"(,"hashRootCertificate":{"hashAlgorithm":"SHA256","issuerNameHash":"aa","issuerKeyHash":"bb"}})",
       "ocpp.occurrence_constraint_violation"},
      {"hashRootCertificate with MD5", Version::v2_1,
       "{\"csr\":" + q +
           R"(,"hashRootCertificate":{"hashAlgorithm":"MD5","issuerNameHash":"aa","issuerKeyHash":"bb","serialNumber":"1"}})",
       "ocpp.property_constraint_violation"},
      {"hashRootCertificate not hex", Version::v2_1,
       "{\"csr\":" + q + R"(,"hashRootCertificate":{"hashAlgorithm":"SHA256","issuerNameHash":")" +
           std::string(64, 'z') + R"(","issuerKeyHash":")" + std::string(64, 'b') + R"(","serialNumber":"1"}})",
       "ocpp.format_violation"},
      {"hashRootCertificate with an additional property", Version::v2_1,
       "{\"csr\":" + q + ",\"hashRootCertificate\":" + hash_root + ",\"x\":1}}", "ocpp.property_constraint_violation"},
      {"hashRootCertificate of another PKI (the MO root)", Version::v2_1,
       "{\"csr\":" + qs + ",\"certificateType\":\"V2GCertificate\",\"hashRootCertificate\":" +
           json::serialize(mo_hash->to_json()) + "}",
       "ocpp.not_supported"},
      {"csr not PEM", Version::v2_0_1, R"({"csr":"MIIBhello"})", "ocpp.format_violation"},
      {"an empty csr (its schema has no minLength)", Version::v2_0_1, R"({"csr":""})", "ocpp.format_violation"},
      {"csr PEM of bad base64", Version::v2_0_1,
       R"({"csr":"-----BEGIN CERTIFICATE REQUEST-----\n!!!!****\n-----END CERTIFICATE REQUEST-----\n"})",
       "ocpp.format_violation"},
      {"csr PEM of a certificate", Version::v2_0_1, "{\"csr\":" + json_text(cert_pem) + "}", "ocpp.format_violation"},
      {"csr PEM with data after it", Version::v2_0_1, "{\"csr\":" + json_text(cs + "trailing") + "}",
       "ocpp.format_violation"},
      {"csr PEM with a NUL byte", Version::v2_0_1,
       R"({"csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\u0000AAAA\n-----END CERTIFICATE REQUEST-----\n"})",
       "ocpp.format_violation"},
      {"csr PEM whose DER is truncated", Version::v2_0_1,
       R"({"csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIBCjCBsQIBADAP\n-----END CERTIFICATE REQUEST-----\n"})",
       "ocpp.format_violation"},
      {"a contract (vehicle) subject for ChargingStationCertificate", Version::v2_0_1,
       "{\"csr\":" + json_text(csr("P-256", "CN=DE8AAA2B3C4D5E6,O=gridtrust demo,DC=MO")) +
           ",\"certificateType\":\"ChargingStationCertificate\"}",
       "ocpp.security_error"},
      {"a vehicle (OEM provisioning) subject for V2GCertificate", Version::v2_0_1,
       "{\"csr\":" + json_text(csr("P-256", "CN=WP0ZZZ99ZTS392124,O=gridtrust demo,DC=OEM")) +
           ",\"certificateType\":\"V2GCertificate\"}",
       "ocpp.security_error"},
      {"a charging-station subject (no DC) for V2G20Certificate", Version::v2_1,
       "{\"csr\":" + json_text(csr("P-521", "CN=station-0201,O=gridtrust demo")) +
           ",\"certificateType\":\"V2G20Certificate\"}",
       "ocpp.security_error"},
      {"an SECC subject without certificateType", Version::v2_0_1, "{\"csr\":" + qs + "}", "ocpp.security_error"},
      {"another organisation's CSR from an aggregator", Version::v2_0_1,
       "{\"csr\":" + q + ",\"certificateType\":\"ChargingStationCertificate\"}", "ocpp.security_error", other_fleet},
      {"a CSR without O from an aggregator", Version::v2_0_1,
       "{\"csr\":" + json_text(csr("P-256", "CN=station-0202")) + "}", "ocpp.security_error", other_fleet},
      {"a CSR whose signature does not verify", Version::v2_0_1, "{\"csr\":" + json_text(bad_sig) + "}",
       "csr.bad_signature"},
      {"a P-384 key for V2GCertificate (ISO 15118-2: P-256)", Version::v2_0_1,
       "{\"csr\":" + json_text(csr("P-384", "CN=DE*ABC*E9201,O=gridtrust demo,DC=CPO")) +
           ",\"certificateType\":\"V2GCertificate\"}",
       "csr.curve_not_allowed"},
      {"an SECC CN that is no EVSE ID", Version::v2_0_1,
       "{\"csr\":" + json_text(csr("P-256", "CN=not an evse id,O=gridtrust demo,DC=CPO")) +
           ",\"certificateType\":\"V2GCertificate\"}",
       "subject.bad_secc_id"},
  };

  auto status = [&](const std::string& data_members) {
    return R"({"ocspRequestData":{)" + data_members + "}}";
  };
  const std::string h64a = "\"" + std::string(64, 'a') + "\"";
  const std::string good_data = R"("hashAlgorithm":"SHA256","issuerNameHash":)" + h64a + R"(,"issuerKeyHash":)" + h64a +
                                R"(,"serialNumber":"1A2B")";
  struct StatusCase {
    const char* name;
    Version v;
    std::string text;
    const char* code;
  };
  std::vector<StatusCase> scases = {
      {"not an object", Version::v2_0_1, "null", "ocpp.format_violation"},
      {"no ocspRequestData", Version::v2_0_1, "{}", "ocpp.occurrence_constraint_violation"},
      {"ocspRequestData an array", Version::v2_0_1, R"({"ocspRequestData":[]})", "ocpp.type_constraint_violation"},
      {"no responderURL", Version::v2_0_1, status(good_data), "ocpp.occurrence_constraint_violation"},
      {"SHA1", Version::v2_0_1,
       status(R"("hashAlgorithm":"SHA1","issuerNameHash":"aa","issuerKeyHash":"bb","serialNumber":"1","responderURL":"u")"),
       "ocpp.property_constraint_violation"},
      {"issuerNameHash not hex", Version::v2_0_1,
       status(R"("hashAlgorithm":"SHA256","issuerNameHash":"xyz","issuerKeyHash":)" + h64a +
              R"(,"serialNumber":"1","responderURL":"u")"),
       "ocpp.format_violation"},
      {"issuerNameHash of SHA-1 size under SHA256", Version::v2_0_1,
       status(R"("hashAlgorithm":"SHA256","issuerNameHash":")" + std::string(40, 'a') + R"(","issuerKeyHash":)" + h64a +
              R"(,"serialNumber":"1","responderURL":"u")"),
       "ocpp.property_constraint_violation"},
      {"issuerKeyHash over 128 characters", Version::v2_1,
       status(R"("hashAlgorithm":"SHA512","issuerNameHash":)" + h64a + R"(,"issuerKeyHash":")" + std::string(130, 'b') +
              R"(","serialNumber":"1","responderURL":"u")"),
       "ocpp.property_constraint_violation"},
      {"issuerKeyHash a number", Version::v2_0_1,
       status(R"("hashAlgorithm":"SHA256","issuerNameHash":)" + h64a +
              R"(,"issuerKeyHash":12,"serialNumber":"1","responderURL":"u")"),
       "ocpp.type_constraint_violation"},
      {"serialNumber over 40 characters", Version::v2_0_1,
       status(R"("hashAlgorithm":"SHA256","issuerNameHash":)" + h64a + R"(,"issuerKeyHash":)" + h64a +
              R"(,"serialNumber":")" + std::string(41, '1') + R"(","responderURL":"u")"),
       "ocpp.property_constraint_violation"},
      {"serialNumber not hex", Version::v2_0_1,
       status(R"("hashAlgorithm":"SHA256","issuerNameHash":)" + h64a + R"(,"issuerKeyHash":)" + h64a +
              R"(,"serialNumber":"0xZZ","responderURL":"u")"),
       "ocpp.format_violation"},
      {"responderURL over 512 characters in 2.0.1", Version::v2_0_1,
       status(good_data + R"(,"responderURL":")" + std::string(513, 'u') + "\""), "ocpp.property_constraint_violation"},
      {"responderURL over 2000 characters in 2.1", Version::v2_1,
       status(good_data + R"(,"responderURL":")" + std::string(2001, 'u') + "\""), "ocpp.property_constraint_violation"},
      {"an additional property in ocspRequestData", Version::v2_0_1,
       status(good_data + R"(,"responderURL":"u","nonce":"1")"), "ocpp.property_constraint_violation"},
      {"duplicate serialNumber", Version::v2_0_1, status(good_data + R"(,"serialNumber":"1","responderURL":"u")"),
       "ocpp.format_violation"},
      {"customData without vendorId", Version::v2_1, status(good_data + R"(,"responderURL":"u","customData":{"a":1})"),
       "ocpp.occurrence_constraint_violation"},
  };

  std::size_t checked = 0;
  for (const auto& c : cases) {
    INFO("SignCertificateRequest: " << c.name);
    CHECK(code_of_sign(c.v, c.text, c.who) == c.code);
    ++checked;
  }
  for (const auto& c : scases) {
    INFO("GetCertificateStatusRequest: " << c.name);
    CHECK(code_of_status(c.v, c.text) == c.code);
    ++checked;
  }
  CHECK(checked >= 30);

  // A 513-character responderURL is fine in 2.1 (its bound is 2000).
  CHECK(code_of_status(Version::v2_1, status(good_data + R"(,"responderURL":")" + std::string(513, 'u') + "\"")) ==
        "ok");

  // Each ocpp.* code names its CallError.
  for (const char* code : {"ocpp.format_violation", "ocpp.type_constraint_violation",
                           "ocpp.occurrence_constraint_violation", "ocpp.property_constraint_violation",
                           "ocpp.security_error", "ocpp.not_supported"})
    CHECK(ocpp::call_error_name(code) != nullptr);
  CHECK(std::string(ocpp::call_error_name("ocpp.format_violation")) == "FormatViolation");
  CHECK(std::string(ocpp::call_error_name("ocpp.security_error")) == "SecurityError");
  CHECK(ocpp::call_error_name("csr.bad_signature") == nullptr);

  CHECK(f.certificate_count() == certificates_before);
  CHECK(f.audit_head() == head_before);
}
