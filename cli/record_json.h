#pragma once
// The JSON view of a certificate record, shared by `gridtrust ... --json` and the
// daemon's API so both speak the same field names.
#include <string>

#include <boost/json.hpp>

#include "pki/certificate_authority.h"
#include "store/records.h"

namespace gridtrust::app {

boost::json::object record_json(const store::CertificateRecord& r);
// What renew and rekey answer: the issuance view (record and chain_pem), "replaces"
// (the old serial) and, when revoke_old was asked and that revocation failed,
// "revoke_old_error": {"code","message"}.
boost::json::object replacement_json(const pki::Replacement& r);

// The text forms of a record, made from its JSON view so that offline commands and
// remote ones (which only see the API's JSON) print the same bytes.
std::string record_line(const boost::json::object& record);  // one `list` line, newline included
std::string record_text(const boost::json::object& record);  // the `show` block

}  // namespace gridtrust::app
