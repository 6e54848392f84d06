#include "cli/record_json.h"

#include "core/time.h"
#include "pki/revocation_reason.h"

namespace gridtrust::app {

boost::json::object record_json(const store::CertificateRecord& r) {
  boost::json::object o;
  o["serial"] = r.serial;
  o["issuer"] = r.issuer;
  o["profile"] = r.profile;
  o["subject"] = r.subject;
  o["not_before"] = to_rfc3339(from_unix(r.not_before));
  o["not_after"] = to_rfc3339(from_unix(r.not_after));
  o["status"] = r.status;
  if (r.revoked_at) o["revoked_at"] = to_rfc3339(from_unix(*r.revoked_at));
  if (r.reason) o["reason"] = pki::revocation_reason_name(static_cast<int>(*r.reason));
  if (r.key_label) o["hsm_key_label"] = *r.key_label;
  return o;
}

boost::json::object replacement_json(const pki::Replacement& r) {
  boost::json::object o = record_json(r.issued.record);
  o["chain_pem"] = r.issued.chain_pem();
  o["replaces"] = r.replaces;
  if (r.revoke_failure)
    o["revoke_old_error"] = boost::json::object{{"code", r.revoke_failure->code}, {"message", r.revoke_failure->message}};
  return o;
}

namespace {

std::string text_of(const boost::json::object& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
}

}  // namespace

std::string record_line(const boost::json::object& o) {
  return text_of(o, "serial") + "  " + text_of(o, "profile") + "  " + text_of(o, "status") + "  " +
         text_of(o, "not_after") + "  " + text_of(o, "subject") + "\n";
}

std::string record_text(const boost::json::object& o) {
  std::string out = "serial:     " + text_of(o, "serial") + "\nissuer:     " + text_of(o, "issuer") +
                    "\nprofile:    " + text_of(o, "profile") + "\nsubject:    " + text_of(o, "subject") +
                    "\nnot before: " + text_of(o, "not_before") + "\nnot after:  " + text_of(o, "not_after") +
                    "\nstatus:     " + text_of(o, "status") + "\n";
  if (o.contains("revoked_at")) {
    // A revocation stored without a reason code reads as RFC 5280 `unspecified` (0).
    std::string reason = o.contains("reason") ? text_of(o, "reason") : pki::revocation_reason_name(0);
    out += "revoked:    " + text_of(o, "revoked_at") + " (" + reason + ")\n";
  }
  if (o.contains("hsm_key_label")) out += "HSM key:    " + text_of(o, "hsm_key_label") + "\n";
  return out;
}

}  // namespace gridtrust::app
