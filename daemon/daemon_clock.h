#pragma once
// The clock gridtrustd runs on: the system clock, or, for tests that run a simulated
// year against the real daemon, the Unix time in daemon.scheduler.clock_file. The file
// is honoured only when GRIDTRUST_SIMULATED_CLOCK=1 is set as well; a clock_file
// without it refuses to start (scheduler.simulated_clock_not_enabled): a production
// daemon must not be steerable through a file.
#include <memory>

#include "cli/app_config.h"
#include "core/time_source.h"

namespace gridtrust::daemon {

Result<std::shared_ptr<const TimeSource>> make_daemon_clock(const app::SchedulerConfig& config);

}  // namespace gridtrust::daemon
