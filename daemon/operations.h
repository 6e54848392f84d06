#pragma once
// What gridtrustd does besides answering requests: it tells systemd how it is
// (READY, RELOADING, STOPPING, WATCHDOG), signs the audit chain head at intervals and
// at shutdown, reloads its configuration on SIGHUP, and audits its own start, stop
// and reloads. The metrics and audit trail the sessions report to live here too.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "cli/pki_context.h"
#include "daemon/audit_trail.h"
#include "daemon/config_changes.h"
#include "daemon/metrics.h"

namespace gridtrust::daemon {

// The server's part of a SIGHUP, given the new gridtrust.yaml and profiles, both loaded
// and valid: it builds what depends on them (client trust, TLS context) and then swaps
// everything in, or fails having changed nothing. On success, what it changed that the
// files alone do not show (e.g. "client trust anchors").
using ApplyConfig = std::function<Result<std::vector<std::string>>(const app::AppConfig&, pki::ProfileSet)>;

class Operations {
 public:
  Operations(boost::asio::io_context& ioc, app::PkiContext& pki, ApplyConfig apply_config);
  Operations(const Operations&) = delete;  // timers and signal handlers hold `this`
  Operations& operator=(const Operations&) = delete;

  Metrics& metrics() { return metrics_; }
  AuditTrail& audit() { return audit_; }
  // The strand of signals and timers: the rotation scheduler runs its ticks here, so a
  // key switch-over never races a SIGHUP's rebuild of the TLS context.
  boost::asio::strand<boost::asio::io_context::executor_type>& strand() { return strand_; }
  // The token label of the audit checkpoint key in use (re-keyed by the scheduler).
  void set_checkpoint_key_label(std::string label);

  // Once the listeners accept: audits the start, makes sure the checkpoint key
  // exists, arms the timers and SIGHUP, then READY=1.
  void started();
  // On SIGTERM/SIGINT, from the server's handler, before the drain: STOPPING=1.
  void stopping();
  // After the I/O threads have returned: audits the stop and signs a last checkpoint.
  void stopped();

 private:
  void on_hangup(const boost::system::error_code& ec);
  void reload();
  Result<ConfigChanges> load_and_apply();
  void arm_watchdog();
  void arm_checkpoint();
  void checkpoint(const char* why);

  app::PkiContext& pki_;
  ApplyConfig apply_config_;
  app::AppConfig running_;  // as last loaded (start or SIGHUP); used on the strand only
  // Signals and timers on one strand: a reload re-arming the checkpoint timer never
  // races the timer's own handler on another I/O thread.
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  Metrics metrics_;
  AuditTrail audit_;
  boost::asio::signal_set hangup_;
  boost::asio::steady_timer watchdog_timer_;
  boost::asio::steady_timer checkpoint_timer_;
  std::chrono::microseconds watchdog_interval_{0};
  std::chrono::seconds checkpoint_interval_;
  std::mutex checkpoint_mu_;  // the timer and shutdown never sign at once
  std::string checkpoint_label_;  // under checkpoint_mu_
};

}  // namespace gridtrust::daemon
