#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include <openssl/ocsp.h>

#include "core/random.h"
#include "pki/certificate_authority.h"
#include "pki/ocsp_responder.h"
#include "pki/profile_loader.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

using namespace gridtrust;

namespace {

using OcspRequestPtr = std::unique_ptr<OCSP_REQUEST, OsslDeleter<OCSP_REQUEST_free>>;
using OcspResponsePtr = std::unique_ptr<OCSP_RESPONSE, OsslDeleter<OCSP_RESPONSE_free>>;
using OcspBasicRespPtr = std::unique_ptr<OCSP_BASICRESP, OsslDeleter<OCSP_BASICRESP_free>>;
using OcspCertIdPtr = std::unique_ptr<OCSP_CERTID, OsslDeleter<OCSP_CERTID_free>>;

// One PKI for the whole file: the hierarchy (11 CA keys in SoftHSM) is the slow part.
// Every test issues the leaves it changes, so the tests do not depend on each other.
struct World {
  test::SoftHsmToken hsm;
  test::TempDir dir;
  std::shared_ptr<store::SqliteStore> store;
  std::unique_ptr<pki::CertificateAuthority> ca;
  TimePoint clock = now_seconds();
  X509Ptr root, sub1, sub2;
  pki::Issued ocsp_signer;
  std::mutex log_mu;
  std::vector<Rejection> log;
  std::unique_ptr<pki::OcspResponder> responder;  // delegated signer for cpo-sub2

  World() {
    auto profiles = pki::load_profiles(std::string(GRIDTRUST_SOURCE_DIR) + "/config/profiles.yaml");
    REQUIRE(profiles.ok());
    auto st = store::SqliteStore::open(dir / "pki.db");
    REQUIRE(st.ok());
    store = std::move(st).value();
    pki::PkiConfig cfg;
    cfg.endpoints = {"http://127.0.0.1:8081/crl/", "http://127.0.0.1:8081/ocsp"};
    cfg.now = [this] { return clock; };
    ca = std::make_unique<pki::CertificateAuthority>(*profiles, hsm.token(), store, cfg);
    REQUIRE(ca->create_hierarchy("test").ok());

    auto chain = ca->chain("cpo-sub2");  // sub2, sub1, root
    REQUIRE(chain.ok());
    REQUIRE(chain->size() == 3);
    sub2 = std::move(pki::certificate_from_der((*chain)[0])).value();
    sub1 = std::move(pki::certificate_from_der((*chain)[1])).value();
    root = std::move(pki::certificate_from_der((*chain)[2])).value();
    test::write_file(dir / "root.pem", pki::certificate_pem(root.get()));
    test::write_file(dir / "sub1.pem", pki::certificate_pem(sub1.get()));
    test::write_file(dir / "sub2.pem", pki::certificate_pem(sub2.get()));
    test::write_file(dir / "intermediates.pem", pki::certificate_pem(sub2.get()) + pki::certificate_pem(sub1.get()));

    auto signer = ca->issue_with_hsm_key("ocsp-signer", "CN=gridtrust OCSP Signer,O=Demo CPO", {});
    REQUIRE(signer.ok());
    ocsp_signer = std::move(signer).value();
    REQUIRE(ocsp_signer.record.key_id);
    test::write_file(dir / "ocsp-signer.pem", ocsp_signer.chain_pem());

    responder = make_responder({});
  }

  std::unique_ptr<pki::OcspResponder> make_responder(pki::OcspResponderConfig config) {
    config.log = [this](const Rejection& r) {
      std::lock_guard g(log_mu);
      log.push_back(r);
    };
    auto r = pki::OcspResponder::create(*ca, std::move(config), now_seconds());
    REQUIRE(r.ok());
    return std::move(r).value();
  }

  std::string last_logged_code() {
    std::lock_guard g(log_mu);
    return log.empty() ? "" : log.back().code;
  }

