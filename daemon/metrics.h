#pragma once
// Counters for GET /metrics in the Prometheus text exposition format (0.0.4).
//
// Requests are labelled by route pattern ("/v1/certificates/{serial}"), never by the
// raw path, so a scanner cannot grow the label set without bound.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace gridtrust::daemon {

class Metrics {
 public:
  // Upper bounds of the latency histogram, in seconds.
  static constexpr std::array<double, 11> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1.0,  2.5};

  void observe_request(const std::string& listener, const std::string& method, const std::string& route, int status,
                       const std::string& error_code, std::chrono::nanoseconds latency);
  void count_login_failure() { login_failures_.fetch_add(1, std::memory_order_relaxed); }
  void count_checkpoint(bool ok) { (ok ? checkpoints_ : checkpoint_failures_).fetch_add(1, std::memory_order_relaxed); }
  void count_reload(bool ok) { (ok ? reloads_ : reload_failures_).fetch_add(1, std::memory_order_relaxed); }
  void count_audit_suppressed(std::uint64_t n) { audit_suppressed_.fetch_add(n, std::memory_order_relaxed); }

  std::string render() const;

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};  // not cumulative here; summed when rendered
    std::uint64_t count = 0;
    double sum = 0;
  };

  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;  // by listener
  std::uint64_t issued_ = 0;
  std::uint64_t hsm_errors_ = 0;
  std::atomic<std::uint64_t> login_failures_{0};
  std::atomic<std::uint64_t> checkpoints_{0};
  std::atomic<std::uint64_t> checkpoint_failures_{0};
  std::atomic<std::uint64_t> reloads_{0};
  std::atomic<std::uint64_t> reload_failures_{0};
  std::atomic<std::uint64_t> audit_suppressed_{0};
};

}  // namespace gridtrust::daemon
