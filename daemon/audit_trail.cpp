#include "daemon/audit_trail.h"

#include <boost/json.hpp>

namespace gridtrust::daemon {
namespace json = boost::json;

namespace {

// Request paths are chosen by the peer: bounded before they reach the audit log.
std::string bounded(const std::string& s, std::size_t max = 200) {
  return s.size() <= max ? s : s.substr(0, max) + "...";
}

}  // namespace

void AuditTrail::request_refused(const std::string& listener, const Request& req, const Reply& reply) {
  if (!admit()) return;
  json::object d;
  d["listener"] = listener;
  d["status"] = reply.status;
  d["code"] = reply.error_code;
  d["route"] = req.route.empty() ? "unmatched" : req.route;
  if (req.caller_rejection) d["caller_rejection"] = req.caller_rejection->code;
  std::string actor = req.caller ? "daemon:" + req.caller->role + ":" + req.caller->subject
                                 : std::string("daemon:unidentified");
  append_async({std::move(actor), "request-refused", bounded(req.method + " " + req.path), json::serialize(d)});
}

void AuditTrail::login_failure(const std::string& peer, const std::string& reason) {
  metrics_.count_login_failure();
  if (!admit()) return;
  append_async({"daemon", "login-failure", peer, json::serialize(json::object{{"reason", bounded(reason)}})});
}

Status AuditTrail::record(const std::string& action, const std::string& details_json) {
  return store_.append_audit({"daemon", action, "gridtrustd", details_json});
}

bool AuditTrail::admit() {
  std::uint64_t flushed = 0;
  bool admitted = true;
  {
    std::lock_guard g(mu_);
    auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= std::chrono::seconds(1)) {
      window_start_ = now;
      in_window_ = 0;
      flushed = suppressed_;
      suppressed_ = 0;
    }
    if (++in_window_ > limit_) {
      ++suppressed_;
      admitted = false;
    }
  }
  if (flushed) {
    metrics_.count_audit_suppressed(flushed);
    append_async({"daemon", "refusals-suppressed", "gridtrustd",
                  json::serialize(json::object{{"count", flushed}})});
  }
  return admitted;
}

void AuditTrail::append_async(store::AuditEvent ev) {
  // The future is dropped on purpose: a promise-backed future does not block in its
  // destructor, and the writer logs nothing we could act on here.
  (void)store_.append_audit_async(std::move(ev));
}

}  // namespace gridtrust::daemon
