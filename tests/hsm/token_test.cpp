#include <catch2/catch.hpp>

#include <thread>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/digest.h"
#include "hsm/evp_bridge.h"
#include "hsm/pin_source.h"
#include "tests/support/test_support.h"

using namespace gridtrust;
using namespace gridtrust::hsm;

namespace {
bool verifies(const KeyRef& key, const Bytes& message, const Bytes& raw_sig) {
  const unsigned char* p = key.public_key_der.data();
  EvpPkeyPtr pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(key.public_key_der.size())));
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  Bytes sig = raw_sig;
  const EVP_MD* md = nullptr;
  if (!is_edwards(key.algorithm)) {
    sig = *ecdsa_raw_to_der(raw_sig);
    md = key.algorithm == KeyAlgorithm::EcP256 ? EVP_sha256() : key.algorithm == KeyAlgorithm::EcP384 ? EVP_sha384() : EVP_sha512();
  }
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, pub.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size()) == 1;
}

Bytes digest_for(KeyAlgorithm a, const Bytes& m) {
  const EVP_MD* md = a == KeyAlgorithm::EcP256 ? EVP_sha256() : a == KeyAlgorithm::EcP384 ? EVP_sha384() : EVP_sha512();
  Bytes d(EVP_MD_get_size(md));
  unsigned int n = 0;
  EVP_Digest(m.data(), m.size(), d.data(), &n, md, nullptr);
  return d;
}
}  // namespace

TEST_CASE("keys of every supported algorithm are generated in the token and sign verifiably") {
  test::SoftHsmToken t;
  Bytes message = to_bytes("setpoint 7 kW");
  for (auto alg : {KeyAlgorithm::EcP256, KeyAlgorithm::EcP384, KeyAlgorithm::EcP521, KeyAlgorithm::Ed25519,
                   KeyAlgorithm::Ed448}) {
    INFO(name_of(alg));
    auto key = t.token()->generate_key_pair(alg, std::string("k-") + std::string(name_of(alg)));
    REQUIRE(key.ok());
    Bytes input = is_edwards(alg) ? message : digest_for(alg, message);
    auto sig = t.token()->sign(*key, input);
    REQUIRE(sig.ok());
    CHECK(sig->size() == raw_signature_size(alg));
    CHECK(verifies(*key, message, *sig));
  }
}

TEST_CASE("generated private keys are sensitive and never extractable") {
  test::SoftHsmToken t;
  REQUIRE(t.token()->generate_key_pair(KeyAlgorithm::EcP256, "a").ok());
  REQUIRE(t.token()->generate_key_pair(KeyAlgorithm::Ed25519, "b").ok());
  auto keys = t.token()->list_private_keys();
  REQUIRE(keys.ok());
  REQUIRE(keys->size() == 2);
  for (auto& k : *keys) {
    CHECK(k.sensitive);
    CHECK_FALSE(k.extractable);
    CHECK(k.always_sensitive);
    CHECK(k.never_extractable);
  }
}

TEST_CASE("keys are found by label and by id, and destroyed") {
  test::SoftHsmToken t;
  auto key = t.token()->generate_key_pair(KeyAlgorithm::EcP256, "signer");
  REQUIRE(key.ok());
  auto found = t.token()->find_key("signer");
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->id == key->id);
  CHECK((*found)->public_key_der == key->public_key_der);
  auto by_id = t.token()->find_key_by_id(key->id);
  REQUIRE(by_id.ok());
  CHECK(by_id->label == "signer");
  CHECK_FALSE(t.token()->find_key("nope")->has_value());
  REQUIRE(t.token()->destroy_key(*key).ok());
  CHECK_FALSE(t.token()->find_key("signer")->has_value());
  auto sig = t.token()->sign(*key, Bytes(32, 1));
  REQUIRE_FALSE(sig.ok());
  CHECK(sig.error().code == "hsm.key_not_found");
}

TEST_CASE("many threads sign through the session pool") {
  test::SoftHsmToken t;
  auto key = t.token()->generate_key_pair(KeyAlgorithm::EcP256, "pool");
  REQUIRE(key.ok());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      for (int j = 0; j < 50; ++j)
        if (t.token()->sign(*key, Bytes(32, static_cast<std::uint8_t>(j))).ok()) ++ok;
    });
  for (auto& th : threads) th.join();
  CHECK(ok == 400);
  CHECK(t.token()->idle_sessions() <= 8);
}

TEST_CASE("a wrong PIN is refused with hsm.login_failed") {
  test::SoftHsmToken t(false);
  TokenConfig cfg;
  cfg.module_path = test::kSoftHsmModule;
  cfg.token_uri = "pkcs11:token=test";
  cfg.pin = SecureString("0000");
  auto bad = Token::open(std::move(cfg));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == "hsm.login_failed");
}

TEST_CASE("a URI that matches no token, or is not a PKCS#11 URI, is refused") {
  test::SoftHsmToken t(false);
  TokenConfig cfg;
  cfg.module_path = test::kSoftHsmModule;
  cfg.token_uri = "pkcs11:token=absent";
  cfg.pin = SecureString(t.pin());
  CHECK(Token::open(cfg).error().code == "hsm.token_not_found");
  cfg.token_uri = "token=test";
  CHECK(Token::open(cfg).error().code == "hsm.bad_uri");
  cfg.token_uri = "pkcs11:token=test";
  cfg.module_path = "/nonexistent/module.so";
  CHECK(Token::open(cfg).error().code == "hsm.module_load_failed");
}

TEST_CASE("the PIN comes from an environment variable before a file") {
  test::TempDir dir;
  test::write_file(dir / "pin", "4321\n");
  PinSource src{dir / "pin", "GRIDTRUST_TEST_PIN"};
  unsetenv("GRIDTRUST_TEST_PIN");
  CHECK(read_pin(src)->reveal() == "4321");
  setenv("GRIDTRUST_TEST_PIN", "9999", 1);
  CHECK(read_pin(src)->reveal() == "9999");
  unsetenv("GRIDTRUST_TEST_PIN");
  CHECK(read_pin(PinSource{dir / "missing", ""}).error().code == "hsm.pin_unavailable");
  test::write_file(dir / "empty", "\n");
  CHECK(read_pin(PinSource{dir / "empty", ""}).error().code == "hsm.pin_unavailable");
}
