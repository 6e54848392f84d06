#pragma once
// Signed checkpoints of the audit chain (DESIGN.md "store/audit").
//
// The hash chain alone shows a changed, deleted or reordered row, but not a chain
// rewritten from some row on with every hash recomputed, nor a truncated tail. A
// checkpoint is the token's signature over the chain head at a moment; whoever can
// rewrite the database still cannot sign with a key that never leaves the HSM.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/rejection.h"
#include "hsm/token.h"
#include "store/store.h"

namespace gridtrust::pki {

inline constexpr const char* kCheckpointKeyLabel = "audit-checkpoint";

// "gridtrust-checkpoint-v1;<entry_id>;<hash>;<ts>": what the checkpoint key signs
// (ECDSA P-256 over its SHA-256).
std::string audit_checkpoint_message(std::int64_t entry_id, const std::string& head_hash, std::int64_t ts);

// The checkpoint key, generated in the token (P-256) the first time it is needed.
// gridtrustd's scheduler re-keys it under new labels (docs/rotation.md) and names the
// one in use.
Result<hsm::KeyRef> checkpoint_key(hsm::Token& token, const std::string& label = kCheckpointKeyLabel);

// Signs the current chain head and stores the checkpoint. An empty chain has
// nothing to vouch for: that is a rejection (audit.empty), not a checkpoint of id 0.
Result<store::AuditCheckpoint> write_audit_checkpoint(hsm::Token& token, store::Store& store,
                                                      const std::string& key_label = kCheckpointKeyLabel);

// What a new checkpoint key signs about the key it replaces when the scheduler
// re-keys it: "gridtrust-checkpoint-key-succession-v1;<old CKA_ID hex>;<SHA-256 of the
// old SPKI, hex>". Once the old key is destroyed, the checkpoints it signed are
// checked with its public key as vouched for by its successor (and so on up to a key
// still in the token).
std::string checkpoint_key_succession_message(const Bytes& old_key_id, const Bytes& old_spki_der);
// ECDSA (DER signature) over the SHA-256 of message with the key of spki_der.
bool checkpoint_signature_verifies(const Bytes& spki_der, const std::string& message, const Bytes& signature_der);

struct CheckpointReport {
  bool ok = true;
  std::int64_t checked = 0;
  bool signatures_checked = false;
  std::optional<std::int64_t> first_bad_entry;  // the entry id the bad checkpoint names
  std::string problem;
};

// The SubjectPublicKeyInfo DER of the key with this CKA_ID.
using CheckpointKeyLookup = std::function<Result<Bytes>(const Bytes& key_id)>;

// Each checkpoint must name an entry of `entries` (a chain that verified) with the
// same hash; with `lookup`, its signature must verify too. Without it only the
// links are checked (the token was not available).
CheckpointReport verify_audit_checkpoints(const std::vector<store::AuditEntry>& entries,
                                          const std::vector<store::AuditCheckpoint>& checkpoints,
                                          const CheckpointKeyLookup& lookup);

}  // namespace gridtrust::pki
