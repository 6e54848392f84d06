#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include <openssl/x509_vfy.h>
#include <sqlite3.h>

#include "pki/certificate_authority.h"
#include "pki/csr.h"
#include "pki/profile_loader.h"
#include "pki/subject.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

using namespace gridtrust;

namespace {

struct Pki {
  test::SoftHsmToken hsm;
  test::TempDir dir;
  std::shared_ptr<store::SqliteStore> store;
  std::unique_ptr<pki::CertificateAuthority> ca;
  TimePoint clock = now_seconds();

  explicit Pki(std::size_t serial_block = 1) {
    auto profiles = pki::load_profiles(std::string(GRIDTRUST_SOURCE_DIR) + "/config/profiles.yaml");
    REQUIRE(profiles.ok());
    auto st = store::SqliteStore::open(dir / "pki.db");
    REQUIRE(st.ok());
    store = std::move(st).value();
    pki::PkiConfig cfg;
    cfg.endpoints = {"http://127.0.0.1:8081/crl/", "http://127.0.0.1:8081/ocsp"};
    cfg.serial_block = serial_block;
    cfg.now = [this] { return clock; };
    ca = std::make_unique<pki::CertificateAuthority>(*profiles, hsm.token(), store, cfg);
    REQUIRE(ca->create_hierarchy("test").ok());
  }

  // Verifies a DER leaf against the PKI's own chain for its profile, as a relying party would.
  bool verifies(const Bytes& leaf_der, const std::string& profile) {
    auto chain = ca->chain(profile);
    REQUIRE(chain.ok());
    std::unique_ptr<X509_STORE, OsslDeleter<X509_STORE_free>> roots(X509_STORE_new());
    std::unique_ptr<STACK_OF(X509), OsslDeleter<sk_X509_pop_free_all>> inter(sk_X509_new_null());
    for (std::size_t i = 0; i < chain->size(); ++i) {
      auto c = pki::certificate_from_der((*chain)[i]);
      if (i + 1 == chain->size()) X509_STORE_add_cert(roots.get(), c->get());
      else sk_X509_push(inter.get(), X509_dup(c->get()));
    }
    auto leaf = pki::certificate_from_der(leaf_der);
    std::unique_ptr<X509_STORE_CTX, OsslDeleter<X509_STORE_CTX_free>> ctx(X509_STORE_CTX_new());
    X509_STORE_CTX_init(ctx.get(), roots.get(), leaf->get(), inter.get());
    X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_X509_STRICT);
    X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(to_unix(clock)));
    return X509_verify_cert(ctx.get()) == 1;
  }

  static void sk_X509_pop_free_all(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
};

}  // namespace

TEST_CASE("the hierarchy is created once, every CA key in the token") {
  Pki p;
  auto issuers = p.store->issuers();
  REQUIRE(issuers.ok());
  CHECK(issuers->size() == 11);
  REQUIRE(p.ca->create_hierarchy("test").ok());  // idempotent
  CHECK(p.store->issuers()->size() == 11);
  CHECK(p.hsm.token()->list_private_keys()->size() == 11);
}

TEST_CASE("a SECC certificate from a CSR chains to the V2G root") {
  Pki p;
  auto key = test::make_key("P-256");
  auto csr = test::make_csr_der(key.get(), "CN=DE*ABC*E123456,O=Demo CPO,DC=CPO");
  auto issued = p.ca->issue_from_csr("secc", csr, {});
  REQUIRE(issued.ok());
  CHECK(issued->chain_der.size() == 3);  // leaf, sub-CA 2, sub-CA 1: root excluded
  CHECK(p.verifies(issued->record.der, "secc"));
  CHECK(issued->record.serial.size() == 32);  // 16 octets
}

TEST_CASE("an ISO 15118-20 SECC certificate carries a P-521 key and a SHA-512 signature") {
  Pki p;
  auto key = test::make_key("P-521");
  auto issued = p.ca->issue_from_csr("secc-20", test::make_csr_der(key.get(), "CN=DE*ABC*E1,O=CPO,DC=CPO"), {});
  REQUIRE(issued.ok());
  auto cert = pki::certificate_from_der(issued->record.der);
  CHECK(X509_get_signature_nid(cert->get()) == NID_ecdsa_with_SHA512);
  CHECK(p.verifies(issued->record.der, "secc-20"));
}

