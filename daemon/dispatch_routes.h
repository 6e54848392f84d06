#pragma once
// /v1/dispatch: the dispatch engine inside gridtrustd (docs/dispatch.md).
//
//   POST   /v1/dispatch/setpoints           admin, operator, aggregator   a signed SetChargingProfileRequest,
//                                                                          or {"batch":[signed batch entries]}
//   POST   /v1/dispatch/targets             admin, operator, aggregator   a signed gridtrust.FleetTarget
//   POST   /v1/dispatch/sessions            admin, operator, aggregator   a session (registry file form)
//   DELETE /v1/dispatch/sessions/{ev}       admin, operator, aggregator
//   POST   /v1/dispatch/telemetry           admin, operator, aggregator   {"ev","soc"}
//   GET    /v1/dispatch/sites/{site}        admin, operator, auditor, aggregator
//   GET    /v1/dispatch/stations/{station}  admin, operator, auditor, aggregator
//   GET    /v1/dispatch/decisions?limit=N   admin, operator, auditor, aggregator
//
// The signature, not the TLS caller, is the authority over a setpoint; the caller's
// role only says who may hand one in, and an aggregator caller acts for the stations
// of its own organisation only (auth.forbidden_station). A setpoint the engine
// refuses is a decision, answered 200 with its reason code like an applied one; a
// request the API cannot read is an error reply (request.*, dispatch.bad_batch, ...).
#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "cli/dispatch_runtime.h"
#include "dispatch/intake.h"
#include "daemon/router.h"
#include "store/store.h"

namespace gridtrust::daemon {

// What the routes share: the runtime, the store (outbox) and the daemon's clock.
class DispatchService {
 public:
  DispatchService(app::DispatchRuntime& runtime, store::Store& store, std::function<std::int64_t()> now)
      : runtime_(runtime), store_(store), now_(std::move(now)),
        intake_(runtime.engine(), now_, dispatch::IntakeOptions{0, runtime.config().max_batch}) {}

  app::DispatchRuntime& runtime() { return runtime_; }
  // Single setpoints from concurrent requests are decided in shared batches.
  dispatch::Intake& intake() { return intake_; }
  store::Store& store() { return store_; }
  std::int64_t now() const { return now_(); }

  void count(const std::string& outcome, const std::string& reason);
  // gridtrust_dispatch_decisions_total{outcome,reason} in Prometheus text.
  std::string metrics_text() const;

 private:
  app::DispatchRuntime& runtime_;
  store::Store& store_;
  std::function<std::int64_t()> now_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> decisions_;  // (outcome, reason): codes only
  dispatch::Intake intake_;  // last: its lanes stop before the rest goes
};

void add_dispatch_routes(Router& router, DispatchService& service);
// With dispatch.enabled false: every /v1/dispatch path answers dispatch.disabled.
void add_dispatch_disabled_routes(Router& router);

}  // namespace gridtrust::daemon
