// SqliteStore: the rotation scheduler's tables (migration 4, docs/rotation.md). Every
// write runs on the writer thread and commits with its audit entry.
#include <boost/json.hpp>

#include "store/sqlite_store.h"

namespace gridtrust::store {
namespace {

constexpr const char* kRotationColumns =
    "role, key_label, key_id, issuer, serial, generation, interval_days, last_rotated_at, next_due, state, "
    "pending_label, rotations";

RotationEntry rotation_from_row(const Statement& s) {
  RotationEntry e;
  e.role = s.text(0);
  e.key_label = s.text(1);
  e.key_id = s.blob(2);
  e.issuer = s.text(3);
  e.serial = s.text(4);
  e.generation = s.int64(5);
  e.interval_days = s.int64(6);
  e.last_rotated_at = s.int64(7);
  e.next_due = s.int64(8);
  e.state = s.text(9);
  e.pending_label = s.text(10);
  e.rotations = s.int64(11);
  return e;
}

void upsert_rotation(Database& db, const RotationEntry& e) {
  Statement s(db.handle(),
              "INSERT OR REPLACE INTO rotation_schedule (role, key_label, key_id, issuer, serial, generation, "
              "interval_days, last_rotated_at, next_due, state, pending_label, rotations) VALUES "
              "(?,?,?,?,?,?,?,?,?,?,?,?)");
  s.bind(1, e.role).bind(2, e.key_label).bind(3, e.key_id).bind(4, e.issuer).bind(5, e.serial);
  s.bind(6, e.generation).bind(7, e.interval_days).bind(8, e.last_rotated_at).bind(9, e.next_due);
  s.bind(10, e.state).bind(11, e.pending_label).bind(12, e.rotations);
  s.step();
}

OutboxEntry outbox_from_row(const Statement& s) {
  OutboxEntry e;
  e.seq = s.int64(0);
  e.id = s.text(1);
  e.station = s.text(2);
  e.profile = s.text(3);
  e.serial = s.text(4);
  e.action = s.text(5);
  e.payload = s.text(6);
  e.due = s.int64(7);
  e.enqueued_at = s.int64(8);
  if (!s.is_null(9)) e.acked_at = s.int64(9);
  return e;
}

}  // namespace

template <typename T>
Result<T> SqliteStore::read_rotation(const std::function<T(Database&)>& fn) {
  std::lock_guard g(reader_mu_);
  try {
    return fn(reader_db_);
  } catch (const StoreError& e) {
    return reject("store.read_failed", e.what());
  }
}

Result<std::vector<RotationEntry>> SqliteStore::rotation_entries() {
  return read_rotation<std::vector<RotationEntry>>([](Database& db) {
    std::vector<RotationEntry> out;
    Statement s(db.handle(), (std::string("SELECT ") + kRotationColumns + " FROM rotation_schedule ORDER BY role").c_str());
    while (s.step()) out.push_back(rotation_from_row(s));
    return out;
  });
}

Status SqliteStore::save_rotation(RotationEntry entry, AuditEvent event) {
  return submit([entry = std::move(entry), event = std::move(event)](Database& db) -> Status {
           upsert_rotation(db, entry);
           append_audit_in_transaction(db, event);
           return Ok{};
         })
      .get();
}

Status SqliteStore::switch_rotation(RotationEntry entry, RetiredKey retired, AuditEvent event) {
  return submit([entry = std::move(entry), r = std::move(retired), event = std::move(event)](Database& db) -> Status {
           upsert_rotation(db, entry);
           Statement s(db.handle(),
                       "INSERT OR IGNORE INTO retired_keys (role, key_label, key_id, public_key_der, issuer, serial, "
                       "retired_at, destroy_after, successor_key_id, endorsement) VALUES (?,?,?,?,?,?,?,?,?,?)");
           s.bind(1, r.role).bind(2, r.key_label).bind(3, r.key_id).bind(4, r.public_key_der);
           s.bind(5, r.issuer).bind(6, r.serial).bind(7, r.retired_at).bind(8, r.destroy_after);
           s.bind(9, r.successor_key_id).bind(10, r.endorsement);
           s.step();
           append_audit_in_transaction(db, event);
           return Ok{};
         })
      .get();
}

Result<std::vector<RetiredKey>> SqliteStore::retired_keys() {
  return read_rotation<std::vector<RetiredKey>>([](Database& db) {
    std::vector<RetiredKey> out;
    Statement s(db.handle(),
                "SELECT id, role, key_label, key_id, public_key_der, issuer, serial, retired_at, destroy_after, "
                "destroyed_at, successor_key_id, endorsement FROM retired_keys ORDER BY id");
    while (s.step()) {
      RetiredKey k;
      k.id = s.int64(0);
      k.role = s.text(1);
      k.key_label = s.text(2);
      k.key_id = s.blob(3);
      k.public_key_der = s.blob(4);
      k.issuer = s.text(5);
      k.serial = s.text(6);
      k.retired_at = s.int64(7);
      k.destroy_after = s.int64(8);
      if (!s.is_null(9)) k.destroyed_at = s.int64(9);
      if (!s.is_null(10)) k.successor_key_id = s.blob(10);
      if (!s.is_null(11)) k.endorsement = s.blob(11);
      out.push_back(std::move(k));
    }
    return out;
  });
}

Status SqliteStore::mark_key_destroyed(std::int64_t retired_id, std::int64_t when, AuditEvent event) {
  return submit([=, event = std::move(event)](Database& db) -> Status {
           Statement s(db.handle(), "UPDATE retired_keys SET destroyed_at=? WHERE id=? AND destroyed_at IS NULL");
           s.bind(1, when).bind(2, retired_id);
           s.step();
           if (db.changes() != 1) return Ok{};  // already recorded: nothing to audit twice
           append_audit_in_transaction(db, event);
           return Ok{};
         })
      .get();
}

Result<std::vector<CertificateRecord>> SqliteStore::unscheduled_certificates(const std::vector<std::string>& profiles) {
  return read_rotation<std::vector<CertificateRecord>>([&](Database& db) {
    std::vector<CertificateRecord> out;
    for (const auto& profile : profiles) {
      Statement s(db.handle(),
                  "SELECT issuer, serial, subject, not_before, not_after, issued_at FROM certificates c "
                  "WHERE profile=? AND status='valid' AND NOT EXISTS "
                  "(SELECT 1 FROM renewal_schedule r WHERE r.issuer=c.issuer AND r.serial=c.serial) ORDER BY id");
      s.bind(1, profile);
      while (s.step()) {
        CertificateRecord c;
        c.issuer = s.text(0);
        c.serial = s.text(1);
        c.profile = profile;
        c.subject = s.text(2);
        c.not_before = s.int64(3);
        c.not_after = s.int64(4);
        c.issued_at = s.int64(5);
        out.push_back(std::move(c));
      }
    }
    return out;
  });
}

Status SqliteStore::schedule_renewals(std::vector<RenewalEntry> entries) {
  if (entries.empty()) return Ok{};
  return submit([entries = std::move(entries)](Database& db) -> Status {
           Statement supersede(db.handle(),
                               "UPDATE renewal_schedule SET state='superseded' WHERE profile=? AND subject=? AND "
                               "state='scheduled' AND NOT (issuer=? AND serial=?)");
           Statement ins(db.handle(),
                         "INSERT OR IGNORE INTO renewal_schedule (issuer, serial, profile, subject, due, state) "
                         "VALUES (?,?,?,?,?,?)");
           std::size_t superseded = 0;
           for (const auto& e : entries) {
             // Entries come oldest certificate first: a newer one supersedes the older.
             supersede.bind(1, e.profile).bind(2, e.subject).bind(3, e.issuer).bind(4, e.serial);
             supersede.step();
             superseded += static_cast<std::size_t>(db.changes());
             supersede.reset();
             ins.bind(1, e.issuer).bind(2, e.serial).bind(3, e.profile).bind(4, e.subject).bind(5, e.due);
             ins.bind(6, e.state);
             ins.step();
             ins.reset();
           }
           boost::json::object what{{"scheduled", entries.size()}, {"superseded", superseded}};
           append_audit_in_transaction(db, AuditEvent{"daemon:scheduler", "renewal-schedule", "renewals",
                                                      boost::json::serialize(what)});
           return Ok{};
         })
      .get();
}

Result<std::vector<RenewalEntry>> SqliteStore::renewals(std::optional<std::string> state, std::size_t limit) {
  return read_rotation<std::vector<RenewalEntry>>([&](Database& db) {
    std::vector<RenewalEntry> out;
    Statement s(db.handle(),
                "SELECT issuer, serial, profile, subject, due, state FROM renewal_schedule "
                "WHERE (?1 IS NULL OR state=?1) ORDER BY due, issuer, serial LIMIT ?2");
    s.bind(1, state).bind(2, static_cast<std::int64_t>(limit));
    while (s.step())
      out.push_back(RenewalEntry{s.text(0), s.text(1), s.text(2), s.text(3), s.int64(4), s.text(5)});
    return out;
  });
}

Result<std::vector<std::pair<std::string, std::int64_t>>> SqliteStore::renewal_counts() {
  return read_rotation<std::vector<std::pair<std::string, std::int64_t>>>([](Database& db) {
    std::vector<std::pair<std::string, std::int64_t>> out;
    Statement s(db.handle(), "SELECT state, count(*) FROM renewal_schedule GROUP BY state ORDER BY state");
    while (s.step()) out.emplace_back(s.text(0), s.int64(1));
    return out;
  });
}

Status SqliteStore::enqueue_renewals(std::vector<OutboxEntry> entries, std::string actor) {
  if (entries.empty()) return Ok{};
  return submit([entries = std::move(entries), actor = std::move(actor)](Database& db) -> Status {
           Statement ins(db.handle(),
                         "INSERT OR IGNORE INTO outbox (id, station, profile, serial, action, payload, due, "
                         "enqueued_at) VALUES (?,?,?,?,?,?,?,?)");
           Statement mark(db.handle(),
                          "UPDATE renewal_schedule SET state='queued' WHERE serial=? AND profile=? AND state='scheduled'");
           for (const auto& e : entries) {
             ins.bind(1, e.id).bind(2, e.station).bind(3, e.profile).bind(4, e.serial).bind(5, e.action);
             ins.bind(6, e.payload).bind(7, e.due).bind(8, e.enqueued_at);
             ins.step();
             bool added = db.changes() == 1;
             ins.reset();
             mark.bind(1, e.serial).bind(2, e.profile);
             mark.step();
             mark.reset();
             if (!added) continue;
             boost::json::object what{{"outbox_id", e.id.c_str()},      {"station", e.station.c_str()},
                                      {"action", e.action.c_str()},     {"due", e.due},
                                      {"enqueued_at", e.enqueued_at}};
             append_audit_in_transaction(db, AuditEvent{actor, "renewal-trigger", e.profile + "/" + e.serial,
                                                        boost::json::serialize(what)});
           }
           return Ok{};
         })
      .get();
}

Result<std::int64_t> SqliteStore::outbox_enqueued_between(std::int64_t from, std::int64_t to) {
  return read_rotation<std::int64_t>([&](Database& db) {
    // Renewal triggers only: dispatch commands share the outbox, not the renewal budget.
    Statement s(db.handle(),
                "SELECT count(*) FROM outbox WHERE enqueued_at >= ? AND enqueued_at < ? AND id LIKE 'renew:%'");
    s.bind(1, from).bind(2, to);
    s.step();
    return s.int64(0);
  });
}

Result<std::vector<OutboxEntry>> SqliteStore::outbox_entries(std::size_t limit, bool include_acked) {
  return read_rotation<std::vector<OutboxEntry>>([&](Database& db) {
    std::vector<OutboxEntry> out;
    Statement s(db.handle(),
                "SELECT seq, id, station, profile, serial, action, payload, due, enqueued_at, acked_at FROM outbox "
                "WHERE (?1 OR acked_at IS NULL) ORDER BY seq LIMIT ?2");
    s.bind(1, static_cast<std::int64_t>(include_acked ? 1 : 0)).bind(2, static_cast<std::int64_t>(limit));
    while (s.step()) out.push_back(outbox_from_row(s));
    return out;
  });
}

Result<std::int64_t> SqliteStore::outbox_pending_count() {
  return read_rotation<std::int64_t>([](Database& db) {
    Statement s(db.handle(), "SELECT count(*) FROM outbox WHERE acked_at IS NULL");
    s.step();
    return s.int64(0);
  });
}

Result<AckResult> SqliteStore::ack_outbox(std::vector<std::string> ids, std::int64_t when, AuditEvent event) {
  AckResult out;
  Status st = submit([&](Database& db) -> Status {
                out = AckResult{};
                Statement q(db.handle(), "SELECT acked_at FROM outbox WHERE id=?");
                Statement u(db.handle(), "UPDATE outbox SET acked_at=? WHERE id=? AND acked_at IS NULL");
                for (const auto& id : ids) {
                  q.bind(1, id);
                  bool found = q.step();
                  bool acked_before = found && !q.is_null(0);
                  q.reset();
                  if (!found) {
                    out.unknown.push_back(id);
                  } else if (acked_before) {
                    out.already_acked.push_back(id);
                  } else {
                    u.bind(1, when).bind(2, id);
                    u.step();
                    u.reset();
                    out.acked.push_back(id);
                  }
                }
                if (out.acked.empty()) return Ok{};
                boost::json::object what{{"acked", out.acked.size()},
                                         {"already_acked", out.already_acked.size()},
                                         {"unknown", out.unknown.size()}};
                if (event.details.empty() || event.details == "{}") event.details = boost::json::serialize(what);
                append_audit_in_transaction(db, event);
                return Ok{};
              }).get();
  if (!st.ok()) return st.error();
  return out;
}

}  // namespace gridtrust::store
