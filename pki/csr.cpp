#include "pki/csr.h"

#include <cstring>

#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "core/openssl_error.h"

namespace gridtrust::pki {

Result<X509ReqPtr> parse_csr(const Bytes& input) {
  if (input.size() > kMaxCsrBytes)
    return reject("csr.too_large", "CSR is " + std::to_string(input.size()) + " bytes; the limit is " +
                                       std::to_string(kMaxCsrBytes));
  if (input.empty()) return reject("csr.malformed", "CSR is empty");
  std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text.substr(first).rfind("-----BEGIN", 0) == 0) {
    if (text.substr(first).rfind("-----BEGIN CERTIFICATE REQUEST-----", 0) != 0 &&
        text.substr(first).rfind("-----BEGIN NEW CERTIFICATE REQUEST-----", 0) != 0)
      return reject("csr.malformed_pem", "PEM block is not a CERTIFICATE REQUEST");
    BioPtr bio(BIO_new_mem_buf(input.data(), static_cast<int>(input.size())));
    X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
    openssl_errors();
    if (!req) return reject("csr.malformed_pem", "CSR PEM does not decode to a PKCS#10 request");
    // Only whitespace may follow the single block.
    char rest[64];
    int n;
    while ((n = BIO_read(bio.get(), rest, sizeof rest)) > 0)
      for (int i = 0; i < n; ++i)
        if (!std::strchr(" \t\r\n", rest[i]))
          return reject("csr.malformed_pem", "unexpected data after the CSR PEM block");
    return req;
  }
  const unsigned char* p = input.data();
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(input.size())));
  openssl_errors();
  if (!req) return reject("csr.malformed_der", "CSR is neither PEM nor valid DER PKCS#10");
  if (p != input.data() + input.size()) return reject("csr.malformed_der", "trailing bytes after the DER CSR");
  return req;
}

Status verify_csr_signature(X509_REQ* req) {
  EVP_PKEY* key = X509_REQ_get0_pubkey(req);
  if (!key) {
    openssl_errors();
    return reject("csr.bad_public_key", "CSR public key cannot be decoded");
  }
  int rc = X509_REQ_verify(req, key);
  openssl_errors();
  if (rc != 1) return reject("csr.bad_signature", "CSR signature does not verify with its own key");
  return Ok{};
}

Result<hsm::KeyAlgorithm> check_key_allowed(EVP_PKEY* key, const Profile& profile) {
  std::optional<hsm::KeyAlgorithm> alg;
  std::string what;
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      char group[64] = {0};
      std::size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1)
        return reject("csr.curve_not_allowed", "EC key with explicit or unknown curve parameters");
      what = std::string("EC ") + group;
      for (auto a : {hsm::KeyAlgorithm::EcP256, hsm::KeyAlgorithm::EcP384, hsm::KeyAlgorithm::EcP521})
        if (what == std::string("EC ") + hsm::openssl_name(a)) alg = a;
      if (!alg) return reject("csr.curve_not_allowed", "curve " + std::string(group) + " is not supported");
      break;
    }
    case EVP_PKEY_ED25519: alg = hsm::KeyAlgorithm::Ed25519; what = "Ed25519"; break;
    case EVP_PKEY_ED448: alg = hsm::KeyAlgorithm::Ed448; what = "Ed448"; break;
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      return reject("csr.key_type_not_allowed", "RSA keys are not allowed for profile " + profile.name);
    default:
      return reject("csr.key_type_not_allowed", "unsupported key type for profile " + profile.name);
  }
  for (auto allowed : profile.keys)
    if (allowed == *alg) return *alg;
  std::string list;
  for (auto a : profile.keys) list += (list.empty() ? "" : ", ") + std::string(hsm::name_of(a));
  bool same_family = hsm::is_edwards(*alg) == hsm::is_edwards(profile.keys.front());
  return reject(same_family && !hsm::is_edwards(*alg) ? "csr.curve_not_allowed" : "csr.key_type_not_allowed",
                std::string(hsm::name_of(*alg)) + " key not allowed for profile " + profile.name + " (allowed: " +
                    list + ")");
}

}  // namespace gridtrust::pki
