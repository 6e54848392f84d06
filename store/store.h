#pragma once
// The PKI's persistent state. pki/ and (later) the daemon use this interface, never
// SQL, so that another backend (PostgreSQL for several daemons sharing one PKI) can
// implement it with the same guarantees:
//  - a serial is reserved durably before it is signed, unique per issuer;
//  - a certificate and its audit entry commit together or not at all;
//  - every state change appends to the hash-chained audit log;
//  - concurrent writers may share one durable commit (group commit).
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "core/rejection.h"
#include "store/records.h"

namespace gridtrust::store {

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
  Result<AuditReport> verify_audit();
};

}  // namespace gridtrust::store
