#include "pki/certificate_builder.h"

#include <cstring>

#include <openssl/pem.h>

#include "core/openssl_error.h"
#include "hsm/sign_failure.h"
#include "pki/der_reader.h"
#include "pki/subject.h"

namespace gridtrust::pki {
namespace {

Result<X509ExtPtr> make_ext(X509V3_CTX* ctx, int nid, const std::string& value) {
  X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext) return reject("internal.openssl", std::string("cannot build ") + OBJ_nid2sn(nid) + ": " + openssl_errors());
  return ext;
}

Status add_ext(X509* cert, X509_EXTENSION* ext) {
  if (X509_add_ext(cert, ext, -1) != 1) return reject("internal.openssl", "cannot add extension: " + openssl_errors());
  return Ok{};
}

// Copies a SubjectPublicKeyInfo into the certificate field by field. X509_set_pubkey
// would re-encode the key through OpenSSL 3.0's encoder and decoder framework, which
// costs more than the signature itself on the issuance hot path.
Status set_subject_key(X509* cert, const Bytes& spki) {
  DerReader top(spki.data(), spki.size());
  auto seq = top.next(der::kSequence);
  if (!seq || !top.at_end()) return reject("internal.bad_spki", "subject public key is not a DER SEQUENCE");
  DerReader fields(*seq);
  auto alg = fields.next(der::kSequence);
  auto bits = alg ? fields.next(der::kBitString) : std::nullopt;
  if (!bits || !fields.at_end() || bits->content_len < 2 || bits->content[0] != 0)
    return reject("internal.bad_spki", "malformed subjectPublicKeyInfo");
  DerReader alg_fields(*alg);
  auto oid = alg_fields.next(der::kOid);
  if (!oid) return reject("internal.bad_spki", "malformed key algorithm");
  const unsigned char* p = oid->whole;
  ASN1_OBJECT* key_oid = d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(oid->whole_len));
  ASN1_OBJECT* curve = nullptr;
  int param_type = V_ASN1_UNDEF;
  if (!alg_fields.at_end()) {
    auto param = alg_fields.next(der::kOid);  // namedCurve; explicit parameters are refused earlier
    if (!param || !alg_fields.at_end()) {
      ASN1_OBJECT_free(key_oid);
      return reject("internal.bad_spki", "unsupported key parameters");
    }
    p = param->whole;
    curve = d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(param->whole_len));
    param_type = V_ASN1_OBJECT;
  }
  auto* enc = static_cast<unsigned char*>(OPENSSL_malloc(bits->content_len - 1));
  if (enc) std::memcpy(enc, bits->content + 1, bits->content_len - 1);
  if (!key_oid || (param_type == V_ASN1_OBJECT && !curve) || !enc ||
      X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), key_oid, param_type, curve, enc,
                             static_cast<int>(bits->content_len - 1)) != 1) {
    ASN1_OBJECT_free(key_oid);
    ASN1_OBJECT_free(curve);
    OPENSSL_free(enc);
    return reject("internal.openssl", "cannot set the subject key: " + openssl_errors());
  }
  return Ok{};
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

Result<FixedExtensions> fixed_extensions(const Profile& p, X509* issuer_cert, const std::string& issuer_profile,
                                         const Endpoints& ep, bool edwards_subject) {
  FixedExtensions out;
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_cert, nullptr, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) -> Status {
    GT_TRY_ASSIGN(auto ext, make_ext(&ctx, nid, value));
    out.push_back(std::move(ext));
    return Ok{};
  };
  // RFC 5280 4.2.1.9: CA certificates mark basicConstraints critical; leaves say CA:FALSE.
  std::string bc = p.is_ca() ? "critical,CA:TRUE" : "critical,CA:FALSE";
  if (p.is_ca() && p.path_len) bc += ",pathlen:" + std::to_string(*p.path_len);
  GT_TRY(add(NID_basic_constraints, bc));
  std::vector<std::string> usages;
  for (auto& u : p.key_usage) {
    // RFC 8410 5: an Ed25519/Ed448 key signs only; it cannot agree or encipher keys.
    if (edwards_subject && (u == "keyAgreement" || u == "keyEncipherment" || u == "dataEncipherment")) continue;
    usages.push_back(u);
  }
  GT_TRY(add(NID_key_usage, "critical," + join(usages)));
  if (!p.extended_key_usage.empty()) {
    std::vector<std::string> ekus;
    for (auto& e : p.extended_key_usage) ekus.push_back(e == "dispatchAuthority" ? kDispatchAuthorityOid : e);
    GT_TRY(add(NID_ext_key_usage, join(ekus)));
  }
  GT_TRY(add(NID_authority_key_identifier, "keyid:always"));
  if (p.kind != ProfileKind::Root) {
    if (!ep.crl_base_url.empty())
      GT_TRY(add(NID_crl_distribution_points, "URI:" + ep.crl_base_url + issuer_profile + ".crl"));
    if (!ep.ocsp_url.empty()) GT_TRY(add(NID_info_access, "OCSP;URI:" + ep.ocsp_url));
  }
  if (p.ocsp_nocheck) GT_TRY(add(NID_id_pkix_OCSP_noCheck, "ignored"));
  return out;
}