  pki::Issued issue_secc(const std::string& cn) {
    auto key = test::make_key("P-256");
    auto issued = ca->issue_from_csr("secc", test::make_csr_der(key.get(), "CN=" + cn + ",O=Demo CPO,DC=CPO"), {});
    REQUIRE(issued.ok());
    return std::move(issued).value();
  }
};

World& world() {
  static World w;
  return w;
}

X509Ptr cert_of(const pki::Issued& issued) { return std::move(pki::certificate_from_der(issued.record.der)).value(); }

OcspCertIdPtr cert_id(X509* leaf, X509* issuer, const EVP_MD* md = EVP_sha1()) {
  OcspCertIdPtr id(OCSP_cert_to_id(md, leaf, issuer));
  REQUIRE(id);
  return id;
}

OcspCertIdPtr cert_id_for_serial(X509* issuer, const std::string& serial_hex, const EVP_MD* md = EVP_sha1()) {
  BIGNUM* bn = nullptr;
  REQUIRE(BN_hex2bn(&bn, serial_hex.c_str()) > 0);
  BignumPtr owner(bn);
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn, nullptr));
  OcspCertIdPtr id(OCSP_cert_id_new(md, X509_get_subject_name(issuer), X509_get0_pubkey_bitstr(issuer), serial.get()));
  REQUIRE(id);
  return id;
}

Bytes request_der(std::vector<OcspCertIdPtr> ids, std::optional<Bytes> nonce = std::nullopt,
                  OcspRequestPtr* keep = nullptr) {
  OcspRequestPtr req(OCSP_REQUEST_new());
  for (auto& id : ids) REQUIRE(OCSP_request_add0_id(req.get(), id.release()));
  if (nonce)
    REQUIRE(OCSP_request_add1_nonce(req.get(), nonce->data(), static_cast<int>(nonce->size())) == 1);
  unsigned char* out = nullptr;
  int n = i2d_OCSP_REQUEST(req.get(), &out);
  REQUIRE(n > 0);
  Bytes der(out, out + n);
  OPENSSL_free(out);
  if (keep) *keep = std::move(req);
  return der;
}

OcspResponsePtr parse_response(const Bytes& der) {
  const unsigned char* p = der.data();
  OcspResponsePtr resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())));
  REQUIRE(resp);
  REQUIRE(p == der.data() + der.size());
  return resp;
}

int response_status(const Bytes& der) { return OCSP_response_status(parse_response(der).get()); }

// Runs `openssl ocsp` on a response as a relying party would: the delegated signer (or
// the CA) must chain to the root and be authorised for the issuer in the CertID.
// `extra` goes before -issuer/-serial (a CertID digest option must).
test::CommandResult openssl_check(const Bytes& response, const std::string& issuer_pem, const std::string& serial,
                                  const std::string& extra = "") {
  auto& w = world();
  std::string path = w.dir / ("resp-" + to_hex(random_bytes(6)) + ".der");
  test::write_file(path, std::string(response.begin(), response.end()));
  return test::run("openssl ocsp -respin " + test::sh_quote(path) + " " + extra + " -issuer " + test::sh_quote(issuer_pem) +
                   " -serial 0x" + serial + " -CAfile " + test::sh_quote(w.dir / "root.pem") + " -verify_other " +
                   test::sh_quote(w.dir / "intermediates.pem") + " -resp_text");
}

void require_verified(const test::CommandResult& r) {
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.err.find("Response verify OK") != std::string::npos);
}

}  // namespace

