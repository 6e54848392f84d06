#include "protocol/jcs.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace gridtrust::protocol {
namespace json = boost::json;

namespace {

constexpr std::uint64_t kTwo53 = 1ULL << 53;

// UTF-8 byte order is code point order, which equals UTF-16 order except that
// characters from U+E000 to U+FFFF (lead byte EE or EF) sort after the supplementary
// ones (lead byte F0 to F4), whose UTF-16 form starts with a surrogate D800..DBFF.
// Up to the first differing byte the names agree, so both bytes there start a
// character or both continue one; only a lead byte pair EE/EF against F0+ inverts.
bool utf16_less(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  if (i == n) return a.size() < b.size();
  const auto x = static_cast<unsigned char>(a[i]);
  const auto y = static_cast<unsigned char>(b[i]);
  if (x >= 0xEE && y >= 0xEE && (x >= 0xF0) != (y >= 0xF0)) return x >= 0xF0;
  return x < y;
}

// The canonical text of a message is a few hundred small pieces; writing them through
// a raw cursor instead of std::string::append per piece halves the time. The string
// holds slack while a TextOut is alive and is cut to the text on destruction.
class TextOut {
 public:
  explicit TextOut(std::string& s) : s_(s), used_(s.size()) {}
  TextOut(const TextOut&) = delete;  // two cursors would overwrite each other
  TextOut& operator=(const TextOut&) = delete;
  ~TextOut() { s_.resize(used_); }

  // Room for k more bytes; write them, then advance().
  char* room(std::size_t k) {
    if (s_.size() - used_ < k) s_.resize(std::max(2 * s_.size(), used_ + k + 128));
    return s_.data() + used_;
  }
  void advance(std::size_t k) { used_ += k; }
  void advance_to(const char* end) { used_ = static_cast<std::size_t>(end - s_.data()); }
  void put(char c) {
    *room(1) = c;
    ++used_;
  }
  void put(std::string_view v) {
    std::memcpy(room(v.size()), v.data(), v.size());
    used_ += v.size();
  }

 private:
  std::string& s_;
  std::size_t used_;
};

// Bytes a JSON string holds as they are (RFC 8785 3.2.2.2: only '"', '\' and the
// controls are escaped).
constexpr auto kPlain = [] {
  std::array<bool, 256> plain{};
  for (int c = 0; c < 256; ++c) plain[static_cast<std::size_t>(c)] = c >= 0x20 && c != '"' && c != '\\';
  return plain;
}();

// Whether 8 bytes hold none of '"', '\' and the controls (SWAR: a byte's high bit is
// set in `(x - 0x01..) & ~x & 0x80..` exactly when some byte of x is zero, and in
// `(x - n * 0x01..) & ~x & 0x80..` when some byte is below n, for n <= 0x80).
bool plain8(std::uint64_t v) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
  auto zero_byte = [](std::uint64_t x) { return (x - kOnes) & ~x & kHighs; };
  return (((v - kOnes * 0x20) & ~v & kHighs) | zero_byte(v ^ (kOnes * '"')) | zero_byte(v ^ (kOnes * '\\'))) == 0;
}

void put_string(std::string_view s, TextOut& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* const end = p + s.size();
  char* o = out.room(s.size() + 2);  // enough unless something needs escaping
  *o++ = '"';
  if (end - p >= 8) {  // eight plain bytes at a time, the last eight overlapping
    std::uint64_t v;
    for (; end - p > 8; p += 8, o += 8) {
      std::memcpy(&v, p, 8);
      if (!plain8(v)) break;
      std::memcpy(o, &v, 8);
    }
    if (end - p <= 8) {
      std::memcpy(&v, end - 8, 8);
      if (plain8(v)) {
        o += end - p;
        std::memcpy(o - 8, &v, 8);
        p = end;
      }
    }
  }
  while (p != end && kPlain[*p]) *o++ = static_cast<char>(*p++);
  out.advance_to(o);
  for (; p != end; ++p) {  // the rest, after the first escape
    const unsigned char c = *p;
    if (kPlain[c]) {
      out.put(static_cast<char>(c));
      continue;
    }
    switch (c) {
      case '"': out.put("\\\""); break;
      case '\\': out.put("\\\\"); break;
      case '\b': out.put("\\b"); break;
      case '\t': out.put("\\t"); break;
      case '\n': out.put("\\n"); break;
      case '\f': out.put("\\f"); break;
      case '\r': out.put("\\r"); break;
      default: {
        char* u = out.room(6);
        std::memcpy(u, "\\u00", 4);
        u[4] = kHex[c >> 4];
        u[5] = kHex[c & 0xF];
        out.advance(6);
      }
    }
  }
  out.put('"');
}

