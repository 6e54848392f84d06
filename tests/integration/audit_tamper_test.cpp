// `gridtrust audit verify` against a tampered store: the sqlite3 CLI (triggers
// dropped first) plays the attacker who can write the database but not sign with
// the token's audit-checkpoint key.
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "tests/support/test_support.h"

namespace gt = gridtrust;
using gt::test::CommandResult;
using gt::test::InitializedPki;
using gt::test::run;
using gt::test::sh_quote;

namespace {

// A PKI with issuances and a signed checkpoint of the head, and a pristine copy of
// its database that every case starts from.
struct Fixture {
  InitializedPki pki;
  std::string db;
  std::string pristine;
  long head = 0;

  Fixture() {
    db = pki.data_dir() + "/gridtrust.db";
    pristine = pki.dir() / "pristine.db";
    for (int i = 0; i < 3; ++i) {
      auto r = pki.gt("issue --profile csms-server --subject 'CN=cs" + std::to_string(i) +
                      ".example,O=gridtrust demo' --generate-key");
      INFO(describe(r));
      REQUIRE(r.exit_code == 0);
    }
    auto c = pki.gt("audit checkpoint");
    INFO(describe(c));
    REQUIRE(c.exit_code == 0);
    head = std::stol(sql("SELECT max(id) FROM audit"));
    REQUIRE(head > 10);
    REQUIRE(sql("SELECT count(*) FROM audit_checkpoints") == "1");
    REQUIRE(sql("SELECT entry_id FROM audit_checkpoints") == std::to_string(head));
    REQUIRE(run("sqlite3 " + sh_quote(db) + " 'PRAGMA wal_checkpoint(TRUNCATE);' && cp " + sh_quote(db) + " " +
                sh_quote(pristine)).exit_code == 0);
  }

  std::string sql(const std::string& statements) const {
    auto r = run("sqlite3 " + sh_quote(db) + " " + sh_quote(statements));
    INFO(describe(r));
    REQUIRE(r.exit_code == 0);
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  void restore() const {
    std::filesystem::remove(db + "-wal");
    std::filesystem::remove(db + "-shm");
    std::filesystem::copy_file(pristine, db, std::filesystem::copy_options::overwrite_existing);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void require_refused(const CommandResult& r, const std::string& code, long entry) {
  INFO(describe(r));
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("error: " + code + ": audit entry " + std::to_string(entry) + ":") != std::string::npos);
}

}  // namespace

TEST_CASE("an untampered audit chain and its signed checkpoint verify", "[integration][audit]") {
  auto& f = fixture();
  f.restore();
  auto r = f.pki.gt("audit verify --json");
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("\"ok\":true") != std::string::npos);
  CHECK(r.out.find("\"checkpoints\":1") != std::string::npos);
  CHECK(r.out.find("\"signatures_checked\":true") != std::string::npos);
}

TEST_CASE("a changed audit field breaks the chain at that entry", "[integration][audit]") {
  auto& f = fixture();
  f.restore();
  f.sql("DROP TRIGGER audit_no_update; UPDATE audit SET actor='cli:mallory' WHERE id=5;");
  require_refused(f.pki.gt("audit verify"), "audit.chain_broken", 5);
}

TEST_CASE("a deleted audit row breaks the chain at the entry after it", "[integration][audit]") {
  auto& f = fixture();
  f.restore();
  f.sql("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id=7;");
  require_refused(f.pki.gt("audit verify"), "audit.chain_broken", 8);
}

TEST_CASE("two audit rows with swapped contents break the chain at the first", "[integration][audit]") {
  auto& f = fixture();
  f.restore();
  f.sql("DROP TRIGGER audit_no_update;"
        "CREATE TABLE swap AS SELECT * FROM audit WHERE id IN (9, 10);"
        "UPDATE audit SET ts=s.ts, actor=s.actor, action=s.action, subject=s.subject, details=s.details, "
        "prev_hash=s.prev_hash, hash=s.hash FROM swap s WHERE s.id = 19 - audit.id;");
  REQUIRE(f.sql("SELECT count(*) FROM audit a JOIN swap s ON s.id = 10 WHERE a.id = 9 AND a.hash = s.hash") == "1");
  require_refused(f.pki.gt("audit verify"), "audit.chain_broken", 9);
}

TEST_CASE("a truncated tail that the hash chain cannot see fails the checkpoint", "[integration][audit]") {
  auto& f = fixture();
  f.restore();
  f.sql("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id=" + std::to_string(f.head) + ";");
  require_refused(f.pki.gt("audit verify"), "audit.checkpoint_invalid", f.head);
}

TEST_CASE("a forged checkpoint signature is refused", "[integration][audit]") {
  auto& f = fixture();
  f.restore();
  // A well-formed ECDSA-Sig-Value (r = s = 1) that the checkpoint key never made.
  f.sql("DROP TRIGGER audit_checkpoints_no_update; UPDATE audit_checkpoints SET signature=X'3006020101020101';");
  require_refused(f.pki.gt("audit verify"), "audit.checkpoint_invalid", f.head);
}

TEST_CASE("a checkpoint moved to another entry is refused", "[integration][audit]") {
  auto& f = fixture();
  f.restore();
  f.sql("DROP TRIGGER audit_checkpoints_no_update; UPDATE audit_checkpoints SET entry_id=entry_id-1, "
        "head_hash=(SELECT hash FROM audit WHERE id=" + std::to_string(f.head - 1) + ");");
  require_refused(f.pki.gt("audit verify"), "audit.checkpoint_invalid", f.head - 1);
}

TEST_CASE("without the token audit verify checks the chain only and says so", "[integration][audit]") {
  auto& f = fixture();
  f.restore();
  std::string pin = f.pki.data_dir() + "/secrets/user.pin";
  std::filesystem::rename(pin, pin + ".away");
  auto r = f.pki.gt("audit verify");
  std::filesystem::rename(pin + ".away", pin);
  INFO(describe(r));
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("note: token unavailable") != std::string::npos);
  CHECK(r.out.find("1 checkpoints linked") != std::string::npos);
}