TEST_CASE("answers good, revoked with reason and time, and unknown; openssl ocsp verifies each") {
  auto& w = world();
  auto good = w.issue_secc("DE*ABC*E100001");
  auto bad = w.issue_secc("DE*ABC*E100002");
  REQUIRE(w.ca->revoke(bad.record.serial, "keyCompromise", "test").ok());
  auto sub2 = w.dir / "sub2.pem";

  std::vector<OcspCertIdPtr> ids;
  ids.push_back(cert_id(cert_of(good).get(), w.sub2.get()));
  auto good_resp = w.responder->respond(request_der(std::move(ids)), now_seconds());
  REQUIRE(response_status(good_resp) == OCSP_RESPONSE_STATUS_SUCCESSFUL);
  auto r = openssl_check(good_resp, sub2, good.record.serial);
  require_verified(r);
  CHECK(r.out.find("0x" + good.record.serial + ": good") != std::string::npos);
  CHECK(r.out.find("Responder Id: ") != std::string::npos);
  CHECK(r.out.find("gridtrust OCSP Signer") != std::string::npos);  // the delegated certificate travels along
  CHECK(r.out.find("ecdsa-with-SHA256") != std::string::npos);

  ids.clear();
  ids.push_back(cert_id(cert_of(bad).get(), w.sub2.get()));
  auto bad_resp = w.responder->respond(request_der(std::move(ids)), now_seconds());
  r = openssl_check(bad_resp, sub2, bad.record.serial);
  require_verified(r);
  CHECK(r.out.find("0x" + bad.record.serial + ": revoked") != std::string::npos);
  CHECK(r.out.find("Reason: keyCompromise") != std::string::npos);
  CHECK(r.out.find("Revocation Time: ") != std::string::npos);

  // The revocation time is the store's.
  auto basic = OcspBasicRespPtr(OCSP_response_get1_basic(parse_response(bad_resp).get()));
  REQUIRE(basic);
  int status = -1, reason = -1;
  ASN1_GENERALIZEDTIME *revoked_at = nullptr, *this_update = nullptr, *next_update = nullptr;
  auto id = cert_id(cert_of(bad).get(), w.sub2.get());
  REQUIRE(OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, &revoked_at, &this_update, &next_update) == 1);
  CHECK(status == V_OCSP_CERTSTATUS_REVOKED);
  CHECK(reason == OCSP_REVOKED_STATUS_KEYCOMPROMISE);
  auto rows = w.store->find_by_serial(bad.record.serial);
  REQUIRE(rows.ok());
  Asn1TimePtr expected(ASN1_TIME_set(nullptr, static_cast<time_t>(*rows->front().revoked_at)));
  CHECK(ASN1_TIME_compare(revoked_at, expected.get()) == 0);

  std::string never_issued = "4" + to_hex(random_bytes(15), true) + "A";
  ids.clear();
  ids.push_back(cert_id_for_serial(w.sub2.get(), never_issued));
  auto unknown_resp = w.responder->respond(request_der(std::move(ids)), now_seconds());
  r = openssl_check(unknown_resp, sub2, never_issued);
  require_verified(r);
  CHECK(r.out.find(": unknown") != std::string::npos);
}

TEST_CASE("thisUpdate is now and nextUpdate one hour later by default") {
  auto& w = world();
  auto leaf = w.issue_secc("DE*ABC*E100003");
  auto now = now_seconds();
  std::vector<OcspCertIdPtr> ids;
  ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
  auto resp = w.responder->respond(request_der(std::move(ids)), now);
  OcspBasicRespPtr basic(OCSP_response_get1_basic(parse_response(resp).get()));
  REQUIRE(basic);
  OCSP_SINGLERESP* single = OCSP_resp_get0(basic.get(), 0);
  REQUIRE(single);
  ASN1_GENERALIZEDTIME *this_update = nullptr, *next_update = nullptr;
  CHECK(OCSP_single_get0_status(single, nullptr, nullptr, &this_update, &next_update) == V_OCSP_CERTSTATUS_GOOD);
  Asn1TimePtr expect_this(ASN1_TIME_set(nullptr, static_cast<time_t>(to_unix(now))));
  Asn1TimePtr expect_next(ASN1_TIME_set(nullptr, static_cast<time_t>(to_unix(now) + 3600)));
  CHECK(ASN1_TIME_compare(this_update, expect_this.get()) == 0);
  CHECK(ASN1_TIME_compare(next_update, expect_next.get()) == 0);
  // ResponderID byKey (RFC 6960 4.2.2.3).
  const ASN1_OCTET_STRING* key_hash = nullptr;
  const X509_NAME* name = nullptr;
  REQUIRE(OCSP_resp_get0_id(basic.get(), &key_hash, &name) == 1);
  CHECK(key_hash != nullptr);
  CHECK(name == nullptr);
  const ASN1_OBJECT* sig_alg = nullptr;
  X509_ALGOR_get0(&sig_alg, nullptr, nullptr, OCSP_resp_get0_tbs_sigalg(basic.get()));
  CHECK(OBJ_obj2nid(sig_alg) == NID_ecdsa_with_SHA256);
}

