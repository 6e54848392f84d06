// Renew and re-key: a certificate issued in place of another, through the same
// issuance pipeline (CertificateAuthority::issue) as any other, with an audit event
// that names the certificate it replaces.
//
// Order with revoke_old: the new certificate is committed first, then the old one is
// revoked (superseded) in a second commit. A failure between the two leaves the
// subject with two valid certificates, never with none; the caller is told
// (Replacement::revoke_failure) and revokes the old one by hand.
#include "pki/certificate_authority.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <boost/json.hpp>

#include "core/random.h"
#include "pki/csr.h"
#include "pki/revocation_reason.h"
#include "pki/subject.h"

namespace gridtrust::pki {
namespace {

constexpr int kSuperseded = 4;  // RFC 5280 5.3.1 CRLReason superseded

const char* participle(const std::string& action) { return action == "renew" ? "renewed" : "re-keyed"; }

// The refusals renew and rekey share, spelled out per operation so that every code
// (docs/error-codes.md) can be found in the source as written.
struct RefusalCodes {
  const char* ca_certificate;
  const char* revoked;
  const char* profile_unavailable;
  const char* issuer_changed;
};

const RefusalCodes& refusal_codes(const std::string& action) {
  static const RefusalCodes renew{"renew.ca_certificate", "renew.revoked", "renew.profile_unavailable",
                                  "renew.issuer_changed"};
  static const RefusalCodes rekey{"rekey.ca_certificate", "rekey.revoked", "rekey.profile_unavailable",
                                  "rekey.issuer_changed"};
  return action == "renew" ? renew : rekey;
}

// Hexadecimal, optional 0x, any case; stored upper case (as revoke() reads it).
Result<std::string> normalised_serial(const std::string& text) {
  std::string serial = text;
  if (serial.rfind("0x", 0) == 0 || serial.rfind("0X", 0) == 0) serial = serial.substr(2);
  for (auto& c : serial) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (serial.empty() || serial.size() > 40 || !from_hex(serial.size() % 2 ? "0" + serial : serial))
    return reject("usage.bad_serial", "serial must be hexadecimal: '" + text + "'");
  return serial;
}

Result<Bytes> spki_of(X509* cert) {
  X509_PUBKEY* pub = X509_get_X509_PUBKEY(cert);
  int n = pub ? i2d_X509_PUBKEY(pub, nullptr) : 0;
  if (n <= 0) return reject("store.corrupt", "a stored certificate has no encodable public key");
  Bytes out(static_cast<std::size_t>(n));
  unsigned char* p = out.data();
  i2d_X509_PUBKEY(pub, &p);
  return out;
}

// The subject key's algorithm as profiles name it; none for a key gridtrust does not issue for.
std::optional<hsm::KeyAlgorithm> key_algorithm_of(X509* cert) {
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (!key) return std::nullopt;
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_ED25519:
      return hsm::KeyAlgorithm::Ed25519;
    case EVP_PKEY_ED448:
      return hsm::KeyAlgorithm::Ed448;
    case EVP_PKEY_EC: {
      char group[64] = {0};
      std::size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1)
        return std::nullopt;
      for (auto a : {hsm::KeyAlgorithm::EcP256, hsm::KeyAlgorithm::EcP384, hsm::KeyAlgorithm::EcP521})
        if (std::string(group) == hsm::openssl_name(a)) return a;
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

// The same key, whatever its encoding (an EC point may come compressed or not).
bool same_public_key(EVP_PKEY* a, const Bytes& a_spki, X509* cert, const Bytes& cert_spki) {
  if (a_spki == cert_spki) return true;
  EVP_PKEY* b = X509_get0_pubkey(cert);
  return a && b && EVP_PKEY_eq(a, b) == 1;
}

}  // namespace

Result<CertificateAuthority::Replaceable> CertificateAuthority::replaceable(const std::string& action,
                                                                            const std::string& serial_text) {
  GT_TRY_ASSIGN(std::string serial, normalised_serial(serial_text));
  GT_TRY_ASSIGN(auto rows, store_->find_by_serial(serial));
  if (rows.empty()) return reject("notfound.certificate", "no certificate with serial " + serial);
  if (rows.size() > 1) return reject("usage.ambiguous_serial", "serial " + serial + " exists under several issuers");
  Replaceable old;
  old.record = std::move(rows.front());
  const auto& rec = old.record;
  std::shared_ptr<const ProfileSet> profiles = profiles_.load();
  const Profile* p = profiles->find(rec.profile);
  // A CA's certificate row carries the CA's own profile name; the issuers table says
  // so even when that profile has left the set.
  GT_TRY_ASSIGN(auto ca, store_->issuer(rec.profile));
  if ((p && p->is_ca()) || (ca && ca->serial == rec.serial && ca->parent == rec.issuer))
    return reject(refusal_codes(action).ca_certificate, "certificate " + serial + " is the certificate of CA '" +
                                                            rec.profile + "'; CA certificates are not " +
                                                            participle(action) + " by this command");
  if (rec.status == "revoked")
    return reject(refusal_codes(action).revoked, "certificate " + serial + " is revoked (" +
                                                     revocation_reason_name(static_cast<int>(rec.reason.value_or(0))) +
                                                     "); issue a new certificate instead");
  if (!p)
    return reject(refusal_codes(action).profile_unavailable,
                  "profile '" + rec.profile + "' of certificate " + serial +
                      " is no longer configured; issue under a current profile instead");
  if (p->issuer != rec.issuer)
    return reject(refusal_codes(action).issuer_changed, "profile '" + rec.profile + "' is now issued by '" + p->issuer +
                                                            "', certificate " + serial + " was issued by '" +
                                                            rec.issuer + "'; issue a new certificate instead");
  GT_TRY_ASSIGN(old.cert, certificate_from_der(rec.der));
  old.profile = std::shared_ptr<const Profile>(std::move(profiles), p);
  return old;
}

Result<Replacement> CertificateAuthority::replace(const std::string& action, const Replaceable& old, X509_NAME* subject,
                                                  const Bytes& spki, bool edwards_subject,
                                                  std::optional<hsm::KeyRef> hsm_key, const ReplaceOptions& opt) {
  IssueOptions io;  // the profile's validity: a replacement is a fresh certificate
  io.actor = opt.actor;
  io.validity_days = opt.validity_days;
  Supersedes supersedes{action, old.record.issuer, old.record.serial};
  GT_TRY_ASSIGN(PendingIssuance pending,
                issue(old.profile, subject, spki, edwards_subject, std::move(hsm_key), io, &supersedes));
  Status stored = pending.durable.get();
  if (!stored.ok()) {
    // The commit also refuses while the old certificate is revoked (Supersedes): say
    // which certificate it was when that is why.
    if (stored.error().code == "issuer.revoked") {
      auto rows = store_->find_by_serial(old.record.serial);
      if (rows.ok())
        for (const auto& r : rows.value())
          if (r.issuer == old.record.issuer && r.status == "revoked")
            return reject(refusal_codes(action).revoked, "certificate " + old.record.serial +
                                                             " was revoked while being " + participle(action) +
                                                             "; nothing was issued");
    }
    return stored.error();
  }

  Replacement out;
  out.issued = std::move(pending.issued);
  out.replaces = old.record.serial;
  if (opt.revoke_old) {
    boost::json::object what{{"reason", "superseded"},
                             {"profile", old.record.profile.c_str()},
                             {"superseded_by", out.issued.record.serial.c_str()}};
    auto revoked = store_->revoke(old.record.issuer, old.record.serial, kSuperseded, to_unix(config_.now()),
                                  store::AuditEvent{opt.actor, "revoke", old.record.issuer + "/" + old.record.serial,
                                                    boost::json::serialize(what)});
    if (revoked.ok())
      out.revoked = std::move(revoked).value();
    else
      out.revoke_failure = revoked.error();
  }
  return out;
}

Result<Replacement> CertificateAuthority::renew(const std::string& serial, const ReplaceOptions& opt) {
  GT_TRY_ASSIGN(Replaceable old, replaceable("renew", serial));
  GT_TRY_ASSIGN(Bytes spki, spki_of(old.cert.get()));
  auto alg = key_algorithm_of(old.cert.get());
  bool allowed = false;
  for (auto a : old.profile->keys) allowed = allowed || (alg && a == *alg);
  if (!allowed)
    return reject("renew.key_not_allowed", "the key of certificate " + old.record.serial + " (" +
                                               (alg ? std::string(hsm::name_of(*alg)) : std::string("unsupported")) +
                                               ") is no longer allowed by profile '" + old.profile->name +
                                               "'; re-key it instead");
  std::optional<hsm::KeyRef> key;
  if (old.record.key_id) {
    // An HSM-held leaf keeps its token key; it must still be there and be that key.
    GT_TRY_ASSIGN(hsm::KeyRef k, token_->find_key_by_id(*old.record.key_id));
    const unsigned char* p = k.public_key_der.data();
    EvpPkeyPtr token_pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(k.public_key_der.size())));
    if (!same_public_key(token_pub.get(), k.public_key_der, old.cert.get(), spki))
      return reject("hsm.key_not_found",
                    "the token key with id " + to_hex(k.id) + " is not the key of certificate " + old.record.serial);
    key = std::move(k);
  }
  return replace("renew", old, X509_get_subject_name(old.cert.get()), spki, hsm::is_edwards(*alg), std::move(key), opt);
}

