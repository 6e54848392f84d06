#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "hsm/evp_bridge.h"
#include "hsm/hsm_signer.h"
#include "tests/support/test_support.h"

using namespace gridtrust;
using namespace gridtrust::hsm;

TEST_CASE("an HSM EC key signs through EVP_DigestSign and verifies with its public key") {
  test::SoftHsmToken t;
  for (auto alg : {KeyAlgorithm::EcP256, KeyAlgorithm::EcP384, KeyAlgorithm::EcP521}) {
    INFO(name_of(alg));
    auto key = t.token()->generate_key_pair(alg, "bridge");
    REQUIRE(key.ok());
    auto signer = std::make_shared<HsmSigner>(t.token(), *key);
    auto pkey = make_evp_pkey(signer);
    REQUIRE(pkey.ok());
    Bytes msg = to_bytes("certificate body");
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey->get()) == 1);
    std::size_t len = 0;
    REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &len, msg.data(), msg.size()) == 1);
    Bytes sig(len);
    REQUIRE(EVP_DigestSign(ctx.get(), sig.data(), &len, msg.data(), msg.size()) == 1);
    sig.resize(len);
    auto pub = public_evp_pkey(*signer);
    REQUIRE(pub.ok());
    EvpMdCtxPtr vctx(EVP_MD_CTX_new());
    REQUIRE(EVP_DigestVerifyInit(vctx.get(), nullptr, EVP_sha256(), nullptr, pub->get()) == 1);
    CHECK(EVP_DigestVerify(vctx.get(), sig.data(), sig.size(), msg.data(), msg.size()) == 1);
  }
}

TEST_CASE("a certificate signed through the bridge matches its key and verifies") {
  test::SoftHsmToken t;
  auto key = t.token()->generate_key_pair(KeyAlgorithm::EcP256, "ca");
  REQUIRE(key.ok());
  auto pkey = make_evp_pkey(std::make_shared<HsmSigner>(t.token(), *key));
  REQUIRE(pkey.ok());
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("bridge"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), pkey->get());
  REQUIRE(X509_sign(cert.get(), pkey->get(), EVP_sha256()) > 0);
  CHECK(X509_verify(cert.get(), X509_get0_pubkey(cert.get())) == 1);
  CHECK(X509_check_private_key(cert.get(), pkey->get()) == 1);
}

TEST_CASE("EdDSA keys are not offered as EVP_PKEY but sign through the Signer") {
  test::SoftHsmToken t;
  auto key = t.token()->generate_key_pair(KeyAlgorithm::Ed25519, "ed");
  REQUIRE(key.ok());
  auto pkey = make_evp_pkey(std::make_shared<HsmSigner>(t.token(), *key));
  REQUIRE_FALSE(pkey.ok());
  CHECK(pkey.error().code == "hsm.bridge_unsupported");
}

TEST_CASE("raw r||s and DER ECDSA signatures convert both ways") {
  Bytes raw(64);
  for (int i = 0; i < 64; ++i) raw[i] = static_cast<std::uint8_t>(i + (i < 32 ? 0x80 : 1));
  raw[32] = 0;  // s with a leading zero byte
  auto der = ecdsa_raw_to_der(raw);
  REQUIRE(der.ok());
  auto back = ecdsa_der_to_raw(*der, 32);
  REQUIRE(back.ok());
  CHECK(*back == raw);
  CHECK_FALSE(ecdsa_der_to_raw(Bytes{0x30, 0x01}, 32).ok());
  CHECK_FALSE(ecdsa_raw_to_der(Bytes(63)).ok());
}
