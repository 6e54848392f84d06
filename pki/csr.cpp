#include "pki/csr.h"

#include <cstring>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "core/openssl_error.h"
#include "pki/der_reader.h"

namespace gridtrust::pki {
namespace {

// DER of the SubjectPublicKeyInfo algorithm OIDs we recognise.
const Bytes kOidEcPublicKey = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
const Bytes kOidEd25519 = {0x06, 0x03, 0x2b, 0x65, 0x70};
const Bytes kOidEd448 = {0x06, 0x03, 0x2b, 0x65, 0x71};
const Bytes kOidRsa = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
const Bytes kOidRsaPss = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a};

Rejection malformed(const std::string& why) { return reject("csr.malformed_der", "CSR is not valid DER PKCS#10: " + why); }

Result<Bytes> pem_to_der(const Bytes& input) {
  std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  auto first = text.find_first_not_of(" \t\r\n");
  auto body = text.substr(first);
  if (body.rfind("-----BEGIN CERTIFICATE REQUEST-----", 0) != 0 &&
      body.rfind("-----BEGIN NEW CERTIFICATE REQUEST-----", 0) != 0)
    return reject("csr.malformed_pem", "PEM block is not a CERTIFICATE REQUEST");
  BioPtr bio(BIO_new_mem_buf(input.data(), static_cast<int>(input.size())));
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  int ok = PEM_read_bio(bio.get(), &name, &header, &data, &len);
  openssl_errors();
  Bytes der;
  bool right_type = ok == 1 && (std::strcmp(name, "CERTIFICATE REQUEST") == 0 ||
                                std::strcmp(name, "NEW CERTIFICATE REQUEST") == 0);
  bool no_headers = ok == 1 && header[0] == '\0';
  if (ok == 1) der.assign(data, data + len);
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  if (!right_type) return reject("csr.malformed_pem", "CSR PEM does not decode");
  if (!no_headers) return reject("csr.malformed_pem", "CSR PEM must not carry headers");
  // Only whitespace may follow the single block.
  char rest[64];
  int n;
  while ((n = BIO_read(bio.get(), rest, sizeof rest)) > 0)
    for (int i = 0; i < n; ++i)
      if (!std::strchr(" \t\r\n", rest[i])) return reject("csr.malformed_pem", "unexpected data after the CSR PEM block");
  return der;
}

const EVP_MD* ecdsa_digest(int nid) {
  switch (nid) {
    case NID_ecdsa_with_SHA256: return EVP_sha256();
    case NID_ecdsa_with_SHA384: return EVP_sha384();
    case NID_ecdsa_with_SHA512: return EVP_sha512();
    default: return nullptr;
  }
}

}  // namespace

Result<CertificationRequest> parse_csr(const Bytes& input) {
  if (input.size() > kMaxCsrBytes)
    return reject("csr.too_large", "CSR is " + std::to_string(input.size()) + " bytes; the limit is " +
                                       std::to_string(kMaxCsrBytes));
  if (input.empty()) return reject("csr.malformed", "CSR is empty");
  Bytes der;
  std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text.substr(first).rfind("-----BEGIN", 0) == 0) {
    GT_TRY_ASSIGN(der, pem_to_der(input));
  } else {
    der = input;
  }

  // CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature }
  DerReader top(der.data(), der.size());
  auto outer = top.next(der::kSequence);
  if (!outer) return malformed("no outer SEQUENCE");
  if (!top.at_end()) return malformed("trailing bytes after the request");
  DerReader csr(*outer);
  auto info = csr.next(der::kSequence);
  auto sig_alg = info ? csr.next(der::kSequence) : std::nullopt;
  auto sig = sig_alg ? csr.next(der::kBitString) : std::nullopt;
  if (!sig || !csr.at_end()) return malformed("expected info, algorithm and signature");

  // CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject, subjectPKInfo, [0] attributes }
  DerReader fields(*info);
  auto version = fields.next(der::kInteger);
  auto subject = version ? fields.next(der::kSequence) : std::nullopt;
  auto spki = subject ? fields.next(der::kSequence) : std::nullopt;
  auto attributes = spki ? fields.next(der::kContext0Constructed) : std::nullopt;
  if (!attributes || !fields.at_end()) return malformed("certificationRequestInfo fields");
  if (version->content_len != 1 || version->content[0] != 0) return malformed("version must be 0 (v1)");

  CertificationRequest req;
  req.info_der = info->bytes();
  const unsigned char* p = subject->whole;
  req.subject.reset(d2i_X509_NAME(nullptr, &p, static_cast<long>(subject->whole_len)));
  if (!req.subject || p != subject->whole + subject->whole_len) {
    openssl_errors();
    return malformed("subject name");
  }

  DerReader spki_fields(*spki);
  auto key_alg = spki_fields.next(der::kSequence);
  auto key_bits = key_alg ? spki_fields.next(der::kBitString) : std::nullopt;
  if (!key_bits || !spki_fields.at_end()) return malformed("subjectPublicKeyInfo");
  if (key_bits->content_len < 2 || key_bits->content[0] != 0)
    return reject("csr.bad_public_key", "subjectPublicKey BIT STRING must have no unused bits");
  DerReader alg_fields(*key_alg);
  auto key_oid = alg_fields.next(der::kOid);
  if (!key_oid) return malformed("public key algorithm");
  Bytes oid = key_oid->bytes();
  req.spki_der = spki->bytes();
  p = spki->whole;
  if (oid == kOidEcPublicKey) {
    req.key_type = CsrKeyType::Ec;
    // RFC 5480 2.1.1: namedCurve only; explicit curve parameters are refused.
    if (!alg_fields.next(der::kOid) || !alg_fields.at_end())
      return reject("csr.curve_not_allowed", "EC key without a named curve");
    // Legacy EC decoder: fast, checks the curve and that the point is on it.
    std::unique_ptr<EC_KEY, OsslDeleter<EC_KEY_free>> ec(d2i_EC_PUBKEY(nullptr, &p, static_cast<long>(spki->whole_len)));
    openssl_errors();
    if (!ec) return reject("csr.bad_public_key", "EC public key does not decode (unknown curve or bad point)");
    req.key.reset(EVP_PKEY_new());
    if (EVP_PKEY_assign_EC_KEY(req.key.get(), ec.get()) != 1) return reject("internal.openssl", "EVP_PKEY_assign");
    ec.release();
  } else if (oid == kOidEd25519 || oid == kOidEd448) {
    req.key_type = oid == kOidEd25519 ? CsrKeyType::Ed25519 : CsrKeyType::Ed448;
    req.key.reset(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki->whole_len)));
    openssl_errors();
    if (!req.key) return reject("csr.bad_public_key", "EdDSA public key does not decode");
  } else {
    req.key_type = (oid == kOidRsa || oid == kOidRsaPss) ? CsrKeyType::Rsa : CsrKeyType::Other;
  }

  p = sig_alg->whole;
  std::unique_ptr<X509_ALGOR, OsslDeleter<X509_ALGOR_free>> alg(d2i_X509_ALGOR(nullptr, &p, static_cast<long>(sig_alg->whole_len)));
  openssl_errors();
  if (!alg) return malformed("signature algorithm");
  const ASN1_OBJECT* alg_oid = nullptr;
  X509_ALGOR_get0(&alg_oid, nullptr, nullptr, alg.get());
  req.signature_nid = OBJ_obj2nid(alg_oid);
  // BIT STRING: first content octet counts unused bits; a signature has none.
  if (sig->content_len < 2 || sig->content[0] != 0) return malformed("signature BIT STRING");
  req.signature.assign(sig->content + 1, sig->content + sig->content_len);
  return req;
}

