#include "policy/name_rules.h"

namespace gridtrust::policy {
namespace {

bool upper_alpha(char c) { return c >= 'A' && c <= 'Z'; }
bool digit(char c) { return c >= '0' && c <= '9'; }
bool alnum(char c) { return upper_alpha(c) || digit(c) || (c >= 'a' && c <= 'z'); }
bool alpha(char c) { return upper_alpha(c) || (c >= 'a' && c <= 'z'); }

bool all_alnum(std::string_view s) {
  for (char c : s)
    if (!alnum(c)) return false;
  return true;
}

}  // namespace

bool is_valid_emaid(std::string_view s) {
  bool sep = s.size() > 2 && s[2] == '-';
  std::size_t pos = 0;
  auto take = [&](std::size_t n) {
    if (pos + n > s.size()) return std::string_view();
    auto part = s.substr(pos, n);
    pos += n;
    return part;
  };
  auto cc = take(2);
  if (cc.size() != 2 || !alpha(cc[0]) || !alpha(cc[1])) return false;
  if (sep && take(1) != "-") return false;
  auto provider = take(3);
  if (provider.size() != 3 || !all_alnum(provider)) return false;
  if (sep && take(1) != "-") return false;
  auto instance = take(9);
  if (instance.size() != 9 || !all_alnum(instance)) return false;
  if (pos == s.size()) return true;
  if (sep && take(1) != "-") return false;
  auto check = take(1);
  return check.size() == 1 && alnum(check[0]) && pos == s.size();
}

bool is_valid_pcid(std::string_view s) { return (s.size() == 17 || s.size() == 18) && all_alnum(s); }

bool is_valid_secc_id(std::string_view s) {
  if (s.size() < 7 || s.size() > 37) return false;
  if (!alpha(s[0]) || !alpha(s[1])) return false;
  std::size_t pos = 2;
  bool sep = s[pos] == '*';
  if (sep) ++pos;
  if (pos + 3 > s.size() || !all_alnum(s.substr(pos, 3))) return false;
  pos += 3;
  if (sep) {
    if (pos >= s.size() || s[pos] != '*') return false;
    ++pos;
  }
  if (pos >= s.size() || (s[pos] != 'E' && s[pos] != 'e')) return false;
  ++pos;
  auto outlet = s.substr(pos);
  if (outlet.empty() || outlet.size() > 31) return false;
  for (char c : outlet)
    if (!alnum(c) && c != '*') return false;
  return true;
}

bool is_valid_hostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find('.', start);
    if (end == std::string_view::npos) end = s.size();
    auto label = s.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!alnum(c) && c != '-') return false;
    start = end + 1;
    if (end == s.size()) break;
  }
  return true;
}

}  // namespace gridtrust::policy
