#pragma once
// The sd_notify protocol without libsystemd: one datagram per state change to the
// AF_UNIX socket named by $NOTIFY_SOCKET (a path, or '@' for the abstract
// namespace). Outside systemd the variable is unset and every call is a no-op.
#include <chrono>
#include <optional>
#include <string_view>

namespace gridtrust::daemon {

// Sends "READY=1", "STOPPING=1", "WATCHDOG=1", ...; false when not under systemd or
// the send failed (never fatal: the service manager is not part of serving).
bool notify_service_manager(std::string_view state);

// "RELOADING=1" with the MONOTONIC_USEC= that Type=notify-reload expects.
bool notify_reloading();

// How often to send WATCHDOG=1: half of $WATCHDOG_USEC, when that is set and
// $WATCHDOG_PID (if present) is this process.
std::optional<std::chrono::microseconds> watchdog_ping_interval();

}  // namespace gridtrust::daemon
