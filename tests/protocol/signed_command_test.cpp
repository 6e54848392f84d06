#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <openssl/ec.h>

#include "core/digest.h"
#include "hsm/hsm_signer.h"
#include "pki/certificate_authority.h"
#include "pki/profile_loader.h"
#include "protocol/jcs.h"
#include "protocol/jws.h"
#include "protocol/signer_trust.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

using namespace gridtrust;
namespace json = boost::json;

namespace {

// A software key behind the Signer interface: what a third party (or jose) signs with.
class SoftwareSigner final : public hsm::Signer {
 public:
  SoftwareSigner(EvpPkeyPtr key, hsm::KeyAlgorithm alg) : key_(std::move(key)), alg_(alg) {
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(key_.get(), &der);
    spki_.assign(der, der + len);
    OPENSSL_free(der);
  }
  hsm::KeyAlgorithm algorithm() const override { return alg_; }
  const Bytes& public_key_der() const override { return spki_; }
  Result<Bytes> sign_raw(const Bytes& input) const override {
    if (hsm::is_edwards(alg_)) {
      EvpMdCtxPtr ctx(EVP_MD_CTX_new());
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get());
      std::size_t len = 0;
      EVP_DigestSign(ctx.get(), nullptr, &len, input.data(), input.size());
      Bytes sig(len);
      EVP_DigestSign(ctx.get(), sig.data(), &len, input.data(), input.size());
      sig.resize(len);
      return sig;
    }
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
    EVP_PKEY_sign_init(ctx.get());
    std::size_t len = 0;
    EVP_PKEY_sign(ctx.get(), nullptr, &len, input.data(), input.size());
    Bytes der(len);
    EVP_PKEY_sign(ctx.get(), der.data(), &len, input.data(), input.size());
    const unsigned char* p = der.data();
    EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
    std::size_t half = hsm::raw_signature_size(alg_) / 2;
    Bytes raw(2 * half);
    BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw.data(), static_cast<int>(half));
    BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw.data() + half, static_cast<int>(half));
    return raw;
  }

 private:
  EvpPkeyPtr key_;
  hsm::KeyAlgorithm alg_;
  Bytes spki_;
};

// In memory: the store-backed guard is tested separately.
class MemoryReplayGuard final : public protocol::ReplayGuard {
 public:
  Status accept(const std::string& signer, const std::string& station, std::uint64_t seq) override {
    auto& last = last_[signer + "\n" + station];
    if (seq <= last) return reject("verify.replay", "replay");
    last = seq;
    return Ok{};
  }

 private:
  std::map<std::string, std::uint64_t> last_;
};

struct Fixture {
  test::SoftHsmToken hsm;
  test::TempDir dir;
  std::shared_ptr<store::SqliteStore> store;
  std::unique_ptr<pki::CertificateAuthority> ca;
  std::int64_t now = to_unix(now_seconds());

  Fixture() {
    auto profiles = pki::load_profiles(std::string(GRIDTRUST_SOURCE_DIR) + "/config/profiles.yaml");
    REQUIRE(profiles.ok());
    auto st = store::SqliteStore::open(dir / "pki.db");
    REQUIRE(st.ok());
    store = std::move(st).value();
    pki::PkiConfig cfg;
    cfg.endpoints = {"http://127.0.0.1:8081/crl/", "http://127.0.0.1:8081/ocsp"};
    ca = std::make_unique<pki::CertificateAuthority>(std::move(*profiles), hsm.token(), store, cfg);
    REQUIRE(ca->create_hierarchy("test").ok());
  }

  // An aggregator-signer certificate for a software key of `alg`.
  std::pair<std::unique_ptr<SoftwareSigner>, pki::Issued> software_signer(const std::string& alg,
                                                                           const std::string& cn = "agg-1",
                                                                           const std::string& profile = "aggregator-signer") {
    EvpPkeyPtr key = test::make_key(alg);
    Bytes csr = test::make_csr_der(key.get(), "CN=" + cn + ",O=Fleet");
    auto issued = ca->issue_from_csr(profile, csr, {});
    REQUIRE(issued.ok());
    auto ka = hsm::key_algorithm_from_name(alg);
    REQUIRE(ka);
    return {std::make_unique<SoftwareSigner>(std::move(key), *ka), std::move(issued).value()};
  }
};

