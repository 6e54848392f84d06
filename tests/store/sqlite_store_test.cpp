#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include <sqlite3.h>

#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

using namespace gridtrust;
using namespace gridtrust::store;

namespace {
CertificateRecord cert(const std::string& issuer, const std::string& serial) {
  CertificateRecord c;
  c.issuer = issuer;
  c.serial = serial;
  c.profile = "secc";
  c.subject = "CN=x";
  c.not_before = 1;
  c.not_after = 2;
  c.issued_at = 1;
  c.der = {0x30, 0x00};
  return c;
}
AuditEvent ev(const std::string& what) { return AuditEvent{"test", "issue", what, "{}"}; }
}  // namespace

TEST_CASE("a certificate can only be recorded under a reserved serial") {
  test::TempDir dir;
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto& s = **st;
  auto r = s.record_issuance(cert("ca", "AA"), ev("ca/AA"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == "conflict.serial_not_reserved");
  REQUIRE(s.reserve_serials("ca", {"AA"}).ok());
  CHECK(s.record_issuance(cert("ca", "AA"), ev("ca/AA")).ok());
  // The same serial cannot be used twice.
  auto again = s.record_issuance(cert("ca", "AA"), ev("ca/AA"));
  CHECK(again.error().code == "conflict.serial_not_reserved");
  CHECK(s.reserve_serials("ca", {"AA"}).error().code == "conflict.serial_collision");
  // Same serial under another issuer is a different certificate.
  CHECK(s.reserve_serials("other", {"AA"}).ok());
}

TEST_CASE("a failed job rolls back alone and leaves no audit entry") {
  test::TempDir dir;
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto& s = **st;
  REQUIRE(s.reserve_serials("ca", {"01"}).ok());
  REQUIRE(s.record_issuance(cert("ca", "01"), ev("ok")).ok());
  REQUIRE_FALSE(s.record_issuance(cert("ca", "02"), ev("bad")).ok());
  auto entries = s.audit_entries();
  REQUIRE(entries.ok());
  CHECK(entries->size() == 1);
  CHECK(s.verify_audit()->ok);
}

TEST_CASE("concurrent issuances share durable commits and keep the chain intact") {
  test::TempDir dir;
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto& s = **st;
  constexpr int kThreads = 4, kEach = 100;
  std::vector<std::string> serials;
  for (int i = 0; i < kThreads * kEach; ++i) serials.push_back("S" + std::to_string(i));
  REQUIRE(s.reserve_serials("ca", serials).ok());
  std::uint64_t before = s.commits();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::vector<std::future<Status>> pending;
      for (int i = 0; i < kEach; ++i) {
        auto serial = serials[t * kEach + i];
        pending.push_back(s.record_issuance_async(cert("ca", serial), ev(serial), {}));
      }
      for (auto& f : pending)
        if (!f.get().ok()) ++failures;
    });
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(s.commits() - before < static_cast<std::uint64_t>(kThreads * kEach));
  auto report = s.verify_audit();
  REQUIRE(report.ok());
  CHECK(report->ok);
  CHECK(report->entries == kThreads * kEach);
  CertificateFilter all;
  CHECK(s.list(all)->size() == static_cast<std::size_t>(kThreads * kEach));
}

TEST_CASE("revocation is recorded once, with reason and time") {
  test::TempDir dir;
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto& s = **st;
  REQUIRE(s.reserve_serials("ca", {"0A"}).ok());
  REQUIRE(s.record_issuance(cert("ca", "0A"), ev("0A")).ok());
  auto r = s.revoke("ca", "0A", 1, 1234, ev("revoke"), std::nullopt);
  REQUIRE(r.ok());
  CHECK(r->status == "revoked");
  CHECK(*r->reason == 1);
  CHECK(s.revoke("ca", "0A", 1, 1235, ev("revoke"), std::nullopt).error().code == "conflict.already_revoked");
  CHECK(s.revoke("ca", "0B", 1, 1235, ev("revoke"), std::nullopt).error().code == "notfound.certificate");
  CHECK(s.revoked_by("ca")->size() == 1);
}

