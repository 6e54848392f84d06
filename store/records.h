#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/encoding.h"

namespace gridtrust::store {

struct IssuerRecord {
  std::string profile;  // the CA's profile name, e.g. "cpo-sub2"
  std::string parent;   // issuing CA's profile; itself for a root
  std::string serial;   // hex, upper case
  std::string subject;
  std::string key_label;
  Bytes key_id;
  Bytes cert_der;
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
};

struct CertificateRecord {
  std::string issuer;  // issuing CA profile
  std::string serial;  // hex, upper case, no leading zeros beyond one byte
  std::string profile;
  std::string subject;
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  std::int64_t issued_at = 0;
  Bytes der;
  std::optional<std::string> key_label;  // set when the key is held in the HSM
  std::optional<Bytes> key_id;
  std::string status = "valid";
  std::optional<std::int64_t> revoked_at;
  std::optional<std::int64_t> reason;  // RFC 5280 CRLReason
};

struct AuditEvent {
  std::string actor;    // "cli:<user>", "daemon", ...
  std::string action;   // "issue", "revoke", "init", "crl", ...
  std::string subject;  // what it acted on, e.g. "cpo-sub2/0A1B..."
  std::string details;  // JSON object text
};

struct AuditEntry {
  std::int64_t id = 0;
  std::int64_t ts = 0;
  AuditEvent event;
  std::string prev_hash;
  std::string hash;
};

// A signed statement "the chain had this head": an HSM signature over
// audit_checkpoint_message(entry_id, head_hash, ts). Truncating the chain below a
// checkpoint, or rewriting it and recomputing every hash, no longer goes unnoticed.
struct AuditCheckpoint {
  std::int64_t id = 0;
  std::int64_t entry_id = 0;
  std::string head_hash;
  std::int64_t ts = 0;
  Bytes key_id;     // CKA_ID of the checkpoint key in the token
  Bytes signature;  // DER ECDSA-Sig-Value
};

struct CertificateFilter {
  std::optional<std::string> profile;
  std::optional<std::string> status;
  std::optional<std::int64_t> expiring_before;
};

struct AuditReport {
  bool ok = true;
  std::int64_t entries = 0;
  std::optional<std::int64_t> first_bad_id;
  std::string problem;
  std::string head_hash;
};

}  // namespace gridtrust::store