json::object sample_message() {
  return json::parse(R"({"evseId":1,"chargingProfile":{"id":7,"stackLevel":0,
      "chargingProfilePurpose":"TxDefaultProfile","chargingProfileKind":"Absolute",
      "chargingSchedule":[{"id":1,"chargingRateUnit":"W","startSchedule":"2026-11-25T20:00:00Z",
      "chargingSchedulePeriod":[{"startPeriod":0,"limit":-7400.5}]}]}})").as_object();
}

std::string code_of(const Result<protocol::VerifiedCommand>& r) { return r.ok() ? "ok" : r.error().code; }

}  // namespace

TEST_CASE("an HSM-held aggregator key signs a command that verifies, once") {
  Fixture f;
  auto issued = f.ca->issue_with_hsm_key("aggregator-signer", "CN=agg-hsm,O=Fleet", {});
  REQUIRE(issued.ok());
  auto key = f.hsm.token()->find_key_by_id(*issued->record.key_id);
  REQUIRE(key.ok());
  hsm::HsmSigner hsm_signer(f.hsm.token(), *key);
  protocol::CommandSigner signer{hsm_signer, issued->record.der, issued->chain_der};
  auto signed_msg = protocol::sign_command(sample_message(), signer, {"SetChargingProfile", "CS-001", 1},
                                           {f.now, 300, true});
  REQUIRE(signed_msg.ok());
  const auto& cd = signed_msg->at("customData").as_object();
  CHECK(cd.at("vendorId").as_string() == "org.gridtrust");
  auto jws = protocol::parse_detached(std::string(cd.at("signature").as_string()));
  REQUIRE(jws.ok());
  CHECK(jws->header.at("alg").as_string() == "ES256");
  CHECK(jws->header.at("x5t#S256").as_string() == base64url_encode(sha256(issued->record.der)));
  CHECK(jws->header.at("x5c").as_array().size() == issued->chain_der.size());
  CHECK(jws->header.at("action").as_string() == "SetChargingProfile");
  CHECK(jws->header.at("station").as_string() == "CS-001");
  CHECK(jws->header.at("exp").as_int64() == f.now + 300);

  protocol::PkiSignerResolver resolver(*f.ca);
  protocol::StoreReplayGuard replay(*f.store);
  protocol::VerifyOptions opt;
  opt.now = f.now;
  opt.station = "CS-001";
  opt.action = "SetChargingProfile";
  auto v = protocol::verify_command(*signed_msg, opt, resolver, replay);
  REQUIRE(v.ok());
  CHECK(v->claims.seq == 1);
  CHECK(v->signer_subject.find("agg-hsm") != std::string::npos);
  // The same message again is a replay, also for a fresh guard over the same store.
  CHECK(code_of(protocol::verify_command(*signed_msg, opt, resolver, replay)) == "verify.replay");
  protocol::StoreReplayGuard after_restart(*f.store);
  CHECK(code_of(protocol::verify_command(*signed_msg, opt, resolver, after_restart)) == "verify.replay");
}

TEST_CASE("each supported algorithm signs and verifies") {
  Fixture f;
  protocol::PkiSignerResolver resolver(*f.ca);
  for (const char* alg : {"P-256", "P-384", "P-521", "Ed25519"}) {
    DYNAMIC_SECTION(alg) {
      auto [soft, issued] = f.software_signer(alg, std::string("agg-") + alg);
      protocol::CommandSigner signer{*soft, issued.record.der, {}};
      auto msg = protocol::sign_command(sample_message(), signer, {"SetChargingProfile", "CS-9", 5}, {f.now, 60});
      REQUIRE(msg.ok());
      MemoryReplayGuard replay;
      protocol::VerifyOptions opt;
      opt.now = f.now;
      auto v = protocol::verify_command(*msg, opt, resolver, replay);
      INFO((v.ok() ? "" : v.error().message));
      CHECK(v.ok());
    }
  }
}

