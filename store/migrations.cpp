#include <vector>

#include "store/database.h"

namespace gridtrust::store {
namespace {

// Append only: each entry moves the schema one version up (PRAGMA user_version).
const std::vector<const char*>& migrations() {
  static const std::vector<const char*> m = {
      // 1: the PKI and the audit chain.
      R"sql(
CREATE TABLE issuers (
  profile     TEXT PRIMARY KEY,
  parent      TEXT NOT NULL,
  serial      TEXT NOT NULL,
  subject     TEXT NOT NULL,
  key_label   TEXT NOT NULL,
  key_id      BLOB NOT NULL,
  cert_der    BLOB NOT NULL,
  not_before  INTEGER NOT NULL,
  not_after   INTEGER NOT NULL,
  crl_number  INTEGER NOT NULL DEFAULT 0
);
-- A serial is reserved (durably) before the signature is made; a crash can leave a
-- reserved serial without a certificate, never a certificate without its serial.
CREATE TABLE serials (
  issuer      TEXT NOT NULL,
  serial      TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('reserved', 'issued')),
  reserved_at INTEGER NOT NULL,
  PRIMARY KEY (issuer, serial)
);
CREATE TABLE certificates (
  id          INTEGER PRIMARY KEY,
  issuer      TEXT NOT NULL,
  serial      TEXT NOT NULL,
  profile     TEXT NOT NULL,
  subject     TEXT NOT NULL,
  not_before  INTEGER NOT NULL,
  not_after   INTEGER NOT NULL,
  issued_at   INTEGER NOT NULL,
  der         BLOB NOT NULL,
  key_label   TEXT,
  key_id      BLOB,
  status      TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
  revoked_at  INTEGER,
  reason      INTEGER,
  UNIQUE (issuer, serial),
  FOREIGN KEY (issuer, serial) REFERENCES serials (issuer, serial)
);
CREATE INDEX certificates_serial ON certificates (serial);
CREATE INDEX certificates_profile ON certificates (profile, not_after);
CREATE TABLE audit (
  id        INTEGER PRIMARY KEY,
  ts        INTEGER NOT NULL,
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,
  subject   TEXT NOT NULL,
  details   TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
);
-- Append-only: the store never updates or deletes audit rows.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
)sql",
      // 2: signed checkpoints of the audit chain head.
      R"sql(
CREATE TABLE audit_checkpoints (
  id         INTEGER PRIMARY KEY,
  entry_id   INTEGER NOT NULL,
  head_hash  TEXT NOT NULL,
  ts         INTEGER NOT NULL,
  key_id     BLOB NOT NULL,
  signature  BLOB NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
)sql",
      // 3: sequence numbers of signed commands, per (signer, station): what a signer
      // has handed out ('issued') and what a verifier has accepted ('accepted').
      R"sql(
CREATE TABLE command_sequences (
  direction TEXT NOT NULL CHECK (direction IN ('issued', 'accepted')),
  signer    TEXT NOT NULL,
  station   TEXT NOT NULL,
  last      INTEGER NOT NULL,
  PRIMARY KEY (direction, signer, station)
) WITHOUT ROWID;
)sql",
      // 4: the rotation scheduler (docs/rotation.md): the daemon's own keys, the keys
      // it retired, the renewal schedule of station certificates and the outbox.
      R"sql(
CREATE TABLE rotation_schedule (
  role            TEXT PRIMARY KEY,
  key_label       TEXT NOT NULL,
  key_id          BLOB NOT NULL,
  issuer          TEXT NOT NULL,
  serial          TEXT NOT NULL,
  generation      INTEGER NOT NULL,
  interval_days   INTEGER NOT NULL,
  last_rotated_at INTEGER NOT NULL,
  next_due        INTEGER NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('active', 'rotating')),
  pending_label   TEXT NOT NULL DEFAULT '',
  rotations       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE retired_keys (
  id             INTEGER PRIMARY KEY,
  role           TEXT NOT NULL,
  key_label      TEXT NOT NULL,
  key_id         BLOB NOT NULL,
  public_key_der BLOB NOT NULL,
  issuer         TEXT NOT NULL,
  serial         TEXT NOT NULL,
  retired_at     INTEGER NOT NULL,
  destroy_after  INTEGER NOT NULL,
  destroyed_at   INTEGER,
  -- The key that replaced it, and that key's signature over this one's public key
  -- (audit checkpoint keys): old checkpoints stay verifiable after destruction.
  successor_key_id BLOB,
  endorsement      BLOB,
  UNIQUE (key_label)
);
CREATE TABLE renewal_schedule (
  issuer   TEXT NOT NULL,
  serial   TEXT NOT NULL,
  profile  TEXT NOT NULL,
  subject  TEXT NOT NULL,
  due      INTEGER NOT NULL,
  state    TEXT NOT NULL CHECK (state IN ('scheduled', 'queued', 'superseded')),
  PRIMARY KEY (issuer, serial)
);
CREATE INDEX renewal_schedule_due ON renewal_schedule (state, due);
CREATE INDEX renewal_schedule_subject ON renewal_schedule (profile, subject);
CREATE TABLE outbox (
  seq         INTEGER PRIMARY KEY,
  id          TEXT NOT NULL UNIQUE,
  station     TEXT NOT NULL,
  profile     TEXT NOT NULL,
  serial      TEXT NOT NULL,
  action      TEXT NOT NULL,
  payload     TEXT NOT NULL,
  due         INTEGER NOT NULL,
  enqueued_at INTEGER NOT NULL,
  acked_at    INTEGER
);
CREATE INDEX outbox_enqueued ON outbox (enqueued_at);
CREATE INDEX outbox_pending ON outbox (acked_at, seq);
)sql",
      // 5: EV sessions changed through the dispatch API, over the registry file at
      // start (session NULL: stopped).
      R"sql(
