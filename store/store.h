#pragma once
// The PKI's persistent state. pki/ and (later) the daemon use this interface, never
// SQL, so that another backend (PostgreSQL for several daemons sharing one PKI) can
// implement it with the same guarantees:
//  - a serial is reserved durably before it is signed, unique per issuer;
//  - a certificate and its audit entry commit together or not at all;
//  - every state change appends to the hash-chained audit log;
//  - concurrent writers may share one durable commit (group commit).
#include <atomic>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "core/rejection.h"
#include "store/records.h"
#include "store/rotation_records.h"

namespace gridtrust::store {

// The largest sequence number the store keeps (command_sequences, as SQLite integers).
inline constexpr std::uint64_t kMaxSequence = 1ULL << 62;

class Store {
 public:
  virtual ~Store() = default;

  // Durably reserves fresh serials for an issuer. Fails with conflict.serial_collision
  // if any is already taken (the caller draws new ones).
  virtual Status reserve_serials(const std::string& issuer, const std::vector<std::string>& serials) = 0;

  // Commits a signed certificate (its serial must be reserved) with its audit entry.
  // The future resolves once the commit is durable.
  // `issuer_chain` lists the (issuer, serial) of every CA above the certificate; the
  // commit is refused with issuer.revoked if any of them was revoked meanwhile, so a
  // revocation racing an issuance can never leave a valid leaf under a revoked CA.
  virtual std::future<Status> record_issuance_async(CertificateRecord cert, AuditEvent event,
                                                    std::vector<std::pair<std::string, std::string>> issuer_chain) = 0;
  Status record_issuance(CertificateRecord cert, AuditEvent event,
                         std::vector<std::pair<std::string, std::string>> issuer_chain = {}) {
    return record_issuance_async(std::move(cert), std::move(event), std::move(issuer_chain)).get();
  }

  // A CA: its certificate row plus its issuer row, in one commit.
  virtual Status record_issuer(IssuerRecord issuer, CertificateRecord cert, AuditEvent event) = 0;
  virtual Result<std::optional<IssuerRecord>> issuer(const std::string& profile) = 0;
  virtual Result<std::vector<IssuerRecord>> issuers() = 0;

  virtual Result<std::vector<CertificateRecord>> find_by_serial(const std::string& serial) = 0;
  virtual Result<std::vector<CertificateRecord>> list(const CertificateFilter& filter) = 0;
  virtual Result<std::vector<CertificateRecord>> revoked_by(const std::string& issuer) = 0;
  // Whether any of these (issuer, serial) certificates is revoked: one read on the
  // issuance hot path for a whole CA chain.
  virtual Result<bool> any_revoked(const std::vector<std::pair<std::string, std::string>>& certs) = 0;
  // A number that moves whenever a revocation starts or ends, whichever process makes
  // it: a clean any_revoked answer read after epoch E (E >= 0) holds while the epoch is
  // still E. -1 while a revocation is in flight: nothing may be cached then. Cheap
  // enough to ask for every signed command (no database read).
  virtual std::int64_t revocation_epoch() = 0;

  // Marks a certificate revoked (conflict.already_revoked if it is) and audits it.
  // With `cascade_reason`, a CA certificate takes every valid certificate below it
  // along, in the same transaction; asked again for an already revoked CA, the cascade
  // runs again (so an interrupted one can be completed) instead of failing.
  virtual Result<CertificateRecord> revoke(const std::string& issuer, const std::string& serial, int reason,
                                           std::int64_t when, AuditEvent event,
                                           std::optional<int> cascade_reason = std::nullopt) = 0;

  // The next CRL number (RFC 5280 5.2.3: monotonically increasing) together with the
  // revoked certificates it must list, read in the same transaction: a higher-numbered
  // CRL never lists less than a lower-numbered one.
  struct CrlSnapshot {
    std::int64_t number = 0;
    std::vector<CertificateRecord> revoked;
  };
  virtual Result<CrlSnapshot> crl_snapshot(const std::string& issuer, const std::string& actor) = 0;