TEST_CASE("an expired issuer refuses to issue") {
  Pki p;
  p.clock += std::chrono::days(365 * 50);
  auto key = test::make_key("P-256");
  auto issued = p.ca->issue_from_csr("secc", test::make_csr_der(key.get(), "CN=DE*ABC*E1,O=CPO,DC=CPO"), {});
  REQUIRE_FALSE(issued.ok());
  CHECK(issued.error().code == "issuer.expired");
}

TEST_CASE("validity is capped by the issuer's notAfter unless asked for explicitly") {
  Pki p;
  // Sub-CA 2 lives 730 days; move close to its end.
  p.clock += std::chrono::days(700);
  auto key = test::make_key("P-256");
  auto csr = test::make_csr_der(key.get(), "CN=DE*ABC*E1,O=CPO,DC=CPO");
  auto capped = p.ca->issue_from_csr("secc", csr, {});
  REQUIRE(capped.ok());
  auto issuer = p.store->issuer("cpo-sub2");
  CHECK(capped->record.not_after == (*issuer)->not_after);
  pki::IssueOptions opt;
  opt.validity_days = 60;
  auto refused = p.ca->issue_from_csr("secc", csr, opt);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == "validity.beyond_issuer");
}

TEST_CASE("concurrent issuances get unique serials and share commits") {
  Pki p(64);
  constexpr int kThreads = 2, kEach = 100;
  std::vector<Bytes> csrs;
  for (int i = 0; i < kThreads * kEach; ++i) {
    auto key = test::make_key("P-256");
    csrs.push_back(test::make_csr_der(key.get(), "CN=station-" + std::to_string(i) + ",O=CPO"));
  }
  std::mutex mu;
  std::set<std::string> serials;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::vector<pki::PendingIssuance> pending;
      for (int i = 0; i < kEach; ++i) {
        auto r = p.ca->issue_from_csr_async("charging-station", csrs[t * kEach + i], {});
        if (!r.ok()) {
          ++failures;
          continue;
        }
        pending.push_back(std::move(r).value());
      }
      for (auto& pi : pending) {
        if (!pi.durable.get().ok()) ++failures;
        std::lock_guard g(mu);
        serials.insert(pi.issued.record.serial);
      }
    });
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  CHECK(serials.size() == kThreads * kEach);
  CHECK(p.store->verify_audit()->ok);
}

TEST_CASE("an HSM-held leaf whose subject is refused leaves no key behind") {
  Pki p;
  auto before = p.hsm.token()->list_private_keys()->size();
  auto bad = p.ca->issue_with_hsm_key("csms-server", "CN=not a host,O=CPO", {});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == "subject.bad_hostname");
  CHECK(p.hsm.token()->list_private_keys()->size() == before);
  auto good = p.ca->issue_with_hsm_key("csms-server", "CN=csms.example.org,O=CPO", {});
  REQUIRE(good.ok());
  CHECK(good->record.key_label.has_value());
  CHECK(p.hsm.token()->list_private_keys()->size() == before + 1);
  CHECK(p.verifies(good->record.der, "csms-server"));
}

TEST_CASE("keyCompromise of a sub-CA revokes everything below it") {
  Pki p;
  auto key = test::make_key("P-256");
  auto leaf = p.ca->issue_from_csr("secc", test::make_csr_der(key.get(), "CN=DE*ABC*E1,O=CPO,DC=CPO"), {});
  REQUIRE(leaf.ok());
  auto sub1 = p.store->issuer("cpo-sub1");
  REQUIRE(p.ca->revoke((*sub1)->serial, "keyCompromise", "test").ok());
  auto rows = p.store->find_by_serial(leaf->record.serial);
  CHECK(rows->front().status == "revoked");
  CHECK(*rows->front().reason == 2);  // cACompromise
  auto again = p.ca->issue_from_csr("secc", test::make_csr_der(key.get(), "CN=DE*ABC*E2,O=CPO,DC=CPO"), {});
  CHECK(again.error().code == "issuer.revoked");
  // Other branches are untouched.
  auto contract_key = test::make_key("P-256");
  CHECK(p.ca->issue_from_csr("contract", test::make_csr_der(contract_key.get(), "CN=DE8AAC12345678,O=MO,DC=MO"), {}).ok());
}

// --- renew and re-key -------------------------------------------------------------

