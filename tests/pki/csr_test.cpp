#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "pki/csr.h"
#include "pki/der_reader.h"
#include "pki/profile_loader.h"
#include "tests/support/test_support.h"

using namespace gridtrust;
using namespace gridtrust::pki;

namespace {
const Profile& secc() {
  static ProfileSet set = *load_profiles(std::string(GRIDTRUST_SOURCE_DIR) + "/config/profiles.yaml");
  return *set.find("secc");
}
}  // namespace

TEST_CASE("a well-formed CSR parses, passes the key policy and verifies, as PEM and as DER") {
  auto key = test::make_key("P-256");
  for (const Bytes& input : {test::make_csr_der(key.get(), "CN=DE*ABC*E1,O=CPO,DC=CPO"),
                             to_bytes(test::make_csr_pem(key.get(), "CN=DE*ABC*E1,O=CPO,DC=CPO"))}) {
    auto req = parse_csr(input);
    REQUIRE(req.ok());
    CHECK(check_key_allowed(*req, secc()).ok());
    CHECK(verify_csr_signature(*req).ok());
  }
}

TEST_CASE("EdDSA CSRs verify with their one-shot signature") {
  for (auto type : {"Ed25519", "Ed448"}) {
    auto key = test::make_key(type);
    auto req = parse_csr(test::make_csr_der(key.get(), "CN=x,O=y"));
    REQUIRE(req.ok());
    CHECK(verify_csr_signature(*req).ok());
  }
}

TEST_CASE("every truncation of a CSR is rejected with a csr code, never a crash") {
  auto key = test::make_key("P-256");
  Bytes der = test::make_csr_der(key.get(), "CN=DE*ABC*E1,O=CPO,DC=CPO");
  for (std::size_t n = 0; n < der.size(); ++n) {
    Bytes cut(der.begin(), der.begin() + n);
    auto req = parse_csr(cut);
    REQUIRE_FALSE(req.ok());
    CHECK(req.error().code.rfind("csr.", 0) == 0);
  }
}

TEST_CASE("random byte changes are rejected or, if still well-formed, fail the signature") {
  auto key = test::make_key("P-256");
  Bytes der = test::make_csr_der(key.get(), "CN=DE*ABC*E1,O=CPO,DC=CPO");
  std::mt19937 rng(20261125);
  int accepted = 0;
  for (int i = 0; i < 2000; ++i) {
    Bytes m = der;
    m[rng() % m.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    auto req = parse_csr(m);
    if (!req.ok()) continue;
    if (!check_key_allowed(*req, secc()).ok()) continue;
    if (verify_csr_signature(*req).ok()) ++accepted;
  }
  // A change that still verifies can only be in bytes the signature does not cover
  // (the outer length octets cannot change without breaking the parse).
  CHECK(accepted == 0);
}

TEST_CASE("non-DER length encodings are refused") {
  Bytes indef = {0x30, 0x80, 0x00, 0x00};
  CHECK_FALSE(DerReader(indef.data(), indef.size()).next(der::kSequence));
  Bytes non_minimal = {0x30, 0x81, 0x01, 0x00};
  CHECK_FALSE(DerReader(non_minimal.data(), non_minimal.size()).next(der::kSequence));
  Bytes leading_zero = {0x30, 0x82, 0x00, 0x81, 0x00};
  CHECK_FALSE(DerReader(leading_zero.data(), leading_zero.size()).next(der::kSequence));
  Bytes too_long = {0x30, 0x05, 0x00};
  CHECK_FALSE(DerReader(too_long.data(), too_long.size()).next(der::kSequence));
  Bytes ok = {0x30, 0x81, 0x80};
  ok.resize(3 + 0x80);
  CHECK(DerReader(ok.data(), ok.size()).next(der::kSequence));
}

TEST_CASE("a CSR whose signature algorithm does not match its key is refused") {
  auto key = test::make_key("P-256");
  Bytes der = test::make_csr_der(key.get(), "CN=DE*ABC*E1,O=CPO,DC=CPO");
  // ecdsa-with-SHA256 OID ends in 04 03 02; turn it into ecdsa-with-SHA384 (04 03 03).
  Bytes oid = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
  auto it = std::search(der.rbegin(), der.rend(), oid.rbegin(), oid.rend());
  REQUIRE(it != der.rend());
  *it = 0x03;
  auto req = parse_csr(der);
  REQUIRE(req.ok());
  CHECK(verify_csr_signature(*req).error().code == "csr.bad_signature");
}
