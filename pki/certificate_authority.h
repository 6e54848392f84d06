#pragma once
// The PKI: the CA hierarchy held in the HSM, issuance, revocation, CRLs and chains.
//
// Hot path: issue_from_csr_async() reads top to bottom: parse -> proof of possession
// -> key policy -> subject rules -> issuer state -> validity -> serial (reserved
// durably) -> build and sign (one HSM call) -> commit with its audit entry.
//
// The profile set can be replaced while the CA serves (gridtrustd on SIGHUP): every
// operation takes the set in force when it starts and keeps it to the end, so a
// certificate is never built from two versions of its profile.
#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/openssl_ptr.h"
#include "core/rejection.h"
#include "core/time.h"
#include "hsm/token.h"
#include "pki/certificate_builder.h"
#include "pki/profile.h"
#include "store/store.h"

namespace gridtrust::pki {

struct PkiConfig {
  Endpoints endpoints;
  int crl_validity_hours = 168;
  std::size_t serial_block = 1;  // serials reserved per durable reservation
  std::function<TimePoint()> now = now_seconds;  // injectable clock
};

struct IssueOptions {
  std::optional<int> validity_days;
  std::string actor = "cli";
  // issue_with_hsm_key: the type of the key made in the token, one of the profile's
  // `keys` (csr.curve_not_allowed / csr.key_type_not_allowed otherwise); default: the
  // profile's first.
  std::optional<hsm::KeyAlgorithm> key_algorithm;
};

struct Issued {
  store::CertificateRecord record;
  std::vector<Bytes> chain_der;  // leaf first, up to but excluding the root
  std::string chain_pem() const;
};

struct PendingIssuance {
  Issued issued;
  std::future<Status> durable;  // resolves when the certificate and its audit entry are on disk
};

// Renew and re-key (certificate_replacement.cpp).
struct ReplaceOptions {
  bool revoke_old = false;  // revoke the replaced certificate as superseded once the new one is stored
  std::string actor = "cli";
  // The scheduler's re-key (docs/rotation.md): a validity shorter than the profile's
  // (interval + overlap), and the label of the token key rekey_with_hsm_key generates.
  std::optional<int> validity_days;
  std::optional<std::string> key_label;
};

// A certificate issued in place of another: same subject, profile and issuer.
struct Replacement {
  Issued issued;
  std::string replaces;                             // serial of the replaced certificate
  std::optional<store::CertificateRecord> revoked;  // the replaced certificate, now revoked (revoke_old)
  // revoke_old was asked and the new certificate is stored, but revoking the old one
  // failed (it stays as it was). The new certificate is not undone: the caller gets it
  // and can revoke the old one with revoke(..., "superseded").
  std::optional<Rejection> revoke_failure;
};

class CertificateAuthority {
 public:
  CertificateAuthority(ProfileSet profiles, std::shared_ptr<hsm::Token> token, std::shared_ptr<store::Store> store,
                       PkiConfig config);

  // Creates every CA of the profile set that the store does not hold yet: key pair in
  // the token, certificate signed by its parent (roots: self-signed).
  Status create_hierarchy(const std::string& actor);

  Result<PendingIssuance> issue_from_csr_async(const std::string& profile, const Bytes& csr, const IssueOptions& opt);
  Result<Issued> issue_from_csr(const std::string& profile, const Bytes& csr, const IssueOptions& opt);
  // For roles whose key the aggregator holds: the key pair is generated in the token.
  Result<Issued> issue_with_hsm_key(const std::string& profile, const std::string& subject, const IssueOptions& opt);

  Result<store::CertificateRecord> revoke(const std::string& serial, const std::string& reason,
                                          const std::string& actor);