namespace {

Bytes spki_of(const Bytes& cert_der) {
  auto cert = pki::certificate_from_der(cert_der);
  REQUIRE(cert.ok());
  X509_PUBKEY* pub = X509_get_X509_PUBKEY(cert->get());
  Bytes out(static_cast<std::size_t>(i2d_X509_PUBKEY(pub, nullptr)));
  unsigned char* w = out.data();
  i2d_X509_PUBKEY(pub, &w);
  return out;
}

std::string subject_of(const Bytes& cert_der) {
  auto cert = pki::certificate_from_der(cert_der);
  REQUIRE(cert.ok());
  return pki::subject_text(X509_get_subject_name(cert->get()));
}

store::CertificateRecord record_of(Pki& p, const std::string& serial) {
  auto rows = p.store->find_by_serial(serial);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  return rows->front();
}

// What a refusal must leave as it was: certificates, audit entries, token keys.
struct Footprint {
  std::size_t certificates;
  std::int64_t audit_head;
  std::size_t keys;
  bool operator==(const Footprint&) const = default;
};

Footprint footprint(Pki& p) {
  return {p.store->list({})->size(), p.store->audit_head()->id, p.hsm.token()->list_private_keys()->size()};
}

// Runs SQL on the store's database through a connection of its own (a test's hand on
// the database, as another process would have).
void sql(Pki& p, const std::string& statement) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((p.dir / "pki.db").c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

struct Secc {
  EvpPkeyPtr key = test::make_key("P-256");
  std::string subject = "CN=DE*ABC*E42,O=CPO,DC=CPO";
  pki::Issued issued;

  explicit Secc(Pki& p) {
    auto r = p.ca->issue_from_csr("secc", test::make_csr_der(key.get(), subject), {});
    REQUIRE(r.ok());
    issued = std::move(r).value();
  }
  const std::string& serial() const { return issued.record.serial; }
};

}  // namespace

TEST_CASE("renew issues a new serial for the same subject, key, profile and issuer with a fresh validity") {
  Pki p;
  Secc old(p);
  p.clock += std::chrono::days(200);
  pki::ReplaceOptions opt;
  opt.actor = "test";
  auto renewed = p.ca->renew(old.serial(), opt);
  REQUIRE(renewed.ok());
  const auto& rec = renewed->issued.record;
  CHECK(renewed->replaces == old.serial());
  CHECK(rec.serial != old.serial());
  CHECK(rec.profile == "secc");
  CHECK(rec.issuer == old.issued.record.issuer);
  CHECK(rec.subject == old.issued.record.subject);
  CHECK(subject_of(rec.der) == subject_of(old.issued.record.der));
  CHECK(spki_of(rec.der) == spki_of(old.issued.record.der));
  CHECK(rec.not_before == to_unix(p.clock) - 300);
  CHECK(rec.not_after == rec.not_before + 365 * 86400);
  CHECK(renewed->issued.chain_der.size() == 3);
  CHECK(p.verifies(rec.der, "secc"));
  CHECK_FALSE(renewed->revoked);
  CHECK_FALSE(renewed->revoke_failure);
  CHECK(record_of(p, old.serial()).status == "valid");  // overlap: the old one stays valid
  CHECK(record_of(p, rec.serial).status == "valid");

  auto entries = p.store->audit_entries();
  REQUIRE(entries.ok());
  const auto& ev = entries->back().event;
  CHECK(ev.action == "renew");
  CHECK(ev.actor == "test");
  CHECK(ev.subject == rec.issuer + "/" + rec.serial);
  CHECK(ev.details.find("\"replaces\":\"" + old.serial() + "\"") != std::string::npos);
  CHECK(p.store->verify_audit()->ok);
}

TEST_CASE("renew with revoke_old revokes the old certificate as superseded after storing the new one") {
  Pki p;
  Secc old(p);
  pki::ReplaceOptions opt;
  opt.revoke_old = true;
  auto renewed = p.ca->renew("0x" + old.serial(), opt);  // serials as the CLI takes them
  REQUIRE(renewed.ok());
  REQUIRE(renewed->revoked);
  CHECK(renewed->revoked->serial == old.serial());
  CHECK_FALSE(renewed->revoke_failure);
  auto before = record_of(p, old.serial());
  CHECK(before.status == "revoked");
  CHECK(before.reason == 4);  // superseded
  CHECK(record_of(p, renewed->issued.record.serial).status == "valid");
  auto entries = p.store->audit_entries();
  REQUIRE(entries->size() >= 2);
  const auto& renew_ev = (*entries)[entries->size() - 2].event;
  const auto& revoke_ev = entries->back().event;
  CHECK(renew_ev.action == "renew");
  CHECK(revoke_ev.action == "revoke");
  CHECK(revoke_ev.subject == old.issued.record.issuer + "/" + old.serial());
  CHECK(revoke_ev.details.find("\"reason\":\"superseded\"") != std::string::npos);
  CHECK(revoke_ev.details.find("\"superseded_by\":\"" + renewed->issued.record.serial + "\"") != std::string::npos);
}

TEST_CASE("renew of an HSM-held leaf keeps its token key") {
  Pki p;
  auto old = p.ca->issue_with_hsm_key("csms-server", "CN=csms.example.org,O=CPO", {});
  REQUIRE(old.ok());
  auto keys = p.hsm.token()->list_private_keys()->size();
  auto renewed = p.ca->renew(old->record.serial, {});
  REQUIRE(renewed.ok());
  const auto& rec = renewed->issued.record;
  CHECK(rec.key_label == old->record.key_label);
  CHECK(rec.key_id == old->record.key_id);
  CHECK(spki_of(rec.der) == spki_of(old->record.der));
  CHECK(p.hsm.token()->list_private_keys()->size() == keys);
  CHECK(p.verifies(rec.der, "csms-server"));
  CHECK(p.store->audit_entries()->back().event.details.find("\"hsm_key\":\"" + *old->record.key_label + "\"") !=
        std::string::npos);
}

TEST_CASE("renew refuses unknown, malformed, revoked and CA serials and leaves the store unchanged") {
  Pki p;
  Secc revoked(p);
  REQUIRE(p.ca->revoke(revoked.serial(), "keyCompromise", "test").ok());
  auto sub2 = p.store->issuer("cpo-sub2");
  auto root = p.store->issuer("v2g-root");
  auto before = footprint(p);
  struct Case {
    std::string serial, code;
  };
  for (const auto& c : {Case{"0BADC0FFEE", "notfound.certificate"}, Case{"not-hex", "usage.bad_serial"},
                        Case{revoked.serial(), "renew.revoked"}, Case{(*sub2)->serial, "renew.ca_certificate"},
                        Case{(*root)->serial, "renew.ca_certificate"}}) {
    pki::ReplaceOptions opt;
    opt.revoke_old = true;
    auto r = p.ca->renew(c.serial, opt);
    INFO(c.serial);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == c.code);
    CHECK(footprint(p) == before);
  }
  CHECK(record_of(p, (*sub2)->serial).status == "valid");
}

