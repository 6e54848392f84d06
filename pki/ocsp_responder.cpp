#include "pki/ocsp_responder.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "core/openssl_error.h"
#include "hsm/evp_bridge.h"
#include "hsm/hsm_signer.h"
#include "hsm/sign_failure.h"

namespace gridtrust::pki {
namespace {

using OcspRequestPtr = std::unique_ptr<OCSP_REQUEST, OsslDeleter<OCSP_REQUEST_free>>;
using OcspResponsePtr = std::unique_ptr<OCSP_RESPONSE, OsslDeleter<OCSP_RESPONSE_free>>;
using OcspBasicRespPtr = std::unique_ptr<OCSP_BASICRESP, OsslDeleter<OCSP_BASICRESP_free>>;

Result<Bytes> digest(int nid, const unsigned char* data, std::size_t len) {
  const EVP_MD* md = EVP_get_digestbynid(nid);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!md || EVP_Digest(data, len, out, &n, md, nullptr) != 1)
    return reject("internal.openssl", "cannot hash for CertID matching: " + openssl_errors());
  return Bytes(out, out + n);
}

// The serial as the store keeps it (upper-case hex of the unsigned octets); empty for
// values no CA of ours can have issued (RFC 5280 4.1.2.2: positive, at most 20 octets).
std::string store_serial(const ASN1_INTEGER* serial) {
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn || BN_is_negative(bn.get()) || BN_is_zero(bn.get()) || BN_num_bytes(bn.get()) > 20) return {};
  Bytes octets(static_cast<std::size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), octets.data());
  return to_hex(octets, true);
}

void free_openssl_bytes(unsigned char* p) { OPENSSL_free(p); }

Bytes response_der(OCSP_RESPONSE* response) {
  unsigned char* out = nullptr;
  int n = i2d_OCSP_RESPONSE(response, &out);
  if (n <= 0) return {};
  Bytes der(out, out + n);
  OPENSSL_free(out);
  return der;
}

// RFC 6960 4.2.1: an unsuccessful OCSPResponse is only its responseStatus.
Bytes status_only_response(OcspResponseStatus status) {
  return Bytes{0x30, 0x03, 0x0a, 0x01, static_cast<std::uint8_t>(status)};
}

Asn1TimePtr generalized_time(TimePoint t) {
  return Asn1TimePtr(ASN1_GENERALIZEDTIME_set(nullptr, static_cast<time_t>(to_unix(t))));
}

Result<OcspRequestPtr> parse_request(const Bytes& der) {
  if (der.size() > kMaxOcspRequestBytes)
    return reject("ocsp.too_large", "request of " + std::to_string(der.size()) + " bytes exceeds " +
                                        std::to_string(kMaxOcspRequestBytes));
  const unsigned char* p = der.data();
  OcspRequestPtr req(d2i_OCSP_REQUEST(nullptr, &p, static_cast<long>(der.size())));
  if (!req || p != der.data() + der.size()) {
    ERR_clear_error();
    return reject("ocsp.malformed_request", "not one DER OCSPRequest");
  }
  return req;
}

// RFC 8954 2.1: Nonce ::= OCTET STRING (SIZE(1..32)); longer nonces are refused with
// malformedRequest. RFC 6960 4.4.1 wraps the nonce in an OCTET STRING inside extnValue;
// some old clients put the bare octets there, so both forms are measured.
Result<bool> has_nonce(OCSP_REQUEST* req) {
  int idx = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1);
  if (idx < 0) return false;
  if (OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, idx) >= 0)
    return reject("ocsp.bad_nonce", "the request carries more than one nonce");
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(OCSP_REQUEST_get_ext(req, idx));
  const unsigned char* data = ASN1_STRING_get0_data(value);
  const long len = ASN1_STRING_length(value);
  const unsigned char* p = data;
  Asn1OctetPtr inner(d2i_ASN1_OCTET_STRING(nullptr, &p, len));
  std::size_t nonce_len = inner && p == data + len ? static_cast<std::size_t>(ASN1_STRING_length(inner.get()))
                                                   : static_cast<std::size_t>(len);
  ERR_clear_error();
  if (nonce_len < 1 || nonce_len > kMaxOcspNonceBytes)
    return reject("ocsp.bad_nonce", "nonce of " + std::to_string(nonce_len) + " octets (RFC 8954: 1 to " +
                                        std::to_string(kMaxOcspNonceBytes) + ")");
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 6960 A.1.1: GET {url}/{url-encoding of base-64 encoding of the DER OCSPRequest}.
Result<Bytes> decode_get_segment(std::string_view segment) {
  constexpr std::size_t kMaxSegment = (kMaxOcspRequestBytes + 2) / 3 * 4 * 3;  // every character %-escaped
  if (segment.size() > kMaxSegment) return reject("ocsp.too_large", "GET request path too long");
  std::string text;
  text.reserve(segment.size());
  for (std::size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] != '%') {
      text.push_back(segment[i]);
      continue;
    }
    int hi = i + 2 < segment.size() ? hex_value(segment[i + 1]) : -1;
    int lo = i + 2 < segment.size() ? hex_value(segment[i + 2]) : -1;
    if (hi < 0 || lo < 0) return reject("ocsp.malformed_request", "bad percent-escape in GET request");
    text.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  if (auto der = base64_decode(text)) return *der;
  if (auto der = base64url_decode(text)) return *der;
  return reject("ocsp.malformed_request", "GET request is not base64");
}

}  // namespace

