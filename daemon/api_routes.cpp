#include "daemon/api_routes.h"

#include <cctype>

#include "cli/audit_report.h"
#include "cli/record_json.h"
#include "daemon/command_routes.h"
#include "pki/certificate_builder.h"

namespace gridtrust::daemon {
namespace json = boost::json;

namespace {

const std::set<std::string> kIssuers = {"admin", "operator"};
const std::set<std::string> kReaders = {"admin", "operator", "auditor"};
const std::set<std::string> kAdmins = {"admin"};
const std::set<std::string> kAuditors = {"admin", "auditor"};

std::string actor_of(const Request& req) {
  return "daemon:" + (req.caller ? req.caller->role + ":" + req.caller->subject : std::string("unknown"));
}

std::string pem_of(const std::vector<Bytes>& chain_der) {
  std::string out;
  for (const Bytes& der : chain_der)
    if (auto cert = pki::certificate_from_der(der); cert.ok()) out += pki::certificate_pem(cert->get());
  return out;
}

// Serials in a URL: hexadecimal, optional 0x, any case; stored upper case.
Result<std::string> serial_param(const Request& req) {
  std::string s = req.param("serial");
  if (s.rfind("0x", 0) == 0 || s.rfind("0X", 0) == 0) s = s.substr(2);
  if (s.empty() || s.size() > 40) return reject("usage.bad_serial", "serial must be hexadecimal");
  for (auto& c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return reject("usage.bad_serial", "serial must be hexadecimal");
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

Reply healthz(const Request&) { return json_reply(json::object{{"status", "ok"}}); }

Result<json::object> issue(pki::CertificateAuthority& ca, const Request& req) {
  GT_TRY_ASSIGN(json::object body, json_object_body(req));
  GT_TRY_ASSIGN(std::string profile, json_string_member(body, "profile"));
  GT_TRY_ASSIGN(std::string csr, json_string_member(body, "csr"));
  pki::IssueOptions opt;
  opt.actor = actor_of(req);
  GT_TRY_ASSIGN(pki::Issued issued, ca.issue_from_csr(profile, Bytes(csr.begin(), csr.end()), opt));
  json::object out = app::record_json(issued.record);
  out["chain_pem"] = issued.chain_pem();
  return out;
}

// A key generated in the token for the subject; the key never leaves the token.
Result<json::object> issue_hsm(pki::CertificateAuthority& ca, const Request& req) {
  GT_TRY_ASSIGN(json::object body, json_object_body(req));
  GT_TRY_ASSIGN(std::string profile, json_string_member(body, "profile"));
  GT_TRY_ASSIGN(std::string subject, json_string_member(body, "subject"));
  pki::IssueOptions opt;
  opt.actor = actor_of(req);
  if (body.contains("key_type")) {
    GT_TRY_ASSIGN(std::string type, json_string_member(body, "key_type"));
    opt.key_algorithm = hsm::key_algorithm_from_name(type);
    if (!opt.key_algorithm)
      return reject("usage.bad_value", "key_type must be one of P-256, P-384, P-521, Ed25519, Ed448");
  }
  GT_TRY_ASSIGN(pki::Issued issued, ca.issue_with_hsm_key(profile, subject, opt));
  json::object out = app::record_json(issued.record);
  out["chain_pem"] = issued.chain_pem();
  return out;
}

Result<json::object> list(pki::CertificateAuthority& ca, const Request& req) {
  store::CertificateFilter f;
  f.profile = req.query_value("profile");
  f.status = req.query_value("status");
  if (f.status && *f.status != "valid" && *f.status != "revoked")
    return reject("usage.bad_value", "status must be valid or revoked");
  if (auto v = req.query_value("expiring_before")) {
    // Unix time in seconds, as `gridtrust list --expiring-before` takes it.
    const std::string& t = *v;
    bool digits = !t.empty() && t.size() <= 18;
    for (char c : t) digits = digits && std::isdigit(static_cast<unsigned char>(c));
    if (!digits) return reject("usage.bad_value", "expiring_before takes a Unix time in seconds");
    f.expiring_before = std::stoll(t);
  }
  GT_TRY_ASSIGN(auto rows, ca.store().list(f));
  json::array certs;
  for (const auto& r : rows) certs.push_back(app::record_json(r));
  return json::object{{"certificates", std::move(certs)}};
}

Result<json::object> show(pki::CertificateAuthority& ca, const Request& req) {
  GT_TRY_ASSIGN(std::string serial, serial_param(req));
  GT_TRY_ASSIGN(auto rows, ca.store().find_by_serial(serial));
  if (rows.empty()) return reject("notfound.certificate", "no certificate with serial " + serial);
  // Serials are random and unique per issuer; two issuers sharing one is reported as
  // the first match (the record names its issuer).
  const auto& r = rows.front();
  json::object out = app::record_json(r);
  if (auto cert = pki::certificate_from_der(r.der); cert.ok()) out["pem"] = pki::certificate_pem(cert->get());
  return out;
}

Result<store::CertificateRecord> revoke(pki::CertificateAuthority& ca, const Request& req) {
  GT_TRY_ASSIGN(std::string serial, serial_param(req));
  std::string reason = "unspecified";
  if (!req.body.empty()) {
    GT_TRY_ASSIGN(json::object body, json_object_body(req));
    if (body.contains("reason")) {
      GT_TRY_ASSIGN(reason, json_string_member(body, "reason"));
    }
  }
  return ca.revoke(serial, reason, actor_of(req));
}

// Renew and re-key take an optional {"revoke_old": bool}; a body is optional for renew.
Result<pki::ReplaceOptions> replace_options(const Request& req, const json::object& body) {
  pki::ReplaceOptions opt;
  opt.actor = actor_of(req);
  if (const json::value* v = body.if_contains("revoke_old")) {
    if (!v->is_bool()) return reject("request.bad_json", "member \"revoke_old\" must be true or false");
    opt.revoke_old = v->as_bool();
  }
  return opt;
}

Result<pki::Replacement> renew(pki::CertificateAuthority& ca, const Request& req) {
  GT_TRY_ASSIGN(std::string serial, serial_param(req));
  json::object body;
  if (!req.body.empty()) {
    GT_TRY_ASSIGN(body, json_object_body(req));
  }
  GT_TRY_ASSIGN(pki::ReplaceOptions opt, replace_options(req, body));
  return ca.renew(serial, opt);
}

// {"csr": PEM} for the subject's new key, or {"hsm": true} for a new key in the token.
Result<pki::Replacement> rekey(pki::CertificateAuthority& ca, const Request& req) {
  GT_TRY_ASSIGN(std::string serial, serial_param(req));
  GT_TRY_ASSIGN(json::object body, json_object_body(req));
  GT_TRY_ASSIGN(pki::ReplaceOptions opt, replace_options(req, body));
  bool in_token = false;
  if (const json::value* v = body.if_contains("hsm")) {
    if (!v->is_bool()) return reject("request.bad_json", "member \"hsm\" must be true or false");
    in_token = v->as_bool();
  }
  if (in_token == body.contains("csr"))
    return reject("usage.bad_combination", "rekey needs either \"csr\" (PEM) or \"hsm\": true");
  if (in_token) return ca.rekey_with_hsm_key(serial, opt);
  GT_TRY_ASSIGN(std::string csr, json_string_member(body, "csr"));
  return ca.rekey_from_csr(serial, Bytes(csr.begin(), csr.end()), opt);
}

// 201 with the issuance answer plus "replaces"; a revoked old certificate goes to the
// status publisher like any revocation, so OCSP and CRLs say so at once.
Handler replacement_handler(pki::CertificateAuthority& ca,
                            Result<pki::Replacement> (*op)(pki::CertificateAuthority&, const Request&),
                            RevocationHook on_revoked) {
  return [&ca, op, on_revoked = std::move(on_revoked)](const Request& req) {
    auto r = op(ca, req);
    if (!r.ok()) return error_reply(r.error());
    if (r->revoked && on_revoked) on_revoked(*r->revoked);
    return json_reply(app::replacement_json(r.value()), 201);
  };
}

Result<json::object> chain(pki::CertificateAuthority& ca, const Request& req) {
  GT_TRY_ASSIGN(auto ders, ca.chain(req.param("profile")));
  return json::object{{"profile", req.param("profile")}, {"chain_pem", pem_of(ders)}};
}

Result<json::object> crl(pki::CertificateAuthority& ca, const Request& req) {
  GT_TRY_ASSIGN(std::string pem, ca.crl_pem(req.param("issuer"), actor_of(req)));
  return json::object{{"issuer", req.param("issuer")}, {"crl_pem", pem}};
}

// The report of `gridtrust audit verify --json`: the hash chain, then the checkpoints
// (their signatures checked against the token's keys while the token answers). A
// broken chain is a finding, not a failed request: 200 with "ok": false.
Result<json::object> audit_verify(pki::CertificateAuthority& ca, const Request&) {
  GT_TRY_ASSIGN(auto v, app::verify_audit(ca.store(), [&ca]() -> Result<std::shared_ptr<hsm::Token>> {
    if (!ca.token()) return reject("hsm.unavailable", "the CA has no token");
    return ca.token();
  }));
  return app::audit_report_json(v);
}

// Adapts an operation returning Result<json::object> to a handler.
Handler json_handler(pki::CertificateAuthority& ca, Result<json::object> (*op)(pki::CertificateAuthority&, const Request&),
                     int status = 200) {
  return [&ca, op, status](const Request& req) {
    auto r = op(ca, req);
    return r.ok() ? json_reply(r.value(), status) : error_reply(r.error());
  };
}

}  // namespace

Router make_api_router(pki::CertificateAuthority& ca, RevocationHook on_revoked,
                       std::shared_ptr<app::CommandService> commands) {
  Router r;
  r.add("GET", "/healthz", Access::verified_peer, healthz);
  r.add("POST", "/v1/certificates", Access::roles, json_handler(ca, issue, 201), kIssuers);
  r.add("POST", "/v1/certificates/hsm", Access::roles, json_handler(ca, issue_hsm, 201), kIssuers);
  r.add("GET", "/v1/certificates", Access::roles, json_handler(ca, list), kReaders);
  r.add("GET", "/v1/certificates/{serial}", Access::roles, json_handler(ca, show), kReaders);
  r.add("POST", "/v1/certificates/{serial}/renew", Access::roles, replacement_handler(ca, renew, on_revoked),
        kIssuers);
  r.add("POST", "/v1/certificates/{serial}/rekey", Access::roles, replacement_handler(ca, rekey, on_revoked),
        kIssuers);
  r.add("POST", "/v1/certificates/{serial}/revoke", Access::roles,
        [&ca, on_revoked = std::move(on_revoked)](const Request& req) {
          auto rec = revoke(ca, req);
          if (!rec.ok()) return error_reply(rec.error());
          if (on_revoked) on_revoked(rec.value());
          return json_reply(app::record_json(rec.value()));
        },
        kAdmins);
  r.add("GET", "/v1/chain/{profile}", Access::roles, json_handler(ca, chain), kReaders);
  r.add("GET", "/v1/audit/verify", Access::roles, json_handler(ca, audit_verify), kAuditors);
  r.add("GET", "/v1/crl/{issuer}", Access::roles, json_handler(ca, crl), kReaders);
  add_command_routes(r, ca, std::move(commands));
  return r;
}

}  // namespace gridtrust::daemon
