#pragma once
// An HTTP request as a handler sees it: parsed, bounded, with the caller already
// identified by the transport. Handlers know nothing about sockets or TLS.
#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include <boost/json.hpp>

#include "core/rejection.h"

namespace gridtrust::daemon {

// Who sent the request: an `admin`-profile client certificate this PKI issued.
struct Caller {
  std::string role;     // OU of the certificate subject: admin | operator | auditor | aggregator
  std::string subject;  // for logs and the audit trail
  std::string serial;
  std::string organisation;  // O of the certificate subject: whose CSRs an aggregator may have signed
};

struct Request {
  std::string method;                         // "GET", "POST", ...
  std::string path;                           // without the query
  std::map<std::string, std::string> query;   // decoded
  std::map<std::string, std::string> params;  // from the route pattern, e.g. {serial}
  std::string route;                          // the matched pattern, set by the router (metrics, audit)
  std::string content_type;
  std::string body;
  std::optional<Caller> caller;               // set by the TLS listener
  std::optional<Rejection> caller_rejection;  // why a verified peer is not a caller

  std::optional<std::string> query_value(const std::string& name) const;
  const std::string& param(const std::string& name) const;
  // A listing's ?limit=: 1..max (usage.bad_value otherwise), min(100, max) when absent.
  Result<std::size_t> limit(std::size_t max) const;
};

// Splits "/a/b?x=1&y=%20" into path and decoded query.
void parse_target(const std::string& target, Request& out);

// `request.bad_content_type` unless the content type is application/json.
Status json_content_type(const Request& req);
// The body as a JSON object: `request.bad_content_type` unless the content type is
// application/json, `request.bad_json` unless it parses to an object.
Result<boost::json::object> json_object_body(const Request& req);

// A required string member of a JSON body (`request.bad_json` when missing or not a string).
Result<std::string> json_string_member(const boost::json::object& body, const char* name);

}  // namespace gridtrust::daemon