TEST_CASE("every process on one store sees a revocation move the revocation epoch") {
  test::TempDir dir;
  auto a = SqliteStore::open(dir / "t.db");
  auto b = SqliteStore::open(dir / "t.db");  // another process: the offline CLI
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE((*a)->reserve_serials("ca", {"0A", "0B"}).ok());
  REQUIRE((*a)->record_issuance(cert("ca", "0A"), ev("0A")).ok());
  const std::int64_t e0 = (*a)->revocation_epoch();
  REQUIRE(e0 >= 0);
  CHECK((*b)->revocation_epoch() == e0);
  REQUIRE((*b)->revoke("ca", "0A", 1, 1234, ev("revoke"), std::nullopt).ok());
  const std::int64_t e1 = (*a)->revocation_epoch();
  CHECK(e1 >= 0);
  CHECK(e1 != e0);
  // A refused revocation moves it too (it could not know beforehand).
  CHECK(!(*b)->revoke("ca", "0B", 1, 1234, ev("revoke"), std::nullopt).ok());
  CHECK((*a)->revocation_epoch() != e1);
}

TEST_CASE("a revocation in flight forbids caching; a revoker that died leaves it forbidden until the next open") {
  test::TempDir dir;
  REQUIRE(SqliteStore::open(dir / "t.db").ok());  // the database the signal sits next to
  auto signal = RevocationSignal::open(dir / "t.db");
  REQUIRE(!signal->off());
  const std::int64_t e0 = signal->epoch();
  REQUIRE(e0 >= 0);
  signal->begin();  // ... and the revoker dies before end()
  CHECK(signal->epoch() == -1);
  auto other = RevocationSignal::open(dir / "t.db");  // shared: it sees the same counters
  CHECK(other->epoch() >= 0);                          // settled at open
  CHECK(other->epoch() != e0);
  CHECK(signal->epoch() == other->epoch());
}

TEST_CASE("settling never brings back an epoch a stale answer was cached under") {
  test::TempDir dir;
  REQUIRE(SqliteStore::open(dir / "t.db").ok());
  auto revoker = RevocationSignal::open(dir / "t.db");
  auto reader = RevocationSignal::open(dir / "t.db");
  revoker->begin();                                       // a revocation starts, its commit pending
  auto cli = RevocationSignal::open(dir / "t.db");        // another command opens the store: settles
  const std::int64_t cached = reader->epoch();            // the reader caches "clean" under this
  REQUIRE(cached >= 0);
  revoker->end();                                         // the revocation committed and ended
  CHECK(reader->epoch() != cached);
  auto later = RevocationSignal::open(dir / "t.db");      // settles again
  CHECK(reader->epoch() >= 0);
  CHECK(reader->epoch() != cached);
}

TEST_CASE("a revocation signal that cannot be trusted turns caching off and refuses revocations") {
  test::TempDir dir;
  std::filesystem::path elsewhere = dir / "elsewhere";
  {
    auto st = SqliteStore::open(dir / "t.db");
    REQUIRE(st.ok());
    REQUIRE((*st)->reserve_serials("ca", {"0A"}).ok());
    REQUIRE((*st)->record_issuance(cert("ca", "0A"), ev("0A")).ok());
  }
  std::filesystem::remove(dir / "t.db-revocations");
  { std::ofstream(elsewhere) << "x"; }
  std::filesystem::create_hard_link(elsewhere, dir / "t.db-revocations");  // linked elsewhere
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());  // reading still works
  CHECK((*st)->revocation_epoch() == -1);
  auto r = (*st)->revoke("ca", "0A", 1, 1234, ev("revoke"), std::nullopt);
  REQUIRE(!r.ok());
  CHECK(r.error().code == "store.signal_unavailable");
  CHECK((*st)->find_by_serial("0A")->front().status == "valid");
}

TEST_CASE("sequence blocks for several stations come from one commit, above everything handed out") {
  test::TempDir dir;
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto& s = **st;
  auto a1 = s.reserve_sequences("signer", "CS-A", 10);
  REQUIRE(a1.ok());
  CHECK(*a1 == 1);
  const auto commits = s.commits();
  auto blocks = s.reserve_sequence_blocks("signer", {"CS-A", "CS-B", "CS-A"}, 10);
  REQUIRE(blocks.ok());
  CHECK(s.commits() == commits + 1);
  REQUIRE(blocks->size() == 3);
  CHECK((*blocks)[0] == 11);  // after CS-A's first block
  CHECK((*blocks)[1] == 1);
  CHECK((*blocks)[2] == 21);  // contiguous with the first block of this call
  CHECK(*s.reserve_sequences("signer", "CS-A", 10) == 31);
  CHECK(s.reserve_sequence_blocks("signer", {"CS-A"}, 0).error().code == "usage.bad_value");
  CHECK(s.reserve_sequence_blocks("signer", {}, 10)->empty());
}

