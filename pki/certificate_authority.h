#pragma once
// The PKI: the CA hierarchy held in the HSM, issuance, revocation, CRLs and chains.
//
// Hot path: issue_from_csr_async() reads top to bottom: parse -> proof of possession
// -> key policy -> subject rules -> issuer state -> validity -> serial (reserved
// durably) -> build and sign (one HSM call) -> commit with its audit entry.
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
  Result<std::string> crl_pem(const std::string& issuer_profile, const std::string& actor);
  // The issuing chain of a profile's certificates, including the root (for a CA
  // profile: that CA up to its root).
  Result<std::vector<Bytes>> chain(const std::string& profile);

  const ProfileSet& profiles() const { return profiles_; }
  store::Store& store() { return *store_; }
  const std::shared_ptr<hsm::Token>& token() const { return token_; }

 private:
  struct IssuerState {
    store::IssuerRecord record;
    X509Ptr cert;
    EvpPkeyPtr key;  // bridged HSM key
    std::vector<std::pair<std::string, std::string>> chain_certs;  // (issuer, serial) of this CA and above
    std::mutex extensions_mu;
    std::map<std::string, FixedExtensions> extensions;  // per leaf profile; entries never move
  };

  Result<const FixedExtensions*> extensions_for(IssuerState& issuer, const Profile& profile, bool edwards_subject);

  Result<const Profile*> leaf_profile(const std::string& name);
  Result<IssuerState*> issuer_state(const std::string& profile);
  Result<IssuerState*> issuer_state_locked(const std::string& profile);  // issuers_mu_ held
  Status check_issuer_usable(const std::string& profile, TimePoint now);
  Result<std::pair<TimePoint, TimePoint>> validity(const Profile& p, const IssuerState& issuer,
                                                   const IssueOptions& opt, TimePoint now);
  Result<Bytes> next_serial(const std::string& issuer);
  Result<PendingIssuance> issue(const Profile& p, X509_NAME* subject, const Bytes& spki, bool edwards_subject,
                                std::optional<hsm::KeyRef> hsm_key, const IssueOptions& opt);
  Result<std::vector<Bytes>> issuer_chain(const std::string& issuer_profile, bool include_root);

  ProfileSet profiles_;
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
