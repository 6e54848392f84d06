#pragma once
// Each CA's CRL as DER, signed once and served to every GET until it goes stale:
// a revocation through the daemon drops every cached CRL (a CA's keyCompromise
// cascades into its children's lists), and a CRL past half its validity
// (thisUpdate..nextUpdate) is signed again so that relying parties never fetch one
// close to expiry. Signing per GET would put one HSM call and one CRL number on
// every anonymous request.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/rejection.h"
#include "core/time.h"
#include "pki/certificate_authority.h"

namespace gridtrust::daemon {

class CrlCache {
 public:
  explicit CrlCache(pki::CertificateAuthority& ca, std::function<TimePoint()> now = now_seconds);
  CrlCache(const CrlCache&) = delete;  // routes hold references to it
  CrlCache& operator=(const CrlCache&) = delete;

  // The DER CRL of the CA `issuer_profile`, signed now if none is cached or the cached
  // one is past half its validity.
  Result<std::shared_ptr<const std::string>> der(const std::string& issuer_profile);
  // Called after a revocation has been committed: the next GET of every CA signs anew.
  void invalidate();

 private:
  struct Entry {
    std::shared_ptr<const std::string> der;
    TimePoint refresh_at;  // thisUpdate + (nextUpdate - thisUpdate) / 2
  };

  pki::CertificateAuthority& ca_;
  std::function<TimePoint()> now_;
  // Held while signing: an invalidate() waits for a CRL being signed and then drops it,
  // so a CRL that may predate a committed revocation is never served after it.
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace gridtrust::daemon