const EVP_MD* digest_for(const std::string& name) {
  if (name == "SHA-384") return EVP_sha384();
  if (name == "SHA-512") return EVP_sha512();
  return EVP_sha256();
}

Result<X509Ptr> build_certificate(const CertificateSpec& spec, EVP_PKEY* issuer_key, const Endpoints& ep,
                                  const FixedExtensions* fixed) {
  const Profile& p = *spec.profile;
  X509Ptr cert(X509_new());
  BignumPtr bn(BN_bin2bn(spec.serial.data(), static_cast<int>(spec.serial.size()), nullptr));
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  Asn1TimePtr nb(ASN1_TIME_set(nullptr, static_cast<time_t>(to_unix(spec.not_before))));
  Asn1TimePtr na(ASN1_TIME_set(nullptr, static_cast<time_t>(to_unix(spec.not_after))));
  if (!cert || !serial || !nb || !na || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(cert.get(), serial.get()) != 1 ||
      X509_set_subject_name(cert.get(), spec.subject) != 1 ||
      X509_set_issuer_name(cert.get(), spec.issuer_cert ? X509_get_subject_name(spec.issuer_cert) : spec.subject) != 1 ||
      X509_set1_notBefore(cert.get(), nb.get()) != 1 || X509_set1_notAfter(cert.get(), na.get()) != 1)
    return reject("internal.openssl", "cannot assemble certificate: " + openssl_errors());
  GT_TRY(set_subject_key(cert.get(), *spec.subject_spki));

  // RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. Added first so a
  // self-signed root's AKI can be derived from it.
  {
    const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(cert.get());
    unsigned char sha1[20];
    unsigned int n = 0;
    EVP_Digest(bits->data, static_cast<std::size_t>(bits->length), sha1, &n, EVP_sha1(), nullptr);
    Asn1OctetPtr ski(ASN1_OCTET_STRING_new());
    if (!ski || ASN1_OCTET_STRING_set(ski.get(), sha1, static_cast<int>(n)) != 1 ||
        X509_add1_ext_i2d(cert.get(), NID_subject_key_identifier, ski.get(), 0, X509V3_ADD_DEFAULT) != 1)
      return reject("internal.openssl", "cannot add subjectKeyIdentifier: " + openssl_errors());
  }
  FixedExtensions own;
  if (!fixed) {
    GT_TRY_ASSIGN(own, fixed_extensions(p, spec.issuer_cert ? spec.issuer_cert : cert.get(), spec.issuer_profile, ep,
                                        spec.edwards_subject));
    fixed = &own;
  }
  for (auto& ext : *fixed) GT_TRY(add_ext(cert.get(), ext.get()));
  if (p.san_dns_from_cn) {
    // Built as a GeneralName, not through OpenSSL's config syntax, so nothing in the CN
    // can add names of its own ("a,DNS:b").
    std::string cn = common_name(spec.subject);
    GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
    GENERAL_NAME* dns = GENERAL_NAME_new();
    ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
    if (!names || !dns || !ia5 || ASN1_STRING_set(ia5, cn.data(), static_cast<int>(cn.size())) != 1) {
      GENERAL_NAME_free(dns);
      ASN1_IA5STRING_free(ia5);
      return reject("internal.openssl", "cannot build subjectAltName");
    }
    GENERAL_NAME_set0_value(dns, GEN_DNS, ia5);
    sk_GENERAL_NAME_push(names.get(), dns);
    if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1)
      return reject("internal.openssl", "cannot add subjectAltName: " + openssl_errors());
  }

  const EVP_MD* md = EVP_PKEY_get_base_id(issuer_key) == EVP_PKEY_EC ? digest_for(p.digest) : nullptr;
  (void)hsm::take_sign_failure();
  if (X509_sign(cert.get(), issuer_key, md) <= 0) {
    std::string err = openssl_errors();
    // A token outage stays hsm.unavailable (HTTP 503, try again later).
    if (auto why = hsm::take_sign_failure(); why && why->code == "hsm.unavailable") return *why;
    return reject("hsm.sign_failed", "signing the certificate failed" + (err.empty() ? "" : ": " + err));
  }
  return cert;
}

Bytes certificate_der(X509* cert) {
  int n = i2d_X509(cert, nullptr);
  Bytes der(n > 0 ? n : 0);
  unsigned char* p = der.data();
  if (n > 0) i2d_X509(cert, &p);
  return der;
}

std::string certificate_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string certificate_pem(const Bytes& der) {
  // RFC 7468 2: base64 lines of 64 characters between the encapsulation boundaries.
  const std::string b64 = base64_encode(der);
  std::string out = "-----BEGIN CERTIFICATE-----\n";
  out.reserve(out.size() + b64.size() + b64.size() / 64 + 32);
  for (std::size_t i = 0; i < b64.size(); i += 64) out.append(b64, i, 64).push_back('\n');
  return out + "-----END CERTIFICATE-----\n";
}

Result<X509Ptr> certificate_from_der(const Bytes& der) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return reject("store.corrupt", "stored certificate does not decode: " + openssl_errors());
  return cert;
}

}  // namespace gridtrust::pki
