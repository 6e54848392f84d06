#pragma once
// RFC 7515 JWS with a detached payload (appendix F): "<header>..<signature>", the
// signing input being BASE64URL(header) "." BASE64URL(payload). The header is written
// in its JCS form so that the same header always gives the same bytes.
//
// Algorithms (RFC 7518 3.4, RFC 8037): ES256 (P-256, SHA-256), ES384 (P-384,
// SHA-384), ES512 (P-521, SHA-512), EdDSA (Ed25519, Ed448). ECDSA signatures are the
// raw r||s the token returns (CKM_ECDSA), each half padded to the curve size.
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <openssl/evp.h>

#include "core/encoding.h"
#include "core/rejection.h"
#include "hsm/signer.h"

namespace gridtrust::protocol {

enum class JwsAlgorithm { ES256, ES384, ES512, EdDSA };

std::string_view name_of(JwsAlgorithm a);
Result<JwsAlgorithm> jws_algorithm_for(hsm::KeyAlgorithm key);
// The algorithm a verifying key allows; codes: jws.unsupported_key.
Result<JwsAlgorithm> jws_algorithm_for(EVP_PKEY* key);

// BASE64URL (RFC 7515 2: no padding) of `data`, appended to `out`.
void append_base64url(std::string_view data, std::string& out);

// Sets "alg" from the signer's key and signs; returns the detached compact form.
Result<std::string> sign_detached(const hsm::Signer& signer, boost::json::object header, std::string_view payload);

struct DetachedJws {
  std::string header_b64;  // as received: the signature covers these exact characters
  boost::json::object header;
  JwsAlgorithm algorithm = JwsAlgorithm::ES256;
  Bytes signature;
};

// Codes: jws.malformed (not "<b64url>..<b64url>", header not a JSON object, duplicate
// header members), jws.unsupported_alg (alg missing, "none", or not one of the four),
// jws.crit (a "crit" header: we understand no extensions).
Result<DetachedJws> parse_detached(std::string_view compact);

// Codes: jws.alg_mismatch (alg does not fit the key), jws.bad_signature.
Status verify_detached(const DetachedJws& jws, std::string_view payload, EVP_PKEY* key);

}  // namespace gridtrust::protocol
