#include "hsm/key_algorithm.h"

namespace gridtrust::hsm {

std::string_view name_of(KeyAlgorithm a) {
  switch (a) {
    case KeyAlgorithm::EcP256: return "P-256";
    case KeyAlgorithm::EcP384: return "P-384";
    case KeyAlgorithm::EcP521: return "P-521";
    case KeyAlgorithm::Ed25519: return "Ed25519";
    case KeyAlgorithm::Ed448: return "Ed448";
  }
  return "?";
}

std::optional<KeyAlgorithm> key_algorithm_from_name(std::string_view n) {
  for (auto a : {KeyAlgorithm::EcP256, KeyAlgorithm::EcP384, KeyAlgorithm::EcP521,
                 KeyAlgorithm::Ed25519, KeyAlgorithm::Ed448})
    if (name_of(a) == n) return a;
  return std::nullopt;
}

bool is_edwards(KeyAlgorithm a) { return a == KeyAlgorithm::Ed25519 || a == KeyAlgorithm::Ed448; }

Bytes ec_params_der(KeyAlgorithm a) {
  switch (a) {
    case KeyAlgorithm::EcP256:  // 1.2.840.10045.3.1.7
      return {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    case KeyAlgorithm::EcP384:  // 1.3.132.0.34
      return {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
    case KeyAlgorithm::EcP521:  // 1.3.132.0.35
      return {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
    case KeyAlgorithm::Ed25519:  // 1.3.101.112 (RFC 8410)
      return {0x06, 0x03, 0x2b, 0x65, 0x70};
    case KeyAlgorithm::Ed448:  // 1.3.101.113
      return {0x06, 0x03, 0x2b, 0x65, 0x71};
  }
  return {};
}

const char* openssl_name(KeyAlgorithm a) {
  switch (a) {
    case KeyAlgorithm::EcP256: return "prime256v1";
    case KeyAlgorithm::EcP384: return "secp384r1";
    case KeyAlgorithm::EcP521: return "secp521r1";
    case KeyAlgorithm::Ed25519: return "ED25519";
    case KeyAlgorithm::Ed448: return "ED448";
  }
  return "";
}

std::size_t raw_signature_size(KeyAlgorithm a) {
  switch (a) {
    case KeyAlgorithm::EcP256: return 64;
    case KeyAlgorithm::EcP384: return 96;
    case KeyAlgorithm::EcP521: return 132;
    case KeyAlgorithm::Ed25519: return 64;
    case KeyAlgorithm::Ed448: return 114;
  }
  return 0;
}

}  // namespace gridtrust::hsm
