#pragma once
// PKCS#10 requests (RFC 2986): bounded parsing, key policy, proof of possession.
//
// The request is walked with a strict DER reader instead of d2i_X509_REQ: OpenSSL 3.0
// decodes a request's public key through its generic decoder framework, which costs
// several times an ECDSA verification and sat on the issuance hot path. The subject
// and the key are still decoded by OpenSSL (d2i_X509_NAME, d2i_EC_PUBKEY).
#include "core/encoding.h"
#include "core/openssl_ptr.h"
#include "core/rejection.h"
#include "hsm/key_algorithm.h"
#include "pki/profile.h"

namespace gridtrust::pki {

inline constexpr std::size_t kMaxCsrBytes = 16 * 1024;

enum class CsrKeyType { Ec, Ed25519, Ed448, Rsa, Other };

struct CertificationRequest {
  X509NamePtr subject;
  CsrKeyType key_type = CsrKeyType::Other;
  EvpPkeyPtr key;      // decoded for EC and EdDSA keys only
  Bytes spki_der;      // subjectPKInfo as sent
  Bytes info_der;      // certificationRequestInfo: what the signature covers
  int signature_nid = NID_undef;
  Bytes signature;     // BIT STRING contents
};

// Accepts one PEM "CERTIFICATE REQUEST" block or DER; nothing else, nothing after it.
Result<CertificationRequest> parse_csr(const Bytes& input);

// The subject key's type and curve must be one the profile allows.
Result<hsm::KeyAlgorithm> check_key_allowed(const CertificationRequest& req, const Profile& profile);

// RFC 2986 4.2: the request is signed by the key it carries (proof of possession).
Status verify_csr_signature(const CertificationRequest& req);

}  // namespace gridtrust::pki
