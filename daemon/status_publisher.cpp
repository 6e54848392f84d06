#include "daemon/status_publisher.h"

#include "daemon/log.h"

namespace gridtrust::daemon {

StatusPublisher::StatusPublisher(pki::CertificateAuthority& ca, std::unique_ptr<pki::OcspResponder> ocsp,
                                 std::function<TimePoint()> now)
    : ca_(ca), now_(std::move(now)), ocsp_(std::move(ocsp)), crls_(ca) {}

Result<std::unique_ptr<StatusPublisher>> StatusPublisher::create(pki::CertificateAuthority& ca,
                                                                 std::function<TimePoint()> now) {
  pki::OcspResponderConfig config;
  config.log = [](const Rejection& why) { log_line("ocsp: " + why.code + ": " + why.message); };
  GT_TRY_ASSIGN(auto ocsp, pki::OcspResponder::create(ca, std::move(config), now()));
  return std::unique_ptr<StatusPublisher>(new StatusPublisher(ca, std::move(ocsp), std::move(now)));
}

void StatusPublisher::revoked(const store::CertificateRecord& record) {
  crls_.invalidate();
  // The responder checks each answer's certificate against the store, but the key it
  // signs with is chosen once: pick again when a signer (or a CA above one) went.
  auto profiles = ca_.profiles();
  const pki::Profile* p = profiles->find(record.profile);
  if (record.profile == "ocsp-signer" || (p && p->is_ca())) {
    if (auto reloaded = ocsp_->reload_signers(now_()); !reloaded.ok())
      log_line("ocsp: cannot reload signers: " + reloaded.error().code + ": " + reloaded.error().message);
  }
}

Status StatusPublisher::refresh() {
  crls_.invalidate();
  return ocsp_->reload_signers(now_());
}

}  // namespace gridtrust::daemon
