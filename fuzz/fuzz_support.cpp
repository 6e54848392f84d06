#include "fuzz/fuzz_support.h"

#include <cstdio>
#include <cstdlib>

namespace gridtrust::fuzz {

namespace {
thread_local std::string g_input;
}

void set_current_input(std::string_view input) { g_input.assign(input); }

void fail(const std::string& what, std::string_view input) {
  if (input.empty()) input = g_input;
  std::fprintf(stderr, "fuzz invariant broken: %s\ninput (%zu bytes): ", what.c_str(), input.size());
  for (unsigned char c : input) {
    if (c >= 0x20 && c < 0x7f && c != '\\') std::fputc(c, stderr);
    else std::fprintf(stderr, "\\x%02x", c);
  }
  std::fputc('\n', stderr);
  std::abort();
}

bool well_formed_code(const std::string& code) {
  bool dot = false, start = true;
  for (char c : code) {
    if (c == '.') {
      if (start) return false;
      dot = true;
      start = true;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    start = false;
  }
  return dot && !start;
}

}  // namespace gridtrust::fuzz
