#include "daemon/status_routes.h"

#include <cctype>

namespace gridtrust::daemon {
namespace {

constexpr const char* kOcspResponseType = "application/ocsp-response";  // RFC 6960 A.1

Reply ocsp_reply(const Bytes& der) {
  return Reply{200, kOcspResponseType, std::string(der.begin(), der.end())};
}

// Content-Type without parameters, lower case.
std::string media_type(const std::string& content_type) {
  std::string out = content_type.substr(0, content_type.find(';'));
  while (!out.empty() && out.back() == ' ') out.pop_back();
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Router make_status_router(StatusPublisher& status) {
  Router r;
  r.add("GET", "/healthz", Access::anyone,
        [](const Request&) { return json_reply(boost::json::object{{"status", "ok"}}); });
  r.add("GET", "/crl/{issuer}.crl", Access::anyone, [&status](const Request& req) {
    auto der = status.crls().der(req.param("issuer"));
    if (!der.ok()) return error_reply(der.error());
    return Reply{200, "application/pkix-crl", *der.value()};
  });
  r.add("POST", "/ocsp", Access::anyone, [&status](const Request& req) {
    if (media_type(req.content_type) != "application/ocsp-request")
      return error_reply(reject("request.bad_content_type", "an OCSP request is application/ocsp-request"));
    if (req.body.size() > pki::kMaxOcspRequestBytes)
      return error_reply(reject("request.too_large", "an OCSP request is at most " +
                                                         std::to_string(pki::kMaxOcspRequestBytes) + " bytes"));
    return ocsp_reply(status.ocsp().respond(Bytes(req.body.begin(), req.body.end()), status.now()));
  });
  // Base64 may carry '/' unencoded; the segment is the rest of the path.
  r.add("GET", "/ocsp/{request...}", Access::anyone, [&status](const Request& req) {
    return ocsp_reply(status.ocsp().respond_get(req.param("request"), status.now()));
  });
  return r;
}

}  // namespace gridtrust::daemon