  // Queues an audit entry on the writer and returns at once: for refusals and other
  // events the daemon records off its request path.
  virtual std::future<Status> append_audit_async(AuditEvent event) = 0;
  Status append_audit(AuditEvent event) { return append_audit_async(std::move(event)).get(); }
  // The newest entry (id 0 and the genesis hash for an empty chain).
  virtual Result<AuditEntry> audit_head() = 0;
  virtual Status record_checkpoint(AuditCheckpoint checkpoint) = 0;
  virtual Result<std::vector<AuditCheckpoint>> audit_checkpoints() = 0;
  virtual Result<std::vector<AuditEntry>> audit_entries() = 0;

  // Signed-command sequence numbers per (signer, station). reserve_sequences hands out
  // `count` numbers above every number handed out before, durably, and returns the
  // first. accept_sequence records `seq` as accepted if it is above the last accepted
  // one and says whether it was (false: a replay or a reordering).
  virtual Result<std::uint64_t> reserve_sequences(const std::string& signer, const std::string& station,
                                                  std::uint64_t count) = 0;
  virtual Result<bool> accept_sequence(const std::string& signer, const std::string& station, std::uint64_t seq) = 0;
  // reserve_sequences for several stations in one durable commit: entry i is the first
  // of the `count` numbers reserved for stations[i] (a station listed twice gets two
  // blocks).
  virtual Result<std::vector<std::uint64_t>> reserve_sequence_blocks(const std::string& signer,
                                                                     const std::vector<std::string>& stations,
                                                                     std::uint64_t count) {
    std::vector<std::uint64_t> out;
    out.reserve(stations.size());
    for (const auto& s : stations) {
      auto r = reserve_sequences(signer, s, count);
      if (!r.ok()) return r.error();
      out.push_back(*r);
    }
    return out;
  }
  // Many accept_sequence calls at once, in order, durable together (a batch of
  // setpoints is one commit, not one per entry). Entry i of the result says whether
  // claim i was accepted; a later claim sees the earlier ones.
  struct SequenceClaim {
    std::string signer;
    std::string station;
    std::uint64_t seq = 0;
  };
  virtual Result<std::vector<bool>> accept_sequences(const std::vector<SequenceClaim>& claims) {
    std::vector<bool> out;
    out.reserve(claims.size());
    for (const auto& c : claims) {
      auto r = accept_sequence(c.signer, c.station, c.seq);
      if (!r.ok()) return r.error();
      out.push_back(*r);
    }
    return out;
  }
  // The rotation scheduler (store/rotation_records.h, docs/rotation.md). Every write
  // commits together with its audit entry.
  virtual Result<std::vector<RotationEntry>> rotation_entries() = 0;
  // Inserts or replaces the role's row (first sight of a key, start of a rotation).
  virtual Status save_rotation(RotationEntry entry, AuditEvent event) = 0;
  // The switch-over: the role's new row and the key it retires, in one commit.
  virtual Status switch_rotation(RotationEntry entry, RetiredKey retired, AuditEvent event) = 0;
  virtual Result<std::vector<RetiredKey>> retired_keys() = 0;
  virtual Status mark_key_destroyed(std::int64_t retired_id, std::int64_t when, AuditEvent event) = 0;
  // Valid certificates of these profiles that have no renewal row yet.
  virtual Result<std::vector<CertificateRecord>> unscheduled_certificates(const std::vector<std::string>& profiles) = 0;
  // New renewal rows; a still scheduled row of an older certificate of the same
  // (profile, subject) becomes superseded in the same commit.
  virtual Status schedule_renewals(std::vector<RenewalEntry> entries) = 0;
  // Rows in `state` (any state when unset) by due time, at most `limit`.
  virtual Result<std::vector<RenewalEntry>> renewals(std::optional<std::string> state, std::size_t limit) = 0;
  // Count of renewal rows per state.
  virtual Result<std::vector<std::pair<std::string, std::int64_t>>> renewal_counts() = 0;
  // Puts renewal triggers into the outbox and marks their rows queued, one audit entry
  // each; an id already in the outbox is left as it is (idempotent after a crash).
  virtual Status enqueue_renewals(std::vector<OutboxEntry> entries, std::string actor) = 0;
  // Any OCPP request for a station into the outbox (the dispatch engine's signed
  // SetChargingProfileRequests), with `event` as the one audit entry of the commit; an
  // id already in the outbox is left as it is (store/outbox_store.cpp).
  // A backend without an outbox refuses (store.unsupported).
  virtual Status enqueue_outbox(std::vector<OutboxEntry> entries, AuditEvent event) {
    (void)entries;
    (void)event;
    return reject("store.unsupported", "this store has no outbox");
  }
  // Renewal triggers (ids "renew:...") enqueued in [from, to): the scheduler's hourly
  // budget, persisted across restarts.
  virtual Result<std::int64_t> outbox_enqueued_between(std::int64_t from, std::int64_t to) = 0;
  // In enqueue order; unacknowledged only unless include_acked.
  virtual Result<std::vector<OutboxEntry>> outbox_entries(std::size_t limit, bool include_acked = false) = 0;
  virtual Result<std::int64_t> outbox_pending_count() = 0;

