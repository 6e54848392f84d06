#include <catch2/catch.hpp>

#include "store/audit_chain.h"

using namespace gridtrust::store;

namespace {
std::vector<AuditEntry> chain_of(int n) {
  std::vector<AuditEntry> out;
  std::string prev = kGenesisHash;
  for (int i = 1; i <= n; ++i) {
    AuditEntry e;
    e.id = i;
    e.ts = 1000 + i;
    e.event = AuditEvent{"test", "issue", "ca/" + std::to_string(i), "{}"};
    e.prev_hash = prev;
    e.hash = audit_entry_hash(e);
    prev = e.hash;
    out.push_back(e);
  }
  return out;
}
}  // namespace

TEST_CASE("an intact chain verifies and reports its head") {
  auto c = chain_of(5);
  auto r = verify_chain(c);
  CHECK(r.ok);
  CHECK(r.entries == 5);
  CHECK(r.head_hash == c.back().hash);
}

TEST_CASE("a changed field is reported at that entry") {
  auto c = chain_of(5);
  c[2].event.subject = "ca/other";
  auto r = verify_chain(c);
  CHECK_FALSE(r.ok);
  CHECK(*r.first_bad_id == 3);
}

TEST_CASE("a deleted entry is reported where the ids jump") {
  auto c = chain_of(5);
  c.erase(c.begin() + 1);
  auto r = verify_chain(c);
  CHECK_FALSE(r.ok);
  CHECK(*r.first_bad_id == 3);
}

TEST_CASE("swapped contents with the ids kept are detected") {
  auto c = chain_of(5);
  std::swap(c[1].event, c[2].event);
  std::swap(c[1].hash, c[2].hash);
  auto r = verify_chain(c);
  CHECK_FALSE(r.ok);
  CHECK(*r.first_bad_id == 2);
}

TEST_CASE("field boundaries cannot be shifted without changing the hash") {
  AuditEntry a;
  a.id = 1;
  a.event = AuditEvent{"ab", "c", "", ""};
  a.prev_hash = kGenesisHash;
  AuditEntry b = a;
  b.event = AuditEvent{"a", "bc", "", ""};
  CHECK(audit_entry_hash(a) != audit_entry_hash(b));
}
