#pragma once
// Assembles an X.509 v3 certificate from a profile and signs it with the issuer's
// key (an HSM key through the EVP bridge).
#include <optional>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/openssl_ptr.h"
#include "core/rejection.h"
#include "core/time.h"
#include "pki/profile.h"

namespace gridtrust::pki {

struct Endpoints {
  std::string crl_base_url;  // CRL of issuer P is at crl_base_url + P + ".crl"
  std::string ocsp_url;
};

struct CertificateSpec {
  const Profile* profile = nullptr;
  Bytes serial;                 // big-endian, positive
  const X509_NAME* subject = nullptr;
  const Bytes* subject_spki = nullptr;  // SubjectPublicKeyInfo DER, already validated
  TimePoint not_before;
  TimePoint not_after;
  X509* issuer_cert = nullptr;  // null for a self-signed root
  std::string issuer_profile;   // names the CRL distribution point
  bool edwards_subject = false;  // Ed25519/Ed448 subject key (RFC 8410 key usages)
};

// The extensions every certificate of one profile under one issuer shares
// (basicConstraints, keyUsage, EKU, AKI, CRL DP, AIA, OCSP no-check). Built once per
// issuer and profile and reused: parsing them per certificate is measurable.
using FixedExtensions = std::vector<X509ExtPtr>;
Result<FixedExtensions> fixed_extensions(const Profile& profile, X509* issuer_cert, const std::string& issuer_profile,
                                         const Endpoints& endpoints, bool edwards_subject);

// `fixed` may be null (then it is built for this certificate; a root needs that, as
// its AKI comes from itself).
Result<X509Ptr> build_certificate(const CertificateSpec& spec, EVP_PKEY* issuer_key, const Endpoints& endpoints,
                                  const FixedExtensions* fixed = nullptr);

const EVP_MD* digest_for(const std::string& name);
Bytes certificate_der(X509* cert);
std::string certificate_pem(X509* cert);
// The same text straight from DER, without decoding it: d2i_X509 runs OpenSSL 3.0's
// key decoder (~100 us), which an issuance answer carrying a chain paid three times.
std::string certificate_pem(const Bytes& der);
Result<X509Ptr> certificate_from_der(const Bytes& der);

}  // namespace gridtrust::pki
