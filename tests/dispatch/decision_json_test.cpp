#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>

#include <boost/json.hpp>

#include "core/time.h"
#include "dispatch/engine.h"
#include "tests/dispatch/dispatch_fixture.h"

using namespace gridtrust;
using namespace gridtrust::dispatch;
namespace json = boost::json;

namespace {

std::string direct(const Decision& d) {
  std::string out;
  d.append_json(out);
  return out;
}

std::string via_boost(const Decision& d) { return json::serialize(d.to_json()); }

Decision applied() {
  Decision d;
  d.outcome = Outcome::Applied;
  d.reason = kApplied;
  d.station = "CS-001";
  d.evse = 1;
  d.ev = "EV-1";
  d.signer = "q3W-Fq2nLqzN1c0ZkT5oGxMdrj8q6D0jvS8lKx1b9sE";
  d.seq = 42;
  d.mode = OperationMode::CentralSetpoint;
  d.requested_lo_w = d.requested_hi_w = -5000;
  d.applied_lo_w = d.applied_hi_w = -5000;
  d.envelope_min_w = -7000;
  d.envelope_max_w = 9000;
  d.at = 1760000000;
  return d;
}

}  // namespace

TEST_CASE("a decision's audit text is the text of serialising its JSON object") {
  std::vector<Decision> ds;
  ds.push_back(applied());
  {
    Decision d = applied();
    d.outcome = Outcome::Clamped;
    d.reason = "dispatch.site_limit";
    d.mode = OperationMode::ExternalSetpoint;
    d.requested_lo_w = -11000.5;
    d.requested_hi_w = 22000.125;
    d.applied_lo_w = -3333.333333333333;
    d.applied_hi_w = 1e-7;
    d.caller = "aggregator:CN=agg-1,O=Fleet";
    ds.push_back(d);
  }
  {
    Decision d = applied();  // rejected after the setpoint was read: no applied_w
    d.outcome = Outcome::Rejected;
    d.reason = "dispatch.ramp_rate";
    d.detail = "outside the envelope [-7000.000000, 9000.000000] W; site policy is reject";
    d.mode = OperationMode::Idle;
    ds.push_back(d);
  }
  {
    Decision d;  // rejected before verification: only outcome, reason, at, detail
    d.reason = "dispatch.bad_signature";
    d.detail = "jws.bad_signature: the signature does not verify";
    d.at = 0;
    ds.push_back(d);
  }
  ds.push_back(Decision{});  // nothing set at all
  {
    Decision d = applied();  // strings that need escapes, and some that do not but look odd
    d.detail = std::string("quote \" backslash \\ slash / tab \t newline \n cr \r bs \b ff \f nul ") +
               std::string(1, '\0') + " del \x7f unit \x1f esc \x1b";
    d.station = "CS-\xc3\xa9t\xc3\xa9";  // UTF-8
    d.ev = "EV \xe2\x82\xac \xf0\x9f\x9a\x97";
    d.caller = "role:subject with </script> and \u2028";
    d.signer = "";
    ds.push_back(d);
  }
  {
    Decision d = applied();  // number forms at the edges
    d.evse = 1000000;
    d.seq = (1ULL << 53);
    d.at = -1;
    d.requested_lo_w = -0.0;
    d.requested_hi_w = 0.0;
    d.envelope_min_w = -std::numeric_limits<double>::max();
    d.envelope_max_w = std::numeric_limits<double>::denorm_min();
    d.applied_lo_w = 123456789.123456789;
    d.applied_hi_w = 1e21;
    ds.push_back(d);
  }
  {
    Decision d = applied();
    d.seq = std::numeric_limits<std::uint64_t>::max();
    d.at = std::numeric_limits<std::int64_t>::min();
    d.evse = -3;
    d.requested_lo_w = std::numeric_limits<double>::infinity();
    d.requested_hi_w = -std::numeric_limits<double>::infinity();
    d.applied_lo_w = std::nan("");
    ds.push_back(d);
  }
  {
    Decision d = applied();  // a command is never part of the audit text
    d.command = json::object{{"evseId", 1}};
    ds.push_back(d);
  }
  for (const Decision& d : ds) {
    INFO(via_boost(d));
    CHECK(direct(d) == via_boost(d));
  }
}

