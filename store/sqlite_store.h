#pragma once
// SQLite backend: WAL, synchronous=FULL. All writes go through one writer thread that
// drains its queue into a single transaction (group commit), each job in its own
// savepoint so one failing job does not undo its neighbours.
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "store/database.h"
#include "store/revocation_signal.h"
#include "store/store.h"

namespace gridtrust::store {

class SqliteStore final : public Store {
 public:
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;

  Status reserve_serials(const std::string& issuer, const std::vector<std::string>& serials) override;
  std::future<Status> record_issuance_async(CertificateRecord cert, AuditEvent event,
                                            std::vector<std::pair<std::string, std::string>> issuer_chain) override;
  Status record_issuer(IssuerRecord issuer, CertificateRecord cert, AuditEvent event) override;
  Result<std::optional<IssuerRecord>> issuer(const std::string& profile) override;
  Result<std::vector<IssuerRecord>> issuers() override;
  Result<std::vector<CertificateRecord>> find_by_serial(const std::string& serial) override;
  Result<std::vector<CertificateRecord>> list(const CertificateFilter& filter) override;
  Result<std::vector<CertificateRecord>> revoked_by(const std::string& issuer) override;
  Result<bool> any_revoked(const std::vector<std::pair<std::string, std::string>>& certs) override;
  std::int64_t revocation_epoch() override { return signal_->epoch(); }
  Result<CertificateRecord> revoke(const std::string& issuer, const std::string& serial, int reason,
                                   std::int64_t when, AuditEvent event, std::optional<int> cascade_reason) override;
  Result<CrlSnapshot> crl_snapshot(const std::string& issuer, const std::string& actor) override;
  std::future<Status> append_audit_async(AuditEvent event) override;
  Result<AuditEntry> audit_head() override;
  Status record_checkpoint(AuditCheckpoint checkpoint) override;
  Result<std::vector<AuditCheckpoint>> audit_checkpoints() override;
  Result<std::vector<AuditEntry>> audit_entries() override;
  Result<std::uint64_t> reserve_sequences(const std::string& signer, const std::string& station,
                                          std::uint64_t count) override;
  Result<bool> accept_sequence(const std::string& signer, const std::string& station, std::uint64_t seq) override;
  Result<std::vector<std::uint64_t>> reserve_sequence_blocks(const std::string& signer,
                                                             const std::vector<std::string>& stations,
                                                             std::uint64_t count) override;
  Result<std::vector<bool>> accept_sequences(const std::vector<SequenceClaim>& claims) override;

  // The rotation scheduler (rotation_store.cpp).
  Result<std::vector<RotationEntry>> rotation_entries() override;
  Status save_rotation(RotationEntry entry, AuditEvent event) override;
  Status switch_rotation(RotationEntry entry, RetiredKey retired, AuditEvent event) override;
  Result<std::vector<RetiredKey>> retired_keys() override;
  Status mark_key_destroyed(std::int64_t retired_id, std::int64_t when, AuditEvent event) override;
  Result<std::vector<CertificateRecord>> unscheduled_certificates(const std::vector<std::string>& profiles) override;
  Status schedule_renewals(std::vector<RenewalEntry> entries) override;
  Result<std::vector<RenewalEntry>> renewals(std::optional<std::string> state, std::size_t limit) override;
  Result<std::vector<std::pair<std::string, std::int64_t>>> renewal_counts() override;
  Status enqueue_renewals(std::vector<OutboxEntry> entries, std::string actor) override;
  Status enqueue_outbox(std::vector<OutboxEntry> entries, AuditEvent event) override;  // outbox_store.cpp
  Result<std::int64_t> outbox_enqueued_between(std::int64_t from, std::int64_t to) override;
  Result<std::vector<OutboxEntry>> outbox_entries(std::size_t limit, bool include_acked) override;
  Result<std::int64_t> outbox_pending_count() override;
  Status save_dispatch_session(const std::string& ev, std::optional<std::string> session, std::int64_t at) override;
  Result<std::vector<DispatchSession>> dispatch_sessions() override;
  std::future<Status> record_dispatch(std::vector<SequenceClaim> claims, std::vector<DispatchEvseState> states,
                                      std::optional<AuditEvent> audit, std::shared_ptr<WriteChain> chain = nullptr,
                                      std::uint64_t position = 0) override;
  Result<std::vector<DispatchEvseState>> dispatch_evse_states() override;
  Result<AckResult> ack_outbox(std::vector<std::string> ids, std::int64_t when, AuditEvent event) override;

  // Commits made so far (for the benchmark's group-commit figure).
  std::uint64_t commits() const { return commits_; }

 private:
  using WriteFn = std::function<Status(Database&)>;
  struct Job {
    WriteFn fn;
    std::promise<Status> done;
    std::shared_ptr<WriteChain> chain;  // refused once an earlier job of its chain failed
    std::uint64_t position = 0;
    void fail_chain() const;
  };

  SqliteStore(Database writer, Database reader, std::unique_ptr<RevocationSignal> signal);
  std::future<Status> submit(WriteFn fn, std::shared_ptr<WriteChain> chain = nullptr, std::uint64_t position = 0);
  void writer_loop();
  template <typename T>
  Result<T> read(const std::function<T(Database&)>& fn);
  // read() for rotation_store.cpp, which does not see read()'s definition.
  template <typename T>
  Result<T> read_rotation(const std::function<T(Database&)>& fn);

  Database writer_db_;
  Database reader_db_;
  std::unique_ptr<RevocationSignal> signal_;
  std::mutex reader_mu_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::uint64_t commits_ = 0;
  std::thread writer_;
};

// Appends an audit entry inside the writer's open transaction (sqlite_store.cpp).
void append_audit_in_transaction(Database& db, const AuditEvent& ev);

}  // namespace gridtrust::store