CREATE TABLE dispatch_sessions (
  ev         TEXT PRIMARY KEY,
  session    TEXT,
  updated_at INTEGER NOT NULL,
  change     INTEGER NOT NULL
);
)sql",
      // 6: what the dispatch engine last told each EVSE, so that a restart counts the
      // setpoints still in force against their site's limits.
      R"sql(
CREATE TABLE dispatch_evse_state (
  evse    TEXT PRIMARY KEY,
  lo_w    REAL NOT NULL,
  hi_w    REAL NOT NULL,
  until   INTEGER NOT NULL,
  last_w  REAL,
  last_at INTEGER NOT NULL,
  version INTEGER NOT NULL
);
)sql",
      // 7: dispatch_evse_state keyed by its EVSE alone (no rowid and separate index):
      // every group of decisions rewrites its rows.
      R"sql(
CREATE TABLE dispatch_evse_state_7 (
  evse    TEXT PRIMARY KEY,
  lo_w    REAL NOT NULL,
  hi_w    REAL NOT NULL,
  until   INTEGER NOT NULL,
  last_w  REAL,
  last_at INTEGER NOT NULL,
  version INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO dispatch_evse_state_7 (evse, lo_w, hi_w, until, last_w, last_at, version)
  SELECT evse, lo_w, hi_w, until, last_w, last_at, version FROM dispatch_evse_state;
DROP TABLE dispatch_evse_state;
ALTER TABLE dispatch_evse_state_7 RENAME TO dispatch_evse_state;
)sql",
  };
  return m;
}

}  // namespace

int schema_version() { return static_cast<int>(migrations().size()); }

Status apply_migrations(Database& db) {
  try {
    int current = 0;
    {
      // Finished before any migration runs: an open statement would lock the tables a
      // migration drops.
      Statement v(db.handle(), "PRAGMA user_version");
      v.step();
      current = static_cast<int>(v.int64(0));
    }
    if (current > schema_version())
      return reject("store.schema_too_new", "database schema version " + std::to_string(current) +
                                                " is newer than this build (" +
                                                std::to_string(schema_version()) + ")");
    for (int i = current; i < schema_version(); ++i) {
      db.exec("BEGIN IMMEDIATE");
      {
        // Another process may have migrated while we waited for the write lock.
        Statement again(db.handle(), "PRAGMA user_version");
        again.step();
        if (again.int64(0) > i) {
          db.exec("COMMIT");
          i = static_cast<int>(again.int64(0)) - 1;
          continue;
        }
      }
      try {
        db.exec(migrations()[i]);
        db.exec(("PRAGMA user_version=" + std::to_string(i + 1)).c_str());
        db.exec("COMMIT");
      } catch (...) {
        db.exec("ROLLBACK");
        throw;
      }
    }
  } catch (const StoreError& e) {
    return reject("store.migration_failed", e.what());
  }
  return Ok{};
}

}  // namespace gridtrust::store
