#include "store/audit_chain.h"

#include "core/digest.h"

namespace gridtrust::store {
namespace {

// Length-prefixed fields: no two different entries serialise alike.
void field(std::string& out, const std::string& v) {
  out += std::to_string(v.size());
  out += ':';
  out += v;
  out += ';';
}

}  // namespace

std::string audit_entry_hash(const AuditEntry& e) {
  std::string s = "gridtrust-audit-v1;";
  field(s, std::to_string(e.id));
  field(s, std::to_string(e.ts));
  field(s, e.event.actor);
  field(s, e.event.action);
  field(s, e.event.subject);
  field(s, e.event.details);
  field(s, e.prev_hash);
  return to_hex(sha256(s));
}

AuditReport verify_chain(const std::vector<AuditEntry>& entries) {
  AuditReport r;
  std::string prev = kGenesisHash;
  std::int64_t expected_id = 1;
  for (const auto& e : entries) {
    auto fail = [&](std::string why) {
      r.ok = false;
      r.first_bad_id = e.id;
      r.problem = std::move(why);
    };
    if (e.id != expected_id) {
      fail("entry id " + std::to_string(e.id) + " follows " + std::to_string(expected_id - 1) +
           " (entries missing or inserted)");
    } else if (e.prev_hash != prev) {
      fail("prev_hash does not link to entry " + std::to_string(e.id - 1));
    } else if (audit_entry_hash(e) != e.hash) {
      fail("hash does not match the entry's contents");
    }
    if (!r.ok) return r;
    prev = e.hash;
    ++expected_id;
    ++r.entries;
  }
  r.head_hash = prev;
  return r;
}

}  // namespace gridtrust::store
