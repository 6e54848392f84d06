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

}  // namespace gridtrust::app
