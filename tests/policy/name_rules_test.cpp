#include <catch2/catch.hpp>

#include "policy/name_rules.h"

using namespace gridtrust::policy;

TEST_CASE("eMAID: country, provider, 9-character instance, optional check digit, consistent separators") {
  CHECK(is_valid_emaid("DE8AAC12345678"));
  CHECK(is_valid_emaid("DE8AAC123456789"));
  CHECK(is_valid_emaid("DE-8AA-C12345678"));
  CHECK(is_valid_emaid("DE-8AA-C12345678-9"));
  CHECK_FALSE(is_valid_emaid("D38AAC12345678"));      // country code must be letters
  CHECK_FALSE(is_valid_emaid("DE8AAC1234567"));       // instance too short
  CHECK_FALSE(is_valid_emaid("DE8AAC1234567890"));    // too long
  CHECK_FALSE(is_valid_emaid("DE-8AAC12345678"));     // separators used inconsistently
  CHECK_FALSE(is_valid_emaid("DE*8AA*C12345678"));
  CHECK_FALSE(is_valid_emaid(""));
}

TEST_CASE("PCID: 17 or 18 alphanumerics") {
  CHECK(is_valid_pcid("WVWZZZ1JZXW000001"));
  CHECK(is_valid_pcid("WVWZZZ1JZXW0000011"));
  CHECK_FALSE(is_valid_pcid("WVWZZZ1JZXW00000"));
  CHECK_FALSE(is_valid_pcid("WVWZZZ1JZXW0000011X"));
  CHECK_FALSE(is_valid_pcid("WVWZZZ1JZXW-00001"));
}

TEST_CASE("SECC (EVSE) ID: country, operator, E, outlet") {
  CHECK(is_valid_secc_id("DE*ICE*E45B*78C"));
  CHECK(is_valid_secc_id("DEICEE45B78C"));
  CHECK(is_valid_secc_id("DE*ABC*E123456"));
  CHECK_FALSE(is_valid_secc_id("DE*ABC*X123456"));    // ID type must be E
  CHECK_FALSE(is_valid_secc_id("DE*ABC*E"));          // no outlet id
  CHECK_FALSE(is_valid_secc_id("12*ABC*E1"));
  CHECK_FALSE(is_valid_secc_id("DE*ABC*E12345678901234567890123456789012"));
}

TEST_CASE("host names follow RFC 1123 labels without wildcards") {
  CHECK(is_valid_hostname("csms.example.org"));
  CHECK(is_valid_hostname("localhost"));
  CHECK_FALSE(is_valid_hostname("*.example.org"));
  CHECK_FALSE(is_valid_hostname("-bad.example.org"));
  CHECK_FALSE(is_valid_hostname("a..b"));
  CHECK_FALSE(is_valid_hostname(std::string(64, 'a') + ".org"));
}