TEST_CASE("dispatch sessions are recorded with their latest change, in the order of the changes") {
  test::TempDir dir;
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto& s = **st;
  REQUIRE(s.save_dispatch_session("EV-1", std::string(R"({"ev":"EV-1"})"), 100).ok());
  REQUIRE(s.save_dispatch_session("EV-2", std::string(R"({"ev":"EV-2"})"), 100).ok());
  REQUIRE(s.save_dispatch_session("EV-1", std::nullopt, 100).ok());  // same second: order still kept
  auto all = s.dispatch_sessions();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].ev == "EV-2");
  CHECK((*all)[0].session == std::optional<std::string>(R"({"ev":"EV-2"})"));
  CHECK((*all)[1].ev == "EV-1");
  CHECK(!(*all)[1].session);
}

TEST_CASE("a write chain: once one record fails, every later one of the chain is refused and nothing of it written") {
  test::TempDir dir;
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto& s = **st;
  auto state = [](const std::string& evse, double w) {
    Store::DispatchEvseState d;
    d.evse = evse;
    d.lo_w = d.hi_w = w;
    d.until = 100;
    d.version = 1;
    return d;
  };
  // Another connection holds the write lock, so that the records queue up behind it.
  auto hold_writer = [&] {
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open((dir / "t.db").c_str(), &other) == SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    return other;
  };
  auto release_writer = [](sqlite3* other) {
    REQUIRE(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(other);
  };
  sqlite3* other = hold_writer();
  auto chain = std::make_shared<Store::WriteChain>();
  auto ok = s.record_dispatch({{"signer", "CS-1", 5}}, {state("CS-1#1", 1000)}, std::nullopt, chain, 10);
  // Refused by the store itself: sequence 0 is out of range.
  auto bad = s.record_dispatch({{"signer", "CS-2", 0}}, {state("CS-2#1", 2000)}, std::nullopt, chain, 11);
  auto later = s.record_dispatch({{"signer", "CS-3", 1}}, {state("CS-3#1", 3000)}, ev("later"), chain, 12);
  auto fresh = std::make_shared<Store::WriteChain>();
  auto elsewhere = s.record_dispatch({{"signer", "CS-4", 1}}, {state("CS-4#1", 4000)}, std::nullopt, fresh, 13);
  release_writer(other);
  CHECK(ok.get().ok());
  auto b = bad.get();
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().code == "usage.bad_value");
  auto l = later.get();
  REQUIRE_FALSE(l.ok());
  CHECK(l.error().code == "store.chain_broken");
  CHECK(elsewhere.get().ok());
  CHECK(chain->failed_from.load() == 11);
  CHECK_FALSE(fresh->broken());
  auto rows = s.dispatch_evse_states();
  REQUIRE(rows.ok());
  std::vector<std::string> written;
  for (const auto& r : *rows) written.push_back(r.evse);
  std::sort(written.begin(), written.end());
  CHECK(written == std::vector<std::string>{"CS-1#1", "CS-4#1"});
  // Neither the refused claim nor the audit entry of the refused record were kept.
  auto accepted = s.accept_sequences({{"signer", "CS-3", 1}});
  REQUIRE(accepted.ok());
  CHECK((*accepted)[0]);
  auto entries = s.audit_entries();
  REQUIRE(entries.ok());
  for (const auto& e : *entries) CHECK(e.event.subject != "later");

  // A chain failed from outside the store (the engine, when a record never reached the
  // store or its answer was lost) refuses that position and later ones only: records of
  // the chain queued before it are still written.
  other = hold_writer();
  auto outside = std::make_shared<Store::WriteChain>();
  auto before = s.record_dispatch({{"signer", "CS-5", 1}}, {state("CS-5#1", 500)}, std::nullopt, outside, 20);
  auto after = s.record_dispatch({{"signer", "CS-6", 1}}, {state("CS-6#1", 600)}, std::nullopt, outside, 22);
  outside->fail_from(21);
  release_writer(other);
  CHECK(before.get().ok());
  auto a = after.get();
  REQUIRE_FALSE(a.ok());
  CHECK(a.error().code == "store.chain_broken");
  CHECK(outside->failed_from.load() == 21);
}

