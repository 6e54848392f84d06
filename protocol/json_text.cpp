#include "protocol/json_text.h"

#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include <boost/json/basic_parser_impl.hpp>

namespace gridtrust::protocol {
namespace json = boost::json;

namespace {

enum class Found { nothing, too_deep, duplicate, bad_number };

// A basic_parser handler that builds the value itself: Boost.JSON 1.81's own parser
// keeps the last of duplicate names silently and rounds some decimals to a
// neighbouring double (333333333.33333329 becomes ...25), both fatal for a signature
// verifier. Here duplicates are refused and doubles are read by std::from_chars,
// which rounds correctly, as every JavaScript verifier does.
struct Builder {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  std::size_t max_depth = 32;
  std::vector<json::value> open;        // objects and arrays being filled
  std::vector<std::string> keys;        // the pending member name per open object
  std::string text;                     // a string, key or number arriving in parts
  json::value result;
  Found found = Found::nothing;
  std::string duplicate;

  void put(json::value v) {
    if (open.empty()) {
      result = std::move(v);
    } else if (open.back().is_array()) {
      open.back().get_array().push_back(std::move(v));
    } else {
      open.back().get_object()[keys.back()] = std::move(v);
    }
  }
  bool begin(json::value container, json::error_code& ec) {
    if (open.size() + 1 > max_depth) {
      found = Found::too_deep;
      ec = json::error::too_deep;
      return false;
    }
    open.push_back(std::move(container));
    keys.emplace_back();
    return true;
  }
  void end() {
    json::value v = std::move(open.back());
    open.pop_back();
    keys.pop_back();
    put(std::move(v));
  }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code& ec) { return begin(json::array(), ec); }
  bool on_array_end(std::size_t, json::error_code&) {
    end();
    return true;
  }
  bool on_object_begin(json::error_code& ec) { return begin(json::object(), ec); }
  bool on_object_end(std::size_t, json::error_code&) {
    end();
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    text.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    text.append(s.data(), s.size());
    put(json::string(text));
    text.clear();
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    text.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    text.append(s.data(), s.size());
    // The members before this one are in the object already (a value is put when it
    // is complete), so a duplicate name is found there.
    if (open.back().get_object().contains(text)) {
      found = Found::duplicate;
      duplicate = text;
      ec = json::error::syntax;
      return false;
    }
    keys.back() = std::move(text);
    text.clear();
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    text.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    text.clear();
    put(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    text.clear();
    put(u);
    return true;
  }
  bool on_double(double, json::string_view s, json::error_code& ec) {
    text.append(s.data(), s.size());
    double d = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), d);
    text.clear();
    if (r.ec != std::errc() || !std::isfinite(d)) {
      found = Found::bad_number;
      ec = json::error::exponent_overflow;
      return false;
    }
    put(d);
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    put(b);
    return true;
  }
  bool on_null(json::error_code&) {
    put(nullptr);
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

}  // namespace

Result<json::value> parse_strict(std::string_view text, JsonLimits limits) {
  if (text.size() > limits.max_bytes)
    return reject("json.too_large", "JSON text of " + std::to_string(text.size()) + " bytes exceeds " +
                                        std::to_string(limits.max_bytes));
  json::parse_options opt;
  opt.max_depth = limits.max_depth + 1;  // the builder reports depth first, with its own code
  json::basic_parser<Builder> parser(opt);
  parser.handler().max_depth = limits.max_depth;
  json::error_code ec;
  std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  const auto& h = parser.handler();
  if (ec) {
    if (h.found == Found::too_deep)
      return reject("json.too_deep", "JSON nests deeper than " + std::to_string(limits.max_depth) + " levels");
    if (h.found == Found::duplicate)
      return reject("json.duplicate_key", "JSON object has the member \"" + h.duplicate + "\" twice");
    if (h.found == Found::bad_number) return reject("json.invalid", "a number is out of the range of a double");
    return reject("json.invalid", "not valid JSON: " + ec.message());
  }
  if (used != text.size()) return reject("json.invalid", "not valid JSON: data after the value");
  return std::move(parser.handler().result);
}

}  // namespace gridtrust::protocol
