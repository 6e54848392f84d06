#include "store/sqlite_store.h"

#include <cmath>
#include <string_view>

#include "core/time.h"
#include "store/audit_chain.h"

namespace gridtrust::store {
namespace {

// A group of dispatch decisions writes a row per sequence number and per EVSE state.
// One statement per row spent most of the writer's time in SQLite's per-statement
// work (each statement's own journal, its halt), so the rows go in multi-row
// statements of kRowChunks[k] rows (the largest that fits what is left), same rows,
// same order: an upsert of a row sees the rows before it in the same statement.
constexpr std::size_t kRowChunks[] = {64, 8, 1};
constexpr std::size_t kChunkKinds = sizeof kRowChunks / sizeof kRowChunks[0];

// The statement text for each chunk size, built once; Database::prepared keys its
// cache by the text's address, which stays put.
class MultiRow {
 public:
  MultiRow(std::string_view head, std::string_view row, std::string_view tail) {
    for (std::size_t k = 0; k < kChunkKinds; ++k) {
      std::string& q = sql_[k];
      q = head;
      for (std::size_t i = 0; i < kRowChunks[k]; ++i) {
        if (i) q += ',';
        q += row;
      }
      q += tail;
    }
  }
  const char* sql(std::size_t kind) const { return sql_[kind].c_str(); }
  const char* one_row() const { return sql(kChunkKinds - 1); }

 private:
  std::string sql_[kChunkKinds];
};

// Runs `rows` over `items` in chunks: bind(statement, first parameter, item) binds one
// row and returns the next parameter; checked(first item, rows) after each chunk.
template <typename T, typename Bind, typename Check>
Status upsert_rows(Database& db, const MultiRow& rows, const std::vector<T>& items, Bind bind, Check checked) {
  for (std::size_t i = 0; i < items.size();) {
    std::size_t kind = 0;
    while (kRowChunks[kind] > items.size() - i) ++kind;
    const std::size_t n = kRowChunks[kind];
    auto s = db.prepared(rows.sql(kind));
    int param = 1;
    for (std::size_t j = 0; j < n; ++j) param = bind(*s, param, items[i + j]);
    s->step();
    GT_TRY(checked(i, n));
    i += n;
  }
  return Ok{};
}

// Accepts sequence numbers for (signer, station) that are above the last accepted one:
// sqlite3_changes() is the number of claims accepted.
const MultiRow& accept_sequence_rows() {
  static const MultiRow rows("INSERT INTO command_sequences (direction, signer, station, last) VALUES ",
                             "('accepted', ?, ?, ?)",
                             " ON CONFLICT (direction, signer, station) DO UPDATE SET last = excluded.last "
                             "WHERE excluded.last > command_sequences.last");
  return rows;
}

const MultiRow& evse_state_rows() {
  static const MultiRow rows("INSERT INTO dispatch_evse_state (evse, lo_w, hi_w, until, last_w, last_at, version) VALUES ",
                             "(?, ?, ?, ?, ?, ?, ?)",
                             " ON CONFLICT (evse) DO UPDATE SET lo_w = excluded.lo_w, hi_w = excluded.hi_w, "
                             "until = excluded.until, last_w = excluded.last_w, last_at = excluded.last_at, "
                             "version = excluded.version");
  return rows;
}

constexpr const char* kCertColumns =
    "issuer, serial, profile, subject, not_before, not_after, issued_at, der, key_label, key_id, "
    "status, revoked_at, reason";

CertificateRecord cert_from_row(const Statement& s) {
  CertificateRecord c;
  c.issuer = s.text(0);
  c.serial = s.text(1);
  c.profile = s.text(2);
  c.subject = s.text(3);
  c.not_before = s.int64(4);
  c.not_after = s.int64(5);
  c.issued_at = s.int64(6);
  c.der = s.blob(7);
  if (!s.is_null(8)) c.key_label = s.text(8);
  if (!s.is_null(9)) c.key_id = s.blob(9);
  c.status = s.text(10);
  if (!s.is_null(11)) c.revoked_at = s.int64(11);
  if (!s.is_null(12)) c.reason = s.int64(12);
  return c;
}

IssuerRecord issuer_from_row(const Statement& s) {
  return IssuerRecord{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4),
                      s.blob(5), s.blob(6), s.int64(7), s.int64(8)};
}

constexpr const char* kIssuerColumns =
    "profile, parent, serial, subject, key_label, key_id, cert_der, not_before, not_after";

void insert_certificate(Database& db, const CertificateRecord& c) {
  auto s = db.prepared(
      "INSERT INTO certificates (issuer, serial, profile, subject, not_before, not_after, "
      "issued_at, der, key_label, key_id) VALUES (?,?,?,?,?,?,?,?,?,?)");
  s->bind(1, c.issuer).bind(2, c.serial).bind(3, c.profile).bind(4, c.subject);
  s->bind(5, c.not_before).bind(6, c.not_after).bind(7, c.issued_at).bind(8, c.der);
  s->bind(9, c.key_label).bind(10, c.key_id);
  s->step();
}

// Appends one entry at the head of the chain; runs inside the writer's transaction,
// which holds SQLite's write lock, so the head cannot move underneath it.
void append(Database& db, const AuditEvent& ev) {
  AuditEntry e;
  e.prev_hash = kGenesisHash;
  e.id = 1;
  {
    auto head = db.prepared("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1");
    if (head->step()) {
      e.id = head->int64(0) + 1;
      e.prev_hash = head->text(1);
    }
  }
  e.ts = to_unix(now_seconds());
  e.event = ev;
  e.hash = audit_entry_hash(e);
  auto s = db.prepared(
      "INSERT INTO audit (id, ts, actor, action, subject, details, prev_hash, hash) "
      "VALUES (?,?,?,?,?,?,?,?)");
  s->bind(1, e.id).bind(2, e.ts).bind(3, ev.actor).bind(4, ev.action).bind(5, ev.subject);
  s->bind(6, ev.details).bind(7, e.prev_hash).bind(8, e.hash);
  s->step();
}

}  // namespace

