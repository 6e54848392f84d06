#pragma once
// gridtrustd's rotation scheduler (DESIGN.md "Rotation risk model", docs/rotation.md).
//
// Each tick, at the daemon clock's "now":
//  1. every daemon-held key that is due (aggregator-signer, csms-server, ocsp-signer,
//     audit-checkpoint) is re-keyed: a new key pair in the token under a new label,
//     a new certificate from the same profile and issuer valid for interval + overlap,
//     the switch-over committed with the retired key in one store transaction, then
//     the live user of the key is told (TLS context, OCSP signer, command signer,
//     checkpoint key);
//  2. every retired key whose certificate has expired is destroyed in the token
//     (C_DestroyObject) and that is audited;
//  3. new station certificates (charging-station, secc) get a renewal date, issued +
//     interval - jitter, and due ones go into the outbox as OCPP TriggerMessage
//     requests, at most renewal_rate_per_hour per clock hour.
//
// Every step is driven by persisted state, so a crash between two steps is finished at
// the next start: a rotation in state "rotating" resumes (a key generated but not
// certified is destroyed and made again; a certificate already stored is switched to),
// destruction and enqueueing are idempotent.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>

#include "cli/pki_context.h"
#include "core/time_source.h"
#include "store/rotation_records.h"

namespace gridtrust::daemon {

struct RoleInterval {
  int days = 0;
  std::string source;  // "config" or "risk model (binding ...)"
};

// The interval per role: the risk model's plan of each `rotation` role, overridden by
// daemon.scheduler.interval_days. Roles whose plan fails are left out (and logged).
std::map<std::string, RoleInterval> rotation_intervals(const app::AppConfig& config);

class RotationScheduler {
 public:
  // Told on the scheduler's strand after a switch-over committed, with the role's new row.
  using SwitchHook = std::function<void(const store::RotationEntry&)>;

  RotationScheduler(app::PkiContext& pki, std::shared_ptr<const TimeSource> clock, SwitchHook on_switch);
  RotationScheduler(const RotationScheduler&) = delete;  // the timer holds `this`
  RotationScheduler& operator=(const RotationScheduler&) = delete;

  // At start, before the listeners: schedules the daemon's keys seen for the first time.
  Status prepare();
  // The role's row, if scheduled (e.g. the csms-server key the TLS listener must use).
  std::optional<store::RotationEntry> entry(const std::string& role);

  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
  // Ticks every daemon.scheduler.tick_ms on `strand` until stop().
  void start(Strand& strand);
  void stop();
  // One pass at the clock's now; the steps' failures are logged and retried next tick.
  void tick();

  // The clock time the last completed tick ran at (0 before the first).
  std::int64_t processed_through() const { return processed_through_.load(); }
  const TimeSource& clock() const { return *clock_; }
  Result<boost::json::object> status_json();
  std::string metrics_text();

 private:
  void arm();
  Status prepare_locked();  // tick_mu_ held
  Status rotate(store::RotationEntry entry, std::int64_t now);
  Status rotate_certificate(store::RotationEntry entry, std::int64_t now);
  Status rotate_checkpoint_key(store::RotationEntry entry, std::int64_t now);
  Status switch_over(const store::RotationEntry& old, store::RotationEntry next, store::RetiredKey retired,
                     std::int64_t now);
  Status destroy_expired_keys(std::int64_t now);
  Status schedule_renewals();
  Status enqueue_due_renewals(std::int64_t now);
  // For certificate roles: the interval (kept below the profile's validity minus the
  // overlap) and the validity of a new certificate.
  int interval_days(const std::string& role) const;
  int validity_days(const std::string& role) const;

  app::PkiContext& pki_;
  std::shared_ptr<const TimeSource> clock_;
  SwitchHook on_switch_;
  app::SchedulerConfig config_;
  std::map<std::string, RoleInterval> intervals_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::atomic<bool> stopped_{false};
  bool prepared_ = false;  // under tick_mu_
  std::atomic<std::int64_t> processed_through_{0};
  std::atomic<std::uint64_t> renewals_queued_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::mutex tick_mu_;  // a tick and prepare() never overlap
  std::chrono::steady_clock::time_point last_discovery_{};  // of new station certificates
};

}  // namespace gridtrust::daemon