  // Dispatch sessions changed through the API (docs/dispatch.md): the session as JSON
  // (dispatch::session_to_json), or nothing once stopped. Oldest change first.
  struct DispatchSession {
    std::string ev;
    std::optional<std::string> session;
    std::int64_t updated_at = 0;
  };
  virtual Status save_dispatch_session(const std::string& ev, std::optional<std::string> session, std::int64_t at) = 0;
  virtual Result<std::vector<DispatchSession>> dispatch_sessions() = 0;
  // What the dispatch engine last told each EVSE (docs/dispatch.md): the applied range,
  // until when it holds, and the last setpoint for the ramp. The last commit wins: an
  // engine commits its decisions in the order it makes them. `version` is the engine's
  // change counter, for diagnosis (two processes count separately).
  struct DispatchEvseState {
    std::string evse;  // "<station>#<evse>"
    double lo_w = 0, hi_w = 0;
    std::int64_t until = 0;
    std::optional<double> last_w;
    std::int64_t last_at = 0;
    std::uint64_t version = 0;
  };
  // Writes that build on each other, submitted in order (the dispatch engine decides a
  // group while the one before it is still being written). Once one of them is not
  // recorded, every later one of the same chain is refused, store.chain_broken, with
  // nothing written; `failed_from` is then the position of the first that failed. A
  // store must break the chain on every failure of a chained write (the engine undoes
  // the later groups on that promise), and positions are submitted ascending.
  struct WriteChain {
    static constexpr std::uint64_t kNone = ~std::uint64_t{0};
    std::atomic<std::uint64_t> failed_from{kNone};
    bool broken() const { return failed_from.load() != kNone; }
    // Whether the record at `position` is refused: it comes at or after the first failure.
    bool refuses(std::uint64_t position) const { return position >= failed_from.load(); }
    // The record at `position` failed: it and every later one are refused.
    void fail_from(std::uint64_t position) {
      std::uint64_t seen = failed_from.load();
      while (position < seen && !failed_from.compare_exchange_weak(seen, position)) {
      }
    }
  };
  // The sequence numbers of a group of decisions (accepted as accept_sequences does),
  // the EVSE states they set and their audit entry, in one durable commit. If any claim
  // is not above the last accepted one for its signer and station, nothing is written
  // and the answer is conflict.sequence. The future resolves once it is durable. With a
  // chain, `position` (ascending in submission order) places it in that chain.
  virtual std::future<Status> record_dispatch(std::vector<SequenceClaim> claims, std::vector<DispatchEvseState> states,
                                              std::optional<AuditEvent> audit,
                                              std::shared_ptr<WriteChain> chain = nullptr, std::uint64_t position = 0) = 0;
  virtual Result<std::vector<DispatchEvseState>> dispatch_evse_states() = 0;
  virtual Result<AckResult> ack_outbox(std::vector<std::string> ids, std::int64_t when, AuditEvent event) = 0;

  Result<AuditReport> verify_audit();
};

}  // namespace gridtrust::store