OcspResponseStatus ocsp_response_status_for(const std::string& code) {
  if (code == "ocsp.malformed_request" || code == "ocsp.too_large" || code == "ocsp.bad_nonce" ||
      code == "ocsp.too_many_certids")
    return OcspResponseStatus::malformed_request;
  if (code == "ocsp.unknown_issuer" || code == "ocsp.mixed_issuers") return OcspResponseStatus::unauthorized;
  if (code == "hsm.unavailable") return OcspResponseStatus::try_later;
  return OcspResponseStatus::internal_error;
}

// One CA this responder answers for.
struct OcspResponder::Issuer {
  std::string profile;
  // CertID hash NID -> (issuerNameHash, issuerKeyHash), RFC 6960 4.1.1.
  std::map<int, std::pair<Bytes, Bytes>> cert_id_hashes;
  std::shared_ptr<const ResponderKey> own_key;  // the CA key: used without a delegated signer
};

struct OcspResponder::ResponderKey {
  X509Ptr certificate;
  EvpPkeyPtr key;  // bridged HSM key whose failures are recorded
  bool delegated = false;
  TimePoint not_before;
  TimePoint not_after;
};

struct OcspResponder::CertStatus {
  int kind = V_OCSP_CERTSTATUS_UNKNOWN;
  std::int64_t revoked_at = 0;
  int reason = 0;  // RFC 5280 CRLReason
  bool operator==(const CertStatus&) const = default;
};

struct OcspResponder::Query {
  OCSP_CERTID* id;  // borrowed from the request: echoed as is (RFC 6960 4.2.1)
  const Issuer* issuer;
  int hash_nid;
  std::string serial;  // store form; empty: cannot be ours
  CertStatus status;
};

struct OcspResponder::Signed {
  Bytes der;
  std::shared_ptr<const ResponderKey> signer;
  TimePoint next_update;
};

struct OcspResponder::CacheEntry {
  Bytes response;
  CertStatus status;  // what the store said when it was signed
  std::shared_ptr<const ResponderKey> signer;
  TimePoint this_update;
  TimePoint refresh_at;
};

namespace {

Result<std::shared_ptr<const hsm::Signer>> token_signer(const std::shared_ptr<hsm::Token>& token,
                                                          const Bytes& key_id) {
  GT_TRY_ASSIGN(hsm::KeyRef ref, token->find_key_by_id(key_id));
  return std::shared_ptr<const hsm::Signer>(std::make_shared<hsm::HsmSigner>(token, std::move(ref)));
}

}  // namespace

OcspResponder::OcspResponder(CertificateAuthority& ca, OcspResponderConfig config)
    : ca_(ca), config_(std::move(config)) {
  if (!config_.log)
    config_.log = [](const Rejection& r) { std::cerr << "ocsp: " << r.code << ": " << r.message << "\n"; };
}

OcspResponder::~OcspResponder() = default;

