#pragma once
// RFC 6960 OCSP responder core: a DER OCSPRequest in, a DER OCSPResponse out. No
// networking; the daemon routes GET and POST here.
//
// Hot path: respond() reads top to bottom: parse -> nonce limits (RFC 8954) -> match
// each CertID to one of our CAs -> status from the store (one read per CertID) ->
// the cached response if it still says the same, else build and sign (one HSM call)
// -> DER.
//
// Responses are signed by the CA's delegated OCSP signer when it has one (an
// `ocsp-signer` certificate whose key is in the token) and by the CA key otherwise;
// RFC 6960 4.2.2.2 allows both.
//
// thisUpdate is the caller's `now`; producedAt is the moment of signing, which OpenSSL
// takes from the system clock (a cached response keeps its original producedAt).
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <openssl/ocsp.h>

#include "core/encoding.h"
#include "core/rejection.h"
#include "core/time.h"
#include "pki/certificate_authority.h"

namespace gridtrust::pki {

// RFC 6960 4.2.1 OCSPResponseStatus.
enum class OcspResponseStatus {
  successful = 0,
  malformed_request = 1,
  internal_error = 2,
  try_later = 3,
  sig_required = 5,
  unauthorized = 6,
};

// The one mapping from a rejection code to the status a client sees
// (docs/error-codes.md, "OCSP responder").
OcspResponseStatus ocsp_response_status_for(const std::string& code);

inline constexpr std::size_t kMaxOcspRequestBytes = 16 * 1024;
inline constexpr std::size_t kMaxOcspCertIds = 32;
inline constexpr std::size_t kMaxOcspNonceBytes = 32;  // RFC 8954 2.1

struct OcspResponderConfig {
  std::chrono::seconds validity{3600};  // nextUpdate - thisUpdate
  // A cached response is signed again once less than this is left before its
  // nextUpdate; unset: half the validity.
  std::optional<std::chrono::seconds> refresh_before;
  bool delegated_signers = true;  // false: every response is signed by the CA key
  std::size_t max_cache_entries = 100000;
  // Every request answered with anything but `successful`, with the reason (the HSM's
  // code when signing failed). Unset: one line on stderr.
  std::function<void(const Rejection&)> log;
};

class OcspResponder {
 public:
  // Loads every CA the store holds now (a CA created later needs a new responder) and,
  // per CA, the valid delegated signer that lives longest.
  static Result<std::unique_ptr<OcspResponder>> create(CertificateAuthority& ca, OcspResponderConfig config,
                                                       TimePoint now);

  OcspResponder(const OcspResponder&) = delete;  // owns bridged HSM keys and the cache
  OcspResponder& operator=(const OcspResponder&) = delete;
  ~OcspResponder();

  // Always a DER OCSPResponse; failures are a non-successful responseStatus.
  Bytes respond(const Bytes& der_request, TimePoint now);
  // RFC 6960 A.1.1: the last path segment of a GET, the URL-encoded base64 of the DER
  // request (base64url is accepted too).
  Bytes respond_get(std::string_view path_segment, TimePoint now);

  // Picks each CA's delegated signer again (after one was issued, revoked or expired).
  Status reload_signers(TimePoint now);

  struct Counters {
    std::uint64_t signed_responses = 0;
    std::uint64_t cache_hits = 0;
  };
  Counters counters() const;

 private:
  struct Issuer;
  struct ResponderKey;
  struct CertStatus;
  struct Query;
  struct Signed;
  struct CacheEntry;

  OcspResponder(CertificateAuthority& ca, OcspResponderConfig config);

  Result<Bytes> answer(const Bytes& der_request, TimePoint now);
  Result<std::vector<Query>> match(OCSP_REQUEST* request) const;
  Status lookup_status(Query& query);
  std::shared_ptr<const ResponderKey> responder_key(const Issuer& issuer, TimePoint now) const;
  // nonce_source: the request whose nonce is echoed, or null.
  Result<Signed> sign_response(const Issuer& issuer, const std::vector<Query>& queries, OCSP_REQUEST* nonce_source,
                               TimePoint now);
  std::optional<Bytes> cached(const Query& query, TimePoint now);
  void remember(const Query& query, const Signed& response, TimePoint now);
  Bytes refuse(const Rejection& why);

  CertificateAuthority& ca_;
  OcspResponderConfig config_;
  std::vector<std::unique_ptr<Issuer>> issuers_;

  mutable std::mutex signers_mu_;
  std::map<std::string, std::shared_ptr<const ResponderKey>> delegated_;  // CA profile -> signer

  using CacheKey = std::tuple<std::string, std::string, int>;  // CA profile, serial, CertID hash NID
  mutable std::mutex cache_mu_;
  std::map<CacheKey, std::shared_ptr<const CacheEntry>> cache_;
  Counters counters_;
};

}  // namespace gridtrust::pki
