#pragma once
// A Store that hands every call to a SqliteStore, except record_dispatch, which a test
// can make fail the ways a store might: by throwing instead of answering, or by giving
// a future that never gets its answer (a broken promise). For the engine's tests of
// what it does when the store misbehaves; the rest is the real store.
#include <atomic>
#include <future>
#include <stdexcept>

#include "store/sqlite_store.h"

namespace gridtrust::test {
namespace misbehaving {
using namespace gridtrust::store;  // the Store interface's own types, as sqlite_store.h names them

class MisbehavingStore final : public store::Store {
 public:
  enum class Fault { None, Throw, BrokenPromise };
  explicit MisbehavingStore(store::SqliteStore& inner) : inner_(inner) {}
  // The next `count` record_dispatch calls fail with `fault`; later ones go through.
  void fail_next(Fault fault, int count = 1) {
    fault_ = fault;
    remaining_ = count;
  }
  int faults_served() const { return served_; }

  std::future<Status> record_dispatch(std::vector<SequenceClaim> claims, std::vector<DispatchEvseState> states,
                                      std::optional<AuditEvent> audit, std::shared_ptr<WriteChain> chain,
                                      std::uint64_t position) override {
    int left = remaining_.load();
    while (left > 0 && !remaining_.compare_exchange_weak(left, left - 1)) {
    }
    if (left > 0) {
      ++served_;
      if (fault_ == Fault::Throw) throw std::runtime_error("injected: the store threw");
      if (fault_ == Fault::BrokenPromise) {
        std::promise<Status> gone;
        return gone.get_future();  // the promise dies unanswered: get() throws broken_promise
      }
    }
    return inner_.record_dispatch(std::move(claims), std::move(states), std::move(audit), std::move(chain), position);
  }

