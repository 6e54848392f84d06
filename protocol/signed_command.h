#pragma once
// Signed OCPP commands (docs/signed-commands.md is the specification; this is its
// implementation).
//
// A signed message is the OCPP request payload plus, in its top-level customData
// (vendorId "org.gridtrust"), a detached JWS over the JCS form of the payload without
// customData. The protected header names the signer's certificate (x5t#S256, x5c on
// request) and binds the OCPP action, the target station, iat, exp and the
// per-(signer, station) sequence number. A batch signs the Merkle root of its entries;
// each entry carries its index, the batch size and its inclusion path.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "core/openssl_ptr.h"
#include "core/rejection.h"
#include "hsm/signer.h"
#include "protocol/merkle.h"

namespace gridtrust::protocol {

inline constexpr const char* kVendorId = "org.gridtrust";

struct CommandSigner {
  const hsm::Signer& signer;
  Bytes certificate_der;         // the signer's certificate: x5t#S256 is its SHA-256
  std::vector<Bytes> chain_der;  // x5c when asked: the signer's certificate first, then its CAs
};

struct CommandClaims {
  std::string action;   // OCPP action, e.g. "SetChargingProfile"
  std::string station;  // the target charging station's identity
  std::uint64_t seq = 0;
};

struct SignTimes {
  std::int64_t issued_at = 0;  // seconds since the epoch
  std::int64_t lifetime_s = 300;
  bool include_x5c = false;
};

// Codes: sign.not_object, sign.custom_data_in_use (another vendor's customData),
// sign.inexact_number (an integer beyond 2^53, which JavaScript verifiers would round),
// sign.bad_claims (empty action or station, seq 0, lifetime <= 0), plus jws./hsm. codes.
Result<boost::json::object> sign_command(boost::json::object message, const CommandSigner& signer,
                                         const CommandClaims& claims, const SignTimes& times);

// The action and station a signed command may name (sign.bad_claims otherwise): for
// signers to check before they spend a sequence number on them.
Status check_sign_target(std::string_view action, std::string_view station);

struct BatchItem {
  boost::json::object message;
  CommandClaims claims;
};
Result<std::vector<boost::json::object>> sign_batch(std::vector<BatchItem> items, const CommandSigner& signer,
                                                    const SignTimes& times);

// ---- verification ----

// A signer certificate the verifier has found; `key` verifies its signatures.
struct SignerCertificate {
  std::string fingerprint;  // x5t#S256 value (base64url of the DER's SHA-256)
  X509Ptr certificate;
  EvpPkeyPtr key;
  std::string subject;
  std::string issuer_profile;
  std::string serial;
};

// Where certificates come from and whether they are trusted. find() only locates
// (verify.unknown_signer); judge() decides (chain to the dispatch trust anchor,
// dispatch-authority EKU, validity at `now`, not revoked), each with its own code.
class SignerResolver {
 public:
  virtual ~SignerResolver() = default;
  virtual Result<std::shared_ptr<const SignerCertificate>> find(const std::string& x5t_s256,
                                                                const std::vector<Bytes>& x5c) = 0;
  virtual Status judge(const SignerCertificate& signer, std::int64_t now) = 0;
};

// Accepts a sequence number only above the last accepted one for (signer, station);
// code verify.replay otherwise. Implementations persist what they accepted.
class ReplayGuard {
 public:
  virtual ~ReplayGuard() = default;
  virtual Status accept(const std::string& signer_fingerprint, const std::string& station, std::uint64_t seq) = 0;
};

struct VerifyOptions {
  std::int64_t now = 0;
  std::int64_t max_clock_skew_s = 60;     // iat may be this far in the future
  std::int64_t max_lifetime_s = 3600;     // exp - iat at most this
  std::optional<std::string> station;     // the verifier's own identity, when it is a station
  std::optional<std::string> action;      // the action the message arrived as
};

struct VerifiedCommand {
  CommandClaims claims;
  std::int64_t issued_at = 0;
  std::int64_t expires_at = 0;
  std::string signer_fingerprint;
  std::string signer_subject;
  std::optional<std::size_t> batch_index;
  std::size_t batch_size = 1;
};

// Checks, in this order, each failure with its own code: structure (verify.malformed,
// verify.unsigned), JWS form (jws.*), signer found (verify.unknown_signer), signature
// (jws.bad_signature / jws.alg_mismatch, batch.bad_path), the signer's trust
// (resolver codes), freshness (verify.not_yet_valid, verify.expired,
// verify.lifetime_too_long), target (verify.wrong_station, verify.wrong_action),
// sequence (verify.replay).
Result<VerifiedCommand> verify_command(const boost::json::object& message, const VerifyOptions& options,
                                       SignerResolver& resolver, ReplayGuard& replay);

// A whole batch at once: one signature check, the tree rebuilt from every entry (two
// hashes per entry instead of a path each) and each entry's inclusion path compared
// with it (batch.bad_path), then per entry freshness, target and sequence. Every entry
// must carry the same signature; entries may come in any order. The result lists the
// entries in the order given.
Result<std::vector<VerifiedCommand>> verify_batch(const std::vector<boost::json::object>& entries,
                                                  const VerifyOptions& options, SignerResolver& resolver,
                                                  ReplayGuard& replay);

// The JCS text a message is signed over: the message without top-level customData.
Result<std::string> signed_payload(const boost::json::object& message);
// The JCS leaf of a batch entry: {"action","message","seq","station"}.
Result<std::string> batch_leaf(const boost::json::object& message_without_custom_data, const CommandClaims& claims);

}  // namespace gridtrust::protocol
