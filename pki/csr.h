#pragma once
// PKCS#10 requests: bounded parsing, proof of possession, key policy.
#include "core/encoding.h"
#include "core/openssl_ptr.h"
#include "core/rejection.h"
#include "pki/profile.h"

namespace gridtrust::pki {

inline constexpr std::size_t kMaxCsrBytes = 16 * 1024;

// Accepts one PEM "CERTIFICATE REQUEST" block or DER; nothing else, nothing after it.
Result<X509ReqPtr> parse_csr(const Bytes& input);

// RFC 2986: the request is signed by the key it carries (proof of possession).
Status verify_csr_signature(X509_REQ* req);

// The subject key's type and curve must be one the profile allows.
Result<hsm::KeyAlgorithm> check_key_allowed(EVP_PKEY* key, const Profile& profile);

}  // namespace gridtrust::pki
