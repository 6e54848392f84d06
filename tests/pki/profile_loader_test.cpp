#include <catch2/catch.hpp>

#include <cstring>
#include <regex>

#include "pki/profile_loader.h"
#include "tests/support/test_support.h"

using namespace gridtrust;

namespace {
std::string shipped() { return std::string(GRIDTRUST_SOURCE_DIR) + "/config/profiles.yaml"; }
}  // namespace

TEST_CASE("the shipped profiles define every role of the design table") {
  auto set = pki::load_profiles(shipped());
  REQUIRE(set.ok());
  for (auto name : {"v2g-root", "cpo-sub1", "cpo-sub2", "secc", "secc-20", "charging-station", "csms-server",
                    "aggregator-signer", "ocsp-signer", "oem-root", "oem-sub1", "oem-sub2", "oem-provisioning",
                    "mo-root", "mo-sub1", "mo-sub2", "contract", "cps-sub1", "cps-sub2", "cps-leaf", "admin"}) {
    INFO(name);
    CHECK(set->find(name) != nullptr);
  }
  CHECK(set->find("cpo-sub1")->path_len == 1);
  CHECK(set->find("cpo-sub2")->path_len == 0);
  CHECK(set->find("secc-20")->digest == "SHA-512");
  CHECK(set->find("secc-20")->keys.front() == hsm::KeyAlgorithm::EcP521);
  auto order = set->cas_in_order();
  REQUIRE(order.size() == 11);
  // Parents come before children.
  for (std::size_t i = 0; i < order.size(); ++i)
    for (std::size_t j = i + 1; j < order.size(); ++j) CHECK(order[i]->issuer != order[j]->name);
}

TEST_CASE("a profile error names the file, the line and the field") {
  test::TempDir dir;
  std::string text = test::read_file(shipped());
  text = std::regex_replace(text, std::regex("validity_days: 365\n"), "validity_days: -5\n", std::regex_constants::format_first_only);
  test::write_file(dir / "p.yaml", text);
  auto set = pki::load_profiles(dir / "p.yaml");
  REQUIRE_FALSE(set.ok());
  CHECK(set.error().code == "config.invalid");
  CHECK_THAT(set.error().message, Catch::Contains("p.yaml:") && Catch::Contains(".validity_days") &&
                                      Catch::Contains("positive"));
}

TEST_CASE("unknown key usages, algorithms and issuers are refused") {
  test::TempDir dir;
  auto base = test::read_file(shipped());
  struct Case { const char* from; const char* to; const char* field; };
  for (auto c : {Case{"keys: [P-521, Ed448]", "keys: [P-999]", "secc-20.keys"},
                 Case{"key_usage: [digitalSignature, nonRepudiation", "key_usage: [signEverything, nonRepudiation", "contract.key_usage"},
                 Case{"issuer: mo-sub2", "issuer: nobody", "contract.issuer"},
                 Case{"digest: SHA-512", "digest: MD5", "secc-20.digest"}}) {
    INFO(c.field);
    auto text = base;
    auto pos = text.find(c.from);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, std::strlen(c.from), c.to);
    test::write_file(dir / "p.yaml", text);
    auto set = pki::load_profiles(dir / "p.yaml");
    REQUIRE_FALSE(set.ok());
    CHECK_THAT(set.error().message, Catch::Contains(c.field));
  }
  CHECK(pki::load_profiles(dir / "missing.yaml").error().code == "config.invalid");
}