TEST_CASE("tampering, reordering, staleness and the wrong target are refused with their codes") {
  Fixture f;
  auto [soft, issued] = f.software_signer("P-256");
  protocol::CommandSigner signer{*soft, issued.record.der, {}};
  protocol::PkiSignerResolver resolver(*f.ca);
  auto msg = protocol::sign_command(sample_message(), signer, {"SetChargingProfile", "CS-1", 10}, {f.now, 300});
  REQUIRE(msg.ok());
  protocol::VerifyOptions opt;
  opt.now = f.now;
  auto verify = [&](const json::object& m, protocol::VerifyOptions o) {
    MemoryReplayGuard replay;
    return code_of(protocol::verify_command(m, o, resolver, replay));
  };
  REQUIRE(verify(*msg, opt) == "ok");

  // Reordered members: the canonical form is the same, so it still verifies.
  {
    json::object reordered;
    std::vector<std::pair<std::string, json::value>> members;
    for (const auto& m : *msg) members.emplace_back(std::string(m.key()), m.value());
    for (auto it = members.rbegin(); it != members.rend(); ++it) reordered[it->first] = it->second;
    CHECK(verify(reordered, opt) == "ok");
  }
  // A changed payload value.
  {
    json::object m = *msg;
    m["evseId"] = 2;
    CHECK(verify(m, opt) == "jws.bad_signature");
  }
  // One character of the signature's header / signature changed.
  auto with_signature = [&](std::string sig) {
    json::object m = *msg;
    m["customData"].as_object()["signature"] = sig;
    return m;
  };
  std::string sig(msg->at("customData").as_object().at("signature").as_string());
  {
    std::string s = sig;
    s[s.size() - 5] = s[s.size() - 5] == 'A' ? 'B' : 'A';
    CHECK(verify(with_signature(s), opt) == "jws.bad_signature");
  }
  {
    auto parsed = protocol::parse_detached(sig);
    REQUIRE(parsed.ok());
    json::object h = parsed->header;
    h["seq"] = 11;  // a later sequence number under the same signature
    auto hj = protocol::canonicalize(h);
    std::string forged = base64url_encode(to_bytes(*hj)) + sig.substr(sig.find(".."));
    CHECK(verify(with_signature(forged), opt) == "jws.bad_signature");
    h["alg"] = "none";
    forged = base64url_encode(to_bytes(*protocol::canonicalize(h))) + sig.substr(sig.find(".."));
    CHECK(verify(with_signature(forged), opt) == "jws.unsupported_alg");
  }
  CHECK(verify(with_signature("garbage"), opt) == "jws.malformed");
  {
    json::object m = *msg;
    m.erase("customData");
    CHECK(verify(m, opt) == "verify.unsigned");
  }
  // Time and target.
  protocol::VerifyOptions late = opt;
  late.now = f.now + 301;
  CHECK(verify(*msg, late) == "verify.expired");
  protocol::VerifyOptions early = opt;
  early.now = f.now - 120;
  CHECK(verify(*msg, early) == "verify.not_yet_valid");
  protocol::VerifyOptions strict = opt;
  strict.max_lifetime_s = 60;
  CHECK(verify(*msg, strict) == "verify.lifetime_too_long");
  protocol::VerifyOptions other_station = opt;
  other_station.station = "CS-2";
  CHECK(verify(*msg, other_station) == "verify.wrong_station");
  protocol::VerifyOptions other_action = opt;
  other_action.action = "RequestStartTransaction";
  CHECK(verify(*msg, other_action) == "verify.wrong_action");
}

TEST_CASE("the signer's certificate must be known, dispatch-authorised and unrevoked") {
  Fixture f;
  protocol::PkiSignerResolver resolver(*f.ca);
  protocol::VerifyOptions opt;
  opt.now = f.now;
  MemoryReplayGuard replay;

  // A key whose certificate is a charging-station certificate: no dispatch authority.
  {
    EvpPkeyPtr key = test::make_key("P-256");
    auto issued = f.ca->issue_from_csr("charging-station", test::make_csr_der(key.get(), "CN=CS-77,O=Fleet"), {});
    REQUIRE(issued.ok());
    SoftwareSigner soft(std::move(key), hsm::KeyAlgorithm::EcP256);
    protocol::CommandSigner signer{soft, issued->record.der, {}};
    auto msg = protocol::sign_command(sample_message(), signer, {"SetChargingProfile", "CS-1", 1}, {f.now, 60});
    REQUIRE(msg.ok());
    CHECK(code_of(protocol::verify_command(*msg, opt, resolver, replay)) == "verify.unknown_signer");
  }
  // Revoked: the next command is refused.
  auto [soft, issued] = f.software_signer("P-256");
  protocol::CommandSigner signer{*soft, issued.record.der, {}};
  auto m1 = protocol::sign_command(sample_message(), signer, {"SetChargingProfile", "CS-1", 1}, {f.now, 60});
  auto m2 = protocol::sign_command(sample_message(), signer, {"SetChargingProfile", "CS-1", 2}, {f.now, 60});
  REQUIRE(code_of(protocol::verify_command(*m1, opt, resolver, replay)) == "ok");
  REQUIRE(f.ca->revoke(issued.record.serial, "keyCompromise", "test").ok());
  CHECK(code_of(protocol::verify_command(*m2, opt, resolver, replay)) == "verify.signer_revoked");
  // Outside the certificate's validity.
  auto [soft2, issued2] = f.software_signer("P-256", "agg-2");
  protocol::CommandSigner signer2{*soft2, issued2.record.der, {}};
  auto m3 = protocol::sign_command(sample_message(), signer2, {"SetChargingProfile", "CS-1", 1},
                                   {issued2.record.not_after + 10, 60});
  protocol::VerifyOptions after = opt;
  after.now = issued2.record.not_after + 10;
  CHECK(code_of(protocol::verify_command(*m3, after, resolver, replay)) == "verify.signer_expired");
}

