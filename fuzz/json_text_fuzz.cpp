// protocol::parse_strict and JCS (protocol/jcs.h) on any bytes.
//
// Invariants: a refusal carries one of parse_strict's four codes; what parses
// serializes and parses back to an equal value; what canonicalizes parses back and
// canonicalizes to the same text (JCS is idempotent); a refusal to canonicalize has a
// well-formed code.
#include <set>
#include <string>

#include <boost/json.hpp>

#include "fuzz/fuzz_support.h"
#include "protocol/jcs.h"
#include "protocol/json_text.h"

using namespace gridtrust;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  protocol::JsonLimits limits;
  limits.max_bytes = 1 << 16;
  auto v = protocol::parse_strict(text, limits);
  if (!v.ok()) {
    static const std::set<std::string> kCodes{"json.too_large", "json.too_deep", "json.duplicate_key", "json.invalid"};
    FUZZ_CHECK(kCodes.count(v.error().code), "refusal code " + v.error().code);
    FUZZ_CHECK(!v.error().message.empty(), "a refusal without a message");
    return 0;
  }
  const std::string again = boost::json::serialize(*v);
  auto back = protocol::parse_strict(again, limits);
  FUZZ_CHECK(back.ok(), "serialized text refused: " + again);
  FUZZ_CHECK(*back == *v, "serialized text parses to another value: " + again);

  auto canonical = protocol::canonicalize(*v);
  if (!canonical.ok()) {
    FUZZ_CHECK(fuzz::well_formed_code(canonical.error().code), "canonicalize code " + canonical.error().code);
    return 0;
  }
  auto reparsed = protocol::parse_strict(*canonical, limits);
  FUZZ_CHECK(reparsed.ok(), "JCS text refused by parse_strict: " + *canonical);
  auto twice = protocol::canonicalize(*reparsed);
  FUZZ_CHECK(twice.ok() && *twice == *canonical, "JCS is not idempotent: " + *canonical);
  return 0;
}
