#pragma once
// What the rotation scheduler persists (migration 4, docs/rotation.md): the daemon's
// own keys and when each is re-keyed next, the keys it retired and when they may be
// destroyed, the renewal schedule of station and vehicle certificates, and the outbox
// of OCPP TriggerMessage requests the aggregator drains.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/encoding.h"

namespace gridtrust::store {

// One key the daemon holds and re-keys on schedule.
struct RotationEntry {
  std::string role;       // aggregator-signer | csms-server | ocsp-signer | audit-checkpoint
  std::string key_label;  // the key in use
  Bytes key_id;
  std::string issuer;     // of the certificate in use; empty for a key without one
  std::string serial;
  std::int64_t generation = 1;
  std::int64_t interval_days = 0;
  std::int64_t last_rotated_at = 0;  // 0: never rotated by the scheduler
  std::int64_t next_due = 0;
  // "active", or "rotating" between choosing the next key's label and the switch-over.
  std::string state = "active";
  std::string pending_label;  // the next key's label while rotating
  std::int64_t rotations = 0;
};

// A key taken out of use, kept in the token until its certificate has expired.
struct RetiredKey {
  std::int64_t id = 0;
  std::string role;
  std::string key_label;
  Bytes key_id;
  Bytes public_key_der;  // SPKI: what it signed stays checkable after destruction
  std::string issuer;
  std::string serial;
  std::int64_t retired_at = 0;
  std::int64_t destroy_after = 0;  // the notAfter of its certificate
  std::optional<std::int64_t> destroyed_at;
  // For audit checkpoint keys: the successor's CKA_ID and its signature (DER ECDSA)
  // over checkpoint_key_succession_message() (pki/audit_checkpoint.h).
  Bytes successor_key_id;
  Bytes endorsement;
};

// A station or vehicle certificate whose renewal the scheduler triggers.
struct RenewalEntry {
  std::string issuer;
  std::string serial;
  std::string profile;
  std::string subject;
  std::int64_t due = 0;
  // "scheduled", "queued" (its trigger is in the outbox) or "superseded" (a newer
  // certificate of the same subject took over before it was due).
  std::string state = "scheduled";
};

struct OutboxEntry {
  std::int64_t seq = 0;    // order of enqueueing
  std::string id;          // stable: "renew:<issuer>:<serial>"
  std::string station;     // the subject's CN
  std::string profile;
  std::string serial;
  std::string action;      // OCPP action, "TriggerMessage"
  std::string payload;     // the OCPP request payload, JSON
  std::int64_t due = 0;
  std::int64_t enqueued_at = 0;
  std::optional<std::int64_t> acked_at;
};

struct AckResult {
  std::vector<std::string> acked;          // acknowledged by this call
  std::vector<std::string> already_acked;  // acknowledged before: not an error
  std::vector<std::string> unknown;        // no such entry: reported, not fatal
};

}  // namespace gridtrust::store
