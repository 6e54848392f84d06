#pragma once
// What the daemon writes to the audit chain besides issuance and revocation (which
// the store audits in the same commit): refused requests, refused TLS handshakes,
// start, stop and configuration reloads.
//
// Refusals are queued on the store's writer and not waited for, so a refusal costs
// the request no fsync. They are rate limited: a peer hammering the API must not
// be able to grow the audit log without bound; what is over the limit is counted and
// written as one "refusals-suppressed" entry.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "daemon/metrics.h"
#include "daemon/reply.h"
#include "daemon/request.h"
#include "store/store.h"

namespace gridtrust::daemon {

class AuditTrail {
 public:
  AuditTrail(store::Store& store, Metrics& metrics, std::uint64_t refusals_per_second = 100)
      : store_(store), metrics_(metrics), limit_(refusals_per_second) {}

  // A request answered with an error: code, route and caller, never the body.
  void request_refused(const std::string& listener, const Request& req, const Reply& reply);
  // A TLS handshake that failed on the API listener (e.g. no or a foreign client certificate).
  void login_failure(const std::string& peer, const std::string& reason);
  // Start, stop, reload: waited for, so that the entry is durable before the event's effect.
  Status record(const std::string& action, const std::string& details_json);

 private:
  bool admit();  // the rate limit; writes the suppressed count when a new window opens
  void append_async(store::AuditEvent ev);

  store::Store& store_;
  Metrics& metrics_;
  const std::uint64_t limit_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point window_start_{};
  std::uint64_t in_window_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace gridtrust::daemon