TEST_CASE("audit text equals the serialised object for random decisions") {
  std::mt19937_64 rng(20240611);
  std::uniform_int_distribution<int> byte(0, 255), printable(0x20, 0x7E), len(0, 12), coin(0, 1);
  std::uniform_real_distribution<double> watts(-25000, 25000);
  auto text = [&] {  // any bytes, or printable ASCII (with '"' and '\\' among it now and then)
    std::string s(static_cast<std::size_t>(len(rng)), ' ');
    auto& pick = coin(rng) ? byte : printable;
    for (char& c : s) c = static_cast<char>(pick(rng));
    return s;
  };
  for (int i = 0; i < 2000; ++i) {
    Decision d;
    d.outcome = static_cast<Outcome>(i % 3);
    d.reason = text();
    d.detail = coin(rng) ? text() : "";
    d.station = coin(rng) ? text() : "";
    d.evse = coin(rng) ? static_cast<int>(rng() % 200) - 100 : 0;
    d.ev = coin(rng) ? text() : "";
    d.signer = coin(rng) ? text() : "";
    d.caller = coin(rng) ? text() : "";
    d.seq = coin(rng) ? rng() >> (rng() % 64) : 0;
    if (coin(rng)) d.mode = static_cast<OperationMode>(i % 3);
    d.requested_lo_w = watts(rng);
    d.requested_hi_w = coin(rng) ? d.requested_lo_w : std::round(watts(rng));
    d.envelope_min_w = watts(rng);
    d.envelope_max_w = std::round(watts(rng) * 1000) / 1000;
    d.applied_lo_w = watts(rng) / 3;
    d.applied_hi_w = static_cast<double>(rng() % 100000);
    d.at = static_cast<std::int64_t>(rng());
    INFO(via_boost(d));
    REQUIRE(direct(d) == via_boost(d));
  }
}

TEST_CASE("a batch's audit entry lists its decisions as serialised objects, in order") {
  test::DispatchPki pki;
  test::SignerIdentity signer = pki.software_signer("agg-fleet", "Fleet");
  protocol::PkiSignerResolver resolver{*pki.ca};
  const std::int64_t now = to_unix(now_seconds());
  auto fleet = load_fleet_yaml_text(R"(
sites:
  - id: S1
    import_limit_w: 10000
    policy: clamp
    stations:
      - id: CS-001
        aggregator: Fleet
        evses:
          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}
          - {id: 2, max_charge_w: 11000, max_discharge_w: 11000}
)",
                                    "fleet");
  REQUIRE(fleet.ok());
  Engine engine(std::move(*fleet), resolver, *pki.store);
  Session s;
  s.ev = "EV \"one\"";
  s.station = "CS-001";
  s.evse = 1;
  s.battery_wh = 60000;
  s.soc = 0.5;
  s.soc_min = 0.2;
  s.soc_max = 0.9;
  s.max_charge_w = 9000;
  s.max_discharge_w = 7000;
  s.departure = now + 36000;
  REQUIRE(engine.start_session(s).ok());
  auto request = [](int evse, const char* mode, double w) {
    json::object period{{"startPeriod", 0}, {"operationMode", mode}, {"setpoint", w}, {"limit", 11000}};
    json::object schedule{{"id", 1}, {"chargingRateUnit", "W"}, {"chargingSchedulePeriod", json::array{period}}};
    return json::object{{"evseId", evse},
                        {"chargingProfile", {{"id", 7}, {"stackLevel", 1}, {"chargingProfilePurpose", "TxDefaultProfile"},
                                             {"chargingProfileKind", "Absolute"}, {"chargingSchedule", json::array{schedule}}}}};
  };
  std::vector<protocol::BatchItem> items;
  items.push_back({request(1, "CentralSetpoint", 2500.5), {"SetChargingProfile", "CS-001", 1}});   // applied
  items.push_back({request(1, "CentralSetpoint", 10500), {"SetChargingProfile", "CS-001", 2}});    // clamped
  items.push_back({request(2, "CentralSetpoint", 1000), {"SetChargingProfile", "CS-001", 3}});     // no vehicle
  items.push_back({request(9, "CentralSetpoint", 1000), {"SetChargingProfile", "CS-001", 4}});     // no such EVSE
  items.push_back({request(1, "ChargingOnly", 1000), {"SetChargingProfile", "CS-001", 5}});        // bad mode
  items.push_back({request(1, "CentralSetpoint", 1000), {"SetChargingProfile", "CS-404", 1}});     // unknown station
  auto batch = protocol::sign_batch(items, signer.command_signer(), {now, 300});
  REQUIRE(batch.ok());
  const auto ds = engine.submit_batch(*batch, now, "aggregator:CN=agg-fleet,O=Fleet");
  REQUIRE(ds.size() == items.size());
  json::array all;
  for (const auto& d : ds) all.push_back(d.to_json());
  const std::string expected = json::serialize(json::object{{"decisions", std::move(all)}});

  REQUIRE(pki.store->append_audit({"test", "flush", "-", "{}"}).ok());  // behind the queued entry
  auto entries = pki.store->audit_entries();
  REQUIRE(entries.ok());
  int found = 0;
  for (const auto& e : *entries)
    if (e.event.action == "dispatch.batch") {
      ++found;
      CHECK(e.event.subject == "batch/6");
      CHECK(e.event.details == expected);
    }
  CHECK(found == 1);
}