TEST_CASE("a signer found clean is re-read once anything is revoked, also by another process") {
  Fixture f;
  protocol::PkiSignerResolver resolver(*f.ca);
  protocol::VerifyOptions opt;
  opt.now = f.now;
  MemoryReplayGuard replay;
  auto [soft, issued] = f.software_signer("P-256");
  protocol::CommandSigner signer{*soft, issued.record.der, {}};
  auto message = [&](std::uint64_t seq) {
    auto m = protocol::sign_command(sample_message(), signer, {"SetChargingProfile", "CS-1", seq}, {f.now, 60});
    REQUIRE(m.ok());
    return std::move(m).value();
  };
  const std::int64_t epoch0 = f.store->revocation_epoch();
  REQUIRE(epoch0 >= 0);
  REQUIRE(code_of(protocol::verify_command(message(1), opt, resolver, replay)) == "ok");
  REQUIRE(code_of(protocol::verify_command(message(2), opt, resolver, replay)) == "ok");  // from the cache

  // An unrelated revocation moves the epoch; the signer is read again and still clean.
  auto [other_soft, other] = f.software_signer("P-256", "agg-other");
  REQUIRE(f.ca->revoke(other.record.serial, "superseded", "test").ok());
  CHECK(f.store->revocation_epoch() > epoch0);
  CHECK(code_of(protocol::verify_command(message(3), opt, resolver, replay)) == "ok");

  // The offline CLI: another connection to the same file revokes the signer's issuing
  // CA behind the resolver's back. The next command is refused.
  {
    auto cli_store = store::SqliteStore::open(f.dir / "pki.db");
    REQUIRE(cli_store.ok());
    auto issuer = (*cli_store)->issuer("cpo-sub2");
    REQUIRE(issuer.ok());
    REQUIRE(issuer->has_value());
    auto ca_cert = (*cli_store)->find_by_serial((*issuer)->serial);
    REQUIRE(ca_cert.ok());
    REQUIRE(ca_cert->size() == 1);
    auto r = (*cli_store)->revoke(ca_cert->front().issuer, ca_cert->front().serial, 1, f.now,
                                  store::AuditEvent{"test", "revoke", ca_cert->front().serial, "{}"}, std::nullopt);
    REQUIRE(r.ok());
  }
  CHECK(code_of(protocol::verify_command(message(4), opt, resolver, replay)) == "verify.signer_revoked");
}

TEST_CASE("signing refuses what cannot be signed faithfully") {
  Fixture f;
  auto [soft, issued] = f.software_signer("P-256");
  protocol::CommandSigner signer{*soft, issued.record.der, {}};
  auto code = [&](json::object m, protocol::CommandClaims c, protocol::SignTimes t) {
    auto r = protocol::sign_command(std::move(m), signer, c, t);
    return r.ok() ? std::string("ok") : r.error().code;
  };
  json::object other_vendor = sample_message();
  other_vendor["customData"] = json::object{{"vendorId", "com.example"}};
  CHECK(code(other_vendor, {"SetChargingProfile", "CS-1", 1}, {f.now, 60}) == "sign.custom_data_in_use");
  json::object big = sample_message();
  big["evseId"] = 9007199254740993ULL;
  CHECK(code(big, {"SetChargingProfile", "CS-1", 1}, {f.now, 60}) == "sign.inexact_number");
  CHECK(code(sample_message(), {"", "CS-1", 1}, {f.now, 60}) == "sign.bad_claims");
  CHECK(code(sample_message(), {"SetChargingProfile", "", 1}, {f.now, 60}) == "sign.bad_claims");
  CHECK(code(sample_message(), {"SetChargingProfile", "CS-1", 0}, {f.now, 60}) == "sign.bad_claims");
  CHECK(code(sample_message(), {"SetChargingProfile", "CS-1", 1}, {f.now, 0}) == "sign.bad_claims");
  // Our own customData (an earlier signature) is replaced, not nested.
  auto once = protocol::sign_command(sample_message(), signer, {"SetChargingProfile", "CS-1", 1}, {f.now, 60});
  REQUIRE(once.ok());
  CHECK(code(*once, {"SetChargingProfile", "CS-1", 2}, {f.now, 60}) == "ok");
}

