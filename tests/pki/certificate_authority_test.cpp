#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include <openssl/x509_vfy.h>

#include "pki/certificate_authority.h"
#include "pki/profile_loader.h"
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