Result<hsm::KeyAlgorithm> check_key_allowed(const CertificationRequest& req, const Profile& profile) {
  std::optional<hsm::KeyAlgorithm> alg;
  switch (req.key_type) {
    case CsrKeyType::Ec: {
      char group[64] = {0};
      std::size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(req.key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1)
        return reject("csr.curve_not_allowed", "EC key with explicit or unknown curve parameters");
      for (auto a : {hsm::KeyAlgorithm::EcP256, hsm::KeyAlgorithm::EcP384, hsm::KeyAlgorithm::EcP521})
        if (std::strcmp(group, hsm::openssl_name(a)) == 0) alg = a;
      if (!alg) return reject("csr.curve_not_allowed", "curve " + std::string(group) + " is not supported");
      break;
    }
    case CsrKeyType::Ed25519: alg = hsm::KeyAlgorithm::Ed25519; break;
    case CsrKeyType::Ed448: alg = hsm::KeyAlgorithm::Ed448; break;
    case CsrKeyType::Rsa:
      return reject("csr.key_type_not_allowed", "RSA keys are not allowed for profile " + profile.name);
    case CsrKeyType::Other:
      return reject("csr.key_type_not_allowed", "unsupported key type for profile " + profile.name);
  }
  for (auto allowed : profile.keys)
    if (allowed == *alg) return *alg;
  std::string list;
  for (auto a : profile.keys) list += (list.empty() ? "" : ", ") + std::string(hsm::name_of(a));
  bool ec_vs_ec = !hsm::is_edwards(*alg) && !hsm::is_edwards(profile.keys.front());
  return reject(ec_vs_ec ? "csr.curve_not_allowed" : "csr.key_type_not_allowed",
                std::string(hsm::name_of(*alg)) + " key not allowed for profile " + profile.name + " (allowed: " +
                    list + ")");
}

Status verify_csr_signature(const CertificationRequest& req) {
  if (!req.key) return reject("csr.bad_public_key", "CSR public key cannot be decoded");
  bool ok = false;
  if (req.key_type == CsrKeyType::Ec) {
    const EVP_MD* md = ecdsa_digest(req.signature_nid);
    if (!md) return reject("csr.bad_signature", "CSR signature algorithm does not match its EC key");
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_Digest(req.info_der.data(), req.info_der.size(), digest, &dlen, md, nullptr);
    // The key is a legacy EC_KEY (see parse_csr); verifying it directly skips the
    // export to a provider key that EVP_PKEY_verify would do for every request.
    const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(req.key.get());
    ok = ec && ECDSA_verify(0, digest, static_cast<int>(dlen), req.signature.data(),
                            static_cast<int>(req.signature.size()), const_cast<EC_KEY*>(ec)) == 1;
  } else {
    int expected = req.key_type == CsrKeyType::Ed25519 ? NID_ED25519 : NID_ED448;
    if (req.signature_nid != expected) return reject("csr.bad_signature", "CSR signature algorithm does not match its EdDSA key");
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, req.key.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), req.signature.data(), req.signature.size(), req.info_der.data(),
                          req.info_der.size()) == 1;
  }
  openssl_errors();
  if (!ok) return reject("csr.bad_signature", "CSR signature does not verify with its own key");
  return Ok{};
}

}  // namespace gridtrust::pki