  // Everything else: the real store.
  Status reserve_serials(const std::string& issuer, const std::vector<std::string>& serials) override {
    return inner_.reserve_serials(issuer, serials);
  }
  std::future<Status> record_issuance_async(CertificateRecord cert, AuditEvent event,
                                            std::vector<std::pair<std::string, std::string>> issuer_chain) override {
    return inner_.record_issuance_async(std::move(cert), std::move(event), std::move(issuer_chain));
  }
  Status record_issuer(IssuerRecord issuer, CertificateRecord cert, AuditEvent event) override {
    return inner_.record_issuer(std::move(issuer), std::move(cert), std::move(event));
  }
  Result<std::optional<IssuerRecord>> issuer(const std::string& profile) override { return inner_.issuer(profile); }
  Result<std::vector<IssuerRecord>> issuers() override { return inner_.issuers(); }
  Result<std::vector<CertificateRecord>> find_by_serial(const std::string& serial) override {
    return inner_.find_by_serial(serial);
  }
  Result<std::vector<CertificateRecord>> list(const CertificateFilter& filter) override { return inner_.list(filter); }
  Result<std::vector<CertificateRecord>> revoked_by(const std::string& issuer) override {
    return inner_.revoked_by(issuer);
  }
  Result<bool> any_revoked(const std::vector<std::pair<std::string, std::string>>& certs) override {
    return inner_.any_revoked(certs);
  }
  std::int64_t revocation_epoch() override { return inner_.revocation_epoch(); }
  Result<CertificateRecord> revoke(const std::string& issuer, const std::string& serial, int reason, std::int64_t when,
                                   AuditEvent event, std::optional<int> cascade_reason) override {
    return inner_.revoke(issuer, serial, reason, when, std::move(event), std::move(cascade_reason));
  }
  Result<CrlSnapshot> crl_snapshot(const std::string& issuer, const std::string& actor) override {
    return inner_.crl_snapshot(issuer, actor);
  }
  std::future<Status> append_audit_async(AuditEvent event) override {
    return inner_.append_audit_async(std::move(event));
  }
  Result<AuditEntry> audit_head() override { return inner_.audit_head(); }
  Status record_checkpoint(AuditCheckpoint checkpoint) override {
    return inner_.record_checkpoint(std::move(checkpoint));
  }
  Result<std::vector<AuditCheckpoint>> audit_checkpoints() override { return inner_.audit_checkpoints(); }
  Result<std::vector<AuditEntry>> audit_entries() override { return inner_.audit_entries(); }
  Result<std::uint64_t> reserve_sequences(const std::string& signer, const std::string& station,
                                          std::uint64_t count) override {
    return inner_.reserve_sequences(signer, station, count);
  }
  Result<bool> accept_sequence(const std::string& signer, const std::string& station, std::uint64_t seq) override {
    return inner_.accept_sequence(signer, station, seq);
  }
  Result<std::vector<std::uint64_t>> reserve_sequence_blocks(const std::string& signer,
                                                             const std::vector<std::string>& stations,
                                                             std::uint64_t count) override {
    return inner_.reserve_sequence_blocks(signer, stations, count);
  }
  Result<std::vector<bool>> accept_sequences(const std::vector<SequenceClaim>& claims) override {
    return inner_.accept_sequences(claims);
  }
  Result<std::vector<RotationEntry>> rotation_entries() override { return inner_.rotation_entries(); }
  Status save_rotation(RotationEntry entry, AuditEvent event) override {
    return inner_.save_rotation(std::move(entry), std::move(event));
  }
  Status switch_rotation(RotationEntry entry, RetiredKey retired, AuditEvent event) override {
    return inner_.switch_rotation(std::move(entry), std::move(retired), std::move(event));
  }
  Result<std::vector<RetiredKey>> retired_keys() override { return inner_.retired_keys(); }
  Status mark_key_destroyed(std::int64_t retired_id, std::int64_t when, AuditEvent event) override {
    return inner_.mark_key_destroyed(retired_id, when, std::move(event));
  }
  Result<std::vector<CertificateRecord>> unscheduled_certificates(const std::vector<std::string>& profiles) override {
    return inner_.unscheduled_certificates(profiles);
  }
  Status schedule_renewals(std::vector<RenewalEntry> entries) override {
    return inner_.schedule_renewals(std::move(entries));
  }
  Result<std::vector<RenewalEntry>> renewals(std::optional<std::string> state, std::size_t limit) override {
    return inner_.renewals(std::move(state), limit);
  }
  Result<std::vector<std::pair<std::string, std::int64_t>>> renewal_counts() override {
    return inner_.renewal_counts();
  }
  Status enqueue_renewals(std::vector<OutboxEntry> entries, std::string actor) override {
    return inner_.enqueue_renewals(std::move(entries), std::move(actor));
  }
  Status enqueue_outbox(std::vector<OutboxEntry> entries, AuditEvent event) override {
    return inner_.enqueue_outbox(std::move(entries), std::move(event));
  }
  Result<std::int64_t> outbox_enqueued_between(std::int64_t from, std::int64_t to) override {
    return inner_.outbox_enqueued_between(from, to);
  }
  Result<std::vector<OutboxEntry>> outbox_entries(std::size_t limit, bool include_acked) override {
    return inner_.outbox_entries(limit, include_acked);
  }
  Result<std::int64_t> outbox_pending_count() override { return inner_.outbox_pending_count(); }
  Status save_dispatch_session(const std::string& ev, std::optional<std::string> session, std::int64_t at) override {
    return inner_.save_dispatch_session(ev, std::move(session), at);
  }
  Result<std::vector<DispatchSession>> dispatch_sessions() override { return inner_.dispatch_sessions(); }
  Result<std::vector<DispatchEvseState>> dispatch_evse_states() override { return inner_.dispatch_evse_states(); }
  Result<AckResult> ack_outbox(std::vector<std::string> ids, std::int64_t when, AuditEvent event) override {
    return inner_.ack_outbox(std::move(ids), when, std::move(event));
  }

 private:
  store::SqliteStore& inner_;
  std::atomic<Fault> fault_{Fault::None};
  std::atomic<int> remaining_{0};
  std::atomic<int> served_{0};
};

}  // namespace misbehaving
using misbehaving::MisbehavingStore;

}  // namespace gridtrust::test
