#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace gridtrust {

using Clock = std::chrono::system_clock;
using TimePoint = std::chrono::sys_seconds;

inline TimePoint now_seconds() {
  return std::chrono::time_point_cast<std::chrono::seconds>(Clock::now());
}
inline std::int64_t to_unix(TimePoint t) { return t.time_since_epoch().count(); }
inline TimePoint from_unix(std::int64_t s) { return TimePoint(std::chrono::seconds(s)); }

// RFC 3339 UTC, e.g. 2026-11-25T16:23:38Z.
std::string to_rfc3339(TimePoint t);

}  // namespace gridtrust
