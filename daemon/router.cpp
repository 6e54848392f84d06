#include "daemon/router.h"

#include <exception>

namespace gridtrust::daemon {
namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 1;  // paths start with '/'
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

void Router::add(std::string method, std::string pattern, Access access, Handler handler,
                 std::set<std::string> roles, Body body) {
  routes_.push_back(
      Route{std::move(method), split_path(pattern), access, std::move(roles), std::move(handler), pattern, body});
  has_batch_routes_ = has_batch_routes_ || body == Body::batch;
}

bool Router::takes_batch_body(const Request& head) const {
  auto path = split_path(head.path);
  Request probe = head;  // match() fills in the parameters
  for (const Route& r : routes_) {
    if (r.method != head.method || !match(r, path, probe)) continue;
    return r.body == Body::batch && check_access(r, probe).ok();
  }
  return false;
}

bool Router::match(const Route& route, const std::vector<std::string>& path, Request& req) {
  const bool rest = !route.segments.empty() && route.segments.back().size() > 5 &&
                    route.segments.back().compare(route.segments.back().size() - 4, 4, "...}") == 0;
  if (rest ? path.size() < route.segments.size() : route.segments.size() != path.size()) return false;
  std::map<std::string, std::string> params;
  for (std::size_t i = 0; i < route.segments.size(); ++i) {
    const std::string& want = route.segments[i];
    const std::string& got = path[i];
    if (rest && i + 1 == route.segments.size()) {
      std::string tail = got;
      for (std::size_t j = i + 1; j < path.size(); ++j) tail += "/" + path[j];
      params[want.substr(1, want.size() - 5)] = std::move(tail);
      break;
    }
    if (want.empty() || want.front() != '{') {
      if (want != got) return false;
      continue;
    }
    auto close = want.find('}');
    std::string name = want.substr(1, close - 1);
    std::string suffix = want.substr(close + 1);
    if (got.size() <= suffix.size() || got.compare(got.size() - suffix.size(), suffix.size(), suffix) != 0)
      return false;
    params[name] = got.substr(0, got.size() - suffix.size());
  }
  req.params = std::move(params);
  return true;
}

Status Router::check_access(const Route& route, const Request& req) {
  switch (route.access) {
    case Access::anyone:
    case Access::verified_peer:  // the TLS handshake already refused anyone else
      return Ok{};
    case Access::roles:
      if (!req.caller) {
        if (req.caller_rejection) return *req.caller_rejection;
        return reject("auth.required", "this route needs a client certificate");
      }
      if (route.roles.count(req.caller->role) == 0)
        return reject("auth.forbidden", "role '" + req.caller->role + "' may not " + req.method + " " + req.path);
      return Ok{};
  }
  return reject("internal.error", "unknown access rule");
}

Reply Router::route(Request& req) const {
  auto path = split_path(req.path);
  for (const Route& r : routes_) {
    if (r.method != req.method || !match(r, path, req)) continue;
    req.route = r.pattern;
    if (auto access = check_access(r, req); !access.ok()) return error_reply(access.error());
    try {
      return r.handler(req);
    } catch (const std::exception& e) {
      return error_reply(reject("internal.error", std::string("unexpected exception: ") + e.what()));
    }
  }
  return error_reply(reject("notfound.route", "no route for " + req.method + " " + req.path));
}

}  // namespace gridtrust::daemon
