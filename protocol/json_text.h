#pragma once
// JSON text in and out for protocol messages.
//
// parse_strict is the one way untrusted JSON enters protocol/: UTF-8 checked, depth
// and size bounded, and duplicate member names refused. Boost.JSON keeps the last of
// duplicate keys silently; a signature verifier must not, because another parser
// downstream may keep the first and act on a payload nobody signed.
#include <string_view>

#include <boost/json/value.hpp>

#include "core/rejection.h"

namespace gridtrust::protocol {

struct JsonLimits {
  std::size_t max_bytes = 1 << 20;
  std::size_t max_depth = 32;
};

// Codes: json.too_large, json.too_deep, json.duplicate_key, json.invalid.
Result<boost::json::value> parse_strict(std::string_view text, JsonLimits limits = {});

}  // namespace gridtrust::protocol
