#include "pki/certificate_builder.h"

#include <openssl/pem.h>

#include "core/openssl_error.h"
#include "pki/subject.h"

namespace gridtrust::pki {
namespace {

Status add_ext(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return reject("internal.openssl", std::string("cannot add ") + OBJ_nid2sn(nid) + ": " + openssl_errors());
  return Ok{};
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

const EVP_MD* digest_for(const std::string& name) {
  if (name == "SHA-384") return EVP_sha384();
  if (name == "SHA-512") return EVP_sha512();
  return EVP_sha256();
}

Result<X509Ptr> build_certificate(const CertificateSpec& spec, EVP_PKEY* issuer_key, const Endpoints& ep) {
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
      X509_set1_notBefore(cert.get(), nb.get()) != 1 || X509_set1_notAfter(cert.get(), na.get()) != 1 ||
      X509_set_pubkey(cert.get(), spec.subject_key) != 1)
    return reject("internal.openssl", "cannot assemble certificate: " + openssl_errors());

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, spec.issuer_cert ? spec.issuer_cert : cert.get(), cert.get(), nullptr, nullptr, 0);
  // RFC 5280 4.2.1.9: CA certificates mark basicConstraints critical; leaves say CA:FALSE.
  std::string bc = p.is_ca() ? "critical,CA:TRUE" : "critical,CA:FALSE";
  if (p.is_ca() && p.path_len) bc += ",pathlen:" + std::to_string(*p.path_len);
  GT_TRY(add_ext(cert.get(), &ctx, NID_basic_constraints, bc));
  GT_TRY(add_ext(cert.get(), &ctx, NID_key_usage, "critical," + join(p.key_usage)));
  if (!p.extended_key_usage.empty()) {
    std::vector<std::string> ekus;
    for (auto& e : p.extended_key_usage) ekus.push_back(e == "dispatchAuthority" ? kDispatchAuthorityOid : e);
    GT_TRY(add_ext(cert.get(), &ctx, NID_ext_key_usage, join(ekus)));
  }
  // RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits.
  GT_TRY(add_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  GT_TRY(add_ext(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  if (p.san_dns_from_cn) GT_TRY(add_ext(cert.get(), &ctx, NID_subject_alt_name, "DNS:" + common_name(spec.subject)));
  if (p.kind != ProfileKind::Root) {
    if (!ep.crl_base_url.empty())
      GT_TRY(add_ext(cert.get(), &ctx, NID_crl_distribution_points,
                     "URI:" + ep.crl_base_url + spec.issuer_profile + ".crl"));
    if (!ep.ocsp_url.empty()) GT_TRY(add_ext(cert.get(), &ctx, NID_info_access, "OCSP;URI:" + ep.ocsp_url));
  }
  if (p.ocsp_nocheck) GT_TRY(add_ext(cert.get(), &ctx, NID_id_pkix_OCSP_noCheck, "ignored"));

  const EVP_MD* md = EVP_PKEY_get_base_id(issuer_key) == EVP_PKEY_EC ? digest_for(p.digest) : nullptr;
  if (X509_sign(cert.get(), issuer_key, md) <= 0) {
    std::string err = openssl_errors();
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

Result<X509Ptr> certificate_from_der(const Bytes& der) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return reject("store.corrupt", "stored certificate does not decode: " + openssl_errors());
  return cert;
}

}  // namespace gridtrust::pki