// The chain append for the other translation units of the store (rotation_store.cpp).
void append_audit_in_transaction(Database& db, const AuditEvent& ev) { append(db, ev); }

Result<AuditReport> Store::verify_audit() {
  GT_TRY_ASSIGN(auto entries, audit_entries());
  return verify_chain(entries);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  GT_TRY_ASSIGN(Database w, Database::open(path));
  GT_TRY(apply_migrations(w));
  GT_TRY_ASSIGN(Database r, Database::open(path));
  auto signal = RevocationSignal::open(path);
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(w), std::move(r), std::move(signal)));
}

SqliteStore::SqliteStore(Database writer, Database reader, std::unique_ptr<RevocationSignal> signal)
    : writer_db_(std::move(writer)), reader_db_(std::move(reader)), signal_(std::move(signal)) {
  writer_ = std::thread([this] { writer_loop(); });
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

void SqliteStore::Job::fail_chain() const {
  if (chain) chain->fail_from(position);
}

std::future<Status> SqliteStore::submit(WriteFn fn, std::shared_ptr<WriteChain> chain, std::uint64_t position) {
  auto job = std::make_shared<Job>();
  job->fn = std::move(fn);
  job->chain = std::move(chain);
  job->position = position;
  auto fut = job->done.get_future();
  {
    std::lock_guard g(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return fut;
}

void SqliteStore::writer_loop() {
  for (;;) {
    std::deque<std::shared_ptr<Job>> batch;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      batch.swap(queue_);
    }
    std::vector<Status> results;
    results.reserve(batch.size());
    Status commit_status = Ok{};
    try {
      // Prepared once (the statement cache): sqlite3_exec would parse them at every commit.
      writer_db_.prepared("BEGIN IMMEDIATE")->step();
      for (auto& job : batch) {
        if (job->chain && job->chain->refuses(job->position)) {
          results.push_back(reject("store.chain_broken", "not written: an earlier write it builds on was not recorded"));
          continue;
        }
        writer_db_.prepared("SAVEPOINT job")->step();
        Status st = Ok{};
        try {
          st = job->fn(writer_db_);
        } catch (const StoreError& e) {
          st = reject(e.rc == SQLITE_CONSTRAINT ? "conflict.constraint" : "store.write_failed", e.what());
        } catch (const std::exception& e) {
          // Nothing may escape the writer thread: its callers wait on these promises.
          st = reject("internal.error", e.what());
        }
        if (!st.ok()) {
          writer_db_.prepared("ROLLBACK TO job")->step();
          job->fail_chain();
        }
        writer_db_.prepared("RELEASE job")->step();
        results.push_back(std::move(st));
      }
      writer_db_.prepared("COMMIT")->step();
      ++commits_;
    } catch (const std::exception& e) {
      sqlite3_exec(writer_db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
      commit_status = reject("store.write_failed", std::string("commit failed: ") + e.what());
    }
    // A chain learns of a failure before anyone waiting on it does.
    if (!commit_status.ok())
      for (auto& job : batch) job->fail_chain();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!commit_status.ok()) batch[i]->done.set_value(commit_status);
      else batch[i]->done.set_value(std::move(results[i]));
    }
  }
}

template <typename T>
Result<T> SqliteStore::read(const std::function<T(Database&)>& fn) {
  std::lock_guard g(reader_mu_);
  try {
    return fn(reader_db_);
  } catch (const StoreError& e) {
    return reject("store.read_failed", e.what());
  }
}

Status SqliteStore::reserve_serials(const std::string& issuer, const std::vector<std::string>& serials) {
  return submit([&](Database& db) -> Status {
           std::int64_t now = to_unix(now_seconds());
           Statement s(db.handle(),
                       "INSERT OR IGNORE INTO serials (issuer, serial, state, reserved_at) VALUES (?,?,'reserved',?)");
           for (const auto& serial : serials) {
             s.bind(1, issuer).bind(2, serial).bind(3, now);
             s.step();
             if (db.changes() != 1) return reject("conflict.serial_collision", "serial " + serial + " already used");
             s.reset();
           }
           return Ok{};
         })
      .get();
}

std::future<Status> SqliteStore::record_issuance_async(CertificateRecord cert, AuditEvent event,
                                                       std::vector<std::pair<std::string, std::string>> issuer_chain) {
  return submit([cert = std::move(cert), event = std::move(event),
                 chain = std::move(issuer_chain)](Database& db) -> Status {
    for (auto& [issuer, serial] : chain) {
      auto q = db.prepared("SELECT status FROM certificates WHERE issuer=? AND serial=?");
      q->bind(1, issuer).bind(2, serial);
      if (q->step() && q->text(0) == "revoked")
        return reject("issuer.revoked", "an issuing CA was revoked before certificate " + cert.serial + " was stored");
    }
    auto mark = db.prepared("UPDATE serials SET state='issued' WHERE issuer=? AND serial=? AND state='reserved'");
    mark->bind(1, cert.issuer).bind(2, cert.serial);
    mark->step();
    if (db.changes() != 1)
      return reject("conflict.serial_not_reserved", "serial " + cert.serial + " was not reserved for " + cert.issuer);
    insert_certificate(db, cert);
    append(db, event);
    return Ok{};
  });
}

Status SqliteStore::record_issuer(IssuerRecord iss, CertificateRecord cert, AuditEvent event) {
  return submit([&](Database& db) -> Status {
           Statement mark(db.handle(),
                          "UPDATE serials SET state='issued' WHERE issuer=? AND serial=? AND state='reserved'");
           mark.bind(1, cert.issuer).bind(2, cert.serial);
           mark.step();
           if (db.changes() != 1)
             return reject("conflict.serial_not_reserved", "serial " + cert.serial + " was not reserved");
           insert_certificate(db, cert);
           Statement s(db.handle(),
                       "INSERT INTO issuers (profile, parent, serial, subject, key_label, key_id, cert_der, "
                       "not_before, not_after) VALUES (?,?,?,?,?,?,?,?,?)");
           s.bind(1, iss.profile).bind(2, iss.parent).bind(3, iss.serial).bind(4, iss.subject);
           s.bind(5, iss.key_label).bind(6, iss.key_id).bind(7, iss.cert_der);
           s.bind(8, iss.not_before).bind(9, iss.not_after);
           s.step();
           append(db, event);
           return Ok{};
         })
      .get();
}

Result<std::optional<IssuerRecord>> SqliteStore::issuer(const std::string& profile) {
  return read<std::optional<IssuerRecord>>([&](Database& db) -> std::optional<IssuerRecord> {
    Statement s(db.handle(), (std::string("SELECT ") + kIssuerColumns + " FROM issuers WHERE profile=?").c_str());
    s.bind(1, profile);
    if (!s.step()) return std::nullopt;
    return issuer_from_row(s);
  });
}

Result<std::vector<IssuerRecord>> SqliteStore::issuers() {
  return read<std::vector<IssuerRecord>>([&](Database& db) {
    std::vector<IssuerRecord> out;
    Statement s(db.handle(), (std::string("SELECT ") + kIssuerColumns + " FROM issuers ORDER BY rowid").c_str());
    while (s.step()) out.push_back(issuer_from_row(s));
    return out;
  });
}

Result<std::vector<CertificateRecord>> SqliteStore::find_by_serial(const std::string& serial) {
  return read<std::vector<CertificateRecord>>([&](Database& db) {
    // Every OCSP request reads this: prepared once per connection, not per call.
    static const std::string sql = std::string("SELECT ") + kCertColumns + " FROM certificates WHERE serial=?";
    std::vector<CertificateRecord> out;
    auto s = db.prepared(sql.c_str());
    s->bind(1, serial);
    while (s->step()) out.push_back(cert_from_row(*s));
    return out;
  });
}

Result<std::vector<CertificateRecord>> SqliteStore::list(const CertificateFilter& f) {
  return read<std::vector<CertificateRecord>>([&](Database& db) {
    std::string sql = std::string("SELECT ") + kCertColumns +
                      " FROM certificates WHERE (?1 IS NULL OR profile=?1) AND (?2 IS NULL OR status=?2)"
                      " AND (?3 IS NULL OR not_after < ?3) ORDER BY id";
    Statement s(db.handle(), sql.c_str());
    s.bind(1, f.profile).bind(2, f.status).bind(3, f.expiring_before);
    std::vector<CertificateRecord> out;
    while (s.step()) out.push_back(cert_from_row(s));
    return out;
  });
}

Result<std::vector<CertificateRecord>> SqliteStore::revoked_by(const std::string& issuer) {
  return read<std::vector<CertificateRecord>>([&](Database& db) {
    Statement s(db.handle(), (std::string("SELECT ") + kCertColumns +
                              " FROM certificates WHERE issuer=? AND status='revoked' AND serial NOT IN "
                              "(SELECT serial FROM issuers WHERE profile=?) ORDER BY id").c_str());
    s.bind(1, issuer).bind(2, issuer);
    std::vector<CertificateRecord> out;
    while (s.step()) out.push_back(cert_from_row(s));
    return out;
  });
}

Result<bool> SqliteStore::any_revoked(const std::vector<std::pair<std::string, std::string>>& certs) {
  // One read transaction for the whole chain: each autocommit SELECT would take and
  // release SQLite's WAL read lock (several fcntl calls) on its own.
  return read<bool>([&](Database& db) {
    db.prepared("BEGIN")->step();
    try {
      bool revoked = false;
      for (auto& [issuer, serial] : certs) {
        auto q = db.prepared("SELECT status FROM certificates WHERE issuer=? AND serial=?");
        q->bind(1, issuer).bind(2, serial);
        if (q->step() && q->text(0) == "revoked") {
          revoked = true;
          break;
        }
      }
      db.prepared("COMMIT")->step();
      return revoked;
    } catch (const StoreError&) {
      sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  });
}

Result<CertificateRecord> SqliteStore::revoke(const std::string& issuer, const std::string& serial, int reason,
                                              std::int64_t when, AuditEvent event, std::optional<int> cascade_reason) {
  CertificateRecord out;
  auto set_revoked = [](Database& db, const std::string& iss, const std::string& ser, std::int64_t at, int why) {
    Statement u(db.handle(),
                "UPDATE certificates SET status='revoked', revoked_at=?, reason=? WHERE issuer=? AND serial=? "
                "AND status='valid'");
    u.bind(1, at).bind(2, static_cast<std::int64_t>(why)).bind(3, iss).bind(4, ser);
    u.step();
  };
  // Verifiers in every process stop trusting their cached "not revoked" before the
  // commit, and may cache again only after it (revocation_signal.h). A revocation that
  // could not be announced is not made.
  if (signal_->off()) return *signal_->off();
  signal_->begin();
  struct Ended {
    RevocationSignal& s;
    ~Ended() { s.end(); }
  } ended{*signal_};
  Status st = submit([&](Database& db) -> Status {
                Statement q(db.handle(), (std::string("SELECT ") + kCertColumns +
                                          " FROM certificates WHERE issuer=? AND serial=?").c_str());
                q.bind(1, issuer).bind(2, serial);
                if (!q.step()) return reject("notfound.certificate", "no certificate " + serial + " from " + issuer);
                out = cert_from_row(q);
                bool already = out.status == "revoked";
                if (already && !cascade_reason)
                  return reject("conflict.already_revoked", "certificate " + serial + " is already revoked");
                if (!already) {
                  set_revoked(db, issuer, serial, when, reason);
                  append(db, event);
                  out.status = "revoked";
                  out.revoked_at = when;
                  out.reason = reason;
                }
                if (!cascade_reason) return Ok{};
                std::size_t cascaded = 0;
                // Walk down from the CA this certificate belongs to (if it is one).
                std::vector<std::string> cas;
                {
                  Statement ca(db.handle(), "SELECT profile FROM issuers WHERE serial=? AND parent=? AND profile<>parent");
                  ca.bind(1, serial).bind(2, issuer);
                  while (ca.step()) cas.push_back(ca.text(0));
                }
                while (!cas.empty()) {
                  std::string ca = cas.back();
                  cas.pop_back();
                  std::vector<std::pair<std::string, std::string>> below;
                  {
                    Statement c(db.handle(),
                                "SELECT serial, profile FROM certificates WHERE issuer=? AND status='valid' AND NOT "
                                "EXISTS (SELECT 1 FROM issuers i WHERE i.profile=certificates.issuer AND "
                                "i.parent=i.profile AND i.serial=certificates.serial)");
                    c.bind(1, ca);
                    while (c.step()) below.emplace_back(c.text(0), c.text(1));
                  }
                  for (auto& [child_serial, child_profile] : below) {
                    ++cascaded;
                    set_revoked(db, ca, child_serial, when, *cascade_reason);
                    append(db, AuditEvent{event.actor, "revoke", ca + "/" + child_serial,
                                          "{\"reason\":" + std::to_string(*cascade_reason) +
                                              ",\"cascade_from\":\"" + issuer + "/" + serial + "\"}"});
                    Statement sub(db.handle(), "SELECT profile FROM issuers WHERE serial=? AND parent=?");
                    sub.bind(1, child_serial).bind(2, ca);
                    while (sub.step()) cas.push_back(sub.text(0));
                  }
                }
                // Asked again for a CA already revoked: completing an interrupted
                // cascade is the point; with nothing left to do it is a conflict.
                if (already && cascaded == 0)
                  return reject("conflict.already_revoked", "certificate " + serial + " is already revoked");
                return Ok{};
              }).get();
  if (!st.ok()) return st.error();
  return out;
}

Result<Store::CrlSnapshot> SqliteStore::crl_snapshot(const std::string& issuer, const std::string& actor) {
  CrlSnapshot snap;
  Status st = submit([&](Database& db) -> Status {
                snap.revoked.clear();
                Statement u(db.handle(), "UPDATE issuers SET crl_number = crl_number + 1 WHERE profile=? RETURNING crl_number");
                u.bind(1, issuer);
                if (!u.step()) return reject("notfound.issuer", "no issuer " + issuer);
                snap.number = u.int64(0);
                while (u.step()) {}
                Statement q(db.handle(), (std::string("SELECT ") + kCertColumns +
                                          " FROM certificates WHERE issuer=? AND status='revoked' AND serial NOT IN "
                                          "(SELECT serial FROM issuers WHERE profile=? AND parent=profile) ORDER BY id").c_str());
                q.bind(1, issuer).bind(2, issuer);
                while (q.step()) snap.revoked.push_back(cert_from_row(q));
                append(db, AuditEvent{actor, "crl", issuer,
                                      "{\"number\":" + std::to_string(snap.number) +
                                          ",\"revoked\":" + std::to_string(snap.revoked.size()) + "}"});
                return Ok{};
              }).get();
  if (!st.ok()) return st.error();
  return snap;
}

std::future<Status> SqliteStore::append_audit_async(AuditEvent event) {
  return submit([event = std::move(event)](Database& db) -> Status {
    append(db, event);
    return Ok{};
  });
}

Result<AuditEntry> SqliteStore::audit_head() {
  return read<AuditEntry>([&](Database& db) {
    AuditEntry head;
    head.hash = kGenesisHash;
    Statement s(db.handle(), "SELECT id, ts, hash FROM audit ORDER BY id DESC LIMIT 1");
    if (s.step()) {
      head.id = s.int64(0);
      head.ts = s.int64(1);
      head.hash = s.text(2);
    }
    return head;
  });
}

Status SqliteStore::record_checkpoint(AuditCheckpoint c) {
  return submit([c = std::move(c)](Database& db) -> Status {
           Statement s(db.handle(),
                       "INSERT INTO audit_checkpoints (entry_id, head_hash, ts, key_id, signature) VALUES (?,?,?,?,?)");
           s.bind(1, c.entry_id).bind(2, c.head_hash).bind(3, c.ts).bind(4, c.key_id).bind(5, c.signature);
           s.step();
           return Ok{};
         })
      .get();
}

Result<std::vector<AuditCheckpoint>> SqliteStore::audit_checkpoints() {
  return read<std::vector<AuditCheckpoint>>([&](Database& db) {
    std::vector<AuditCheckpoint> out;
    Statement s(db.handle(),
                "SELECT id, entry_id, head_hash, ts, key_id, signature FROM audit_checkpoints ORDER BY id");
    while (s.step())
      out.push_back(AuditCheckpoint{s.int64(0), s.int64(1), s.text(2), s.int64(3), s.blob(4), s.blob(5)});
    return out;
  });
}

Result<std::vector<AuditEntry>> SqliteStore::audit_entries() {
  return read<std::vector<AuditEntry>>([&](Database& db) {
    std::vector<AuditEntry> out;
    Statement s(db.handle(),
                "SELECT id, ts, actor, action, subject, details, prev_hash, hash FROM audit ORDER BY rowid");
    while (s.step()) {
      AuditEntry e;
      e.id = s.int64(0);
      e.ts = s.int64(1);
      e.event = AuditEvent{s.text(2), s.text(3), s.text(4), s.text(5)};
      e.prev_hash = s.text(6);
      e.hash = s.text(7);
      out.push_back(std::move(e));
    }
    return out;
  });
}

Result<std::uint64_t> SqliteStore::reserve_sequences(const std::string& signer, const std::string& station,
                                                     std::uint64_t count) {
  GT_TRY_ASSIGN(auto first, reserve_sequence_blocks(signer, {station}, count));
  return first.front();
}

Result<std::vector<std::uint64_t>> SqliteStore::reserve_sequence_blocks(const std::string& signer,
                                                                        const std::vector<std::string>& stations,
                                                                        std::uint64_t count) {
  if (count == 0 || count > (1ULL << 32)) return reject("usage.bad_value", "sequence block size out of range");
  std::vector<std::uint64_t> first(stations.size(), 0);
  if (stations.empty()) return first;
  Status st = submit([&](Database& db) -> Status {
                auto s = db.prepared(
                    "INSERT INTO command_sequences (direction, signer, station, last) VALUES ('issued', ?, ?, ?) "
                    "ON CONFLICT (direction, signer, station) DO UPDATE SET last = last + ? RETURNING last");
                for (std::size_t i = 0; i < stations.size(); ++i) {
                  s->reset();
                  s->bind(1, signer).bind(2, stations[i]).bind(3, static_cast<std::int64_t>(count))
                      .bind(4, static_cast<std::int64_t>(count));
                  if (!s->step()) return reject("store.write_failed", "sequence reservation returned nothing");
                  first[i] = static_cast<std::uint64_t>(s->int64(0)) - count + 1;
                  while (s->step()) {
                  }
                }
                return Ok{};
              }).get();
  if (!st.ok()) return st.error();
  return first;
}

Result<bool> SqliteStore::accept_sequence(const std::string& signer, const std::string& station, std::uint64_t seq) {
  if (seq == 0 || seq > kMaxSequence) return reject("usage.bad_value", "sequence number out of range");
  bool accepted = false;
  Status st = submit([&](Database& db) -> Status {
                auto s = db.prepared(
                    accept_sequence_rows().one_row());
                s->bind(1, signer).bind(2, station).bind(3, static_cast<std::int64_t>(seq));
                s->step();
                accepted = sqlite3_changes(db.handle()) == 1;
                return Ok{};
              }).get();
  if (!st.ok()) return st.error();
  return accepted;
}

Status SqliteStore::save_dispatch_session(const std::string& ev, std::optional<std::string> session, std::int64_t at) {
  return submit([&](Database& db) -> Status {
           auto s = db.prepared(
               "INSERT INTO dispatch_sessions (ev, session, updated_at, change) "
               "VALUES (?, ?, ?, (SELECT COALESCE(MAX(change), 0) + 1 FROM dispatch_sessions)) "
               "ON CONFLICT (ev) DO UPDATE SET session = excluded.session, updated_at = excluded.updated_at, "
               "change = excluded.change");
           s->bind(1, ev);
           if (session) s->bind(2, *session);
           else s->bind_null(2);
           s->bind(3, at);
           s->step();
           return Ok{};
         }).get();
}

Result<std::vector<Store::DispatchSession>> SqliteStore::dispatch_sessions() {
  return read<std::vector<DispatchSession>>([](Database& db) {
    std::vector<DispatchSession> out;
    Statement q(db.handle(), "SELECT ev, session, updated_at FROM dispatch_sessions ORDER BY change");
    while (q.step()) {
      DispatchSession d;
      d.ev = q.text(0);
      if (!q.is_null(1)) d.session = q.text(1);
      d.updated_at = q.int64(2);
      out.push_back(std::move(d));
    }
    return out;
  });
}

std::future<Status> SqliteStore::record_dispatch(std::vector<SequenceClaim> claims,
                                                 std::vector<DispatchEvseState> states,
                                                 std::optional<AuditEvent> audit, std::shared_ptr<WriteChain> chain,
                                                 std::uint64_t position) {
  // Checked by the writer, in turn, so that a refusal breaks the chain like any other.
  return submit([claims = std::move(claims), states = std::move(states), audit = std::move(audit)](Database& db) -> Status {
    for (const auto& c : claims)
      if (c.seq == 0 || c.seq > kMaxSequence) return reject("usage.bad_value", "sequence number out of range");
    for (const auto& st : states)
      if (st.version > (1ULL << 62) || !std::isfinite(st.lo_w) || !std::isfinite(st.hi_w) ||
          (st.last_w && !std::isfinite(*st.last_w)))
        return reject("usage.bad_value", "EVSE state of " + st.evse + " out of range");
    GT_TRY(upsert_rows(
        db, accept_sequence_rows(), claims,
        [](Statement& s, int p, const SequenceClaim& c) {
          s.bind(p, c.signer).bind(p + 1, c.station).bind(p + 2, static_cast<std::int64_t>(c.seq));
          return p + 3;
        },
        [&](std::size_t first, std::size_t n) -> Status {
          // The writer rolls this job back: none of it is kept.
          if (static_cast<std::size_t>(sqlite3_changes(db.handle())) == n) return Ok{};
          return reject("conflict.sequence", "a sequence number of " + claims[first].station +
                                                 (n > 1 ? " .. " + claims[first + n - 1].station : std::string()) +
                                                 " is not above the last accepted one");
        }));
    GT_TRY(upsert_rows(
        db, evse_state_rows(), states,
        [](Statement& s, int p, const DispatchEvseState& st) {
          s.bind(p, st.evse).bind_real(p + 1, st.lo_w).bind_real(p + 2, st.hi_w).bind(p + 3, st.until);
          if (st.last_w) s.bind_real(p + 4, *st.last_w);
          else s.bind_null(p + 4);
          s.bind(p + 5, st.last_at).bind(p + 6, static_cast<std::int64_t>(st.version));
          return p + 7;
        },
        [](std::size_t, std::size_t) -> Status { return Ok{}; }));
    if (audit) append(db, *audit);
    return Ok{};
  }, std::move(chain), position);
}

Result<std::vector<Store::DispatchEvseState>> SqliteStore::dispatch_evse_states() {
  return read<std::vector<DispatchEvseState>>([](Database& db) {
    std::vector<DispatchEvseState> out;
    Statement q(db.handle(), "SELECT evse, lo_w, hi_w, until, last_w, last_at, version FROM dispatch_evse_state");
    while (q.step()) {
      DispatchEvseState d;
      d.evse = q.text(0);
      d.lo_w = q.real(1);
      d.hi_w = q.real(2);
      d.until = q.int64(3);
      if (!q.is_null(4)) d.last_w = q.real(4);
      d.last_at = q.int64(5);
      d.version = static_cast<std::uint64_t>(q.int64(6));
      out.push_back(std::move(d));
    }
    return out;
  });
}

Result<std::vector<bool>> SqliteStore::accept_sequences(const std::vector<SequenceClaim>& claims) {
  for (const auto& c : claims)
    if (c.seq == 0 || c.seq > kMaxSequence) return reject("usage.bad_value", "sequence number out of range");
  std::vector<bool> accepted(claims.size(), false);
  if (claims.empty()) return accepted;
  Status st = submit([&](Database& db) -> Status {
                auto s = db.prepared(
                    accept_sequence_rows().one_row());
                for (std::size_t i = 0; i < claims.size(); ++i) {
                  s->reset();
                  s->bind(1, claims[i].signer).bind(2, claims[i].station).bind(3, static_cast<std::int64_t>(claims[i].seq));
                  s->step();
                  accepted[i] = sqlite3_changes(db.handle()) == 1;
                }
                return Ok{};
              }).get();
  if (!st.ok()) return st.error();
  return accepted;
}

}  // namespace gridtrust::store