template <typename Integer>
void put_integer(Integer i, TextOut& out) {
  char* o = out.room(24);
  out.advance_to(std::to_chars(o, o + 24, i).ptr);
}

void put_number(double x, TextOut& out) {
  if (x == 0) {  // and -0
    out.put('0');
    return;
  }
  if (std::fabs(x) <= static_cast<double>(kTwo53) && x == std::trunc(x)) {
    put_integer(static_cast<std::int64_t>(x), out);  // an exact integer: its digits, as the rule below gives
    return;
  }
  if (x < 0) {
    out.put('-');
    x = -x;
  }
  // Shortest digits that round-trip, in scientific form "d.ddde±XX".
  char sci[40];
  auto res = std::to_chars(sci, sci + sizeof sci, x, std::chars_format::scientific);
  char digits[24];
  int k = 0;
  const char* p = sci;
  for (; p != res.ptr && *p != 'e'; ++p)
    if (*p != '.') digits[k++] = *p;
  int exponent = 0;
  if (p != res.ptr) {
    ++p;
    const bool negative = *p == '-';
    if (*p == '-' || *p == '+') ++p;
    std::from_chars(p, res.ptr, exponent);
    if (negative) exponent = -exponent;
  }
  const int n = exponent + 1;  // the decimal point sits after n digits
  auto zeros = [&](int count) {
    std::memset(out.room(static_cast<std::size_t>(count)), '0', static_cast<std::size_t>(count));
    out.advance(static_cast<std::size_t>(count));
  };
  if (k <= n && n <= 21) {
    out.put(std::string_view(digits, static_cast<std::size_t>(k)));
    zeros(n - k);
  } else if (0 < n && n <= 21) {
    out.put(std::string_view(digits, static_cast<std::size_t>(n)));
    out.put('.');
    out.put(std::string_view(digits + n, static_cast<std::size_t>(k - n)));
  } else if (-6 < n && n <= 0) {
    out.put("0.");
    zeros(-n);
    out.put(std::string_view(digits, static_cast<std::size_t>(k)));
  } else {
    out.put(digits[0]);
    if (k > 1) {
      out.put('.');
      out.put(std::string_view(digits + 1, static_cast<std::size_t>(k - 1)));
    }
    out.put('e');
    out.put(n - 1 >= 0 ? '+' : '-');
    put_integer(std::abs(n - 1), out);
  }
}

// Writes v; false if it holds NaN or infinity (the text is then incomplete).
bool put_value(const json::value& v, TextOut& out);

struct Member {  // no initialisers: put_object keeps an uninitialised array of them
  const char* name;
  std::size_t size;
  const json::value* value;
  bool high;  // holds a byte of EE or above, where UTF-16 order may differ from byte order
  std::string_view key() const { return {name, size}; }
};

bool has_high_byte(std::string_view s) {
  std::uint64_t any = 0;  // ASCII names, the usual case, are told apart eight bytes at a time
  std::size_t i = 0;
  for (std::uint64_t v; i + 8 <= s.size(); i += 8) {
    std::memcpy(&v, s.data() + i, 8);
    any |= v;
  }
  for (; i < s.size(); ++i) any |= static_cast<unsigned char>(s[i]);
  if ((any & 0x8080808080808080ULL) == 0) return false;
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0xEE; });
}

// JCS member order; byte order (memcmp) unless both names hold high bytes.
bool member_less(const Member& a, const Member& b) {
  if (a.high && b.high) return utf16_less(a.key(), b.key());
  return a.key() < b.key();
}

