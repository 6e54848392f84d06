#include "daemon/log.h"

#include <iostream>
#include <mutex>

#include "core/time.h"

namespace gridtrust::daemon {

void log_line(std::string_view text) {
  static std::mutex mu;  // lines from several I/O threads must not interleave
  std::lock_guard lock(mu);
  std::cerr << to_rfc3339(now_seconds()) << " gridtrustd: " << text << std::endl;
}

}  // namespace gridtrust::daemon