TEST_CASE("renew refuses a certificate whose profile is gone, moved to another issuer or no longer allows its key") {
  Pki p;
  Secc old(p);
  auto before = footprint(p);
  const pki::ProfileSet original = *p.ca->profiles();

  auto without = original;
  without.profiles.erase("secc");
  p.ca->replace_profiles(without);
  auto gone = p.ca->renew(old.serial(), {});
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().code == "renew.profile_unavailable");

  auto moved = original;
  moved.profiles.at("secc").issuer = "cpo-sub1";
  p.ca->replace_profiles(moved);
  auto other_issuer = p.ca->renew(old.serial(), {});
  REQUIRE_FALSE(other_issuer.ok());
  CHECK(other_issuer.error().code == "renew.issuer_changed");

  auto stricter = original;
  stricter.profiles.at("secc").keys = {hsm::KeyAlgorithm::EcP384};
  p.ca->replace_profiles(stricter);
  auto key = p.ca->renew(old.serial(), {});
  REQUIRE_FALSE(key.ok());
  CHECK(key.error().code == "renew.key_not_allowed");
  CHECK(footprint(p) == before);

  p.ca->replace_profiles(original);
  CHECK(p.ca->renew(old.serial(), {}).ok());
}

TEST_CASE("renew refuses under a revoked issuer and leaves the store unchanged") {
  Pki p;
  Secc old(p);
  auto sub2 = p.store->issuer("cpo-sub2");
  REQUIRE(p.ca->revoke((*sub2)->serial, "cessationOfOperation", "test").ok());  // no cascade
  auto before = footprint(p);
  auto r = p.ca->renew(old.serial(), {});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == "issuer.revoked");
  CHECK(footprint(p) == before);
}