bool put_object(const json::object& o, TextOut& out, std::string_view skip) {
  // Members in JCS order; an OCPP object has a handful, so the list lives on the stack.
  constexpr std::size_t kOnStack = 32;
  Member small[kOnStack];
  std::vector<Member> large;
  Member* members = small;
  if (o.size() > kOnStack) {
    large.resize(o.size());
    members = large.data();
  }
  std::size_t n = 0;
  bool sorted = true;
  for (const auto& m : o) {
    const std::string_view name = m.key();
    if (!skip.empty() && name == skip) continue;
    members[n] = Member{name.data(), name.size(), &m.value(), has_high_byte(name)};
    if (n > 0 && sorted && !member_less(members[n - 1], members[n])) sorted = false;
    ++n;
  }
  if (!sorted) std::sort(members, members + n, member_less);
  out.put('{');
  for (std::size_t i = 0; i < n; ++i) {
    if (i) out.put(',');
    put_string(members[i].key(), out);
    out.put(':');
    if (!put_value(*members[i].value, out)) return false;
  }
  out.put('}');
  return true;
}

bool put_value(const json::value& v, TextOut& out) {
  switch (v.kind()) {
    case json::kind::null: out.put("null"); return true;
    case json::kind::bool_: out.put(v.get_bool() ? "true" : "false"); return true;
    case json::kind::int64: {
      const std::int64_t i = v.get_int64();
      if (i >= -static_cast<std::int64_t>(kTwo53) && i <= static_cast<std::int64_t>(kTwo53))
        put_integer(i, out);  // exact in a double: ECMAScript writes the integer's digits
      else
        put_number(static_cast<double>(i), out);
      return true;
    }
    case json::kind::uint64: {
      const std::uint64_t u = v.get_uint64();
      if (u <= kTwo53) put_integer(u, out);
      else put_number(static_cast<double>(u), out);
      return true;
    }
    case json::kind::double_:
      if (!std::isfinite(v.get_double())) return false;
      put_number(v.get_double(), out);
      return true;
    case json::kind::string: put_string(v.get_string(), out); return true;
    case json::kind::array: {
      out.put('[');
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out.put(',');
        first = false;
        if (!put_value(e, out)) return false;
      }
      out.put(']');
      return true;
    }
    case json::kind::object: return put_object(v.get_object(), out, {});
  }
  return true;
}

}  // namespace

void append_canonical_string(std::string_view s, std::string& out) {
  TextOut o(out);
  put_string(s, o);
}

void append_canonical_number(double x, std::string& out) {
  TextOut o(out);
  put_number(x, o);
}

std::string ecmascript_number(double x) {
  std::string out;
  append_canonical_number(x, out);
  return out;
}

void canonicalize_into(const json::value& v, std::string& out) {
  TextOut o(out);
  put_value(v, o);
}

Status canonicalize_without_into(const json::object& o, std::string_view skip, std::string& out) {
  TextOut text(out);
  if (!put_object(o, text, skip)) return reject("jcs.bad_number", "NaN and infinity have no JSON form");
  return Ok{};
}

Result<std::string> canonicalize_without(const json::object& o, std::string_view skip) {
  std::string out;
  out.reserve(512);
  GT_TRY(canonicalize_without_into(o, skip, out));
  return out;
}

Result<std::string> canonicalize(const json::value& v) {
  std::string out;
  {
    TextOut text(out);
    if (!put_value(v, text)) return reject("jcs.bad_number", "NaN and infinity have no JSON form");
  }
  return out;
}

bool numbers_exact_in_javascript(const json::value& v) {
  switch (v.kind()) {
    case json::kind::int64: {
      std::int64_t i = v.get_int64();
      std::uint64_t mag = i < 0 ? 0 - static_cast<std::uint64_t>(i) : static_cast<std::uint64_t>(i);
      return mag <= kTwo53;
    }
    case json::kind::uint64: return v.get_uint64() <= kTwo53;
    case json::kind::array:
      for (const auto& e : v.get_array())
        if (!numbers_exact_in_javascript(e)) return false;
      return true;
    case json::kind::object:
      for (const auto& m : v.get_object())
        if (!numbers_exact_in_javascript(m.value())) return false;
      return true;
    default: return true;
  }
}

}  // namespace gridtrust::protocol
