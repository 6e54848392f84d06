#include "protocol/signer_trust.h"

#include <openssl/x509_vfy.h>

#include "core/digest.h"
#include "pki/certificate_builder.h"
#include "pki/profile.h"

namespace gridtrust::protocol {

namespace {

bool has_dispatch_authority(X509* cert) {
  auto* eku = static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr));
  if (!eku) return false;
  bool found = false;
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku); ++i) {
    char oid[128];
    OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(eku, i), 1);
    if (std::string_view(oid) == pki::kDispatchAuthorityOid) found = true;
  }
  EXTENDED_KEY_USAGE_free(eku);
  return found;
}

std::string subject_of(X509* cert) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

}  // namespace

PkiSignerResolver::PkiSignerResolver(pki::CertificateAuthority& ca, std::string signer_profile)
    : ca_(ca), profile_(std::move(signer_profile)) {}

Status PkiSignerResolver::refresh() {
  GT_TRY_ASSIGN(auto chain_der, ca_.chain(profile_));
  std::vector<X509Ptr> chain;
  for (const Bytes& der : chain_der) {
    GT_TRY_ASSIGN(X509Ptr c, pki::certificate_from_der(der));
    chain.push_back(std::move(c));
  }
  // (issuer profile, serial) of each CA on the chain, for the revocation check.
  std::vector<std::pair<std::string, std::string>> ca_ids;
  GT_TRY_ASSIGN(auto issuers, ca_.store().issuers());
  for (const auto& c : chain) {
    std::string serial = pki::serial_hex(Bytes(ASN1_STRING_get0_data(X509_get0_serialNumber(c.get())),
                                               ASN1_STRING_get0_data(X509_get0_serialNumber(c.get())) +
                                                   ASN1_STRING_length(X509_get0_serialNumber(c.get()))));
    GT_TRY_ASSIGN(auto rows, ca_.store().find_by_serial(serial));
    for (const auto& r : rows) ca_ids.emplace_back(r.issuer, r.serial);
  }
  store::CertificateFilter f;
  f.profile = profile_;
  GT_TRY_ASSIGN(auto rows, ca_.store().list(f));
  for (const auto& r : rows) {
    std::string fp = base64url_encode(sha256(r.der));
    if (by_fingerprint_.count(fp)) continue;
    GT_TRY_ASSIGN(X509Ptr cert, pki::certificate_from_der(r.der));
    auto sc = std::make_shared<SignerCertificate>();
    sc->fingerprint = fp;
    sc->key.reset(X509_get_pubkey(cert.get()));
    if (!sc->key) continue;
    sc->subject = subject_of(cert.get());
    sc->issuer_profile = r.issuer;
    sc->serial = r.serial;
    sc->certificate = std::move(cert);
    Known k;
    k.not_before = r.not_before;
    k.not_after = r.not_after;
    k.chain = std::make_shared<const std::vector<std::pair<std::string, std::string>>>(
        std::vector<std::pair<std::string, std::string>>{{r.issuer, r.serial}});
    k.cert = std::move(sc);
    by_fingerprint_.emplace(fp, std::move(k));
  }
  chain_ = std::move(chain);
  ca_ids_ = std::move(ca_ids);
  return Ok{};
}

Result<PkiSignerResolver::Known*> PkiSignerResolver::known(const std::string& fingerprint) {
  auto it = by_fingerprint_.find(fingerprint);
  if (it == by_fingerprint_.end()) {
    GT_TRY(refresh());  // issued since we last looked?
    it = by_fingerprint_.find(fingerprint);
    if (it == by_fingerprint_.end())
      return reject("verify.unknown_signer", "no " + profile_ + " certificate with x5t#S256 " + fingerprint);
  }
  return &it->second;
}

