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

// How large a body a route takes: the API's usual limit (daemon.limits.max_body_bytes),
// or, for a route that carries signed batches, daemon.limits.max_batch_body_bytes.
enum class Body { regular, batch };

class Router {
 public:
  void add(std::string method, std::string pattern, Access access, Handler handler,
           std::set<std::string> roles = {}, Body body = Body::regular);
  // Matches, checks access, runs the handler; `notfound.route` when nothing matches.
  Reply route(Request& req) const;
  // Whether a request with this head (method, path, caller; no body yet) goes to a
  // Body::batch route that admits its caller: only then is a batch-sized body read.
  bool takes_batch_body(const Request& head) const;
  bool has_batch_routes() const { return has_batch_routes_; }

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Access access;
    std::set<std::string> roles;
    Handler handler;
    std::string pattern;
    Body body = Body::regular;
  };
  static bool match(const Route& route, const std::vector<std::string>& path, Request& req);
  static Status check_access(const Route& route, const Request& req);

  std::vector<Route> routes_;
  bool has_batch_routes_ = false;
};

}  // namespace gridtrust::daemon
