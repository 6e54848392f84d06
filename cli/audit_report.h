#pragma once
// `audit verify`: the hash chain, then the signed checkpoints. One check and one JSON
// report for `gridtrust audit verify [--json]` and the daemon's GET /v1/audit/verify.
#include <functional>
#include <memory>
#include <string>

#include <boost/json.hpp>

#include "core/rejection.h"
#include "hsm/token.h"
#include "pki/audit_checkpoint.h"
#include "store/store.h"

namespace gridtrust::app {

struct AuditVerification {
  store::AuditReport chain;
  pki::CheckpointReport checkpoints;
  std::string note;  // why the checkpoint signatures were not checked, when they were not

  bool ok() const { return chain.ok && checkpoints.ok; }
};

// The token holding the checkpoint keys, or the rejection saying why it is not there.
using CheckpointToken = std::function<Result<std::shared_ptr<hsm::Token>>()>;

// The checkpoints are checked only on a chain that holds, and only then is `token`
// asked for. Without the token the check degrades instead of failing: the
// checkpoints' links are checked, their signatures are not, and the note says so.
Result<AuditVerification> verify_audit(store::Store& st, const CheckpointToken& token);

// {"ok", "entries", "first_bad_id"?, "problem" | "head", "checkpoints",
//  "signatures_checked", "note"?}
boost::json::object audit_report_json(const AuditVerification& v);

}  // namespace gridtrust::app
