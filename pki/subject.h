#pragma once
// Subject names: parsing "CN=...,O=..." and checking a name against a profile's rules.
#include <string>

#include "core/openssl_ptr.h"
#include "core/rejection.h"
#include "pki/profile.h"

namespace gridtrust::pki {

// RFC 4514-like text: comma-separated TYPE=value, '\' escapes ',', '=', '\', '+'.
// Types: CN, O, OU, C, DC, L, ST. Order is kept as written.
Result<X509NamePtr> parse_subject(const std::string& text);

// Checks a name against a profile's subject rules: allowed and required attributes,
// the role's DC value, CN syntax (eMAID, PCID, SECC ID, host name), OU values.
Status check_subject(const X509_NAME* name, const Profile& profile);

std::string subject_text(const X509_NAME* name);  // one line, RFC 2253 order
std::string common_name(const X509_NAME* name);

}  // namespace gridtrust::pki
