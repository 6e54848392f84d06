#include "daemon/client_trust.h"

#include <algorithm>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/openssl_error.h"
#include "core/openssl_ptr.h"
#include "pki/certificate_builder.h"

namespace gridtrust::daemon {
namespace {

std::string subject_of(X509* cert) {
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

// Every certificate of a PEM file; each must be a CA (basicConstraints CA:TRUE).
Result<std::vector<Bytes>> ca_certificates(const std::string& file) {
  BioPtr bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    return reject("config.invalid", "daemon.client_ca_files: cannot read " + file);
  }
  std::vector<Bytes> out;
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) {
      unsigned long err = ERR_peek_last_error();
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
        ERR_clear_error();  // no further certificate: the normal end
        break;
      }
      return reject("config.invalid", "daemon.client_ca_files: " + file + ": certificate " +
                                          std::to_string(out.size() + 1) + " does not parse: " + openssl_errors());
    }
    if (X509_check_ca(cert.get()) != 1)
      return reject("config.invalid", "daemon.client_ca_files: " + file + ": " + subject_of(cert.get()) +
                                          " is not a CA certificate (basicConstraints CA:TRUE)");
    out.push_back(pki::certificate_der(cert.get()));
  }
  if (out.empty()) return reject("config.invalid", "daemon.client_ca_files: " + file + " holds no PEM certificate");
  return out;
}

}  // namespace

Result<ClientTrust> load_client_trust(pki::CertificateAuthority& ca, const pki::ProfileSet& profiles,
                                      const std::vector<std::string>& ca_files) {
  const pki::Profile* admin = profiles.find("admin");
  if (!admin || admin->is_ca())
    return reject("config.invalid", "the profiles have no leaf profile 'admin': API clients are admin certificates");
  ClientTrust trust;
  GT_TRY_ASSIGN(trust.anchors, ca.issuer_chain(admin->issuer, true));
  for (const auto& file : ca_files) {
    GT_TRY_ASSIGN(auto certs, ca_certificates(file));
    for (auto& der : certs)
      if (std::find(trust.anchors.begin(), trust.anchors.end(), der) == trust.anchors.end())
        trust.anchors.push_back(std::move(der));
  }
  return trust;
}

}  // namespace gridtrust::daemon
