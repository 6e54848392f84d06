#pragma once
// The verifier's side of signed commands against gridtrust's own PKI: signers are
// certificates of the signer profile (aggregator-signer) in the store; trust is a
// chain to that profile's root, the dispatch-authority EKU, validity at the time of
// verification and no revocation anywhere on the chain. Sequence numbers accepted are
// kept in the store, so a restart does not reopen a replay.
#include <map>
#include <mutex>
#include <string>

#include "pki/certificate_authority.h"
#include "protocol/signed_command.h"

namespace gridtrust::protocol {

class PkiSignerResolver final : public SignerResolver {
 public:
  explicit PkiSignerResolver(pki::CertificateAuthority& ca, std::string signer_profile = "aggregator-signer");

  // Codes: verify.unknown_signer; jws.malformed when x5c's first certificate is not the
  // one x5t#S256 names.
  Result<std::shared_ptr<const SignerCertificate>> find(const std::string& x5t_s256,
                                                        const std::vector<Bytes>& x5c) override;
  // Codes: verify.untrusted_chain, verify.not_dispatch_authority,
  // verify.signer_not_yet_valid, verify.signer_expired, verify.signer_revoked.
  Status judge(const SignerCertificate& signer, std::int64_t now) override;

 private:
  struct Known {
    std::shared_ptr<const SignerCertificate> cert;
    // (issuer, serial) of the signer and, once the chain is checked, its CAs: shared so
    // that judge() reads it outside the lock without copying it.
    std::shared_ptr<const std::vector<std::pair<std::string, std::string>>> chain;
    std::int64_t not_before = 0, not_after = 0;
    bool chain_checked = false;
    std::optional<Rejection> chain_problem;  // decided once per certificate
    // "Not revoked", as read while the store's revocation epoch was `clean_epoch`.
    std::optional<std::int64_t> clean_epoch;
  };
  Status refresh();  // re-reads the signer profile's certificates and its chain
  Result<Known*> known(const std::string& fingerprint);

  pki::CertificateAuthority& ca_;
  std::string profile_;
  std::mutex mu_;
  std::map<std::string, Known> by_fingerprint_;
  std::vector<X509Ptr> chain_;  // the signer profile's CAs, issuing CA first, root last
  std::vector<std::pair<std::string, std::string>> ca_ids_;
};

class StoreReplayGuard final : public ReplayGuard {
 public:
  explicit StoreReplayGuard(store::Store& store) : store_(store) {}
  Status accept(const std::string& signer, const std::string& station, std::uint64_t seq) override;

 private:
  store::Store& store_;
};

}  // namespace gridtrust::protocol