Result<std::unique_ptr<OcspResponder>> OcspResponder::create(CertificateAuthority& ca, OcspResponderConfig config,
                                                             TimePoint now) {
  if (config.validity <= std::chrono::seconds(0))
    return reject("config.invalid", "OCSP response validity must be positive");
  if (config.refresh_before && (*config.refresh_before < std::chrono::seconds(0) ||
                                *config.refresh_before > config.validity))
    return reject("config.invalid", "OCSP refresh_before must lie between 0 and the validity");
  std::unique_ptr<OcspResponder> r(new OcspResponder(ca, std::move(config)));
  GT_TRY_ASSIGN(auto records, ca.store().issuers());
  for (const auto& rec : records) {
    auto issuer = std::make_unique<Issuer>();
    issuer->profile = rec.profile;
    auto key = std::make_shared<ResponderKey>();
    GT_TRY_ASSIGN(key->certificate, certificate_from_der(rec.cert_der));
    GT_TRY_ASSIGN(auto signer, token_signer(ca.token(), rec.key_id));
    GT_TRY_ASSIGN(key->key, hsm::make_evp_pkey(signer));
    key->not_before = from_unix(rec.not_before);
    key->not_after = from_unix(rec.not_after);

    unsigned char* name_der = nullptr;
    int name_len = i2d_X509_NAME(X509_get_subject_name(key->certificate.get()), &name_der);
    if (name_len <= 0) return reject("internal.openssl", "cannot encode the name of CA " + rec.profile);
    std::unique_ptr<unsigned char, OsslDeleter<free_openssl_bytes>> name_owner(name_der);
    // issuerKeyHash covers the subjectPublicKey BIT STRING value only (RFC 6960 4.1.1).
    const ASN1_BIT_STRING* pub = X509_get0_pubkey_bitstr(key->certificate.get());
    for (int nid : {NID_sha1, NID_sha256, NID_sha384, NID_sha512}) {
      GT_TRY_ASSIGN(Bytes name_hash, digest(nid, name_der, static_cast<std::size_t>(name_len)));
      GT_TRY_ASSIGN(Bytes key_hash, digest(nid, ASN1_STRING_get0_data(pub),
                                           static_cast<std::size_t>(ASN1_STRING_length(pub))));
      issuer->cert_id_hashes[nid] = {std::move(name_hash), std::move(key_hash)};
    }
    issuer->own_key = std::move(key);
    r->issuers_.push_back(std::move(issuer));
  }
  GT_TRY(r->reload_signers(now));
  return r;
}

Status OcspResponder::reload_signers(TimePoint now) {
  std::map<std::string, std::shared_ptr<const ResponderKey>> fresh;
  if (config_.delegated_signers) {
    // Per CA, the valid delegated signer (a profile with EKU OCSPSigning whose key is in
    // the token) that lives longest.
    std::map<std::string, store::CertificateRecord> best;
    std::shared_ptr<const ProfileSet> profiles = ca_.profiles();
    for (const auto& [name, profile] : profiles->profiles) {
      bool signs_ocsp = std::find(profile.extended_key_usage.begin(), profile.extended_key_usage.end(),
                                  "OCSPSigning") != profile.extended_key_usage.end();
      if (!signs_ocsp || !profile.hsm_key) continue;
      store::CertificateFilter filter;
      filter.profile = name;
      filter.status = "valid";
      GT_TRY_ASSIGN(auto rows, ca_.store().list(filter));
      for (auto& row : rows) {
        if (!row.key_id || now < from_unix(row.not_before) || now >= from_unix(row.not_after)) continue;
        auto it = best.find(row.issuer);
        if (it == best.end() || row.not_after > it->second.not_after) best[row.issuer] = std::move(row);
      }
    }
    for (const auto& [issuer, row] : best) {
      auto key = std::make_shared<ResponderKey>();
      GT_TRY_ASSIGN(key->certificate, certificate_from_der(row.der));
      GT_TRY_ASSIGN(auto signer, token_signer(ca_.token(), *row.key_id));
      GT_TRY_ASSIGN(key->key, hsm::make_evp_pkey(signer));
      key->delegated = true;
      key->not_before = from_unix(row.not_before);
      key->not_after = from_unix(row.not_after);
      fresh[issuer] = std::move(key);
    }
  }
  std::lock_guard g(signers_mu_);
  delegated_ = std::move(fresh);
  return Ok{};
}

OcspResponder::Counters OcspResponder::counters() const {
  std::lock_guard g(cache_mu_);
  return counters_;
}

Bytes OcspResponder::respond(const Bytes& der_request, TimePoint now) {
  auto response = answer(der_request, now);
  if (!response.ok()) return refuse(response.error());
  return std::move(response).value();
}

Bytes OcspResponder::respond_get(std::string_view path_segment, TimePoint now) {
  auto der = decode_get_segment(path_segment);
  if (!der.ok()) return refuse(der.error());
  return respond(*der, now);
}