TEST_CASE("requests made by openssl ocsp, with SHA-1 and SHA-256 CertIDs, are answered") {
  auto& w = world();
  auto leaf = w.issue_secc("DE*ABC*E100004");
  auto sub2 = w.dir / "sub2.pem";
  for (std::string digest : {"", "-sha256"}) {
    INFO("CertID digest " << (digest.empty() ? "SHA-1" : digest));
    std::string req_path = w.dir / ("req" + digest + ".der");
    auto made = test::run("openssl ocsp -issuer " + test::sh_quote(sub2) + " " + digest + " -serial 0x" +
                          leaf.record.serial + " -reqout " + test::sh_quote(req_path) + " -no_nonce");
    INFO(made.err);
    REQUIRE(made.exit_code == 0);
    auto req = test::read_file(req_path);
    auto resp = w.responder->respond(Bytes(req.begin(), req.end()), now_seconds());
    auto r = openssl_check(resp, sub2, leaf.record.serial, digest);
    require_verified(r);
    CHECK(r.out.find("0x" + leaf.record.serial + ": good") != std::string::npos);
  }
}

TEST_CASE("a nonce is echoed; one over 32 octets is refused with malformedRequest") {
  auto& w = world();
  auto leaf = w.issue_secc("DE*ABC*E100005");
  for (std::size_t len : {1u, 16u, 32u}) {
    INFO("nonce of " << len << " octets");
    OcspRequestPtr req;
    std::vector<OcspCertIdPtr> ids;
    ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
    auto der = request_der(std::move(ids), random_bytes(len), &req);
    auto resp = w.responder->respond(der, now_seconds());
    REQUIRE(response_status(resp) == OCSP_RESPONSE_STATUS_SUCCESSFUL);
    OcspBasicRespPtr basic(OCSP_response_get1_basic(parse_response(resp).get()));
    CHECK(OCSP_check_nonce(req.get(), basic.get()) == 1);
  }
  std::vector<OcspCertIdPtr> ids;
  ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
  auto resp = w.responder->respond(request_der(std::move(ids), random_bytes(33)), now_seconds());
  CHECK(response_status(resp) == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
  CHECK(w.last_logged_code() == "ocsp.bad_nonce");
}

TEST_CASE("garbage, truncated and padded requests get malformedRequest") {
  auto& w = world();
  auto leaf = w.issue_secc("DE*ABC*E100006");
  std::vector<OcspCertIdPtr> ids;
  ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
  auto good = request_der(std::move(ids));
  Bytes truncated(good.begin(), good.end() - 3);
  Bytes padded = good;
  padded.push_back(0);
  for (const Bytes& req : {Bytes{}, to_bytes("hello, responder"), random_bytes(200), truncated, padded,
                           Bytes(pki::kMaxOcspRequestBytes + 1, 0x30)}) {
    auto resp = w.responder->respond(req, now_seconds());
    CHECK(resp == Bytes({0x30, 0x03, 0x0a, 0x01, 0x01}));  // OCSPResponse{malformedRequest}
  }
  CHECK(response_status(w.responder->respond(request_der({}), now_seconds())) ==  // no CertID
        OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
}

TEST_CASE("a CertID for an issuer we do not serve is unauthorized") {
  auto& w = world();
  auto stranger_key = test::make_key("P-256");
  X509Ptr stranger(X509_new());
  X509_NAME_add_entry_by_txt(X509_get_subject_name(stranger.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Somebody Else CA"), -1, -1, 0);
  X509_set_pubkey(stranger.get(), stranger_key.get());
  std::vector<OcspCertIdPtr> ids;
  ids.push_back(cert_id_for_serial(stranger.get(), "4001"));
  auto resp = w.responder->respond(request_der(std::move(ids)), now_seconds());
  CHECK(response_status(resp) == OCSP_RESPONSE_STATUS_UNAUTHORIZED);
  CHECK(w.last_logged_code() == "ocsp.unknown_issuer");

  // Our CA's name with another key is not our CA either.
  ids.clear();
  OcspCertIdPtr mixed(OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(w.sub2.get()),
                                       X509_get0_pubkey_bitstr(stranger.get()), nullptr));
  ids.push_back(std::move(mixed));
  CHECK(response_status(w.responder->respond(request_der(std::move(ids)), now_seconds())) ==
        OCSP_RESPONSE_STATUS_UNAUTHORIZED);

  // One signature cannot speak for two CAs.
  auto leaf = w.issue_secc("DE*ABC*E100007");
  auto sub2_serial = w.store->issuer("cpo-sub2");
  REQUIRE(sub2_serial.ok());
  ids.clear();
  ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
  ids.push_back(cert_id_for_serial(w.sub1.get(), (*sub2_serial)->serial));
  CHECK(response_status(w.responder->respond(request_der(std::move(ids)), now_seconds())) ==
        OCSP_RESPONSE_STATUS_UNAUTHORIZED);
  CHECK(w.last_logged_code() == "ocsp.mixed_issuers");
}

TEST_CASE("several CertIDs of one CA get one response with each status") {
  auto& w = world();
  auto good = w.issue_secc("DE*ABC*E100008");
  auto bad = w.issue_secc("DE*ABC*E100009");
  REQUIRE(w.ca->revoke(bad.record.serial, "superseded", "test").ok());
  std::vector<OcspCertIdPtr> ids;
  ids.push_back(cert_id(cert_of(good).get(), w.sub2.get()));
  ids.push_back(cert_id(cert_of(bad).get(), w.sub2.get(), EVP_sha256()));
  auto resp = w.responder->respond(request_der(std::move(ids)), now_seconds());
  REQUIRE(response_status(resp) == OCSP_RESPONSE_STATUS_SUCCESSFUL);
  OcspBasicRespPtr basic(OCSP_response_get1_basic(parse_response(resp).get()));
  int status = -1, reason = -1;
  auto good_id = cert_id(cert_of(good).get(), w.sub2.get());
  auto bad_id = cert_id(cert_of(bad).get(), w.sub2.get(), EVP_sha256());
  REQUIRE(OCSP_resp_find_status(basic.get(), good_id.get(), &status, &reason, nullptr, nullptr, nullptr) == 1);
  CHECK(status == V_OCSP_CERTSTATUS_GOOD);
  REQUIRE(OCSP_resp_find_status(basic.get(), bad_id.get(), &status, &reason, nullptr, nullptr, nullptr) == 1);
  CHECK(status == V_OCSP_CERTSTATUS_REVOKED);
  CHECK(reason == OCSP_REVOKED_STATUS_SUPERSEDED);

  std::vector<OcspCertIdPtr> many;
  for (int i = 0; i < 33; ++i) many.push_back(cert_id(cert_of(good).get(), w.sub2.get()));
  CHECK(response_status(w.responder->respond(request_der(std::move(many)), now_seconds())) ==
        OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
}

TEST_CASE("revocation without a reason omits the reason") {
  auto& w = world();
  auto leaf = w.issue_secc("DE*ABC*E100010");
  REQUIRE(w.ca->revoke(leaf.record.serial, "unspecified", "test").ok());
  std::vector<OcspCertIdPtr> ids;
  ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
  auto resp = w.responder->respond(request_der(std::move(ids)), now_seconds());
  OcspBasicRespPtr basic(OCSP_response_get1_basic(parse_response(resp).get()));
  int status = -1, reason = 0;
  auto id = cert_id(cert_of(leaf).get(), w.sub2.get());
  REQUIRE(OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, nullptr, nullptr, nullptr) == 1);
  CHECK(status == V_OCSP_CERTSTATUS_REVOKED);
  CHECK(reason == OCSP_REVOKED_STATUS_NOSTATUS);
}

TEST_CASE("cached responses are reused, but a revocation shows in the very next response") {
  auto& w = world();
  auto responder = w.make_responder({});
  auto leaf = w.issue_secc("DE*ABC*E100011");
  auto ask = [&](TimePoint now) {
    std::vector<OcspCertIdPtr> ids;
    ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
    return responder->respond(request_der(std::move(ids)), now);
  };
  auto now = now_seconds();
  auto first = ask(now);
  auto second = ask(now + std::chrono::minutes(5));
  CHECK(first == second);  // ECDSA is randomised: equal bytes mean no second signature
  CHECK(responder->counters().signed_responses == 1);
  CHECK(responder->counters().cache_hits == 1);

  REQUIRE(w.ca->revoke(leaf.record.serial, "keyCompromise", "test").ok());
  auto after = ask(now_seconds());
  CHECK(after != first);
  auto r = openssl_check(after, w.dir / "sub2.pem", leaf.record.serial);
  require_verified(r);
  CHECK(r.out.find(": revoked") != std::string::npos);
  CHECK(r.out.find("Reason: keyCompromise") != std::string::npos);

  // Responses carrying a nonce are never shared.
  auto hits = responder->counters().cache_hits;
  for (int i = 0; i < 2; ++i) {
    std::vector<OcspCertIdPtr> ids;
    ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
    (void)responder->respond(request_der(std::move(ids), random_bytes(16)), now_seconds());
  }
  CHECK(responder->counters().cache_hits == hits);
}

TEST_CASE("a cached response is signed again once less than half its validity is left") {
  auto& w = world();
  auto responder = w.make_responder({});
  auto leaf = w.issue_secc("DE*ABC*E100012");
  auto ask = [&](TimePoint now) {
    std::vector<OcspCertIdPtr> ids;
    ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
    return responder->respond(request_der(std::move(ids)), now);
  };
  auto now = now_seconds();
  auto first = ask(now);
  CHECK(ask(now + std::chrono::minutes(29)) == first);
  auto refreshed = ask(now + std::chrono::minutes(31));
  CHECK(refreshed != first);
  CHECK(responder->counters().signed_responses == 2);
  OcspBasicRespPtr basic(OCSP_response_get1_basic(parse_response(refreshed).get()));
  ASN1_GENERALIZEDTIME* this_update = nullptr;
  OCSP_single_get0_status(OCSP_resp_get0(basic.get(), 0), nullptr, nullptr, &this_update, nullptr);
  Asn1TimePtr expected(ASN1_TIME_set(nullptr, static_cast<time_t>(to_unix(now) + 31 * 60)));
  CHECK(ASN1_TIME_compare(this_update, expected.get()) == 0);
}

TEST_CASE("without a delegated signer the CA key signs and openssl accepts it") {
  auto& w = world();
  auto leaf = w.issue_secc("DE*ABC*E100013");
  pki::OcspResponderConfig cfg;
  cfg.delegated_signers = false;
  auto responder = w.make_responder(cfg);
  std::vector<OcspCertIdPtr> ids;
  ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
  auto resp = responder->respond(request_der(std::move(ids)), now_seconds());
  auto r = openssl_check(resp, w.dir / "sub2.pem", leaf.record.serial);
  require_verified(r);
  CHECK(r.out.find(": good") != std::string::npos);
  OcspBasicRespPtr basic(OCSP_response_get1_basic(parse_response(resp).get()));
  CHECK(sk_X509_num(OCSP_resp_get0_certs(basic.get())) <= 0);  // no certificates (-1: the field is absent)

  // cpo-sub1 has no delegated signer at all: the delegated responder signs with its key.
  auto sub2_record = w.store->issuer("cpo-sub2");
  REQUIRE(sub2_record.ok());
  ids.clear();
  ids.push_back(cert_id_for_serial(w.sub1.get(), (*sub2_record)->serial));
  resp = w.responder->respond(request_der(std::move(ids)), now_seconds());
  r = openssl_check(resp, w.dir / "sub1.pem", (*sub2_record)->serial);
  require_verified(r);
  CHECK(r.out.find(": good") != std::string::npos);
}

TEST_CASE("GET takes the URL-encoded base64 of the request") {
  auto& w = world();
  auto leaf = w.issue_secc("DE*ABC*E100014");
  std::vector<OcspCertIdPtr> ids;
  ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
  auto der = request_der(std::move(ids));
  std::string encoded;
  for (char c : base64_encode(der)) {
    if (c == '+') encoded += "%2B";
    else if (c == '/') encoded += "%2F";
    else if (c == '=') encoded += "%3D";
    else encoded += c;
  }
  auto resp = w.responder->respond_get(encoded, now_seconds());
  auto r = openssl_check(resp, w.dir / "sub2.pem", leaf.record.serial);
  require_verified(r);
  CHECK(r.out.find(": good") != std::string::npos);
  CHECK(response_status(w.responder->respond_get(base64url_encode(der), now_seconds())) ==
        OCSP_RESPONSE_STATUS_SUCCESSFUL);
  CHECK(response_status(w.responder->respond_get("%zz" + encoded, now_seconds())) ==
        OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
  CHECK(response_status(w.responder->respond_get("not*base64", now_seconds())) ==
        OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
}

TEST_CASE("concurrent requests, cached and with nonces, all get correct answers") {
  auto& w = world();
  auto responder = w.make_responder({});
  auto good = w.issue_secc("DE*ABC*E100016");
  auto bad = w.issue_secc("DE*ABC*E100017");
  REQUIRE(w.ca->revoke(bad.record.serial, "keyCompromise", "test").ok());
  auto good_cert = cert_of(good), bad_cert = cert_of(bad);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        X509* cert = (i + t) % 2 ? good_cert.get() : bad_cert.get();
        int expected = cert == good_cert.get() ? V_OCSP_CERTSTATUS_GOOD : V_OCSP_CERTSTATUS_REVOKED;
        OcspRequestPtr req(OCSP_REQUEST_new());
        OCSP_request_add0_id(req.get(), OCSP_cert_to_id(EVP_sha1(), cert, w.sub2.get()));
        if (i % 3 == 0) OCSP_request_add1_nonce(req.get(), nullptr, 16);
        unsigned char* out = nullptr;
        int n = i2d_OCSP_REQUEST(req.get(), &out);
        Bytes der(out, out + n);
        OPENSSL_free(out);
        auto resp = responder->respond(der, now_seconds());
        const unsigned char* p = resp.data();
        OcspResponsePtr parsed(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(resp.size())));
        OcspBasicRespPtr basic(parsed ? OCSP_response_get1_basic(parsed.get()) : nullptr);
        OcspCertIdPtr id(OCSP_cert_to_id(EVP_sha1(), cert, w.sub2.get()));
        int status = -1;
        if (!basic || OCSP_resp_find_status(basic.get(), id.get(), &status, nullptr, nullptr, nullptr, nullptr) != 1 ||
            status != expected || (i % 3 == 0 && OCSP_check_nonce(req.get(), basic.get()) != 1) ||
            OCSP_basic_verify(basic.get(), nullptr, nullptr, OCSP_NOVERIFY) != 1)
          ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  CHECK(responder->counters().cache_hits > 0);
}

TEST_CASE("rejection codes map to OCSP response statuses") {
  using S = pki::OcspResponseStatus;
  CHECK(pki::ocsp_response_status_for("ocsp.malformed_request") == S::malformed_request);
  CHECK(pki::ocsp_response_status_for("ocsp.bad_nonce") == S::malformed_request);
  CHECK(pki::ocsp_response_status_for("ocsp.unknown_issuer") == S::unauthorized);
  CHECK(pki::ocsp_response_status_for("hsm.unavailable") == S::try_later);
  CHECK(pki::ocsp_response_status_for("hsm.key_not_found") == S::internal_error);
  CHECK(pki::ocsp_response_status_for("store.io") == S::internal_error);
}

// Last: it destroys the delegated signer's key.
TEST_CASE("a signing failure is internalError and logs the HSM's code; the CA key takes over after reload") {
  auto& w = world();
  auto responder = w.make_responder({});
  auto leaf = w.issue_secc("DE*ABC*E100015");
  auto key = w.hsm.token()->find_key_by_id(*w.ocsp_signer.record.key_id);
  REQUIRE(key.ok());
  REQUIRE(w.hsm.token()->destroy_key(*key).ok());
  auto ask = [&] {
    std::vector<OcspCertIdPtr> ids;
    ids.push_back(cert_id(cert_of(leaf).get(), w.sub2.get()));
    return responder->respond(request_der(std::move(ids)), now_seconds());
  };
  CHECK(ask() == Bytes({0x30, 0x03, 0x0a, 0x01, 0x02}));  // OCSPResponse{internalError}
  CHECK(w.last_logged_code() == "hsm.key_not_found");  // the token's code, not OpenSSL's bare failure

  REQUIRE(w.ca->revoke(w.ocsp_signer.record.serial, "keyCompromise", "test").ok());
  REQUIRE(responder->reload_signers(now_seconds()).ok());
  auto resp = ask();
  auto r = openssl_check(resp, w.dir / "sub2.pem", leaf.record.serial);
  require_verified(r);
  CHECK(r.out.find(": good") != std::string::npos);
}
