#include "pki/revocation_reason.h"

#include <array>
#include <utility>

namespace gridtrust::pki {
namespace {
constexpr std::array<std::pair<const char*, int>, 9> kReasons = {{{"unspecified", 0},
                                                                  {"keyCompromise", 1},
                                                                  {"cACompromise", 2},
                                                                  {"affiliationChanged", 3},
                                                                  {"superseded", 4},
                                                                  {"cessationOfOperation", 5},
                                                                  {"certificateHold", 6},
                                                                  {"privilegeWithdrawn", 9},
                                                                  {"aACompromise", 10}}};
}

std::optional<int> revocation_reason_from_name(const std::string& name) {
  for (auto& [n, c] : kReasons)
    if (name == n) return c;
  return std::nullopt;
}

std::string revocation_reason_name(int code) {
  for (auto& [n, c] : kReasons)
    if (c == code) return n;
  return "unknown";
}

}  // namespace gridtrust::pki
