#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include <boost/json/parse.hpp>

#include "protocol/jcs.h"
#include "protocol/json_text.h"

using namespace gridtrust;
using protocol::ecmascript_number;

namespace {

double from_bits(std::uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

std::string canon(std::string_view text) {
  auto v = protocol::parse_strict(text);
  REQUIRE(v.ok());
  auto c = protocol::canonicalize(*v);
  REQUIRE(c.ok());
  return *c;
}

}  // namespace

// RFC 8785 appendix B: IEEE 754 bit patterns and their ECMAScript form.
TEST_CASE("numbers are written as ECMAScript writes them (RFC 8785 appendix B)") {
  CHECK(ecmascript_number(from_bits(0x0000000000000000)) == "0");
  CHECK(ecmascript_number(from_bits(0x8000000000000000)) == "0");
  CHECK(ecmascript_number(from_bits(0x0000000000000001)) == "5e-324");
  CHECK(ecmascript_number(from_bits(0x8000000000000001)) == "-5e-324");
  CHECK(ecmascript_number(from_bits(0x7fefffffffffffff)) == "1.7976931348623157e+308");
  CHECK(ecmascript_number(from_bits(0xffefffffffffffff)) == "-1.7976931348623157e+308");
  CHECK(ecmascript_number(from_bits(0x4340000000000000)) == "9007199254740992");
  CHECK(ecmascript_number(from_bits(0xc340000000000000)) == "-9007199254740992");
  CHECK(ecmascript_number(from_bits(0x4430000000000000)) == "295147905179352830000");
  CHECK(ecmascript_number(from_bits(0x44b52d02c7e14af5)) == "9.999999999999997e+22");
  CHECK(ecmascript_number(from_bits(0x44b52d02c7e14af6)) == "1e+23");
  CHECK(ecmascript_number(from_bits(0x44b52d02c7e14af7)) == "1.0000000000000001e+23");
  CHECK(ecmascript_number(from_bits(0x444b1ae4d6e2ef4e)) == "999999999999999700000");
  CHECK(ecmascript_number(from_bits(0x444b1ae4d6e2ef4f)) == "999999999999999900000");
  CHECK(ecmascript_number(from_bits(0x444b1ae4d6e2ef50)) == "1e+21");
  CHECK(ecmascript_number(from_bits(0x3eb0c6f7a0b5ed8c)) == "9.999999999999997e-7");
  CHECK(ecmascript_number(from_bits(0x3eb0c6f7a0b5ed8d)) == "0.000001");
  CHECK(ecmascript_number(from_bits(0x41b3de4355555553)) == "333333333.3333332");
  CHECK(ecmascript_number(from_bits(0x41b3de4355555554)) == "333333333.33333325");
  CHECK(ecmascript_number(from_bits(0x41b3de4355555555)) == "333333333.3333333");
  CHECK(ecmascript_number(from_bits(0x41b3de4355555556)) == "333333333.3333334");
  CHECK(ecmascript_number(from_bits(0x41b3de4355555557)) == "333333333.33333343");
  CHECK(ecmascript_number(from_bits(0xbecbf647612f3696)) == "-0.0000033333333333333333");
  CHECK(ecmascript_number(from_bits(0x43143ff3c1cb0959)) == "1424953923781206.2");
}

TEST_CASE("the RFC 8785 section 3.2.2 example canonicalises byte for byte") {
  const char* input = R"({
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  })";
  CHECK(canon(input) ==
        "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
        "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

TEST_CASE("members sort by UTF-16 code units, not by UTF-8 bytes (RFC 8785 3.2.3)") {
  // The RFC's sorting example: \u20ac, \r, \ufb33, 1, \ud83d\ude00, \u0080, \u00f6.
  const char* input =
      R"({"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh",)"
      R"("1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"})";
  std::string c = canon(input);
  auto pos = [&](const char* s) { return c.find(s); };
  CHECK(pos("Carriage") < pos("One"));
  CHECK(pos("One") < pos("Control"));
  CHECK(pos("Control") < pos("Latin"));
  CHECK(pos("Latin") < pos("Euro"));
  CHECK(pos("Euro") < pos("Emoji"));  // U+1F600 is D83D DE00 in UTF-16: before U+FB33
  CHECK(pos("Emoji") < pos("Hebrew"));
}

TEST_CASE("integers beyond 2^53 are found before signing") {
  CHECK(protocol::numbers_exact_in_javascript(boost::json::parse(R"({"a":[9007199254740992]})")));
  CHECK_FALSE(protocol::numbers_exact_in_javascript(boost::json::parse(R"({"a":[9007199254740993]})")));
  CHECK_FALSE(protocol::numbers_exact_in_javascript(boost::json::parse(R"({"a":{"b":18446744073709551615}})")));
}

TEST_CASE("NaN and infinity are refused") {
  boost::json::value v = boost::json::object{{"x", std::numeric_limits<double>::infinity()}};
  auto c = protocol::canonicalize(v);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == "jcs.bad_number");
}

TEST_CASE("strict parsing refuses duplicates, depth, size and bad text with their codes") {
  auto code = [](std::string_view text, protocol::JsonLimits l = {}) {
    auto r = protocol::parse_strict(text, l);
    return r.ok() ? std::string("ok") : r.error().code;
  };
  CHECK(code(R"({"a":1,"b":{"c":1,"c":2}})") == "json.duplicate_key");
  CHECK(code(R"({"a":1,"a":1})") == "json.duplicate_key");
  CHECK(code(R"([{"a":1},{"a":1}])") == "ok");  // same name in sibling objects
  CHECK(code(std::string(40, '[') + std::string(40, ']')) == "json.too_deep");
  CHECK(code("[1,2,3]", {4, 8}) == "json.too_large");
  CHECK(code("{\"a\":\"\xff\"}") == "json.invalid");  // not UTF-8
  CHECK(code("{\"a\":1,}") == "json.invalid");
  CHECK(code("{\"a\":1} x") == "json.invalid");
  CHECK(code("") == "json.invalid");
  CHECK(code(R"({"a":"\ud800"})") == "json.invalid");  // lone surrogate
}
