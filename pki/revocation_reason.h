#pragma once
#include <optional>
#include <string>

namespace gridtrust::pki {

// RFC 5280 5.3.1 CRLReason. removeFromCRL (8) is only meaningful in delta CRLs and is
// not accepted as a revocation reason.
std::optional<int> revocation_reason_from_name(const std::string& name);
std::string revocation_reason_name(int code);

}  // namespace gridtrust::pki
