#include "cli/audit_report.h"

#include "store/audit_chain.h"

namespace gridtrust::app {

Result<AuditVerification> verify_audit(store::Store& st, const CheckpointToken& token) {
  AuditVerification v;
  GT_TRY_ASSIGN(auto entries, st.audit_entries());
  v.chain = store::verify_chain(entries);
  if (!v.chain.ok) return v;
  GT_TRY_ASSIGN(auto checkpoints, st.audit_checkpoints());
  auto t = token();
  if (!t.ok()) {
    v.note = "token unavailable (" + t.error().code + "): checkpoint signatures not verified, chain and links only";
    v.checkpoints = pki::verify_audit_checkpoints(entries, checkpoints, nullptr);
    return v;
  }
  std::shared_ptr<hsm::Token> keys = std::move(t).value();
  // Checkpoint keys the scheduler retired and destroyed (docs/rotation.md): each one's
  // public key counts only as endorsed by its successor, back to a key in the token.
  GT_TRY_ASSIGN(auto retired, st.retired_keys());
  std::function<Result<Bytes>(const Bytes&, int)> lookup = [&](const Bytes& id, int depth) -> Result<Bytes> {
    auto key = keys->find_key_by_id(id);
    if (key.ok()) return key->public_key_der;
    for (const auto& r : retired) {
      if (r.key_id != id || r.role != "audit-checkpoint" || r.successor_key_id.empty() || depth > 64) continue;
      GT_TRY_ASSIGN(Bytes successor, lookup(r.successor_key_id, depth + 1));
      if (!pki::checkpoint_signature_verifies(successor, pki::checkpoint_key_succession_message(r.key_id, r.public_key_der),
                                              r.endorsement))
        return reject("audit.bad_key_succession",
                      "retired checkpoint key " + to_hex(id) + " is not endorsed by its successor");
      return r.public_key_der;
    }
    return key.error();
  };
  v.checkpoints = pki::verify_audit_checkpoints(entries, checkpoints,
                                                [&lookup](const Bytes& id) { return lookup(id, 0); });
  return v;
}

boost::json::object audit_report_json(const AuditVerification& v) {
  boost::json::object o;
  o["ok"] = v.ok();
  o["entries"] = v.chain.entries;
  if (v.chain.first_bad_id) o["first_bad_id"] = *v.chain.first_bad_id;
  if (v.checkpoints.first_bad_entry) o["first_bad_id"] = *v.checkpoints.first_bad_entry;
  if (!v.chain.ok) o["problem"] = v.chain.problem;
  else if (!v.checkpoints.ok) o["problem"] = v.checkpoints.problem;
  else o["head"] = v.chain.head_hash;
  o["checkpoints"] = v.checkpoints.checked;
  o["signatures_checked"] = v.checkpoints.signatures_checked;
  if (!v.note.empty()) o["note"] = v.note;
  return o;
}

}  // namespace gridtrust::app
