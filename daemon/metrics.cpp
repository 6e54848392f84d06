#include "daemon/metrics.h"

#include <cstdio>

namespace gridtrust::daemon {
namespace {

std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void counter(std::string& out, const char* name, const char* help, std::uint64_t value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
         std::to_string(value) + "\n";
}

}  // namespace

void Metrics::observe_request(const std::string& listener, const std::string& method, const std::string& route,
                              int status, const std::string& error_code, std::chrono::nanoseconds latency) {
  double seconds = std::chrono::duration<double>(latency).count();
  std::lock_guard g(mu_);
  ++requests_[{listener, method, route.empty() ? "unmatched" : route, status}];
  Histogram& h = latency_[listener];
  for (std::size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  ++h.count;
  h.sum += seconds;
  if (method == "POST" && route == "/v1/certificates" && status == 201) ++issued_;
  if (error_code.rfind("hsm.", 0) == 0) ++hsm_errors_;
}

std::string Metrics::render() const {
  std::string out;
  std::lock_guard g(mu_);
  out += "# HELP gridtrustd_requests_total HTTP requests answered, by listener, method, route pattern and status.\n"
         "# TYPE gridtrustd_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [listener, method, route, status] = key;
    out += "gridtrustd_requests_total{listener=\"" + label_value(listener) + "\",method=\"" + label_value(method) +
           "\",route=\"" + label_value(route) + "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(n) +
           "\n";
  }
  out += "# HELP gridtrustd_request_duration_seconds Time from a parsed request to its reply.\n"
         "# TYPE gridtrustd_request_duration_seconds histogram\n";
  for (const auto& [listener, h] : latency_) {
    std::uint64_t cumulative = 0;
    std::string l = "listener=\"" + label_value(listener) + "\"";
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      out += "gridtrustd_request_duration_seconds_bucket{" + l + ",le=\"" + number(kBuckets[i]) + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    out += "gridtrustd_request_duration_seconds_bucket{" + l + ",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
    out += "gridtrustd_request_duration_seconds_sum{" + l + "} " + number(h.sum) + "\n";
    out += "gridtrustd_request_duration_seconds_count{" + l + "} " + std::to_string(h.count) + "\n";
  }
  counter(out, "gridtrustd_certificates_issued_total", "Certificates issued through the API.", issued_);
  counter(out, "gridtrustd_hsm_errors_total", "Requests refused with an hsm.* error.", hsm_errors_);
  counter(out, "gridtrustd_tls_login_failures_total", "TLS handshakes refused (client authentication).",
          login_failures_.load());
  counter(out, "gridtrustd_audit_checkpoints_total", "Signed audit checkpoints written.", checkpoints_.load());
  counter(out, "gridtrustd_audit_checkpoint_failures_total", "Audit checkpoints that could not be written.",
          checkpoint_failures_.load());
  counter(out, "gridtrustd_config_reloads_total", "Configuration reloads applied (SIGHUP).", reloads_.load());
  counter(out, "gridtrustd_config_reload_failures_total", "Configuration reloads refused; the old one stays.",
          reload_failures_.load());
  counter(out, "gridtrustd_audit_refusals_suppressed_total",
          "Refusals not audited one by one because of the audit rate limit.", audit_suppressed_.load());
  return out;
}

}  // namespace gridtrust::daemon