TEST_CASE("a renewal racing a revocation of the old certificate does not commit") {
  Pki p;
  Secc old(p);
  // The revocation lands between renew's checks and its commit: when the new serial
  // is reserved.
  sql(p, "CREATE TRIGGER race AFTER INSERT ON serials BEGIN UPDATE certificates SET status='revoked', reason=1, "
         "revoked_at=0 WHERE serial='" + old.serial() + "'; END;");
  auto certificates = p.store->list({})->size();
  auto r = p.ca->renew(old.serial(), {});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == "renew.revoked");
  CHECK(p.store->list({})->size() == certificates);
}

TEST_CASE("a failed revocation of the old certificate keeps the new one and says why") {
  Pki p;
  Secc old(p);
  sql(p, "CREATE TRIGGER keep BEFORE UPDATE OF status ON certificates WHEN OLD.serial='" + old.serial() +
         "' BEGIN SELECT RAISE(ABORT, 'kept by the test'); END;");
  pki::ReplaceOptions opt;
  opt.revoke_old = true;
  auto r = p.ca->renew(old.serial(), opt);
  REQUIRE(r.ok());
  REQUIRE(r->revoke_failure);
  CHECK_FALSE(r->revoke_failure->code.empty());
  CHECK_FALSE(r->revoked);
  CHECK(record_of(p, r->issued.record.serial).status == "valid");
  CHECK(record_of(p, old.serial()).status == "valid");
  CHECK(p.store->audit_entries()->back().event.action == "renew");
  CHECK(p.store->verify_audit()->ok);
}

TEST_CASE("rekey from a CSR certifies the new key for the same subject and profile") {
  Pki p;
  Secc old(p);
  auto fresh = test::make_key("P-256");
  pki::ReplaceOptions opt;
  opt.revoke_old = true;
  auto r = p.ca->rekey_from_csr(old.serial(), test::make_csr_der(fresh.get(), old.subject), opt);
  REQUIRE(r.ok());
  const auto& rec = r->issued.record;
  CHECK(r->replaces == old.serial());
  CHECK(rec.serial != old.serial());
  CHECK(rec.profile == "secc");
  CHECK(rec.issuer == old.issued.record.issuer);
  CHECK(subject_of(rec.der) == subject_of(old.issued.record.der));
  CHECK(spki_of(rec.der) != spki_of(old.issued.record.der));
  auto csr = pki::parse_csr(test::make_csr_der(fresh.get(), old.subject));
  CHECK(spki_of(rec.der) == csr->spki_der);
  CHECK(p.verifies(rec.der, "secc"));
  CHECK(record_of(p, old.serial()).reason == 4);
  auto entries = p.store->audit_entries();
  const auto& ev = (*entries)[entries->size() - 2].event;
  CHECK(ev.action == "rekey");
  CHECK(ev.details.find("\"replaces\":\"" + old.serial() + "\"") != std::string::npos);
}

TEST_CASE("rekey refuses another subject, the same key, a bad CSR and a revoked or CA certificate") {
  Pki p;
  Secc old(p);
  Secc revoked(p);
  REQUIRE(p.ca->revoke(revoked.serial(), "superseded", "test").ok());
  auto sub2 = p.store->issuer("cpo-sub2");
  auto fresh = test::make_key("P-256");
  auto p384 = test::make_key("P-384");
  auto before = footprint(p);
  struct Case {
    std::string serial;
    Bytes csr;
    std::string code;
  };
  auto good = test::make_csr_der(fresh.get(), old.subject);
  for (const auto& c : {
           Case{old.serial(), test::make_csr_der(fresh.get(), "CN=DE*ABC*E43,O=CPO,DC=CPO"), "rekey.subject_mismatch"},
           Case{old.serial(), test::make_csr_der(old.key.get(), old.subject), "rekey.same_key"},
           Case{old.serial(), test::make_csr_der(p384.get(), old.subject), "csr.curve_not_allowed"},
           Case{old.serial(), Bytes{'x'}, "csr.malformed_der"},
           Case{revoked.serial(), good, "rekey.revoked"},
           Case{(*sub2)->serial, good, "rekey.ca_certificate"},
           Case{"0BADC0FFEE", good, "notfound.certificate"},
       }) {
    auto r = p.ca->rekey_from_csr(c.serial, c.csr, {});
    INFO(c.code);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == c.code);
    CHECK(footprint(p) == before);
  }
  CHECK(record_of(p, old.serial()).status == "valid");
}