TEST_CASE("the audit table refuses updates and deletes through SQL") {
  test::TempDir dir;
  {
    auto st = SqliteStore::open(dir / "t.db");
    REQUIRE(st.ok());
    REQUIRE((*st)->append_audit(ev("x")).ok());
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir / "t.db").c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "UPDATE audit SET actor='evil'", nullptr, nullptr, nullptr) != SQLITE_OK);
  CHECK(sqlite3_exec(db, "DELETE FROM audit", nullptr, nullptr, nullptr) != SQLITE_OK);
  // Someone with file access can drop the trigger; the hash chain still tells.
  CHECK(sqlite3_exec(db, "DROP TRIGGER audit_no_update; UPDATE audit SET actor='evil'", nullptr, nullptr, nullptr) ==
        SQLITE_OK);
  sqlite3_close(db);
  auto st = SqliteStore::open(dir / "t.db");
  auto report = (*st)->verify_audit();
  CHECK_FALSE(report->ok);
  CHECK(*report->first_bad_id == 1);
}

TEST_CASE("a database from a newer schema is refused") {
  test::TempDir dir;
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir / "t.db").c_str(), &db) == SQLITE_OK);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == "store.schema_too_new");
}

TEST_CASE("EVSE states recorded under schema 6 are kept when the table is rebuilt without rowids") {
  test::TempDir dir;
  { REQUIRE(SqliteStore::open(dir / "t.db").ok()); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir / "t.db").c_str(), &db) == SQLITE_OK);
  // Back to what schema 6 made, with one recorded state.
  REQUIRE(sqlite3_exec(db,
                       "DROP TABLE dispatch_evse_state;"
                       "CREATE TABLE dispatch_evse_state (evse TEXT PRIMARY KEY, lo_w REAL NOT NULL, hi_w REAL NOT "
                       "NULL, until INTEGER NOT NULL, last_w REAL, last_at INTEGER NOT NULL, version INTEGER NOT NULL);"
                       "INSERT INTO dispatch_evse_state VALUES ('CS-1#1', -2000.5, 3000, 1234, NULL, 1200, 7);"
                       "PRAGMA user_version=6;",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto rows = (*st)->dispatch_evse_states();
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  CHECK(rows->at(0).evse == "CS-1#1");
  CHECK(rows->at(0).lo_w == -2000.5);
  CHECK(rows->at(0).hi_w == 3000);
  CHECK(rows->at(0).until == 1234);
  CHECK(!rows->at(0).last_w);
  CHECK(rows->at(0).last_at == 1200);
  CHECK(rows->at(0).version == 7);
  REQUIRE(sqlite3_open((dir / "t.db").c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = 'dispatch_evse_state'", -1, &q, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_step(q) == SQLITE_ROW);
  const std::string sql = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
  sqlite3_finalize(q);
  sqlite3_close(db);
  CHECK(sql.find("WITHOUT ROWID") != std::string::npos);
}

TEST_CASE("a certificate is not stored once a CA above it is revoked") {
  test::TempDir dir;
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto& s = **st;
  REQUIRE(s.reserve_serials("root", {"C1"}).ok());
  REQUIRE(s.record_issuance(cert("root", "C1"), ev("sub-ca")).ok());
  REQUIRE(s.reserve_serials("sub", {"L1", "L2"}).ok());
  CHECK(s.record_issuance(cert("sub", "L1"), ev("leaf"), {{"root", "C1"}}).ok());
  REQUIRE(s.revoke("root", "C1", 1, 10, ev("revoke"), std::nullopt).ok());
  auto refused = s.record_issuance(cert("sub", "L2"), ev("leaf"), {{"root", "C1"}});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == "issuer.revoked");
  CHECK(s.find_by_serial("L2")->empty());
}

TEST_CASE("each CRL snapshot takes the next number and the revocations committed before it") {
  test::TempDir dir;
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto& s = **st;
  REQUIRE(s.reserve_serials("root", {"R0"}).ok());
  IssuerRecord iss{"root", "root", "R0", "CN=root", "k", {1}, {0x30, 0x00}, 0, 100};
  REQUIRE(s.record_issuer(iss, cert("root", "R0"), ev("root")).ok());
  REQUIRE(s.reserve_serials("root", {"A1", "A2"}).ok());
  REQUIRE(s.record_issuance(cert("root", "A1"), ev("a1")).ok());
  REQUIRE(s.record_issuance(cert("root", "A2"), ev("a2")).ok());
  auto first = s.crl_snapshot("root", "test");
  REQUIRE(first.ok());
  CHECK(first->number == 1);
  CHECK(first->revoked.empty());
  REQUIRE(s.revoke("root", "A1", 4, 20, ev("revoke"), std::nullopt).ok());
  auto second = s.crl_snapshot("root", "test");
  CHECK(second->number == 2);
  REQUIRE(second->revoked.size() == 1);
  CHECK(second->revoked.front().serial == "A1");
  CHECK(s.crl_snapshot("nobody", "test").error().code == "notfound.issuer");
  CHECK(s.verify_audit()->ok);
}

TEST_CASE("a large dispatch record is written whole, or not at all when one of its numbers is a replay") {
  test::TempDir dir;
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto& s = **st;
  // 150 rows: statements of 64, 64, 8, 8 and six of one row.
  constexpr int kRows = 150;
  auto group = [](std::uint64_t seq, double w) {
    std::pair<std::vector<Store::SequenceClaim>, std::vector<Store::DispatchEvseState>> g;
    for (int i = 0; i < kRows; ++i) {
      const std::string station = "CS-" + std::to_string(i);
      g.first.push_back({"signer", station, seq + static_cast<std::uint64_t>(i % 3)});
      Store::DispatchEvseState d;
      d.evse = station + "#1";
      d.lo_w = -w - i;
      d.hi_w = w + i;
      d.until = 1000 + i;
      if (i % 2) d.last_w = w / 2 + i;
      d.last_at = 500 + i;
      d.version = seq * 1000 + static_cast<std::uint64_t>(i);
      g.second.push_back(d);
    }
    return g;
  };
  auto check_states = [&](std::uint64_t seq, double w) {
    auto rows = s.dispatch_evse_states();
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == kRows);
    for (const auto& r : *rows) {
      const int i = std::stoi(r.evse.substr(3));
      INFO(r.evse);
      CHECK(r.lo_w == -w - i);
      CHECK(r.hi_w == w + i);
      CHECK(r.until == 1000 + i);
      CHECK(r.last_w.has_value() == (i % 2 == 1));
      if (r.last_w) CHECK(*r.last_w == w / 2 + i);
      CHECK(r.last_at == 500 + i);
      CHECK(r.version == seq * 1000 + static_cast<std::uint64_t>(i));
    }
  };
  auto [claims, states] = group(10, 1000);
  REQUIRE(s.record_dispatch(claims, states, ev("first")).get().ok());
  check_states(10, 1000);
  // Every number was kept: the same ones again are not above them, the next ones are.
  auto again = s.accept_sequences(claims);
  REQUIRE(again.ok());
  for (bool a : *again) CHECK_FALSE(a);

  // A second group whose 101st number (in the second statement, of 64 rows) is not
  // above the first group's: nothing of it is kept.
  auto [claims2, states2] = group(20, 2000);
  claims2[100].seq = claims[100].seq;
  auto refused = s.record_dispatch(claims2, states2, ev("refused")).get();
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == "conflict.sequence");
  check_states(10, 1000);
  auto entries = s.audit_entries();
  REQUIRE(entries.ok());
  for (const auto& e : *entries) CHECK(e.event.subject != "refused");
  std::vector<Store::SequenceClaim> next = claims;
  for (auto& c : next) c.seq += 1;
  auto accepted = s.accept_sequences(next);
  REQUIRE(accepted.ok());
  for (bool a : *accepted) CHECK(a);
  // Two numbers for one station in one statement (of 8 rows, and of 64): a row sees the
  // rows before it, so the later number must be above the earlier.
  for (const std::size_t rows : {8, 64}) {
    INFO(rows << " rows");
    auto pair_in = [&](const std::string& station, std::uint64_t first, std::uint64_t second) {
      std::vector<Store::SequenceClaim> cs;
      for (std::size_t i = 0; i + 2 < rows; ++i) cs.push_back({"other", "X-" + std::to_string(rows) + station + std::to_string(i), 1});
      cs.push_back({"signer", station, first});
      cs.push_back({"signer", station, second});
      return s.record_dispatch(cs, {}, std::nullopt).get();
    };
    CHECK(pair_in("CS-10" + std::to_string(rows), 50, 51).ok());
    auto reversed = pair_in("CS-11" + std::to_string(rows), 61, 60);
    REQUIRE_FALSE(reversed.ok());
    CHECK(reversed.error().code == "conflict.sequence");
  }
}