Bytes OcspResponder::refuse(const Rejection& why) {
  config_.log(why);
  return status_only_response(ocsp_response_status_for(why.code));
}

Result<Bytes> OcspResponder::answer(const Bytes& der_request, TimePoint now) {
  GT_TRY_ASSIGN(OcspRequestPtr request, parse_request(der_request));
  GT_TRY_ASSIGN(bool nonce, has_nonce(request.get()));
  GT_TRY_ASSIGN(std::vector<Query> queries, match(request.get()));
  for (auto& q : queries) GT_TRY(lookup_status(q));

  // A nonce makes the response unique to its request; only those without one are shared.
  bool cacheable = !nonce && queries.size() == 1;
  if (cacheable) {
    if (auto hit = cached(queries.front(), now)) return std::move(*hit);
  }
  GT_TRY_ASSIGN(Signed response, sign_response(*queries.front().issuer, queries,
                                               nonce ? request.get() : nullptr, now));
  if (cacheable) remember(queries.front(), response, now);
  return std::move(response.der);
}

Result<std::vector<OcspResponder::Query>> OcspResponder::match(OCSP_REQUEST* request) const {
  int count = OCSP_request_onereq_count(request);
  if (count <= 0) return reject("ocsp.malformed_request", "the request names no certificate");
  if (static_cast<std::size_t>(count) > kMaxOcspCertIds)
    return reject("ocsp.too_many_certids", "the request names " + std::to_string(count) + " certificates (at most " +
                                               std::to_string(kMaxOcspCertIds) + ")");
  std::vector<Query> queries;
  for (int i = 0; i < count; ++i) {
    OCSP_CERTID* id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(request, i));
    ASN1_OCTET_STRING* name_hash = nullptr;
    ASN1_OCTET_STRING* key_hash = nullptr;
    ASN1_OBJECT* hash_alg = nullptr;
    ASN1_INTEGER* serial = nullptr;
    if (!id || OCSP_id_get0_info(&name_hash, &hash_alg, &key_hash, &serial, id) != 1)
      return reject("ocsp.malformed_request", "CertID " + std::to_string(i) + " does not decode");
    int nid = OBJ_obj2nid(hash_alg);
    auto same = [](const Bytes& ours, const ASN1_OCTET_STRING* theirs) {
      return static_cast<std::size_t>(ASN1_STRING_length(theirs)) == ours.size() &&
             std::equal(ours.begin(), ours.end(), ASN1_STRING_get0_data(theirs));
    };
    const Issuer* issuer = nullptr;
    for (const auto& candidate : issuers_) {
      auto it = candidate->cert_id_hashes.find(nid);
      if (it != candidate->cert_id_hashes.end() && same(it->second.first, name_hash) &&
          same(it->second.second, key_hash)) {
        issuer = candidate.get();
        break;
      }
    }
    if (!issuer)
      return reject("ocsp.unknown_issuer", "CertID " + std::to_string(i) + " names an issuer this responder does not serve");
    // One signature speaks for one CA: a delegated signer is authorised by its issuer only.
    if (!queries.empty() && queries.front().issuer != issuer)
      return reject("ocsp.mixed_issuers", "the request names certificates of more than one CA");
    queries.push_back(Query{id, issuer, nid, store_serial(serial), {}});
  }
  return queries;
}

Status OcspResponder::lookup_status(Query& query) {
  query.status = CertStatus{};
  if (query.serial.empty()) return Ok{};
  GT_TRY_ASSIGN(auto rows, ca_.store().find_by_serial(query.serial));
  for (const auto& row : rows) {
    if (row.issuer != query.issuer->profile) continue;
    if (row.status == "revoked")
      query.status = CertStatus{V_OCSP_CERTSTATUS_REVOKED, row.revoked_at.value_or(row.issued_at),
                                static_cast<int>(row.reason.value_or(0))};
    else
      query.status = CertStatus{V_OCSP_CERTSTATUS_GOOD, 0, 0};
  }
  return Ok{};
}

std::shared_ptr<const OcspResponder::ResponderKey> OcspResponder::responder_key(const Issuer& issuer,
                                                                               TimePoint now) const {
  {
    std::lock_guard g(signers_mu_);
    auto it = delegated_.find(issuer.profile);
    if (it != delegated_.end() && now >= it->second->not_before && now < it->second->not_after) return it->second;
  }
  return issuer.own_key;
}

