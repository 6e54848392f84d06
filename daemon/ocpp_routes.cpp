#include "daemon/ocpp_routes.h"

#include <cctype>

#include "protocol/ocpp_certificates.h"

namespace gridtrust::daemon {
namespace json = boost::json;
namespace ocpp = protocol::ocpp;

namespace {

const std::set<std::string> kOcppCallers = {"admin", "operator", "aggregator"};

std::string actor_of(const Request& req) {
  return "daemon:" + (req.caller ? req.caller->role + ":" + req.caller->subject : std::string("unknown"));
}

// Admin and operator callers issue for anyone (as POST /v1/certificates lets them);
// an aggregator for its own organisation only.
ocpp::Requester requester_of(const Request& req) {
  ocpp::Requester who;
  who.actor = actor_of(req);
  if (!req.caller || req.caller->role == "aggregator")
    who.organisation = req.caller ? req.caller->organisation : std::string();
  return who;
}

// error_reply, plus the OCPP CallError name for ocpp.* codes.
Reply ocpp_error_reply(const Rejection& r) {
  Reply reply = error_reply(r);
  if (const char* name = ocpp::call_error_name(r.code)) {
    json::object error{{"code", r.code}, {"message", r.message}, {"ocpp_error", name}};
    reply.body = json::serialize(json::object{{"error", std::move(error)}}) + "\n";
  }
  return reply;
}

Result<ocpp::Version> version_of(const std::optional<std::string>& text) {
  if (!text) return ocpp::Version::v2_0_1;
  return ocpp::parse_version(*text);
}

Result<protocol::HashAlgorithm> hash_of(const Request& req) {
  auto text = req.query_value("hashAlgorithm");
  if (!text) return protocol::HashAlgorithm::sha256;
  return ocpp::parse_hash_algorithm(*text);
}

struct Envelope {
  ocpp::Version version = ocpp::Version::v2_0_1;
  json::value request;
};

// {["ocppVersion"], "request"}: the body text is the OCPP carrier, so what makes it
// unreadable (not JSON, duplicate names, bad UTF-8) is a FormatViolation; the
// envelope's own members are the API's (request.bad_json, usage.bad_value).
Result<Envelope> envelope(const Request& req) {
  std::string type = req.content_type.substr(0, req.content_type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type != "application/json")
    return reject("request.bad_content_type",
                  "expected Content-Type application/json, got '" + req.content_type + "'");
  GT_TRY_ASSIGN(json::value body, ocpp::parse_payload(req.body));
  if (!body.is_object()) return reject("request.bad_json", "request body must be a JSON object");
  json::object& o = body.as_object();
  for (const auto& m : o)
    if (m.key() != "ocppVersion" && m.key() != "request")
      return reject("request.bad_json", "unknown member \"" + std::string(m.key().substr(0, 64)) +
                                            "\" (expected \"ocppVersion\" and \"request\")");
  Envelope out;
  if (const json::value* v = o.if_contains("ocppVersion")) {
    if (!v->is_string()) return reject("request.bad_json", "\"ocppVersion\" must be a string");
    GT_TRY_ASSIGN(out.version, ocpp::parse_version(std::string(v->as_string())));
  }
  json::value* payload = o.if_contains("request");
  if (!payload) return reject("request.bad_json", "request body needs a member \"request\" (the OCPP payload)");
  out.request = std::move(*payload);
  return out;
}

json::object wrap(ocpp::Version v, const char* action, json::object response) {
  return json::object{{"ocppVersion", ocpp::version_text(v)}, {"action", action}, {"response", std::move(response)}};
}

Result<json::object> sign_certificate(pki::CertificateAuthority& ca, const Request& req) {
  GT_TRY_ASSIGN(Envelope e, envelope(req));
  GT_TRY_ASSIGN(ocpp::CertificateSigned signed_, ocpp::sign_certificate(ca, e.version, e.request, requester_of(req)));
  json::object out = wrap(e.version, "CertificateSigned", std::move(signed_.payload));
  out["serial"] = signed_.record.serial;
  out["profile"] = signed_.record.profile;
  return out;
}

Result<json::object> certificate_status(pki::OcspResponder& ocsp, const Request& req) {
  GT_TRY_ASSIGN(Envelope e, envelope(req));
  GT_TRY_ASSIGN(json::object response, ocpp::certificate_status(ocsp, e.version, e.request, now_seconds()));
  return wrap(e.version, "GetCertificateStatus", std::move(response));
}

Result<json::object> install_certificate(pki::CertificateAuthority& ca, const Request& req) {
  GT_TRY_ASSIGN(ocpp::Version v, version_of(req.query_value("ocppVersion")));
  GT_TRY_ASSIGN(protocol::HashAlgorithm alg, hash_of(req));
  auto type = req.query_value("certificateType");
  if (!type) return reject("usage.missing_option", "certificateType is required (InstallCertificateUseEnumType)");
  return ocpp::install_certificate(ca, v, req.param("profile"), *type, alg);
}

Result<json::object> certificate_hash(pki::CertificateAuthority& ca, const Request& req) {
  GT_TRY_ASSIGN(ocpp::Version v, version_of(req.query_value("ocppVersion")));
  GT_TRY_ASSIGN(protocol::HashAlgorithm alg, hash_of(req));
  return ocpp::certificate_hash(ca, v, req.param("serial"), alg);
}

Result<json::object> trigger(const Request& req) {
  GT_TRY_ASSIGN(ocpp::Version v, version_of(req.query_value("ocppVersion")));
  return ocpp::trigger_message(v, req.param("requestedMessage"));
}

template <typename Fn>
Handler handler(Fn op) {
  return [op](const Request& req) {
    auto r = op(req);
    return r.ok() ? json_reply(r.value()) : ocpp_error_reply(r.error());
  };
}

}  // namespace

void add_ocpp_routes(Router& router, pki::CertificateAuthority& ca, pki::OcspResponder& ocsp) {
  router.add("POST", "/v1/ocpp/sign-certificate", Access::roles,
             handler([&ca](const Request& req) { return sign_certificate(ca, req); }), kOcppCallers);
  router.add("POST", "/v1/ocpp/certificate-status", Access::roles,
             handler([&ocsp](const Request& req) { return certificate_status(ocsp, req); }), kOcppCallers);
  router.add("GET", "/v1/ocpp/install-certificate/{profile}", Access::roles,
             handler([&ca](const Request& req) { return install_certificate(ca, req); }), kOcppCallers);
  router.add("GET", "/v1/ocpp/certificate-hash/{serial}", Access::roles,
             handler([&ca](const Request& req) { return certificate_hash(ca, req); }), kOcppCallers);
  router.add("GET", "/v1/ocpp/trigger/{requestedMessage}", Access::roles, handler(trigger), kOcppCallers);
}

}  // namespace gridtrust::daemon