  // Renew: a new certificate with a fresh validity (the profile's, capped by the
  // issuer's) for the same subject and public key, under the same profile and issuer;
  // an HSM-held leaf keeps its token key. The old certificate stays valid (overlap)
  // unless opt.revoke_old. Refused for unknown serials, CA certificates, revoked
  // certificates and certificates whose profile or issuer is no longer in force. An
  // expired certificate may be renewed: expiry says nothing against its key.
  Result<Replacement> renew(const std::string& serial, const ReplaceOptions& opt);
  // Re-key: as renew, but with a new key: the subject's, from a CSR naming the same
  // subject and carrying a different key, ...
  Result<Replacement> rekey_from_csr(const std::string& serial, const Bytes& csr, const ReplaceOptions& opt);
  // ... or a new key pair generated in the token (profiles with hsm_key). The old
  // token key is kept: it still verifies what it signed until its certificate expires.
  Result<Replacement> rekey_with_hsm_key(const std::string& serial, const ReplaceOptions& opt);
  Result<std::string> crl_pem(const std::string& issuer_profile, const std::string& actor);
  // The issuing chain of a profile's certificates, including the root (for a CA
  // profile: that CA up to its root).
  Result<std::vector<Bytes>> chain(const std::string& profile);
  // The certificates of the CA `ca_profile` and of every CA above it, from the store
  // (whatever the profile set says).
  Result<std::vector<Bytes>> issuer_chain(const std::string& ca_profile, bool include_root);

  // The profiles in force now; the snapshot stays valid after a replacement.
  std::shared_ptr<const ProfileSet> profiles() const { return profiles_.load(); }
  // Operations that start after this use `profiles`; those under way finish with the
  // set they started with. The caller has validated the set (load_profiles).
  void replace_profiles(ProfileSet profiles);
  store::Store& store() { return *store_; }
  const std::shared_ptr<hsm::Token>& token() const { return token_; }

 private:
  // Fixed extensions and the very Profile object they were built from: after a profile
  // replacement the entry no longer matches and is built again. Holding the profile
  // keeps its address from being reused by another.
  struct CachedExtensions {
    std::shared_ptr<const Profile> profile;
    std::shared_ptr<const FixedExtensions> extensions;
  };
  struct IssuerState {
    store::IssuerRecord record;
    X509Ptr cert;
    EvpPkeyPtr key;  // bridged HSM key
    std::vector<std::pair<std::string, std::string>> chain_certs;  // (issuer, serial) of this CA and above
    std::mutex extensions_mu;
    std::map<std::string, CachedExtensions> extensions;  // per leaf profile (and EdDSA subject)
  };

  Result<std::shared_ptr<const FixedExtensions>> extensions_for(IssuerState& issuer,
                                                                const std::shared_ptr<const Profile>& profile,
                                                                bool edwards_subject);

  // A leaf profile of the set in force, sharing ownership of that set.
  Result<std::shared_ptr<const Profile>> leaf_profile(const std::string& name);
  Result<IssuerState*> issuer_state(const std::string& profile);
  Result<IssuerState*> issuer_state_locked(const std::string& profile);  // issuers_mu_ held
  Status check_issuer_usable(const std::string& profile, TimePoint now);
  Result<std::pair<TimePoint, TimePoint>> validity(const Profile& p, const IssuerState& issuer,
                                                   const IssueOptions& opt, TimePoint now);
  Result<Bytes> next_serial(const std::string& issuer);
  // What an issuance replaces (renew, rekey): the audit event is named after the
  // operation and links the old serial, and the commit is refused while the old
  // certificate is revoked.
  struct Supersedes {
    std::string action;  // "renew" | "rekey"
    std::string issuer;
    std::string serial;
  };
  Result<PendingIssuance> issue(const std::shared_ptr<const Profile>& p, X509_NAME* subject, const Bytes& spki,
                                bool edwards_subject, std::optional<hsm::KeyRef> hsm_key, const IssueOptions& opt,
                                const Supersedes* supersedes = nullptr);

  // Renew and re-key (certificate_replacement.cpp).
  struct Replaceable {
    store::CertificateRecord record;
    X509Ptr cert;
    std::shared_ptr<const Profile> profile;  // in force, sharing ownership of its set
  };
  Result<Replaceable> replaceable(const std::string& action, const std::string& serial);
  Result<Replacement> replace(const std::string& action, const Replaceable& old, X509_NAME* subject,
                              const Bytes& spki, bool edwards_subject, std::optional<hsm::KeyRef> hsm_key,
                              const ReplaceOptions& opt);

  std::atomic<std::shared_ptr<const ProfileSet>> profiles_;
  std::shared_ptr<hsm::Token> token_;
  std::shared_ptr<store::Store> store_;
  PkiConfig config_;

  std::mutex issuers_mu_;
  std::map<std::string, std::unique_ptr<IssuerState>> issuers_;
  std::mutex serials_mu_;
  std::map<std::string, std::vector<Bytes>> reserved_;  // issuer -> reserved, unused serials
};

std::string serial_hex(const Bytes& serial);

}  // namespace gridtrust::pki