Result<OcspResponder::Signed> OcspResponder::sign_response(const Issuer& issuer, const std::vector<Query>& queries,
                                                           OCSP_REQUEST* nonce_source, TimePoint now) {
  auto key = responder_key(issuer, now);
  // Never promise status past the life of the key that vouches for it.
  TimePoint next = std::min(now + config_.validity, key->not_after);
  Asn1TimePtr this_update = generalized_time(now);
  Asn1TimePtr next_update = generalized_time(next);
  OcspBasicRespPtr basic(OCSP_BASICRESP_new());
  if (!basic || !this_update || !next_update)
    return reject("internal.openssl", "cannot allocate the OCSP response: " + openssl_errors());

  for (const auto& q : queries) {
    Asn1TimePtr revoked_at;
    int reason = OCSP_REVOKED_STATUS_NOSTATUS;
    if (q.status.kind == V_OCSP_CERTSTATUS_REVOKED) {
      revoked_at = generalized_time(from_unix(q.status.revoked_at));
      // RFC 5280 5.3.1: reasonCode unspecified SHOULD be absent.
      if (q.status.reason != 0) reason = q.status.reason;
    }
    if (!OCSP_basic_add1_status(basic.get(), q.id, q.status.kind, reason, revoked_at.get(), this_update.get(),
                                next_update.get()))
      return reject("internal.openssl", "cannot add a SingleResponse: " + openssl_errors());
  }
  if (nonce_source && OCSP_copy_nonce(basic.get(), nonce_source) != 1)
    return reject("internal.openssl", "cannot echo the nonce: " + openssl_errors());

  // RFC 6960 4.2.2.3 ResponderID byKey; a delegated signer's certificate travels with the
  // response (4.2.2.2), the CA's own is what the client asked about and is left out.
  unsigned long flags = OCSP_RESPID_KEY | (key->delegated ? 0 : OCSP_NOCERTS);
  // OpenSSL reports a failed signature as a bare 0; the bridge keeps the token's own
  // rejection, so that hsm.unavailable becomes tryLater and the code reaches the log.
  (void)hsm::take_sign_failure();
  if (OCSP_basic_sign(basic.get(), key->certificate.get(), key->key.get(), EVP_sha256(), nullptr, flags) != 1) {
    std::string err = openssl_errors();
    if (auto hsm_failure = hsm::take_sign_failure()) return *hsm_failure;
    return reject("hsm.sign_failed", "signing the OCSP response failed" + (err.empty() ? "" : ": " + err));
  }
  OcspResponsePtr response(OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic.get()));
  Bytes der = response ? response_der(response.get()) : Bytes{};
  if (der.empty()) return reject("internal.openssl", "cannot encode the OCSP response: " + openssl_errors());
  {
    std::lock_guard g(cache_mu_);
    ++counters_.signed_responses;
  }
  return Signed{std::move(der), std::move(key), next};
}

std::optional<Bytes> OcspResponder::cached(const Query& query, TimePoint now) {
  auto signer = responder_key(*query.issuer, now);
  std::lock_guard g(cache_mu_);
  auto it = cache_.find(CacheKey{query.issuer->profile, query.serial, query.hash_nid});
  if (it == cache_.end()) return std::nullopt;
  const CacheEntry& e = *it->second;
  // The store is the truth: a status change since signing (a revocation) or another
  // responder key makes the entry stale at once.
  if (e.status != query.status || e.signer != signer || now < e.this_update || now >= e.refresh_at)
    return std::nullopt;
  ++counters_.cache_hits;
  return e.response;
}

void OcspResponder::remember(const Query& query, const Signed& response, TimePoint now) {
  // Anyone may ask about any serial: answers for serials we never issued are not kept,
  // so the cache is bounded by the certificates in the store.
  if (query.status.kind == V_OCSP_CERTSTATUS_UNKNOWN) return;
  auto refresh_before = config_.refresh_before.value_or(config_.validity / 2);
  auto entry = std::make_shared<CacheEntry>(
      CacheEntry{response.der, query.status, response.signer, now, response.next_update - refresh_before});
  std::lock_guard g(cache_mu_);
  if (cache_.size() >= config_.max_cache_entries) cache_.clear();  // crude bound: entries are cheap to sign again
  cache_[CacheKey{query.issuer->profile, query.serial, query.hash_nid}] = std::move(entry);
}

}  // namespace gridtrust::pki
