#include "daemon/crl_cache.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/openssl_ptr.h"

namespace gridtrust::daemon {
namespace {

struct ParsedCrl {
  std::string der;
  TimePoint this_update;
  TimePoint next_update;
};

Result<TimePoint> time_of(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return reject("internal.openssl", "CRL time does not decode");
  return from_unix(static_cast<std::int64_t>(timegm(&tm)));
}

Result<ParsedCrl> parse_pem_crl(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509CrlPtr crl(bio ? PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!crl) return reject("internal.openssl", "CRL PEM does not parse");
  GT_TRY_ASSIGN(TimePoint this_update, time_of(X509_CRL_get0_lastUpdate(crl.get())));
  GT_TRY_ASSIGN(TimePoint next_update, time_of(X509_CRL_get0_nextUpdate(crl.get())));
  unsigned char* der = nullptr;
  int len = i2d_X509_CRL(crl.get(), &der);
  if (len <= 0) return reject("internal.openssl", "CRL does not encode");
  ParsedCrl out{std::string(reinterpret_cast<char*>(der), static_cast<std::size_t>(len)), this_update, next_update};
  OPENSSL_free(der);
  return out;
}

}  // namespace

CrlCache::CrlCache(pki::CertificateAuthority& ca, std::function<TimePoint()> now) : ca_(ca), now_(std::move(now)) {}

Result<std::shared_ptr<const std::string>> CrlCache::der(const std::string& issuer_profile) {
  std::lock_guard lock(mu_);
  const TimePoint now = now_();
  if (auto it = entries_.find(issuer_profile); it != entries_.end() && now < it->second.refresh_at)
    return it->second.der;
  GT_TRY_ASSIGN(std::string pem, ca_.crl_pem(issuer_profile, "daemon:status"));
  GT_TRY_ASSIGN(ParsedCrl crl, parse_pem_crl(pem));
  Entry entry{std::make_shared<const std::string>(std::move(crl.der)),
              crl.this_update + (crl.next_update - crl.this_update) / 2};
  entries_[issuer_profile] = entry;
  return entry.der;
}

void CrlCache::invalidate() {
  std::lock_guard lock(mu_);
  entries_.clear();
}

}  // namespace gridtrust::daemon
