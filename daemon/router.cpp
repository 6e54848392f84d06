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
                 std::set<std::string> roles) {
  routes_.push_back(Route{std::move(method), split_path(pattern), access, std::move(roles), std::move(handler)});
}

bool Router::match(const Route& route, const std::vector<std::string>& path, Request& req) {
  if (route.segments.size() != path.size()) return false;
  std::map<std::string, std::string> params;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const std::string& want = route.segments[i];
    const std::string& got = path[i];
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
