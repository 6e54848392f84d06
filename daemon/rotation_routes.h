#pragma once
// The scheduler's API (docs/rotation.md):
//   GET  /v1/rotation/status   admin, operator, auditor, aggregator: what is due when
//   GET  /v1/outbox?limit=N    admin, aggregator: unacknowledged renewal triggers in
//                              queue order (reading delivers, it does not remove)
//   POST /v1/outbox/ack        admin, aggregator  {"ids":[...]}: idempotent; unknown ids
//                              are reported, not refused
#include "daemon/rotation_scheduler.h"
#include "daemon/router.h"

namespace gridtrust::daemon {

void add_rotation_routes(Router& router, RotationScheduler& scheduler, store::Store& store,
                         const app::SchedulerConfig& config);

}  // namespace gridtrust::daemon
