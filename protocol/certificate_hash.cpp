#include "protocol/certificate_hash.h"

#include <openssl/evp.h>

#include "core/encoding.h"

namespace gridtrust::protocol {

namespace {

const EVP_MD* md_of(HashAlgorithm a) {
  switch (a) {
    case HashAlgorithm::sha256: return EVP_sha256();
    case HashAlgorithm::sha384: return EVP_sha384();
    case HashAlgorithm::sha512: return EVP_sha512();
  }
  return EVP_sha256();
}

const char* name_of(HashAlgorithm a) {
  switch (a) {
    case HashAlgorithm::sha256: return "SHA256";
    case HashAlgorithm::sha384: return "SHA384";
    case HashAlgorithm::sha512: return "SHA512";
  }
  return "SHA256";
}

Result<std::string> digest_hex(HashAlgorithm a, const unsigned char* data, std::size_t len) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(data, len, md, &md_len, md_of(a), nullptr) != 1)
    return reject("internal.digest", "cannot hash certificate data");
  return to_hex(md, md_len);
}

}  // namespace

boost::json::object CertificateHashData::to_json() const {
  return boost::json::object{{"hashAlgorithm", name_of(algorithm)},
                             {"issuerNameHash", issuer_name_hash},
                             {"issuerKeyHash", issuer_key_hash},
                             {"serialNumber", serial_number}};
}

Result<CertificateHashData> certificate_hash_data(X509* cert, X509* issuer, HashAlgorithm alg) {
  if (!cert || !issuer) return reject("usage.bad_certificate", "certificate and issuer are required");
  CertificateHashData out;
  out.algorithm = alg;

  // The issuer Name exactly as encoded in the certificate being identified.
  const unsigned char* name_der = nullptr;
  std::size_t name_len = 0;
  if (X509_NAME_get0_der(X509_get_issuer_name(cert), &name_der, &name_len) != 1)
    return reject("usage.bad_certificate", "cannot read the certificate's issuer name");
  GT_TRY_ASSIGN(out.issuer_name_hash, digest_hex(alg, name_der, name_len));

  const ASN1_BIT_STRING* key_bits = X509_get0_pubkey_bitstr(issuer);
  if (!key_bits) return reject("usage.bad_certificate", "cannot read the issuer's public key");
  GT_TRY_ASSIGN(out.issuer_key_hash, digest_hex(alg, ASN1_STRING_get0_data(key_bits),
                                                static_cast<std::size_t>(ASN1_STRING_length(key_bits))));

  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  std::string hex = to_hex(ASN1_STRING_get0_data(serial), static_cast<std::size_t>(ASN1_STRING_length(serial)));
  auto first = hex.find_first_not_of('0');
  out.serial_number = first == std::string::npos ? "0" : hex.substr(first);
  return out;
}

}  // namespace gridtrust::protocol
