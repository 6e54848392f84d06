#pragma once
// The routing table: (method, path pattern) -> handler, with who may call it.
//
// A pattern is a path whose segments are literals or parameters: "{serial}" takes a
// whole segment, "{issuer}.crl" a segment ending in ".crl", a last "{name...}" the
// rest of the path, slashes included (base64 in an OCSP GET, RFC 6960 A.1). Access is checked here,
// once, so a handler only runs for a caller it was declared for.
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "daemon/reply.h"
#include "daemon/request.h"

namespace gridtrust::daemon {

using Handler = std::function<Reply(const Request&)>;

enum class Access {
  anyone,         // the plain-HTTP status listener: signed objects and health
  verified_peer,  // any client certificate that passed TLS verification
  roles,          // an identified caller whose role is in the route's set
};

class Router {
 public:
  void add(std::string method, std::string pattern, Access access, Handler handler,
           std::set<std::string> roles = {});
  // Matches, checks access, runs the handler; `notfound.route` when nothing matches.
  Reply route(Request& req) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Access access;
    std::set<std::string> roles;
    Handler handler;
    std::string pattern;
  };
  static bool match(const Route& route, const std::vector<std::string>& path, Request& req);
  static Status check_access(const Route& route, const Request& req);

  std::vector<Route> routes_;
};

}  // namespace gridtrust::daemon
