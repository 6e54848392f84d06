// store/rotation_store.cpp: the scheduler's tables (migration 4).
#include <catch2/catch.hpp>

#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

using namespace gridtrust;
using namespace gridtrust::store;

namespace {

CertificateRecord station(const std::string& serial, const std::string& subject, std::int64_t issued) {
  CertificateRecord c;
  c.issuer = "cpo-sub2";
  c.serial = serial;
  c.profile = "charging-station";
  c.subject = subject;
  c.not_before = issued;
  c.not_after = issued + 1000;
  c.issued_at = issued;
  c.der = {0x30, 0x00};
  return c;
}

OutboxEntry trigger(const std::string& serial, std::int64_t at) {
  OutboxEntry o;
  o.id = "renew:cpo-sub2:" + serial;
  o.station = "CS-" + serial;
  o.profile = "charging-station";
  o.serial = serial;
  o.action = "TriggerMessage";
  o.payload = R"({"requestedMessage":"SignChargingStationCertificate"})";
  o.due = at;
  o.enqueued_at = at;
  return o;
}

std::unique_ptr<SqliteStore> open_with_stations(const test::TempDir& dir) {
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto s = std::move(st).value();
  REQUIRE(s->reserve_serials("cpo-sub2", {"01", "02", "03"}).ok());
  REQUIRE(s->record_issuance(station("01", "CN=CS-1,O=x", 100), AuditEvent{"t", "issue", "01", "{}"}).ok());
  REQUIRE(s->record_issuance(station("02", "CN=CS-2,O=x", 100), AuditEvent{"t", "issue", "02", "{}"}).ok());
  return s;
}

}  // namespace

TEST_CASE("a renewed station certificate supersedes the older one's schedule") {
  test::TempDir dir;
  auto s = open_with_stations(dir);
  auto fresh = s->unscheduled_certificates({"charging-station"});
  REQUIRE(fresh.ok());
  REQUIRE(fresh->size() == 2);
  REQUIRE(s->schedule_renewals({{"cpo-sub2", "01", "charging-station", "CN=CS-1,O=x", 500, "scheduled"},
                                {"cpo-sub2", "02", "charging-station", "CN=CS-2,O=x", 600, "scheduled"}})
              .ok());
  CHECK(s->unscheduled_certificates({"charging-station"})->empty());
  // CS-1 renewed before its trigger was due.
  REQUIRE(s->record_issuance(station("03", "CN=CS-1,O=x", 300), AuditEvent{"t", "renew", "03", "{}"}).ok());
  auto renewed = s->unscheduled_certificates({"charging-station"});
  REQUIRE(renewed->size() == 1);
  REQUIRE(s->schedule_renewals({{"cpo-sub2", "03", "charging-station", "CN=CS-1,O=x", 900, "scheduled"}}).ok());
  auto scheduled = s->renewals(std::string("scheduled"), 10);
  REQUIRE(scheduled->size() == 2);
  CHECK(scheduled->at(0).serial == "02");
  CHECK(scheduled->at(1).serial == "03");
  auto superseded = s->renewals(std::string("superseded"), 10);
  REQUIRE(superseded->size() == 1);
  CHECK(superseded->at(0).serial == "01");
  CHECK(s->verify_audit()->ok);
}

TEST_CASE("outbox entries are queued once, delivered until acknowledged, and acknowledged idempotently") {
  test::TempDir dir;
  auto s = open_with_stations(dir);
  REQUIRE(s->schedule_renewals({{"cpo-sub2", "01", "charging-station", "CN=CS-1,O=x", 500, "scheduled"},
                                {"cpo-sub2", "02", "charging-station", "CN=CS-2,O=x", 600, "scheduled"}})
              .ok());
  REQUIRE(s->enqueue_renewals({trigger("01", 3600)}, "test").ok());
  // Queued again (a crash between the commit and the scheduler noticing): no duplicate.
  REQUIRE(s->enqueue_renewals({trigger("01", 3700)}, "test").ok());
  REQUIRE(s->enqueue_renewals({trigger("02", 7300)}, "test").ok());
  CHECK(s->outbox_enqueued_between(3600, 7200).value() == 1);
  CHECK(s->outbox_enqueued_between(7200, 10800).value() == 1);
  CHECK(s->renewals(std::string("queued"), 10)->size() == 2);
  auto pending = s->outbox_entries(10, false);
  REQUIRE(pending->size() == 2);
  CHECK(pending->at(0).id == "renew:cpo-sub2:01");
  CHECK(pending->at(0).enqueued_at == 3600);
  // Reading does not deliver away.
  CHECK(s->outbox_entries(10, false)->size() == 2);

  auto ack = s->ack_outbox({"renew:cpo-sub2:01", "renew:nope"}, 8000, AuditEvent{"test", "outbox-ack", "outbox", "{}"});
  REQUIRE(ack.ok());
  CHECK(ack->acked == std::vector<std::string>{"renew:cpo-sub2:01"});
  CHECK(ack->unknown == std::vector<std::string>{"renew:nope"});
  auto again = s->ack_outbox({"renew:cpo-sub2:01"}, 8100, AuditEvent{"test", "outbox-ack", "outbox", "{}"});
  CHECK(again->acked.empty());
  CHECK(again->already_acked == std::vector<std::string>{"renew:cpo-sub2:01"});
  CHECK(s->outbox_pending_count().value() == 1);
  CHECK(s->outbox_entries(10, true)->size() == 2);
  CHECK(s->verify_audit()->ok);
}

TEST_CASE("a switch-over retires the old key in the same commit and its destruction is recorded once") {
  test::TempDir dir;
  auto st = SqliteStore::open(dir / "t.db");
  REQUIRE(st.ok());
  auto& s = **st;
  RotationEntry e;
  e.role = "csms-server";
  e.key_label = "csms-server-1";
  e.key_id = {1};
  e.issuer = "cpo-sub2";
  e.serial = "0A";
  e.interval_days = 90;
  e.next_due = 1000;
  REQUIRE(s.save_rotation(e, AuditEvent{"t", "rotation-schedule", "csms-server", "{}"}).ok());
  RotationEntry next = e;
  next.key_label = "csms-server-g2";
  next.key_id = {2};
  next.generation = 2;
  next.rotations = 1;
  RetiredKey old;
  old.role = "csms-server";
  old.key_label = "csms-server-1";
  old.key_id = {1};
  old.public_key_der = {0x30};
  old.retired_at = 1000;
  old.destroy_after = 2000;
  REQUIRE(s.switch_rotation(next, old, AuditEvent{"t", "rotation-switch", "csms-server", "{}"}).ok());
  auto rows = s.rotation_entries();
  REQUIRE(rows->size() == 1);
  CHECK(rows->at(0).key_label == "csms-server-g2");
  auto retired = s.retired_keys();
  REQUIRE(retired->size() == 1);
  CHECK_FALSE(retired->at(0).destroyed_at);
  auto before = s.audit_head()->id;
  REQUIRE(s.mark_key_destroyed(retired->at(0).id, 2100, AuditEvent{"t", "key-destroy", "x", "{}"}).ok());
  REQUIRE(s.mark_key_destroyed(retired->at(0).id, 2200, AuditEvent{"t", "key-destroy", "x", "{}"}).ok());
  CHECK(s.retired_keys()->at(0).destroyed_at == 2100);
  CHECK(s.audit_head()->id == before + 1);
}