TEST_CASE("a batch verifies as a whole and entry by entry; a changed entry breaks it") {
  Fixture f;
  auto [soft, issued] = f.software_signer("P-256");
  protocol::CommandSigner signer{*soft, issued.record.der, {}};
  protocol::PkiSignerResolver resolver(*f.ca);
  std::vector<protocol::BatchItem> items;
  for (int i = 0; i < 37; ++i) {
    json::object m = sample_message();
    m["evseId"] = i % 3 + 1;
    items.push_back({std::move(m), {"SetChargingProfile", "CS-" + std::to_string(i % 5), std::uint64_t(100 + i)}});
  }
  auto batch = protocol::sign_batch(items, signer, {f.now, 300});
  REQUIRE(batch.ok());
  REQUIRE(batch->size() == 37);
  protocol::VerifyOptions opt;
  opt.now = f.now;
  {
    MemoryReplayGuard replay;
    auto all = protocol::verify_batch(*batch, opt, resolver, replay);
    REQUIRE(all.ok());
    CHECK(all->size() == 37);
    CHECK(code_of(protocol::verify_command((*batch)[5], opt, resolver, replay)) == "verify.replay");
  }
  {
    MemoryReplayGuard replay;  // each entry alone, as a charger would check its own
    for (const auto& e : *batch) CHECK(code_of(protocol::verify_command(e, opt, resolver, replay)) == "ok");
  }
  {
    auto changed = *batch;
    changed[17]["evseId"] = 9;
    MemoryReplayGuard replay;
    auto all = protocol::verify_batch(changed, opt, resolver, replay);
    REQUIRE_FALSE(all.ok());
    CHECK(all.error().code == "jws.bad_signature");
    CHECK(code_of(protocol::verify_command(changed[17], opt, resolver, replay)) == "jws.bad_signature");
    CHECK(code_of(protocol::verify_command(changed[16], opt, resolver, replay)) == "ok");
  }
  {
    // A wrong inclusion path in one entry: the batch is refused, not only that entry
    // at its station.
    auto wrong_path = *batch;
    auto& path = wrong_path[4]["customData"].as_object()["batch"].as_object()["path"].as_array();
    std::swap(path[0], path[1]);
    MemoryReplayGuard replay;
    auto r = protocol::verify_batch(wrong_path, opt, resolver, replay);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "batch.bad_path");
    CHECK(code_of(protocol::verify_command(wrong_path[4], opt, resolver, replay)) == "jws.bad_signature");
  }
  {
    auto moved = *batch;
    moved[3]["customData"].as_object()["batch"].as_object()["station"] = "CS-elsewhere";
    MemoryReplayGuard replay;
    CHECK(code_of(protocol::verify_command(moved[3], opt, resolver, replay)) == "jws.bad_signature");
    auto missing = *batch;
    missing.pop_back();
    auto r = protocol::verify_batch(missing, opt, resolver, replay);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "batch.incomplete");
  }
}

TEST_CASE("sequence numbers are reserved durably in blocks and accepted only upwards") {
  Fixture f;
  auto a = f.store->reserve_sequences("signer-a", "CS-1", 100);
  auto b = f.store->reserve_sequences("signer-a", "CS-1", 100);
  auto c = f.store->reserve_sequences("signer-a", "CS-2", 1);
  REQUIRE((a.ok() && b.ok() && c.ok()));
  CHECK(*a == 1);
  CHECK(*b == 101);
  CHECK(*c == 1);
  CHECK(*f.store->accept_sequence("signer-a", "CS-1", 5));
  CHECK_FALSE(*f.store->accept_sequence("signer-a", "CS-1", 5));
  CHECK_FALSE(*f.store->accept_sequence("signer-a", "CS-1", 4));
  CHECK(*f.store->accept_sequence("signer-a", "CS-1", 6));
  CHECK(*f.store->accept_sequence("signer-b", "CS-1", 1));
  CHECK_FALSE(f.store->accept_sequence("signer-a", "CS-1", 0).ok());
}
