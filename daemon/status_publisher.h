#pragma once
// What the status listener publishes, kept consistent with the store (DESIGN.md
// "Status and revocation"): the OCSP responder, which reads each certificate's status
// per request, and the CRL cache, which must forget its lists when a revocation
// commits.
#include <functional>
#include <memory>

#include "daemon/crl_cache.h"
#include "pki/certificate_authority.h"
#include "pki/ocsp_responder.h"

namespace gridtrust::daemon {

class StatusPublisher {
 public:
  // Start-up: loads every CA and its delegated OCSP signer.
  // `now`: the daemon's clock (OCSP thisUpdate, which signer is valid).
  static Result<std::unique_ptr<StatusPublisher>> create(pki::CertificateAuthority& ca,
                                                         std::function<TimePoint()> now = now_seconds);
  StatusPublisher(const StatusPublisher&) = delete;  // routes hold references to it
  StatusPublisher& operator=(const StatusPublisher&) = delete;

  pki::OcspResponder& ocsp() { return *ocsp_; }
  TimePoint now() const { return now_(); }
  CrlCache& crls() { return crls_; }

  // After a revocation committed through the daemon: every CRL is signed anew on its
  // next GET, and a revoked OCSP signer (or CA) stops signing at once.
  void revoked(const store::CertificateRecord& record);
  // On SIGHUP, for what the offline CLI did meanwhile (it writes the store, not to the
  // daemon): every CRL is signed anew on its next GET, and each CA's delegated OCSP
  // signer is picked again (one issued, revoked or expired since). A CA created after
  // start still needs a restart: the responder learns its CAs once.
  Status refresh();

 private:
  StatusPublisher(pki::CertificateAuthority& ca, std::unique_ptr<pki::OcspResponder> ocsp,
                  std::function<TimePoint()> now);

  pki::CertificateAuthority& ca_;
  std::function<TimePoint()> now_;
  std::unique_ptr<pki::OcspResponder> ocsp_;
  CrlCache crls_;
};

}  // namespace gridtrust::daemon
