#pragma once
// Signed OCPP commands as the aggregator uses them: sign with its HSM-held
// aggregator-signer key, verify against its own PKI. Shared by the CLI's offline
// commands and gridtrustd's /v1/commands routes, so both answer the same JSON.
//
// Sequence numbers per (signer, station) come from the store in blocks (`seq_block`):
// numbers are reserved durably before a signature uses them, so no two signatures
// share one, even across crashes; a crash skips at most the rest of a block, which a
// verifier accepts (it asks only for "above the last one"). Verification records every
// accepted number in the store (a restart does not reopen a replay).
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include <boost/json.hpp>

#include "core/time.h"
#include "hsm/hsm_signer.h"
#include "pki/certificate_authority.h"
#include "protocol/signed_command.h"
#include "protocol/signer_trust.h"

namespace gridtrust::app {

struct SignParameters {
  std::string action;
  std::string station;
  std::int64_t lifetime_s = 300;
  bool include_x5c = false;
};

struct VerifyParameters {
  std::optional<std::string> station;
  std::optional<std::string> action;
  std::int64_t max_lifetime_s = 3600;
  std::int64_t max_clock_skew_s = 60;
};

class CommandService {
 public:
  // `now`: the daemon's clock (core/time_source.h) for issue times and signer checks.
  CommandService(pki::CertificateAuthority& ca, std::uint64_t seq_block,
                 std::function<TimePoint()> now = now_seconds);

  // The signer: the aggregator-signer certificate with `serial`, or else the valid
  // HSM-held one issued last. Codes: commands.no_signer, notfound.certificate,
  // commands.signer_not_usable.
  Status use_signer(std::optional<std::string> serial);

  // After the scheduler re-keyed the aggregator signer: the next signature picks the
  // signer again (the newest valid one). Signatures under way finish with the old key.
  void forget_signer() { stale_ = true; }

  Result<boost::json::object> sign(boost::json::object message, const SignParameters& p);
  // FILE form: [{"action","station","message"}...]
  Result<boost::json::array> sign_batch(const boost::json::array& items, std::int64_t lifetime_s, bool include_x5c);
  // The same for items already taken apart (their seq is set here): the dispatch engine's
  // commands, signed without being copied into the FILE form first.
  Result<std::vector<boost::json::object>> sign_items(std::vector<protocol::BatchItem> items, std::int64_t lifetime_s,
                                                      bool include_x5c);

  // {"ok":true,"action","station","seq","issued_at","expires_at","signer","signer_subject"[,"batch_index","batch_size"]}
  Result<boost::json::object> verify(const boost::json::object& message, const VerifyParameters& p);
  Result<boost::json::array> verify_batch(const boost::json::array& messages, const VerifyParameters& p);

 private:
  Status ensure_signer();
  Result<std::uint64_t> next_seq(const std::string& station);
  Status reserve_for(const std::vector<std::string>& stations);  // numbers for a whole batch, one commit
  protocol::VerifyOptions options(const VerifyParameters& p) const;

  pki::CertificateAuthority& ca_;
  std::uint64_t seq_block_;
  std::function<TimePoint()> now_;
  std::atomic<bool> stale_{false};
  // Held shared while a signature is made, exclusively while the signer is replaced.
  std::shared_mutex swap_mu_;
  std::mutex mu_;
  std::unique_ptr<hsm::HsmSigner> signer_;
  Bytes signer_der_;
  std::vector<Bytes> chain_der_;  // for x5c: the signer, then its CAs without the root
  std::string fingerprint_;
  struct Block {
    std::uint64_t next = 0, end = 0;  // [next, end) reserved and unused
  };
  std::map<std::string, Block> blocks_;  // per station
  protocol::PkiSignerResolver resolver_;
  protocol::StoreReplayGuard replay_;
};

}  // namespace gridtrust::app
