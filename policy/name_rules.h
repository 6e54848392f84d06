#pragma once
// Identifier syntaxes that certificate subjects of the V2G roles must follow.
#include <string_view>

namespace gridtrust::policy {

// ISO 15118-2 Annex H eMAID: <Country Code><S><Provider ID><S><eMA Instance>[<S><Check Digit>]
// 2 letters, 3 alphanumerics, 9 alphanumerics, optional check character; the optional
// separator '-' is used consistently or not at all. At most 15 characters without
// separators (the 15118-2 message limit).
bool is_valid_emaid(std::string_view s);

// Provisioning Certificate ID: the OEM's WMI (3) + 14 alphanumerics + optional check
// character: 17 or 18 alphanumerics.
bool is_valid_pcid(std::string_view s);

// ISO 15118-2 Annex H EVSE ID, which the SECC certificate's CN carries:
// <Country Code><S><EVSE Operator ID><S>'E'<Power Outlet ID>, separator '*' optional,
// power outlet id 1..31 of [A-Z0-9*], at most 37 characters.
bool is_valid_secc_id(std::string_view s);

// A DNS host name (RFC 1123 labels), no wildcards, at most 253 characters.
bool is_valid_hostname(std::string_view s);

}  // namespace gridtrust::policy
