#include "daemon/daemon_clock.h"

#include <cstdlib>
#include <string>

#include "daemon/log.h"

namespace gridtrust::daemon {

Result<std::shared_ptr<const TimeSource>> make_daemon_clock(const app::SchedulerConfig& config) {
  const char* env = std::getenv("GRIDTRUST_SIMULATED_CLOCK");
  bool allowed = env && std::string(env) == "1";
  if (config.clock_file.empty()) return std::shared_ptr<const TimeSource>(std::make_shared<SystemTimeSource>());
  if (!allowed)
    return reject("scheduler.simulated_clock_not_enabled",
                  "daemon.scheduler.clock_file is set (" + config.clock_file +
                      ") but GRIDTRUST_SIMULATED_CLOCK=1 is not: a simulated clock is for tests only");
  GT_TRY_ASSIGN(auto file, FileTimeSource::open(config.clock_file));
  log_line("WARNING: SIMULATED CLOCK ACTIVE: \"now\" is read from " + config.clock_file +
           "; certificates, OCSP and rotations follow that file, not the system clock. Never run this in production.");
  return std::shared_ptr<const TimeSource>(std::move(file));
}

}  // namespace gridtrust::daemon
