#pragma once
// What is due when: the daemon's keys and their next re-key, the retired keys waiting
// for destruction, the station renewal schedule and the outbox. One JSON answer for
// `gridtrust rotation status [--json]` (offline, from the store) and gridtrustd's
// GET /v1/rotation/status (which adds the scheduler's own state).
#include <cstddef>
#include <string>

#include <boost/json.hpp>

#include "core/rejection.h"
#include "core/time.h"
#include "store/store.h"

namespace gridtrust::app {

// {"now", "keys":[...], "retired_keys":[...], "renewals":{...}, "outbox":{"pending"}}
Result<boost::json::object> rotation_status_json(store::Store& st, TimePoint now, std::size_t upcoming = 10);

// The same as text for a terminal.
std::string rotation_status_text(const boost::json::object& status);

}  // namespace gridtrust::app
