#pragma once
// OpenSSL sees only a NULL signature when a bridged Signer fails (evp_bridge.cpp).
// The bridge keeps the Signer's rejection for the thread that signed, so a caller of
// X509_sign and friends can tell a token outage (hsm.unavailable, retry later) from a
// signing error.
#include <optional>

#include "core/rejection.h"

namespace gridtrust::hsm {

// Returns and clears the last failure of a bridged signature on this thread.
std::optional<Rejection> take_sign_failure();
// Called by the bridge.
void note_sign_failure(Rejection why);

}  // namespace gridtrust::hsm