Result<std::shared_ptr<const SignerCertificate>> PkiSignerResolver::find(const std::string& x5t,
                                                                        const std::vector<Bytes>& x5c) {
  if (!x5c.empty() && base64url_encode(sha256(x5c.front())) != x5t)
    return reject("jws.malformed", "the first x5c certificate is not the one x5t#S256 names");
  std::lock_guard g(mu_);
  GT_TRY_ASSIGN(Known * k, known(x5t));
  return k->cert;
}

Status PkiSignerResolver::judge(const SignerCertificate& signer, std::int64_t now) {
  // Revocation counts from the next command on, whoever revoked (the daemon or the
  // offline CLI): the chain's status is re-read whenever the store's revocation epoch
  // has moved since it was last found clean (store/revocation_signal.h). The epoch is
  // read first, so a revocation committing between the two reads moves it again.
  const std::int64_t epoch = ca_.store().revocation_epoch();
  std::shared_ptr<const std::vector<std::pair<std::string, std::string>>> ids;
  {
    std::lock_guard g(mu_);
    GT_TRY_ASSIGN(Known * k, known(signer.fingerprint));
    if (!k->chain_checked) {
      k->chain_checked = true;
      // First use: the chain to the profile's root (signatures, CA constraints), then
      // the EKU. Validity is checked below on every call, so the chain is verified
      // here at the certificate's own notBefore: the answer does not age.
      X509_STORE* store = X509_STORE_new();
      STACK_OF(X509)* untrusted = sk_X509_new_null();
      for (std::size_t i = 0; i < chain_.size(); ++i) {
        if (i + 1 == chain_.size()) X509_STORE_add_cert(store, chain_[i].get());
        else sk_X509_push(untrusted, chain_[i].get());
      }
      X509_STORE_CTX* ctx = X509_STORE_CTX_new();
      X509_STORE_CTX_init(ctx, store, signer.certificate.get(), untrusted);
      X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), static_cast<time_t>(k->not_before));
      X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT);
      int ok = X509_verify_cert(ctx);
      int err = X509_STORE_CTX_get_error(ctx);
      X509_STORE_CTX_free(ctx);
      sk_X509_free(untrusted);
      X509_STORE_free(store);
      if (ok != 1)
        k->chain_problem = reject("verify.untrusted_chain", std::string("the signer's certificate does not chain to the ") +
                                                                "dispatch trust anchor: " + X509_verify_cert_error_string(err));
      else if (!has_dispatch_authority(signer.certificate.get()))
        k->chain_problem = reject("verify.not_dispatch_authority",
                                  "the signer's certificate lacks the gridtrust dispatch-authority EKU");
      else {
        auto with_cas = std::make_shared<std::vector<std::pair<std::string, std::string>>>(*k->chain);
        with_cas->insert(with_cas->end(), ca_ids_.begin(), ca_ids_.end());
        k->chain = std::move(with_cas);
      }
    }
    if (k->chain_problem) return *k->chain_problem;
    if (now < k->not_before) return reject("verify.signer_not_yet_valid", "the signer's certificate is not valid yet");
    if (now >= k->not_after) return reject("verify.signer_expired", "the signer's certificate has expired");
    if (k->clean_epoch == epoch) return Ok{};
    ids = k->chain;
  }
  GT_TRY_ASSIGN(bool revoked, ca_.store().any_revoked(*ids));
  if (revoked) return reject("verify.signer_revoked", "the signer's certificate or one of its CAs is revoked");
  std::lock_guard g(mu_);
  auto it = by_fingerprint_.find(signer.fingerprint);
  if (epoch >= 0 && it != by_fingerprint_.end() && it->second.chain == ids) it->second.clean_epoch = epoch;
  return Ok{};
}

Status StoreReplayGuard::accept(const std::string& signer, const std::string& station, std::uint64_t seq) {
  GT_TRY_ASSIGN(bool accepted, store_.accept_sequence(signer, station, seq));
  if (!accepted)
    return reject("verify.replay", "sequence number " + std::to_string(seq) + " for station '" + station +
                                       "' is not above the last one accepted from this signer");
  return Ok{};
}

}  // namespace gridtrust::protocol
