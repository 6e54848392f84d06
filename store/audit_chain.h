#pragma once
// The audit log is a hash chain: each entry's hash covers its own fields and the
// previous entry's hash, so a changed, deleted, inserted or reordered row breaks the
// chain at that row.
#include <string>
#include <vector>

#include "store/records.h"

namespace gridtrust::store {

inline constexpr const char* kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

std::string audit_entry_hash(const AuditEntry& e);

// Checks ids are consecutive from 1, each prev_hash links and each hash recomputes.
AuditReport verify_chain(const std::vector<AuditEntry>& entries);

}  // namespace gridtrust::store
