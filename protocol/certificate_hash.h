#pragma once
// OCPP 2.0.1/2.1 CertificateHashDataType, computed as the standard defines it:
// issuerNameHash over the DER of the certificate's issuer Name, issuerKeyHash over the
// issuer's public key BIT STRING contents (no tag, length or unused-bits octet, as in
// RFC 6960 CertID), serialNumber in hexadecimal without leading zeros or "0x".
// Hex is lower case; OCPP does not fix the case and verifiers compare case-insensitively.
#include <string>

#include <boost/json/object.hpp>
#include <openssl/x509.h>

#include "core/rejection.h"

namespace gridtrust::protocol {

enum class HashAlgorithm { sha256, sha384, sha512 };

struct CertificateHashData {
  HashAlgorithm algorithm = HashAlgorithm::sha256;
  std::string issuer_name_hash;
  std::string issuer_key_hash;
  std::string serial_number;

  boost::json::object to_json() const;  // {"hashAlgorithm":"SHA256",...}
};

// `issuer` is the certificate that signed `cert` (for a root, `cert` itself).
Result<CertificateHashData> certificate_hash_data(X509* cert, X509* issuer,
                                                  HashAlgorithm alg = HashAlgorithm::sha256);

}  // namespace gridtrust::protocol