TEST_CASE("rekey of an HSM-held leaf generates a new token key and keeps the old one") {
  Pki p;
  auto old = p.ca->issue_with_hsm_key("aggregator-signer", "CN=aggregator-1,O=CPO", {});
  REQUIRE(old.ok());
  auto keys = p.hsm.token()->list_private_keys()->size();
  auto r = p.ca->rekey_with_hsm_key(old->record.serial, {});
  REQUIRE(r.ok());
  const auto& rec = r->issued.record;
  REQUIRE(rec.key_label);
  CHECK(rec.key_label != old->record.key_label);
  CHECK(rec.key_id != old->record.key_id);
  CHECK(spki_of(rec.der) != spki_of(old->record.der));
  CHECK(rec.subject == old->record.subject);
  CHECK(p.hsm.token()->list_private_keys()->size() == keys + 1);
  CHECK(p.hsm.token()->find_key_by_id(*old->record.key_id).ok());  // verifies what it signed until expiry
  CHECK(p.verifies(rec.der, "aggregator-signer"));
  CHECK(p.store->audit_entries()->back().event.action == "rekey");
}

TEST_CASE("rekey in the token is refused for subject-held profiles and revoked certificates without creating a key") {
  Pki p;
  Secc secc(p);
  auto hsm_leaf = p.ca->issue_with_hsm_key("csms-server", "CN=csms.example.org,O=CPO", {});
  REQUIRE(hsm_leaf.ok());
  REQUIRE(p.ca->revoke(hsm_leaf->record.serial, "keyCompromise", "test").ok());
  auto before = footprint(p);
  auto subject_held = p.ca->rekey_with_hsm_key(secc.serial(), {});
  REQUIRE_FALSE(subject_held.ok());
  CHECK(subject_held.error().code == "profile.no_hsm_key");
  auto revoked = p.ca->rekey_with_hsm_key(hsm_leaf->record.serial, {});
  REQUIRE_FALSE(revoked.ok());
  CHECK(revoked.error().code == "rekey.revoked");
  CHECK(footprint(p) == before);
}

TEST_CASE("an expired certificate can be renewed: the new one is valid from now") {
  Pki p;
  Secc old(p);
  p.clock += std::chrono::days(400);  // past the SECC's 365 days, inside Sub-CA 2's 730
  auto renewed = p.ca->renew(old.serial(), {});
  REQUIRE(renewed.ok());
  CHECK(renewed->issued.record.not_before > old.issued.record.not_after);
  CHECK(spki_of(renewed->issued.record.der) == spki_of(old.issued.record.der));
  CHECK(p.verifies(renewed->issued.record.der, "secc"));
}

TEST_CASE("replaced profiles apply to the next issuance, cached extensions included; a snapshot keeps the old set") {
  Pki p;
  auto key = test::make_key("P-256");
  auto csr = test::make_csr_der(key.get(), "CN=DE*ABC*E123456,O=Demo CPO,DC=CPO");
  auto has_client_auth = [](const Bytes& der) {
    auto cert = pki::certificate_from_der(der);
    return X509_get_ext_by_NID(cert->get(), NID_ext_key_usage, -1) >= 0 &&
           (X509_get_extended_key_usage(cert->get()) & XKU_SSL_CLIENT) != 0;
  };
  auto before = p.ca->issue_from_csr("secc", csr, {});  // fills the extensions cache for secc
  REQUIRE(before.ok());
  CHECK_FALSE(has_client_auth(before->record.der));

  auto old_set = p.ca->profiles();
  pki::ProfileSet changed = *old_set;
  changed.profiles.at("secc").extended_key_usage = {"clientAuth"};
  changed.profiles.at("secc").validity_days = 30;
  p.ca->replace_profiles(changed);

  auto after = p.ca->issue_from_csr("secc", csr, {});
  REQUIRE(after.ok());
  CHECK(has_client_auth(after->record.der));
  CHECK(after->record.not_after - after->record.not_before == 30 * 86400);
  CHECK(p.verifies(after->record.der, "secc"));
  CHECK(old_set->find("secc")->validity_days == 365);
  CHECK(old_set->find("secc")->extended_key_usage.empty());
}