Result<Replacement> CertificateAuthority::rekey_from_csr(const std::string& serial, const Bytes& csr,
                                                         const ReplaceOptions& opt) {
  GT_TRY_ASSIGN(Replaceable old, replaceable("rekey", serial));
  GT_TRY_ASSIGN(CertificationRequest req, parse_csr(csr));
  GT_TRY(check_key_allowed(req, *old.profile));
  GT_TRY(verify_csr_signature(req));
  X509_NAME* subject = X509_get_subject_name(old.cert.get());
  if (X509_NAME_cmp(req.subject.get(), subject) != 0)
    return reject("rekey.subject_mismatch", "the CSR's subject '" + subject_text(req.subject.get()) +
                                                "' is not that of certificate " + old.record.serial + " ('" +
                                                old.record.subject + "')");
  GT_TRY_ASSIGN(Bytes old_spki, spki_of(old.cert.get()));
  if (same_public_key(req.key.get(), req.spki_der, old.cert.get(), old_spki))
    return reject("rekey.same_key", "the CSR carries the key of certificate " + old.record.serial +
                                        "; a re-key needs a new key (renew keeps the key)");
  bool edwards = req.key_type == CsrKeyType::Ed25519 || req.key_type == CsrKeyType::Ed448;
  // The old certificate's name, byte for byte: the CSR's compares equal but may encode
  // its strings differently.
  return replace("rekey", old, subject, req.spki_der, edwards, std::nullopt, opt);
}

Result<Replacement> CertificateAuthority::rekey_with_hsm_key(const std::string& serial, const ReplaceOptions& opt) {
  GT_TRY_ASSIGN(Replaceable old, replaceable("rekey", serial));
  const Profile& profile = *old.profile;
  if (!profile.hsm_key)
    return reject("profile.no_hsm_key",
                  "profile '" + profile.name + "' keys are held by their subject; re-key with the subject's CSR");
  X509_NAME* subject = X509_get_subject_name(old.cert.get());
  // Check everything that can fail before a key is created in the token.
  GT_TRY(check_subject(subject, profile));
  GT_TRY(check_issuer_usable(profile.issuer, config_.now()));
  std::string label = opt.key_label.value_or(profile.name + "-" + to_hex(random_bytes(6)));
  GT_TRY_ASSIGN(hsm::KeyRef key, token_->generate_key_pair(profile.keys.front(), label));
  auto out = replace("rekey", old, subject, key.public_key_der, hsm::is_edwards(key.algorithm), key, opt);
  if (!out.ok()) (void)token_->destroy_key(key);  // best effort: without a certificate the key has no use
  return out;
}

}  // namespace gridtrust::pki
