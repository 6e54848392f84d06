// SqliteStore: OCPP requests other than renewal triggers into the outbox (migration 4).
#include "store/sqlite_store.h"

namespace gridtrust::store {

Status SqliteStore::enqueue_outbox(std::vector<OutboxEntry> entries, AuditEvent event) {
  if (entries.empty()) return Ok{};
  return submit([entries = std::move(entries), event = std::move(event)](Database& db) -> Status {
           Statement ins(db.handle(),
                         "INSERT OR IGNORE INTO outbox (id, station, profile, serial, action, payload, due, "
                         "enqueued_at) VALUES (?,?,?,?,?,?,?,?)");
           for (const auto& e : entries) {
             ins.bind(1, e.id).bind(2, e.station).bind(3, e.profile).bind(4, e.serial).bind(5, e.action);
             ins.bind(6, e.payload).bind(7, e.due).bind(8, e.enqueued_at);
             ins.step();
             ins.reset();
           }
           append_audit_in_transaction(db, event);
           return Ok{};
         })
      .get();
}

}  // namespace gridtrust::store
