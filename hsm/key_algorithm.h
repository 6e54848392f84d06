#pragma once
#include <optional>
#include <string>
#include <string_view>

#include <p11-kit/pkcs11.h>

#include "core/encoding.h"

namespace gridtrust::hsm {

enum class KeyAlgorithm { EcP256, EcP384, EcP521, Ed25519, Ed448 };

std::string_view name_of(KeyAlgorithm a);  // "P-256", "Ed25519", ...
std::optional<KeyAlgorithm> key_algorithm_from_name(std::string_view name);
bool is_edwards(KeyAlgorithm a);
// DER of the curve OID, the value of CKA_EC_PARAMS.
Bytes ec_params_der(KeyAlgorithm a);
// OpenSSL group name / key type name.
const char* openssl_name(KeyAlgorithm a);
// Length of the raw signature the token returns (r||s for ECDSA).
std::size_t raw_signature_size(KeyAlgorithm a);

}  // namespace gridtrust::hsm
