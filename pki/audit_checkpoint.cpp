#include "pki/audit_checkpoint.h"

#include <map>

#include <openssl/x509.h>

#include "core/digest.h"
#include "core/openssl_ptr.h"
#include "core/time.h"
#include "hsm/evp_bridge.h"

namespace gridtrust::pki {
namespace {

bool signature_verifies(const Bytes& spki_der, const std::string& message, const Bytes& signature_der) {
  const unsigned char* p = spki_der.data();
  EvpPkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size())));
  if (!key) return false;
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), signature_der.data(), signature_der.size(),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

}  // namespace

std::string checkpoint_key_succession_message(const Bytes& old_key_id, const Bytes& old_spki_der) {
  return "gridtrust-checkpoint-key-succession-v1;" + to_hex(old_key_id) + ";" + to_hex(sha256(old_spki_der));
}

bool checkpoint_signature_verifies(const Bytes& spki_der, const std::string& message, const Bytes& signature_der) {
  return signature_verifies(spki_der, message, signature_der);
}

std::string audit_checkpoint_message(std::int64_t entry_id, const std::string& head_hash, std::int64_t ts) {
  return "gridtrust-checkpoint-v1;" + std::to_string(entry_id) + ";" + head_hash + ";" + std::to_string(ts);
}

Result<hsm::KeyRef> checkpoint_key(hsm::Token& token, const std::string& label) {
  GT_TRY_ASSIGN(std::optional<hsm::KeyRef> found, token.find_key(label));
  if (found) {
    if (found->algorithm != hsm::KeyAlgorithm::EcP256)
      return reject("hsm.unsupported_key", "token key '" + label + "' is not P-256");
    return *found;
  }
  return token.generate_key_pair(hsm::KeyAlgorithm::EcP256, label);
}

Result<store::AuditCheckpoint> write_audit_checkpoint(hsm::Token& token, store::Store& store,
                                                      const std::string& key_label) {
  GT_TRY_ASSIGN(store::AuditEntry head, store.audit_head());
  if (head.id == 0) return reject("audit.empty", "the audit log has no entries to checkpoint");
  GT_TRY_ASSIGN(hsm::KeyRef key, checkpoint_key(token, key_label));
  store::AuditCheckpoint c;
  c.entry_id = head.id;
  c.head_hash = head.hash;
  c.ts = to_unix(now_seconds());
  c.key_id = key.id;
  GT_TRY_ASSIGN(Bytes raw, token.sign(key, sha256(audit_checkpoint_message(c.entry_id, c.head_hash, c.ts))));
  GT_TRY_ASSIGN(c.signature, hsm::ecdsa_raw_to_der(raw));
  GT_TRY(store.record_checkpoint(c));
  return c;
}

CheckpointReport verify_audit_checkpoints(const std::vector<store::AuditEntry>& entries,
                                          const std::vector<store::AuditCheckpoint>& checkpoints,
                                          const CheckpointKeyLookup& lookup) {
  CheckpointReport r;
  r.signatures_checked = static_cast<bool>(lookup);
  std::map<Bytes, Result<Bytes>> keys;
  for (const auto& c : checkpoints) {
    auto fail = [&](std::string why) {
      r.ok = false;
      r.first_bad_entry = c.entry_id;
      r.problem = "checkpoint " + std::to_string(c.id) + ": " + std::move(why);
      return r;
    };
    // verify_chain accepted `entries`, so entry n sits at index n-1.
    if (c.entry_id < 1 || c.entry_id > static_cast<std::int64_t>(entries.size()))
      return fail("names entry " + std::to_string(c.entry_id) + " but the chain ends at " +
                  std::to_string(entries.size()) + " (entries deleted)");
    if (entries[static_cast<std::size_t>(c.entry_id - 1)].hash != c.head_hash)
      return fail("hash differs from entry " + std::to_string(c.entry_id) + " (chain rewritten)");
    if (lookup) {
      auto it = keys.find(c.key_id);
      if (it == keys.end()) it = keys.emplace(c.key_id, lookup(c.key_id)).first;
      if (!it->second.ok()) return fail("key " + to_hex(c.key_id) + ": " + it->second.error().message);
      if (!signature_verifies(it->second.value(), audit_checkpoint_message(c.entry_id, c.head_hash, c.ts),
                              c.signature))
        return fail("signature does not verify");
    }
    ++r.checked;
  }
  return r;
}

}  // namespace gridtrust::pki
