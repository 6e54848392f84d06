#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <stdexcept>
#include <thread>
#include <tuple>

#include <boost/json.hpp>

#include "core/digest.h"
#include "core/time.h"
#include "dispatch/engine.h"
#include "dispatch/intake.h"
#include "protocol/jcs.h"
#include "protocol/jws.h"
#include "tests/dispatch/dispatch_fixture.h"
#include "tests/support/misbehaving_store.h"
#include "tests/support/sql_connection.h"

using namespace gridtrust;
using namespace gridtrust::dispatch;
namespace json = boost::json;

namespace {

using test::ev;
using test::kFleet;

json::object request(int evse, const std::string& mode, std::optional<double> setpoint,
                     std::optional<double> limit = std::nullopt, std::optional<double> discharge_limit = std::nullopt,
                     int duration = 900) {
  json::object period{{"startPeriod", 0}, {"operationMode", mode}};
  if (setpoint) period["setpoint"] = *setpoint;
  if (limit) period["limit"] = *limit;
  if (discharge_limit) period["dischargeLimit"] = *discharge_limit;
  json::object schedule{{"id", 1}, {"chargingRateUnit", "W"}, {"duration", duration},
                        {"chargingSchedulePeriod", json::array{period}}};
  json::object profile{{"id", 7}, {"stackLevel", 1}, {"chargingProfilePurpose", "TxDefaultProfile"},
                       {"chargingProfileKind", "Absolute"}, {"chargingSchedule", json::array{schedule}}};
  return json::object{{"evseId", evse}, {"chargingProfile", profile}};
}

struct Fixture {
  test::DispatchPki pki;
  test::SignerIdentity fleet_signer = pki.software_signer("agg-fleet", "Fleet");
  test::SignerIdentity other_signer = pki.software_signer("agg-other", "Other");
  test::SignerIdentity daemon_signer = pki.hsm_signer("gridtrustd", "Fleet");
  protocol::PkiSignerResolver resolver{*pki.ca};
  StoreOutgoingSigner outgoing{daemon_signer.command_signer(), *pki.store};
  std::int64_t now = to_unix(now_seconds());
  std::unique_ptr<Engine> engine;
  std::map<std::string, std::uint64_t> seqs;

  Fixture() {
    auto f = load_fleet_yaml_text(kFleet, "fleet");
    REQUIRE(f.ok());
    engine = std::make_unique<Engine>(std::move(*f), resolver, *pki.store, EngineOptions{}, &outgoing);
    REQUIRE(engine->start_session(ev("EV-1", "CS-001", 1, now)).ok());
    REQUIRE(engine->start_session(ev("EV-2", "CS-001", 2, now)).ok());
    REQUIRE(engine->start_session(ev("EV-3", "CS-002", 1, now)).ok());
    REQUIRE(engine->start_session(ev("EV-4", "CS-101", 1, now)).ok());
    REQUIRE(engine->start_session(ev("EV-5", "CS-201", 1, now)).ok());
  }

  json::object sign(json::object msg, const std::string& station, const test::SignerIdentity& who,
                    std::int64_t iat = 0, std::int64_t lifetime = 300, const std::string& action = "SetChargingProfile") {
    auto s = protocol::sign_command(std::move(msg), who.command_signer(),
                                    {action, station, ++seqs[who.issued.record.serial + station]},
                                    {iat ? iat : now, lifetime});
    REQUIRE(s.ok());
    return *s;
  }
  Decision submit(json::object msg, const std::string& station = "CS-001") {
    return engine->submit(sign(std::move(msg), station, fleet_signer), now);
  }
};

std::string describe(const Decision& d) { return json::serialize(d.to_json()); }

}  // namespace

TEST_CASE("an in-envelope CentralSetpoint is applied and a signed SetChargingProfileRequest emitted") {
  Fixture f;
  Decision d = f.submit(request(1, "CentralSetpoint", -5000.0, 11000.0, -11000.0));
  INFO(describe(d));
  REQUIRE(d.outcome == Outcome::Applied);
  CHECK(d.reason == kApplied);
  CHECK(d.ev == "EV-1");
  CHECK(d.applied_lo_w == -5000);
  REQUIRE(d.command);
  const json::object& cmd = *d.command;
  CHECK(cmd.at("evseId").as_int64() == 1);
  const auto& period = cmd.at("chargingProfile").at("chargingSchedule").at(0).at("chargingSchedulePeriod").at(0);
  CHECK(period.at("operationMode").as_string() == "CentralSetpoint");
  CHECK(period.at("setpoint").to_number<double>() == -5000);
  CHECK(period.at("dischargeLimit").to_number<double>() == -7000);  // cut to the EV's limit
  CHECK(period.at("limit").to_number<double>() == 9000);
  // The station can verify it: signed by the daemon's HSM-held key for CS-001.
  protocol::PkiSignerResolver station_resolver(*f.pki.ca);
  struct Accept : protocol::ReplayGuard {
    Status accept(const std::string&, const std::string&, std::uint64_t) override { return Ok{}; }
  } accept;
  protocol::VerifyOptions o;
  o.now = f.now;
  o.station = "CS-001";
  o.action = "SetChargingProfile";
  auto v = protocol::verify_command(cmd, o, station_resolver, accept);
  INFO((v.ok() ? "" : v.error().code));
  CHECK(v.ok());
  // Audited with before and after (queued off the request path: a synchronous write
  // behind it waits for it).
  REQUIRE(f.pki.store->append_audit({"test", "flush", "-", "{}"}).ok());
  auto entries = f.pki.store->audit_entries();
  REQUIRE(entries.ok());
  bool found = false;
  for (const auto& e : *entries)
    if (e.event.action == "dispatch.setpoint" && e.event.subject == "CS-001#1") {
      found = true;
      CHECK(e.event.details.find("\"requested_w\":[-5E3,-5E3]") != std::string::npos);
      CHECK(e.event.details.find("\"applied_w\"") != std::string::npos);
    }
  CHECK(found);
}

TEST_CASE("each verification failure has its own reason code, in the issue's order") {
  Fixture f;
  auto code = [&](const json::object& m, std::int64_t at = 0) { return f.engine->submit(m, at ? at : f.now).reason; };
  json::object unsigned_msg = request(1, "CentralSetpoint", 1000.0);
  CHECK(code(unsigned_msg) == "dispatch.unsigned");
  json::object tampered = f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer);
  tampered["evseId"] = 3;
  CHECK(code(tampered) == "dispatch.bad_signature");
  {
    auto cs = f.pki.software_signer("CS-777", "Fleet", "charging-station");
    CHECK(code(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", cs)) == "dispatch.unknown_signer");
  }
  CHECK(code(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer, f.now - 400)) == "dispatch.expired");
  CHECK(code(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer, f.now + 120)) ==
        "dispatch.future_dated");
  CHECK(code(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer, 0, 7200)) ==
        "dispatch.lifetime_too_long");
  CHECK(code(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer, 0, 300, "RequestStartTransaction")) ==
        "dispatch.wrong_action");
  CHECK(code(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-999", f.fleet_signer)) == "dispatch.unknown_station");
  json::object once = f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer);
  CHECK(code(once) == kApplied);
  CHECK(code(once) == "dispatch.replay");
  // Reordered: seq n+2 first, then n+1.
  json::object first = f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer);
  json::object second = f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer);
  CHECK(code(second) == kApplied);
  CHECK(code(first) == "dispatch.replay");
  CHECK(code(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.other_signer)) == "dispatch.wrong_aggregator");
  CHECK(code(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-201", f.other_signer)) == kApplied);
  CHECK(code(f.sign(request(9, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer)) == "dispatch.unknown_evse");
  CHECK(code(f.sign(request(1, "ChargingOnly", 1000.0), "CS-001", f.fleet_signer)) == "dispatch.unsupported_mode");
  CHECK(code(f.sign(request(1, "CentralSetpoint", std::nullopt), "CS-001", f.fleet_signer)) == "dispatch.bad_setpoint");
  CHECK(code(f.sign(request(1, "CentralSetpoint", -5000.0, std::nullopt, -4000.0), "CS-001", f.fleet_signer)) ==
        "dispatch.bad_setpoint");
  // Revocation takes effect for the next setpoint.
  auto r = f.pki.software_signer("agg-soon-revoked", "Fleet");
  CHECK(code(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", r)) == kApplied);
  REQUIRE(f.pki.ca->revoke(r.issued.record.serial, "keyCompromise", "test").ok());
  CHECK(code(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", r)) == "dispatch.signer_revoked");
}

TEST_CASE("out of the envelope: a clamp site clamps with the binding rule's code, a reject site rejects") {
  Fixture f;
  Decision d = f.submit(request(1, "CentralSetpoint", 10000.0));
  INFO(describe(d));
  CHECK(d.outcome == Outcome::Clamped);
  CHECK(d.reason == "dispatch.ev_limit");
  CHECK(d.requested_lo_w == 10000);
  CHECK(d.applied_lo_w == 9000);
  REQUIRE(d.command);
  CHECK(d.command->at("chargingProfile").at("chargingSchedule").at(0).at("chargingSchedulePeriod").at(0).at("setpoint")
            .to_number<double>() == 9000);
  d = f.submit(request(2, "CentralSetpoint", -1000.0));
  CHECK(d.outcome == Outcome::Clamped);
  CHECK(d.reason == "dispatch.evse_limit");
  CHECK(d.applied_lo_w == 0);
  // S2 rejects; it also ramps at 100 W/s from the last setpoint (none yet: 0 at start).
  d = f.engine->submit(f.sign(request(1, "CentralSetpoint", 12000.0), "CS-101", f.fleet_signer), f.now);
  CHECK(d.outcome == Outcome::Rejected);
  CHECK(d.reason == "dispatch.ev_limit");
  d = f.engine->submit(f.sign(request(1, "CentralSetpoint", 500.0), "CS-101", f.fleet_signer), f.now);
  CHECK(d.outcome == Outcome::Applied);
  d = f.engine->submit(f.sign(request(1, "CentralSetpoint", 2000.0), "CS-101", f.fleet_signer), f.now + 10);
  CHECK(d.outcome == Outcome::Rejected);
  CHECK(d.reason == "dispatch.ramp_rate");
  d = f.engine->submit(f.sign(request(1, "CentralSetpoint", 1500.0), "CS-101", f.fleet_signer), f.now + 10);
  CHECK(d.outcome == Outcome::Applied);
  // Idle is always allowed, whatever the ramp.
  d = f.engine->submit(f.sign(request(1, "Idle", std::nullopt), "CS-101", f.fleet_signer), f.now + 11);
  CHECK(d.outcome == Outcome::Applied);
}

TEST_CASE("an envelope wholly below zero still emits a limit of at least 0, and the command parses back") {
  // Found by fuzz/setpoint_fuzz.cpp: ramping back from a discharge, the envelope's upper
  // end was negative and became the emitted `limit`, which OCPP 2.1 wants non-negative
  // and which parse_setpoint (the engine's own intake) refuses.
  Fixture f;
  auto at = [&](json::object msg, std::int64_t t) {
    return f.engine->submit(f.sign(std::move(msg), "CS-101", f.fleet_signer, t), t);
  };
  REQUIRE(at(request(1, "CentralSetpoint", -500.0), f.now).applied());
  REQUIRE(at(request(1, "CentralSetpoint", -1500.0), f.now + 10).applied());
  // 2 s later S2's ramp (100 W/s) keeps the EVSE within [-1700, -1300].
  Decision d = at(request(1, "CentralSetpoint", -1500.0, 11000.0, -11000.0), f.now + 12);
  INFO(describe(d));
  REQUIRE(d.applied());
  CHECK(d.envelope_max_w == Approx(-1300));
  REQUIRE(d.command);
  const auto& period = d.command->at("chargingProfile").at("chargingSchedule").at(0).at("chargingSchedulePeriod").at(0);
  CHECK(period.at("setpoint").to_number<double>() == -1500);
  CHECK(period.at("limit").to_number<double>() == 0);
  CHECK(period.at("dischargeLimit").to_number<double>() == -1700);
  auto back = parse_setpoint(*d.command, "CS-101", 900);
  INFO((back.ok() ? "" : back.error().message));
  REQUIRE(back.ok());
  CHECK(back->lo_w == -1500);
  CHECK(back->hi_w == -1500);
}

TEST_CASE("a clamped value is applied in whole milliwatts inside the envelope: decision, state and command agree") {
  Fixture f;
  // EV-1 may take 0.4 x 60 kWh more; over 7 days at eta 0.9 that is 158.7301587... W.
  Decision d = f.submit(request(1, "CentralSetpoint", 1000.0, std::nullopt, std::nullopt, 7 * 24 * 3600));
  INFO(describe(d));
  REQUIRE(d.outcome == Outcome::Clamped);
  CHECK(d.reason == "dispatch.soc_ceiling");
  CHECK(d.envelope_max_w == Approx(24000.0 * 3600 / (0.9 * 604800)));
  CHECK(d.applied_lo_w == 158.73);
  CHECK(d.applied_lo_w <= d.envelope_max_w);
  REQUIRE(d.command);
  CHECK(d.command->at("chargingProfile").at("chargingSchedule").at(0).at("chargingSchedulePeriod").at(0).at("setpoint")
            .to_number<double>() == d.applied_lo_w);
  auto station = f.engine->station_status("CS-001", f.now);
  REQUIRE(station.ok());
  for (const auto& e : *station)
    if (e.evse == 1) CHECK(e.lo_w == d.applied_lo_w);
  // Where the nearest milliwatt lies above the envelope (158.7309487... W over 604,797
  // s), the value steps down to the milliwatt inside it.
  d = f.submit(request(1, "CentralSetpoint", 1000.0, std::nullopt, std::nullopt, 604797), "CS-002");
  INFO(describe(d));
  REQUIRE(d.outcome == Outcome::Clamped);
  CHECK(d.envelope_max_w == Approx(24000.0 * 3600 / (0.9 * 604797)));
  CHECK(d.envelope_max_w < 158.731);
  CHECK(d.applied_lo_w == 158.73);
}

TEST_CASE("SoC floor and ceiling, departure energy, site limit and a missing vehicle each bind with their code") {
  Fixture f;
  REQUIRE(f.engine->update_soc("EV-1", 0.21, f.now).ok());  // 600 Wh above the floor
  Decision d = f.submit(request(1, "CentralSetpoint", -5000.0, std::nullopt, std::nullopt, 3600));
  CHECK(d.reason == "dispatch.soc_floor");
  CHECK(d.applied_lo_w == Approx(-540));
  REQUIRE(f.engine->update_soc("EV-1", 0.89, f.now).ok());
  d = f.submit(request(1, "CentralSetpoint", 5000.0, std::nullopt, std::nullopt, 3600));
  CHECK(d.reason == "dispatch.soc_ceiling");
  CHECK(d.applied_lo_w == Approx(600 / 0.9));
  // Departure in 1 h needing 40 kWh with 30 kWh stored: at 9 kW x 0.9 for the rest of
  // the hour after 900 s, 6075 Wh come back, so 30000 - (40000 - 6075) < 0: no discharge.
  Session tight = ev("EV-1", "CS-001", 1, f.now);
  tight.departure = f.now + 3600;
  tight.energy_needed_wh = 40000;
  REQUIRE(f.engine->start_session(tight).ok());
  d = f.submit(request(1, "CentralSetpoint", -3000.0));
  CHECK(d.reason == "dispatch.departure_energy");
  CHECK(d.applied_lo_w == 0);
  // Site S1 imports at most 30 kW: EV-2 takes 22 kW... limited by the EV to 9 kW;
  // three EVs at 9 kW leave 3 kW for the fourth.
  REQUIRE(f.engine->stop_session("EV-1").ok());
  d = f.submit(request(1, "CentralSetpoint", 1000.0));
  CHECK(d.reason == "dispatch.no_vehicle");
  CHECK(d.applied_lo_w == 0);
  REQUIRE(f.engine->start_session(ev("EV-1", "CS-001", 1, f.now)).ok());
  REQUIRE(f.engine->start_session(ev("EV-6", "CS-001", 3, f.now)).ok());
  CHECK(f.submit(request(1, "CentralSetpoint", 9000.0)).reason == kApplied);
  CHECK(f.submit(request(2, "CentralSetpoint", 9000.0)).reason == kApplied);
  CHECK(f.submit(request(3, "CentralSetpoint", 9000.0)).reason == kApplied);
  d = f.engine->submit(f.sign(request(1, "CentralSetpoint", 9000.0), "CS-002", f.fleet_signer), f.now);
  CHECK(d.reason == "dispatch.site_limit");
  CHECK(d.applied_lo_w == Approx(3000));
  auto site = f.engine->site_status("S1", f.now);
  REQUIRE(site.ok());
  CHECK(site->committed_max_w == Approx(30000));
  // Once those setpoints run out (900 s), the site is free again.
  d = f.engine->submit(f.sign(request(1, "CentralSetpoint", 9000.0), "CS-002", f.fleet_signer, f.now + 901), f.now + 901);
  CHECK(d.reason == kApplied);
}

TEST_CASE("ExternalSetpoint ranges are checked at both ends") {
  Fixture f;
  Decision d = f.submit(request(1, "ExternalSetpoint", std::nullopt, 11000.0, -3000.0));
  CHECK(d.outcome == Outcome::Clamped);
  CHECK(d.reason == "dispatch.ev_limit");
  CHECK(d.applied_lo_w == -3000);
  CHECK(d.applied_hi_w == 9000);
  REQUIRE(d.command);
  const auto& period = d.command->at("chargingProfile").at("chargingSchedule").at(0).at("chargingSchedulePeriod").at(0);
  CHECK(period.at("limit").to_number<double>() == 9000);
  CHECK(period.at("dischargeLimit").to_number<double>() == -3000);
}

TEST_CASE("replay protection survives a restart of the engine") {
  Fixture f;
  json::object m = f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer);
  CHECK(f.engine->submit(m, f.now).reason == kApplied);
  auto fl = load_fleet_yaml_text(kFleet, "fleet");
  REQUIRE(fl.ok());
  Engine restarted(std::move(*fl), f.resolver, *f.pki.store);
  CHECK(restarted.submit(m, f.now).reason == "dispatch.replay");
}

TEST_CASE("setpoints still in force count against their site after a restart; a stopped session's do not") {
  Fixture f;
  REQUIRE(f.engine->start_session(ev("EV-6", "CS-001", 3, f.now)).ok());
  for (int evse : {1, 2, 3}) CHECK(f.submit(request(evse, "CentralSetpoint", 9000.0)).reason == kApplied);
  auto restart = [&] {
    auto fl = load_fleet_yaml_text(kFleet, "fleet");
    REQUIRE(fl.ok());
    f.engine.reset();
    f.engine = std::make_unique<Engine>(std::move(*fl), f.resolver, *f.pki.store, EngineOptions{}, &f.outgoing);
    for (auto [id, st, evse] : {std::tuple{"EV-1", "CS-001", 1}, {"EV-2", "CS-001", 2}, {"EV-6", "CS-001", 3},
                                {"EV-3", "CS-002", 1}})
      REQUIRE(f.engine->start_session(ev(id, st, evse, f.now)).ok());
  };
  restart();
  auto site = f.engine->site_status("S1", f.now);
  REQUIRE(site.ok());
  CHECK(site->committed_max_w == Approx(27000));
  auto station = f.engine->station_status("CS-001", f.now);
  REQUIRE(station.ok());
  CHECK(station->at(0).lo_w == Approx(9000));
  CHECK(station->at(0).until == f.now + 900);
  // The restarted engine still knows: the fourth EV gets what is left of 30 kW.
  Decision d = f.engine->submit(f.sign(request(1, "CentralSetpoint", 9000.0), "CS-002", f.fleet_signer), f.now);
  CHECK(d.reason == "dispatch.site_limit");
  CHECK(d.applied_lo_w == Approx(3000));
  // A vehicle that leaves takes its setpoint with it, across a restart too.
  REQUIRE(f.engine->stop_session("EV-1").ok());
  restart();
  site = f.engine->site_status("S1", f.now);
  REQUIRE(site.ok());
  CHECK(site->committed_max_w == Approx(21000));
  // Once they run out, nothing is counted.
  site = f.engine->site_status("S1", f.now + 901);
  REQUIRE(site.ok());
  CHECK(site->committed_max_w == 0);
}

TEST_CASE("a decision that cannot be recorded is not applied: no command, the EVSE keeps its state") {
  Fixture f;
  CHECK(f.submit(request(1, "CentralSetpoint", 4000.0)).reason == kApplied);
  // Another connection makes every EVSE state write fail (as a full disk would).
  auto db = std::make_unique<test::SqlConnection>(f.pki.dir / "pki.db");
  db->exec("CREATE TRIGGER refuse BEFORE UPDATE ON dispatch_evse_state BEGIN SELECT RAISE(ABORT, 'refused'); END");
  json::object refused = f.sign(request(1, "CentralSetpoint", 6000.0), "CS-001", f.fleet_signer);
  Decision d = f.engine->submit(refused, f.now);
  CHECK(d.outcome == Outcome::Rejected);
  CHECK(d.reason == "conflict.constraint");
  CHECK(d.detail.find("may be submitted again") != std::string::npos);
  CHECK(!d.command);
  auto station = f.engine->station_status("CS-001", f.now);
  REQUIRE(station.ok());
  CHECK(station->at(0).lo_w == Approx(4000));
  // A batch fails as a whole and every EVSE of it keeps its state.
  std::vector<json::object> many{f.sign(request(1, "CentralSetpoint", 5000.0), "CS-001", f.fleet_signer),
                                 f.sign(request(2, "CentralSetpoint", 5000.0), "CS-001", f.fleet_signer)};
  for (const auto& m : f.engine->submit_many(many, f.now)) CHECK(m.reason == "conflict.constraint");
  station = f.engine->station_status("CS-001", f.now);
  REQUIRE(station.ok());
  CHECK(station->at(0).lo_w == Approx(4000));
  CHECK(station->at(1).until == 0);
  db->exec("DROP TRIGGER refuse");
  db.reset();
  // Nothing of it was kept, its sequence number either: the same message now applies.
  d = f.engine->submit(refused, f.now);
  CHECK(d.reason == kApplied);
  CHECK(d.command);
  CHECK(f.engine->submit(refused, f.now).reason == "dispatch.replay");
}

TEST_CASE("a sequence number another process accepted first is a replay; the rest of the group still applies") {
  Fixture f;
  Decision first = f.submit(request(1, "CentralSetpoint", 4000.0));
  REQUIRE(first.reason == kApplied);
  json::object mine = f.sign(request(1, "CentralSetpoint", 5000.0), "CS-001", f.fleet_signer);
  json::object other = f.sign(request(1, "CentralSetpoint", 5000.0), "CS-002", f.fleet_signer);
  // Another engine on the same file (the offline CLI, say) accepted a later number of
  // this signer for CS-001 than this engine knows of.
  {
    test::SqlConnection db(f.pki.dir / "pki.db");
    db.exec("UPDATE command_sequences SET last = last + 10 WHERE direction = 'accepted' AND signer = '" + first.signer +
            "' AND station = 'CS-001'");
    CHECK(db.changes() == 1);
  }
  auto ds = f.engine->submit_many({mine, other}, f.now);
  REQUIRE(ds.size() == 2);
  INFO(describe(ds[0]) << "\n" << describe(ds[1]));
  CHECK(ds[0].reason == "dispatch.replay");
  CHECK(!ds[0].command);
  CHECK(ds[1].reason == kApplied);
  CHECK(ds[1].command);
  auto station = f.engine->station_status("CS-001", f.now);
  REQUIRE(station.ok());
  CHECK(station->at(0).lo_w == Approx(4000));
}

TEST_CASE("a batch is verified once and decided entry by entry; one changed entry voids the batch") {
  Fixture f;
  std::vector<protocol::BatchItem> items;
  items.push_back({request(1, "CentralSetpoint", 2000.0), {"SetChargingProfile", "CS-001", 100}});
  items.push_back({request(2, "CentralSetpoint", 30000.0), {"SetChargingProfile", "CS-001", 101}});
  items.push_back({request(1, "CentralSetpoint", 2000.0), {"SetChargingProfile", "CS-201", 100}});
  items.push_back({request(1, "CentralSetpoint", 2000.0), {"SetChargingProfile", "CS-002", 100}});
  auto batch = protocol::sign_batch(items, f.fleet_signer.command_signer(), {f.now, 300});
  REQUIRE(batch.ok());
  auto ds = f.engine->submit_batch(*batch, f.now);
  REQUIRE(ds.size() == 4);
  CHECK(ds[0].reason == kApplied);
  CHECK(ds[1].reason == "dispatch.ev_limit");
  CHECK(ds[1].outcome == Outcome::Clamped);
  CHECK(ds[2].reason == "dispatch.wrong_aggregator");
  CHECK(ds[3].reason == kApplied);
  // The emitted commands form one signed batch.
  REQUIRE(ds[0].command);
  CHECK(ds[0].command->at("customData").as_object().contains("batch"));
  // The same batch again: every entry a replay.
  for (const auto& d : f.engine->submit_batch(*batch, f.now)) CHECK(d.reason == "dispatch.replay");
  items[0].claims.seq = items[1].claims.seq = 200;
  items[1].claims.seq = 201;
  items[2].claims.seq = items[3].claims.seq = 200;
  auto again = protocol::sign_batch(items, f.fleet_signer.command_signer(), {f.now, 300});
  REQUIRE(again.ok());
  (*again)[3]["evseId"] = 3;
  for (const auto& d : f.engine->submit_batch(*again, f.now)) CHECK(d.reason == "dispatch.bad_signature");
}

TEST_CASE("single-signed messages submitted together are decided as if one by one") {
  Fixture f;
  json::object a = f.sign(request(1, "CentralSetpoint", 2000.0), "CS-001", f.fleet_signer);
  json::object b = f.sign(request(1, "CentralSetpoint", 2000.0), "CS-201", f.fleet_signer);
  json::object c = f.sign(request(1, "CentralSetpoint", 2000.0), "CS-002", f.fleet_signer);
  json::object tampered = f.sign(request(2, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer);
  tampered["evseId"] = 1;
  json::object later = f.sign(request(2, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer);
  // `a` again after `later` (same signer and station, lower number): a replay.
  auto ds = f.engine->submit_many({a, b, c, tampered, later, a}, f.now);
  REQUIRE(ds.size() == 6);
  CHECK(ds[0].reason == kApplied);
  CHECK(ds[1].reason == "dispatch.wrong_aggregator");
  CHECK(ds[2].reason == kApplied);
  CHECK(ds[3].reason == "dispatch.bad_signature");
  CHECK(ds[4].reason == kApplied);
  CHECK(ds[5].reason == "dispatch.replay");
  // Each applied message gets its own command, each verifiable on its own.
  for (int i : {0, 2, 4}) {
    REQUIRE(ds[i].command);
    CHECK(ds[i].command->at("evseId").as_int64() == (i == 4 ? 2 : 1));
  }
  // Durable: a restarted engine refuses all of them again.
  auto fl = load_fleet_yaml_text(kFleet, "fleet");
  REQUIRE(fl.ok());
  Engine restarted(std::move(*fl), f.resolver, *f.pki.store);
  for (const auto& d : restarted.submit_many({a, c, later}, f.now)) CHECK(d.reason == "dispatch.replay");
}

TEST_CASE("emitted commands are numbered from durable blocks, strictly upwards, also past a block and a restart") {
  Fixture f;
  auto numbers = [&](StoreOutgoingSigner& signer, std::size_t n) {
    std::vector<protocol::BatchItem> items;
    for (std::size_t i = 0; i < n; ++i) items.push_back({request(1, "CentralSetpoint", 1000.0), {"SetChargingProfile", "CS-009", 0}});
    auto signed_items = signer.sign(std::move(items), f.now);
    REQUIRE(signed_items.ok());
    std::vector<std::uint64_t> seqs;
    for (const auto& m : *signed_items) {
      const json::object& cd = m.at("customData").as_object();
      if (const json::value* b = cd.if_contains("batch")) seqs.push_back(b->at("seq").to_number<std::uint64_t>());
      else {
        std::string_view sig = cd.at("signature").as_string();
        auto header = base64url_decode(sig.substr(0, sig.find('.')));
        REQUIRE(header);
        seqs.push_back(json::parse(std::string(header->begin(), header->end())).at("seq").to_number<std::uint64_t>());
      }
    }
    return seqs;
  };
  std::vector<std::uint64_t> all;
  {
    StoreOutgoingSigner signer(f.daemon_signer.command_signer(), *f.pki.store);
    for (std::size_t n : {1, 10, 70, 64, 200}) {
      auto s = numbers(signer, n);
      REQUIRE(s.size() == n);
      all.insert(all.end(), s.begin(), s.end());
    }
  }
  StoreOutgoingSigner restarted(f.daemon_signer.command_signer(), *f.pki.store);  // a crash skips, never reuses
  auto s = numbers(restarted, 3);
  all.insert(all.end(), s.begin(), s.end());
  for (std::size_t i = 1; i < all.size(); ++i) {
    INFO("number " << i);
    CHECK(all[i] > all[i - 1]);
  }
}

TEST_CASE("the intake batches setpoints handed in one by one and keeps each station's order") {
  Fixture f;
  std::vector<std::pair<json::object, std::string>> msgs;
  for (int k = 0; k < 60; ++k)
    for (const char* st : {"CS-001", "CS-002"}) msgs.emplace_back(f.sign(request(1, "CentralSetpoint", 1000.0), st, f.fleet_signer), st);
  std::mutex mu;
  std::vector<Decision> got;
  {
    Intake intake(*f.engine, [&] { return f.now; }, IntakeOptions{2, 16});
    for (auto& [m, st] : msgs)
      intake.submit(m, st, [&](Decision d) {
        std::lock_guard g(mu);
        got.push_back(std::move(d));
      });
    // A callback that throws does not stop its lane.
    intake.submit(msgs[0].first, "CS-001", [](Decision) { throw std::runtime_error("caller bug"); });
    // Waiting for one: the same message again, a replay, recorded with its caller.
    Decision again = intake.submit_wait(msgs[1].first, "CS-002", "operator:CN=ops");
    CHECK(again.reason == "dispatch.replay");
    CHECK(again.caller == "operator:CN=ops");
  }  // the destructor decides whatever is still queued
  REQUIRE(got.size() == msgs.size());
  std::size_t applied = 0;
  for (const auto& d : got) {
    INFO(describe(d));
    CHECK(d.reason == kApplied);
    CHECK(d.command);
    applied += d.applied();
  }
  CHECK(applied == msgs.size());
}

TEST_CASE("a signed fleet target is allocated across the EVs within their envelopes, with its shortfall") {
  Fixture f;
  FleetTarget t{"reg-A", -20000, {"CS-001", "CS-002"}, 60};
  Decision unused;
  FleetDecision fd = f.engine->submit_target(
      f.sign(fleet_target_message(t), fleet_target_station("reg-A"), f.fleet_signer, 0, 300, kFleetTargetAction), f.now);
  INFO(json::serialize(fd.to_json()));
  CHECK(fd.outcome == Outcome::Clamped);  // EV-2's EVSE cannot discharge: 2 x 7 kW at most... site export 20 kW
  CHECK(fd.delivered_w == Approx(-14000));
  CHECK(fd.shortfall_w == Approx(-6000));
  REQUIRE(fd.setpoints.size() == 3);
  for (const auto& d : fd.setpoints) {
    CHECK(d.applied_lo_w >= d.envelope_min_w - 1e-6);
    REQUIRE(d.command);
  }
  t.target_w = 12000;
  fd = f.engine->submit_target(
      f.sign(fleet_target_message(t), fleet_target_station("reg-A"), f.fleet_signer, 0, 300, kFleetTargetAction), f.now);
  CHECK(fd.outcome == Outcome::Applied);
  CHECK(fd.delivered_w == Approx(12000));
  // Stations of another aggregator may not be in it.
  t.stations = {"CS-001", "CS-201"};
  fd = f.engine->submit_target(
      f.sign(fleet_target_message(t), fleet_target_station("reg-A"), f.fleet_signer, 0, 300, kFleetTargetAction), f.now);
  CHECK(fd.reason == "dispatch.wrong_aggregator");
  // A target is not a SetChargingProfile and vice versa.
  CHECK(f.engine->submit(f.sign(fleet_target_message(t), fleet_target_station("reg-A"), f.fleet_signer, 0, 300,
                                kFleetTargetAction),
                         f.now)
            .reason == "dispatch.wrong_action");
  CHECK(f.engine->decisions(100).size() > 0);
}

namespace {

// Trusts one known certificate: enough for a forked child, which must not touch the
// parent's token or store connections.
class OneSigner final : public protocol::SignerResolver {
 public:
  explicit OneSigner(const Bytes& der) {
    auto c = std::make_shared<protocol::SignerCertificate>();
    const unsigned char* p = der.data();
    c->certificate.reset(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    c->key.reset(X509_get_pubkey(c->certificate.get()));
    c->fingerprint = base64url_encode(sha256(der));
    c->subject = "/CN=agg-fleet/O=Fleet";
    cert_ = c;
  }
  Result<std::shared_ptr<const protocol::SignerCertificate>> find(const std::string& fp, const std::vector<Bytes>&) override {
    if (fp != cert_->fingerprint) return reject("verify.unknown_signer", "unknown");
    return std::shared_ptr<const protocol::SignerCertificate>(cert_);
  }
  Status judge(const protocol::SignerCertificate&, std::int64_t) override { return Ok{}; }

 private:
  std::shared_ptr<protocol::SignerCertificate> cert_;
};

}  // namespace

TEST_CASE("replay protection survives a SIGKILL between the accept and the next setpoint") {
  Fixture f;
  json::object m1 = f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer);
  json::object m2 = f.sign(request(1, "CentralSetpoint", 1500.0), "CS-001", f.fleet_signer);
  const std::string db = f.pki.dir / "pki.db";
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    auto st = store::SqliteStore::open(db);
    auto fl = load_fleet_yaml_text(kFleet, "fleet");
    if (!st.ok() || !fl.ok()) _exit(2);
    OneSigner resolver(f.fleet_signer.issued.record.der);
    Engine engine(std::move(*fl), resolver, **st);
    (void)engine.start_session(ev("EV-1", "CS-001", 1, f.now));
    const std::string reason = engine.submit(m1, f.now).reason;
    if (write(fds[1], reason.data(), reason.size()) < 0) _exit(3);
    close(fds[1]);
    for (;;) pause();  // killed here: after the accept, before any next setpoint
  }
  close(fds[1]);
  char buf[64] = {};
  const ssize_t got = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(got > 0);
  CHECK(std::string(buf) == kApplied);
  CHECK(WIFSIGNALED(status));
  auto st = store::SqliteStore::open(db);
  REQUIRE(st.ok());
  auto fl = load_fleet_yaml_text(kFleet, "fleet");
  REQUIRE(fl.ok());
  OneSigner resolver(f.fleet_signer.issued.record.der);
  Engine restarted(std::move(*fl), resolver, **st);
  REQUIRE(restarted.start_session(ev("EV-1", "CS-001", 1, f.now)).ok());
  CHECK(restarted.submit(m1, f.now).reason == "dispatch.replay");
  CHECK(restarted.submit(m2, f.now).reason == kApplied);
}

namespace {
// A second connection to the test's database, as another process would hold one.
struct OtherConnection : test::SqlConnection {
  using test::SqlConnection::SqlConnection;
  // Holds the write lock while each message is submitted in turn (decided, its commit
  // waiting), so that each is handed in while those before it are in flight; then lets
  // the store's writer go.
  std::vector<Decision> submit_while_writer_waits(Engine& engine, const std::vector<json::object>& messages,
                                                  std::int64_t now) {
    exec("BEGIN IMMEDIATE");
    std::vector<Decision> ds(messages.size());
    std::vector<std::thread> ts;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      ts.emplace_back([&, i] { ds[i] = engine.submit(messages[i], now); });
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    exec("COMMIT");
    for (auto& t : ts) t.join();
    return ds;
  }
  std::pair<Decision, Decision> submit_while_writer_waits(Engine& engine, const json::object& a,
                                                          const json::object& b, std::int64_t now) {
    auto ds = submit_while_writer_waits(engine, {a, b}, now);
    return {std::move(ds[0]), std::move(ds[1])};
  }
};

// Site S1 at 27 of its 30 kW: EV-6 plugged in at CS-001 #3, every EVSE of CS-001 at 9 kW.
void fill_s1(Fixture& f) {
  REQUIRE(f.engine->start_session(ev("EV-6", "CS-001", 3, f.now)).ok());
  for (int evse : {1, 2, 3}) REQUIRE(f.submit(request(evse, "CentralSetpoint", 9000.0)).reason == kApplied);
}
}  // namespace

TEST_CASE("at a start, recorded sessions laid over the file keep the state of the EVSE's next vehicle") {
  Fixture f;  // the "file": EV-1 at CS-001 #1
  REQUIRE(f.engine->stop_session("EV-1").ok());
  REQUIRE(f.engine->start_session(ev("EV-7", "CS-001", 1, f.now)).ok());
  REQUIRE(f.submit(request(1, "CentralSetpoint", 9000.0)).reason == kApplied);
  auto fl = load_fleet_yaml_text(kFleet, "fleet");
  REQUIRE(fl.ok());
  f.engine.reset();
  f.engine = std::make_unique<Engine>(std::move(*fl), f.resolver, *f.pki.store, EngineOptions{}, &f.outgoing);
  REQUIRE(f.engine->start_session(ev("EV-1", "CS-001", 1, f.now)).ok());
  // What DispatchRuntime does with "EV-1 stopped, EV-7 started" recorded.
  REQUIRE(f.engine->forget_session("EV-1").ok());
  REQUIRE(f.engine->start_session(ev("EV-7", "CS-001", 1, f.now)).ok());
  auto station = f.engine->station_status("CS-001", f.now);
  REQUIRE(station.ok());
  CHECK(station->at(0).lo_w == Approx(9000));
  CHECK(station->at(0).until == f.now + 900);
  auto rows = f.pki.store->dispatch_evse_states();
  REQUIRE(rows.ok());
  for (const auto& r : *rows)
    if (r.evse == "CS-001#1") CHECK(r.lo_w == Approx(9000));
}

TEST_CASE("no decision counts on another that then fails to be recorded") {
  Fixture f;
  fill_s1(f);
  // A frees 9 kW of site S1 but cannot be recorded; B, at the same site, wants 9 kW.
  json::object a = f.sign(request(1, "CentralSetpoint", 0.0), "CS-001", f.fleet_signer);
  json::object b = f.sign(request(1, "CentralSetpoint", 9000.0), "CS-002", f.fleet_signer);
  OtherConnection db(f.pki.dir / "pki.db");
  db.exec("CREATE TRIGGER refuse BEFORE UPDATE ON dispatch_evse_state WHEN NEW.evse = 'CS-001#1' "
          "BEGIN SELECT RAISE(ABORT, 'refused'); END");
  auto [da, dbb] = db.submit_while_writer_waits(*f.engine, a, b, f.now);
  INFO(describe(da) << "\n" << describe(dbb));
  CHECK(da.outcome == Outcome::Rejected);
  CHECK(dbb.applied_lo_w == Approx(3000));  // whichever ran first, A never freed anything
  auto site = f.engine->site_status("S1", f.now);
  REQUIRE(site.ok());
  CHECK(site->committed_max_w == Approx(30000));
}

TEST_CASE("two decisions on one EVSE that both fail leave it as last recorded") {
  Fixture f;
  REQUIRE(f.submit(request(1, "CentralSetpoint", 4000.0)).reason == kApplied);
  json::object a = f.sign(request(1, "CentralSetpoint", 5000.0), "CS-001", f.fleet_signer);
  json::object b = f.sign(request(1, "CentralSetpoint", 6000.0), "CS-001", f.fleet_signer);
  OtherConnection db(f.pki.dir / "pki.db");
  db.exec("CREATE TRIGGER refuse BEFORE UPDATE ON dispatch_evse_state BEGIN SELECT RAISE(ABORT, 'refused'); END");
  auto [da, dbb] = db.submit_while_writer_waits(*f.engine, a, b, f.now);
  INFO(describe(da) << "\n" << describe(dbb));
  CHECK(da.outcome == Outcome::Rejected);
  CHECK(dbb.outcome == Outcome::Rejected);
  auto st = f.engine->station_status("CS-001", f.now);
  REQUIRE(st.ok());
  CHECK(st->at(0).lo_w == Approx(4000));
}

TEST_CASE("a group decided while the one before it is written counts on it, and its command is numbered after") {
  Fixture f;
  fill_s1(f);
  // A frees 9 kW of site S1 and is recorded; B, decided while A is still being
  // written, may use them.
  json::object a = f.sign(request(1, "CentralSetpoint", 0.0), "CS-001", f.fleet_signer);
  json::object b = f.sign(request(2, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer);
  OtherConnection db(f.pki.dir / "pki.db");
  auto [da, dbb] = db.submit_while_writer_waits(*f.engine, a, b, f.now);
  INFO(describe(da) << "\n" << describe(dbb));
  REQUIRE(da.reason == kApplied);
  REQUIRE(dbb.reason == kApplied);
  REQUIRE(da.command);
  REQUIRE(dbb.command);
  // Both go to CS-001: B's number is above A's, so the station keeps B as the newer.
  auto seq_of = [](const json::object& m) {
    std::string_view sig = m.at("customData").at("signature").as_string();
    auto header = base64url_decode(sig.substr(0, sig.find('.')));
    REQUIRE(header);
    return json::parse(std::string(header->begin(), header->end())).at("seq").to_number<std::uint64_t>();
  };
  CHECK(seq_of(*da.command) < seq_of(*dbb.command));
  auto rows = f.pki.store->dispatch_evse_states();
  REQUIRE(rows.ok());
  for (const auto& r : *rows) {
    if (r.evse == "CS-001#1") CHECK(r.lo_w == Approx(0));
    if (r.evse == "CS-001#2") CHECK(r.lo_w == Approx(1000));
  }
}

TEST_CASE("when a record fails, every group decided on it is undone and decided again on what is recorded") {
  Fixture f;
  fill_s1(f);
  // A frees 9 kW at S1 but cannot be recorded. B, decided while A is written, takes
  // those 9 kW; C, at another site, counts on nothing of them but is written after A.
  json::object a = f.sign(request(1, "CentralSetpoint", 0.0), "CS-001", f.fleet_signer);
  json::object b = f.sign(request(1, "CentralSetpoint", 9000.0), "CS-002", f.fleet_signer);
  json::object c = f.sign(request(1, "CentralSetpoint", 0.0), "CS-101", f.fleet_signer);
  OtherConnection db(f.pki.dir / "pki.db");
  db.exec("CREATE TRIGGER refuse BEFORE UPDATE ON dispatch_evse_state WHEN NEW.evse = 'CS-001#1' "
          "BEGIN SELECT RAISE(ABORT, 'refused'); END");
  auto ds = db.submit_while_writer_waits(*f.engine, {a, b, c}, f.now);
  const Decision &da = ds[0], &dbb = ds[1], &dc = ds[2];
  INFO(describe(da) << "\n" << describe(dbb) << "\n" << describe(dc));
  CHECK(da.outcome == Outcome::Rejected);
  CHECK(dbb.outcome == Outcome::Clamped);
  CHECK(dbb.applied_lo_w == Approx(3000));  // on what is recorded: A freed nothing
  CHECK(dc.reason == kApplied);  // refused behind A, then decided again
  CHECK(dc.command);
  auto site = f.engine->site_status("S1", f.now);
  REQUIRE(site.ok());
  CHECK(site->committed_max_w == Approx(30000));
  auto rows = f.pki.store->dispatch_evse_states();
  REQUIRE(rows.ok());
  double recorded = 0;
  bool c_recorded = false;
  for (const auto& r : *rows) {
    if (r.evse.rfind("CS-001#", 0) == 0 || r.evse.rfind("CS-002#", 0) == 0) recorded += r.hi_w;
    if (r.evse == "CS-101#1") c_recorded = r.until > f.now;
  }
  CHECK(recorded == Approx(30000));
  CHECK(c_recorded);
  // Each was audited once, with its final decision.
  REQUIRE(f.pki.store->append_audit(store::AuditEvent{"test", "flush", "-", "{}"}).ok());
  auto entries = f.pki.store->audit_entries();
  REQUIRE(entries.ok());
  int b_entries = 0;
  for (const auto& e : *entries)
    if (e.event.action == "dispatch.setpoint" && e.event.subject == "CS-002#1") {
      ++b_entries;
      CHECK(e.event.details.find("\"applied_w\":[3E3,3E3]") != std::string::npos);
    }
  CHECK(b_entries == 1);
}

TEST_CASE("two engines on one store: the last recorded state wins") {
  Fixture f;
  REQUIRE(f.submit(request(1, "CentralSetpoint", 1000.0)).reason == kApplied);
  auto fl = load_fleet_yaml_text(kFleet, "fleet");
  REQUIRE(fl.ok());
  Engine other(std::move(*fl), f.resolver, *f.pki.store, EngineOptions{}, &f.outgoing);  // the offline CLI, say
  REQUIRE(other.start_session(ev("EV-1", "CS-001", 1, f.now)).ok());
  for (double w : {2000.0, 3000.0, 4000.0}) REQUIRE(f.submit(request(1, "CentralSetpoint", w)).reason == kApplied);
  Decision d = other.submit(f.sign(request(1, "CentralSetpoint", 5000.0), "CS-001", f.fleet_signer), f.now);
  REQUIRE(d.reason == kApplied);
  auto rows = f.pki.store->dispatch_evse_states();
  REQUIRE(rows.ok());
  bool seen = false;
  for (const auto& r : *rows)
    if (r.evse == "CS-001#1") {
      seen = true;
      CHECK(r.lo_w == Approx(5000));
    }
  CHECK(seen);
}

TEST_CASE("a session stop that cannot be recorded changes nothing and may be tried again") {
  Fixture f;
  REQUIRE(f.submit(request(1, "CentralSetpoint", 4000.0)).reason == kApplied);
  OtherConnection db(f.pki.dir / "pki.db");
  db.exec("CREATE TRIGGER refuse BEFORE UPDATE ON dispatch_evse_state BEGIN SELECT RAISE(ABORT, 'refused'); END");
  auto st = f.engine->stop_session("EV-1");
  REQUIRE(!st.ok());
  CHECK(st.error().code == "conflict.constraint");
  CHECK(f.engine->session_of("EV-1"));
  auto station = f.engine->station_status("CS-001", f.now);
  REQUIRE(station.ok());
  CHECK(station->at(0).lo_w == Approx(4000));
  db.exec("DROP TRIGGER refuse");
  CHECK(f.engine->stop_session("EV-1").ok());
  CHECK(!f.engine->session_of("EV-1"));
}

TEST_CASE("a fleet target that cannot be recorded is rejected whole and changes no EVSE") {
  Fixture f;
  REQUIRE(f.submit(request(1, "CentralSetpoint", 4000.0)).reason == kApplied);
  OtherConnection db(f.pki.dir / "pki.db");
  db.exec("CREATE TRIGGER refuse BEFORE UPDATE ON dispatch_evse_state BEGIN SELECT RAISE(ABORT, 'refused'); END");
  FleetTarget t;
  t.group = "g1";
  t.target_w = 12000;
  t.stations = {"CS-001", "CS-002"};
  t.duration_s = 900;
  FleetDecision fd = f.engine->apply_target(t, f.now);
  CHECK(fd.outcome == Outcome::Rejected);
  CHECK(fd.reason == "conflict.constraint");
  CHECK(fd.setpoints.empty());
  CHECK(fd.delivered_w == 0);
  CHECK(fd.shortfall_w == 12000);
  auto station = f.engine->station_status("CS-001", f.now);
  REQUIRE(station.ok());
  CHECK(station->at(0).lo_w == Approx(4000));
  CHECK(station->at(1).until == 0);
  db.exec("DROP TRIGGER refuse");
  fd = f.engine->apply_target(t, f.now);
  CHECK(fd.outcome == Outcome::Applied);
  CHECK(fd.delivered_w == Approx(12000));
}

TEST_CASE("a command the daemon cannot sign after the commit stays applied and is audited as unsigned") {
  Fixture f;
  // The daemon's outgoing sequence blocks cannot be reserved: signing fails.
  OtherConnection db(f.pki.dir / "pki.db");
  db.exec("CREATE TRIGGER refuse BEFORE INSERT ON command_sequences WHEN NEW.direction = 'issued' "
          "BEGIN SELECT RAISE(ABORT, 'refused'); END");
  Decision d = f.submit(request(1, "CentralSetpoint", 4000.0));
  CHECK(d.reason == kApplied);
  CHECK(!d.command);
  CHECK(d.detail.find("could not be signed") != std::string::npos);
  REQUIRE(f.pki.store->append_audit(store::AuditEvent{"test", "flush", "-", "{}"}).ok());  // after the queued entries
  auto entries = f.pki.store->audit_entries();
  REQUIRE(entries.ok());
  bool decided = false, unsigned_ = false;
  for (const auto& e : *entries) {
    if (e.event.action == "dispatch.setpoint" && e.event.subject == "CS-001#1") decided = true;
    if (e.event.action == "dispatch.command_unsigned" && e.event.subject == "CS-001#1") unsigned_ = true;
  }
  CHECK(decided);
  CHECK(unsigned_);
}

// Groups decided while others are written: failures, stops, targets and retries.
namespace {
// Memory (station_status) and the store agree for every EVSE in force.
void check_memory_matches_store(Fixture& f) {
  auto rows = f.pki.store->dispatch_evse_states();
  REQUIRE(rows.ok());
  std::map<std::string, store::Store::DispatchEvseState> db;
  for (const auto& r : *rows) db[r.evse] = r;
  for (const char* station : {"CS-001", "CS-002", "CS-101", "CS-201"}) {
    auto st = f.engine->station_status(station, f.now);
    REQUIRE(st.ok());
    for (const auto& e : *st) {
      const std::string key = std::string(station) + "#" + std::to_string(e.evse);
      auto it = db.find(key);
      const bool db_in_force = it != db.end() && it->second.until > f.now;
      INFO(key << " memory [" << e.lo_w << "," << e.hi_w << "] until " << e.until << " db "
               << (it == db.end() ? std::string("none")
                                  : "[" + std::to_string(it->second.lo_w) + "," + std::to_string(it->second.hi_w) +
                                        "] until " + std::to_string(it->second.until)));
      CHECK(db_in_force == (e.until > f.now));
      if (db_in_force) {
        CHECK(e.lo_w == Approx(it->second.lo_w));
        CHECK(e.hi_w == Approx(it->second.hi_w));
      }
    }
  }
}
}  // namespace

TEST_CASE("a stop while a group on its EVSE is in flight and fails leaves memory as recorded") {
  Fixture f;
  REQUIRE(f.submit(request(1, "CentralSetpoint", 4000.0)).reason == kApplied);
  json::object a = f.sign(request(1, "CentralSetpoint", 5000.0), "CS-001", f.fleet_signer);
  OtherConnection db(f.pki.dir / "pki.db");
  db.exec("CREATE TRIGGER refuse BEFORE UPDATE ON dispatch_evse_state WHEN NEW.lo_w = 5000 "
          "BEGIN SELECT RAISE(ABORT, 'refused'); END");
  db.exec("BEGIN IMMEDIATE");
  Decision da;
  Status stopped = Ok{};
  std::thread ta([&] { da = f.engine->submit(a, f.now); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::thread ts([&] { stopped = f.engine->stop_session("EV-1"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  db.exec("COMMIT");
  ta.join();
  ts.join();
  INFO(describe(da));
  CHECK(da.outcome == Outcome::Rejected);
  CHECK(stopped.ok());
  check_memory_matches_store(f);
}

TEST_CASE("a fleet target while a group is in flight and fails decides on what is recorded") {
  Fixture f;
  fill_s1(f);
  json::object a = f.sign(request(1, "CentralSetpoint", 0.0), "CS-001", f.fleet_signer);
  OtherConnection db(f.pki.dir / "pki.db");
  db.exec("CREATE TRIGGER refuse BEFORE UPDATE ON dispatch_evse_state WHEN NEW.evse = 'CS-001#1' AND NEW.lo_w = 0 "
          "BEGIN SELECT RAISE(ABORT, 'refused'); END");
  db.exec("BEGIN IMMEDIATE");
  Decision da;
  FleetDecision fd;
  std::thread ta([&] { da = f.engine->submit(a, f.now); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  FleetTarget t;
  t.group = "g";
  t.target_w = 30000;
  t.stations = {"CS-002"};
  t.duration_s = 900;
  std::thread tt([&] { fd = f.engine->apply_target(t, f.now); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  db.exec("COMMIT");
  ta.join();
  tt.join();
  INFO(describe(da) << "\n" << json::serialize(fd.to_json()));
  CHECK(da.outcome == Outcome::Rejected);
  CHECK(fd.delivered_w <= 3000 + 1e-6);
  auto site = f.engine->site_status("S1", f.now);
  REQUIRE(site.ok());
  CHECK(site->committed_max_w <= 30000 + 1e-6);
  check_memory_matches_store(f);
}

TEST_CASE("a group with a sequence conflict in flight does not take the group behind it down") {
  Fixture f;
  Decision first = f.submit(request(1, "CentralSetpoint", 4000.0));
  REQUIRE(first.reason == kApplied);
  json::object mine = f.sign(request(1, "CentralSetpoint", 5000.0), "CS-001", f.fleet_signer);
  json::object other = f.sign(request(1, "CentralSetpoint", 5000.0), "CS-002", f.fleet_signer);
  OtherConnection db(f.pki.dir / "pki.db");
  db.exec("UPDATE command_sequences SET last = last + 10 WHERE direction = 'accepted' AND signer = '" + first.signer +
          "' AND station = 'CS-001'");
  auto [da, dbb] = db.submit_while_writer_waits(*f.engine, mine, other, f.now);
  INFO(describe(da) << "\n" << describe(dbb));
  CHECK(da.reason == "dispatch.replay");
  CHECK(dbb.reason == kApplied);
  CHECK(dbb.command);
  check_memory_matches_store(f);
}

TEST_CASE("under random record failures, targets, stops and a busy writer no limit is exceeded and none is starved") {
  Fixture f;
  REQUIRE(f.engine->start_session(ev("EV-6", "CS-001", 3, f.now)).ok());
  std::vector<test::SignerIdentity> signers;
  for (int i = 0; i < 4; ++i) signers.push_back(f.pki.software_signer("agg-s" + std::to_string(i), "Fleet"));
  const double values[] = {0, 3000, 7000, 9000, 11000, -5000, 6000, 7000};
  const char* stations[] = {"CS-001", "CS-001", "CS-001", "CS-002"};
  std::vector<std::vector<json::object>> msgs(signers.size());
  unsigned rnd = 12345;
  auto next = [&] { rnd = rnd * 1103515245 + 12345; return (rnd >> 8); };
  for (std::size_t s = 0; s < signers.size(); ++s)
    for (int i = 0; i < 80; ++i) {
      const int k = next() % 4;
      const int evse = k == 3 ? 1 : k + 1;
      msgs[s].push_back(f.sign(request(evse, "CentralSetpoint", values[next() % 8]), stations[k], signers[s]));
    }
  OtherConnection db(f.pki.dir / "pki.db");
  db.exec("CREATE TRIGGER refuse BEFORE UPDATE ON dispatch_evse_state WHEN NEW.lo_w = 7000 "
          "BEGIN SELECT RAISE(ABORT, 'refused'); END");
  std::atomic<bool> stop{false};
  std::atomic<int> violations{0};
  std::atomic<int> applied{0}, failed{0}, chain_broken{0};
  std::vector<std::thread> ts;
  for (std::size_t s = 0; s < signers.size(); ++s)
    ts.emplace_back([&, s] {
      for (std::size_t i = 0; i < msgs[s].size();) {
        if (i % 5 == 0 && i + 3 <= msgs[s].size()) {
          std::vector<json::object> many(msgs[s].begin() + i, msgs[s].begin() + i + 3);
          for (auto& d : f.engine->submit_many(many, f.now)) {
            if (d.applied()) ++applied; else ++failed;
            if (d.reason == "store.chain_broken") ++chain_broken;
          }
          i += 3;
        } else {
          Decision d = f.engine->submit(msgs[s][i], f.now);
          if (d.applied()) ++applied; else ++failed;
          if (d.reason == "store.chain_broken") ++chain_broken;
          ++i;
        }
      }
    });
  std::thread target([&] {
    int n = 0;
    while (!stop) {
      FleetTarget t;
      t.group = "g";
      t.target_w = (n++ % 3) * 12000.0;
      t.stations = {"CS-001", "CS-002"};
      t.duration_s = 900;
      (void)f.engine->apply_target(t, f.now);
      std::this_thread::sleep_for(std::chrono::milliseconds(7));
    }
  });
  std::thread sessions([&] {
    while (!stop) {
      (void)f.engine->stop_session("EV-3");
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
      (void)f.engine->start_session(ev("EV-3", "CS-002", 1, f.now));
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
  });
  std::thread holder([&] {
    sqlite3* h = nullptr;
    sqlite3_open((f.pki.dir / "pki.db").c_str(), &h);
    sqlite3_busy_timeout(h, 5000);
    while (!stop) {
      sqlite3_exec(h, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      sqlite3_exec(h, "COMMIT", nullptr, nullptr, nullptr);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    sqlite3_close(h);
  });
  std::thread checker([&] {
    while (!stop) {
      auto rows = f.pki.store->dispatch_evse_states();
      if (rows.ok()) {
        double hi = 0, lo = 0;
        for (const auto& r : *rows)
          if ((r.evse.rfind("CS-001#", 0) == 0 || r.evse.rfind("CS-002#", 0) == 0) && r.until > f.now) {
            hi += r.hi_w;
            lo += r.lo_w;
          }
        if (hi > 30000 + 1e-6 || lo < -20000 - 1e-6) ++violations;
      }
      auto site = f.engine->site_status("S1", f.now);
      if (site.ok() && (site->committed_max_w > 30000 + 1e-6 || site->committed_min_w < -20000 - 1e-6)) ++violations;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  for (std::size_t s = 0; s < signers.size(); ++s) ts[s].join();
  stop = true;
  target.join();
  sessions.join();
  holder.join();
  checker.join();
  INFO("applied " << applied << " failed " << failed << " chain_broken " << chain_broken);
  CHECK(violations == 0);
  CHECK(chain_broken == 0);  // a group undone for another's failure is decided again alone
  check_memory_matches_store(f);
}

namespace {
// Signed as an aggregator outside gridtrust would sign it: any seq up to 2^63-1 verifies.
json::object sign_raw_seq(json::object msg, const std::string& station, const test::SignerIdentity& who,
                          std::uint64_t seq, std::int64_t now) {
  auto canonical = protocol::canonicalize(json::value(msg));
  REQUIRE(canonical.ok());
  json::object h;
  h["x5t#S256"] = base64url_encode(sha256(who.issued.record.der));
  h["iat"] = now;
  h["exp"] = now + 300;
  h["action"] = "SetChargingProfile";
  h["station"] = station;
  h["seq"] = seq;
  auto jws = protocol::sign_detached(*who.key, std::move(h), *canonical);
  REQUIRE(jws.ok());
  msg["customData"] = json::object{{"vendorId", protocol::kVendorId}, {"signature", *jws}};
  return msg;
}
}  // namespace

TEST_CASE("a message whose sequence number the store cannot keep is refused alone and starves no one") {
  Fixture f;
  test::SignerIdentity bad = f.pki.software_signer("agg-bad", "Fleet");
  // Verifies (seq is any positive int64) and may be handed in again and again: it is
  // undone each time ("the same message may be submitted again").
  json::object evil = sign_raw_seq(request(2, "CentralSetpoint", 1000.0), "CS-001", bad, (1ULL << 62) + 1, f.now);
  {
    Decision d = f.engine->submit(evil, f.now);
    INFO(describe(d));
    REQUIRE(d.reason == "usage.bad_value");
    REQUIRE(f.engine->submit(evil, f.now).reason == "usage.bad_value");  // again: not a replay
  }
  std::vector<json::object> good;
  for (int i = 0; i < 40; ++i)
    good.push_back(f.sign(request(1, "CentralSetpoint", 1000.0 + i), "CS-001", f.fleet_signer));
  std::atomic<bool> stop{false};
  std::vector<std::thread> attackers;
  for (int i = 0; i < 3; ++i)
    attackers.emplace_back([&] {
      while (!stop) (void)f.engine->submit(evil, f.now);
    });
  int broken = 0, ok = 0;
  for (auto& m : good) {
    Decision d = f.engine->submit(m, f.now);
    if (d.reason == "store.chain_broken") ++broken;
    if (d.reason == kApplied) ++ok;
  }
  stop = true;
  for (auto& t : attackers) t.join();
  INFO("victim: applied " << ok << ", store.chain_broken " << broken << " of " << good.size());
  CHECK(broken == 0);
  CHECK(ok == static_cast<int>(good.size()));
}

TEST_CASE("a store that throws or never answers leaves no group in flight and no turn taken") {
  using Fault = test::MisbehavingStore::Fault;
  for (Fault fault : {Fault::Throw, Fault::BrokenPromise}) {
    DYNAMIC_SECTION((fault == Fault::Throw ? "the store throws" : "the answer never comes")) {
      Fixture f;
      REQUIRE(f.submit(request(1, "CentralSetpoint", 4000.0)).reason == kApplied);
      test::MisbehavingStore bad(*f.pki.store);
      auto fleet = load_fleet_yaml_text(kFleet, "fleet");
      REQUIRE(fleet.ok());
      f.engine = std::make_unique<Engine>(std::move(*fleet), f.resolver, bad, EngineOptions{}, &f.outgoing);
      REQUIRE(f.engine->start_session(ev("EV-1", "CS-001", 1, f.now)).ok());
      REQUIRE(f.engine->start_session(ev("EV-3", "CS-002", 1, f.now)).ok());
      // Every call below runs with a deadline: before the guard, the failed group stayed
      // in flight and its turn was never passed, so the next ones waited for good.
      auto within = [](auto fn) {
        auto fut = std::async(std::launch::async, fn);
        if (fut.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
          // The call hangs (and so would this future's destructor): fail loudly, now.
          std::fprintf(stderr, "FAILED: a call after the store's fault did not return within 20 s\n");
          std::_Exit(1);
        }
        return fut.get();
      };
      json::object a = f.sign(request(1, "CentralSetpoint", 5000.0), "CS-001", f.fleet_signer);
      bad.fail_next(fault);
      Decision da = within([&] { return f.engine->submit(a, f.now); });
      INFO(describe(da));
      CHECK(bad.faults_served() == 1);
      CHECK(da.reason == "store.write_failed");
      CHECK(!da.command);
      check_memory_matches_store(f);  // still what the first setpoint set: 4000 W
      // The next setpoint (its command signed in its turn) and a fleet target (which
      // waits until nothing is in flight) go through.
      Decision db = within([&] { return f.submit(request(1, "CentralSetpoint", 3000.0), "CS-002"); });
      INFO(describe(db));
      CHECK(db.reason == kApplied);
      CHECK(db.command);
      FleetTarget t;
      t.group = "g";
      t.target_w = 6000;
      t.stations = {"CS-002"};
      t.duration_s = 900;
      FleetDecision fd = within([&] { return f.engine->apply_target(t, f.now); });
      INFO(json::serialize(fd.to_json()));
      CHECK(fd.outcome == Outcome::Applied);
      CHECK(fd.delivered_w == Approx(6000));
      // Nothing of the failed record was kept: the same message may come again.
      Decision again = within([&] { return f.engine->submit(a, f.now); });
      INFO(describe(again));
      CHECK(again.reason == kApplied);
      CHECK(again.command);
      check_memory_matches_store(f);
      // A fleet target whose record meets the same fault: refused, its allocation undone.
      bad.fail_next(fault);
      t.target_w = -4000;
      FleetDecision lost = within([&] { return f.engine->apply_target(t, f.now); });
      INFO(json::serialize(lost.to_json()));
      CHECK(bad.faults_served() == 2);
      CHECK(lost.outcome == Outcome::Rejected);
      CHECK(lost.reason == "store.write_failed");
      CHECK(lost.setpoints.empty());
      check_memory_matches_store(f);  // CS-002 #1 still at the 6000 W the first target set
      auto cs2 = f.engine->station_status("CS-002", f.now);
      REQUIRE(cs2.ok());
      for (const auto& e : *cs2)
        if (e.evse == 1) CHECK(e.lo_w == Approx(6000));
      f.engine.reset();  // before the store it uses
    }
  }
}

namespace {
// One site with ample limits and `stations` stations CW-0.. of one EVSE each.
std::string wide_site_yaml(int stations) {
  std::string yaml =
      "sites:\n  - id: W\n    import_limit_w: 1000000\n    export_limit_w: 1000000\n    policy: clamp\n    stations:\n";
  for (int i = 0; i < stations; ++i)
    yaml += "      - id: CW-" + std::to_string(i) +
            "\n        aggregator: Fleet\n        evses:\n          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}\n";
  return yaml;
}

enum class SignFault { None, Refuse, Throw };
// Holds every sign call at a gate until opened (counting the calls and their sizes);
// every call after the first is refused or throws, as asked.
class GatedSigner final : public OutgoingSigner {
 public:
  GatedSigner(OutgoingSigner& inner, SignFault fault) : inner_(inner), fault_(fault) {}
  Result<std::vector<json::object>> sign(std::vector<protocol::BatchItem> items, std::int64_t now) override {
    int call = 0;
    {
      std::unique_lock lk(mu_);
      call = ++calls_;
      sizes_.push_back(items.size());
      cv_.notify_all();
      cv_.wait(lk, [&] { return open_; });
    }
    if (call > 1 && fault_ == SignFault::Refuse) return reject("hsm.sign_failed", "refused by the test");
    if (call > 1 && fault_ == SignFault::Throw) throw std::runtime_error("thrown by the test");
    return inner_.sign(std::move(items), now);
  }
  void open() {
    std::lock_guard g(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_for_calls(int n) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(20), [&] { return calls_ >= n; });
  }
  std::vector<std::size_t> sizes() {
    std::lock_guard g(mu_);
    return sizes_;
  }

 private:
  OutgoingSigner& inner_;
  const SignFault fault_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int calls_ = 0;
  std::vector<std::size_t> sizes_;
};

Fleet wide_fleet(int stations) {
  auto fleet = load_fleet_yaml_text(wide_site_yaml(stations), "fleet");
  REQUIRE(fleet.ok());
  return std::move(*fleet);
}

// An engine on the fixture's store over a site of `stations` stations (CW-0 ...), its
// commands signed through a GatedSigner.
struct GatedWideSite {
  GatedSigner gated;
  Engine engine;
  GatedWideSite(Fixture& f, int stations, SignFault fault = SignFault::None, EngineOptions options = {})
      : gated(f.outgoing, fault), engine(wide_fleet(stations), f.resolver, *f.pki.store, options, &gated) {}
};

}  // namespace

TEST_CASE("groups waiting for their turn share one daemon signature, and a failed one holds up no later group") {
  Fixture f;
  const SignFault fault = GENERATE(SignFault::None, SignFault::Refuse, SignFault::Throw);
  INFO("fault " << static_cast<int>(fault));
  constexpr int kStations = 8;
  GatedWideSite site(f, kStations, fault);
  auto& [gated, engine] = site;
  // Submissions: one to each station; one from another aggregator's signer (rejected:
  // nothing to sign, its turn passed between two groups that wait); a second to CW-7;
  // a last one to CW-6 decided a second later (not signed with the others: its commands
  // carry another time). Then a fleet target, also a second later.
  struct Submission {
    std::string station;
    std::int64_t now;
    bool foreign = false;
  };
  std::vector<Submission> subs;
  for (int i = 0; i < kStations; ++i) {
    subs.push_back({"CW-" + std::to_string(i), f.now});
    REQUIRE(engine.start_session(ev("EV-W" + std::to_string(i), subs.back().station, 1, f.now)).ok());
  }
  subs.push_back({"CW-3", f.now, true});
  subs.push_back({"CW-7", f.now});
  subs.push_back({"CW-6", f.now + 1});
  std::vector<json::object> msgs;
  for (std::size_t i = 0; i < subs.size(); ++i)
    msgs.push_back(f.sign(request(1, "CentralSetpoint", 1000.0 + static_cast<double>(i)), subs[i].station,
                          subs[i].foreign ? f.other_signer : f.fleet_signer));
  std::vector<Decision> ds(subs.size());
  std::vector<std::thread> ts;
  auto launch = [&](std::size_t i) { ts.emplace_back([&, i] { ds[i] = engine.submit(msgs[i], subs[i].now); }); };
  // The first group takes the daemon's key (held at the gate); each other one is
  // decided, recorded and queued behind it before the next is handed in, so the
  // positions follow the list.
  std::size_t waiting = 0;
  auto settle = [&](std::size_t decided) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while ((engine.decisions(100).size() < decided || engine.groups_waiting_to_sign() < waiting) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(engine.decisions(100).size() == decided);
    REQUIRE(engine.groups_waiting_to_sign() == waiting);
  };
  launch(0);
  REQUIRE(gated.wait_for_calls(1));
  for (std::size_t i = 1; i < subs.size(); ++i) {
    launch(i);
    if (!subs[i].foreign) ++waiting;
    settle(i + 1);
  }
  const FleetTarget target{"w", 3000, {"CW-0", "CW-1"}, 60};
  FleetDecision fd;
  ts.emplace_back([&] { fd = engine.apply_target(target, f.now + 1); });
  ++waiting;
  settle(subs.size() + 1);
  gated.open();
  for (auto& t : ts) t.join();
  CHECK(engine.groups_waiting_to_sign() == 0);

  // One signature for the first group, one for the eight of the same second (past the
  // rejected one's position), one for the last setpoint and the target's two commands:
  // three where there were eleven before.
  CHECK(gated.sizes() == std::vector<std::size_t>{1, 8, 3});
  protocol::PkiSignerResolver station_resolver(*f.pki.ca);
  struct Accept : protocol::ReplayGuard {
    Status accept(const std::string&, const std::string&, std::uint64_t) override { return Ok{}; }
  } accept;
  std::vector<std::uint64_t> seq(subs.size(), 0);  // the verified number of each command
  const char* failed = fault == SignFault::Refuse ? "could not be signed: hsm.sign_failed"
                                                  : "could not be signed: internal.error";
  for (std::size_t i = 0; i < subs.size(); ++i) {
    INFO(i << ": " << describe(ds[i]));
    if (subs[i].foreign) {
      CHECK(ds[i].reason == "dispatch.wrong_aggregator");
      CHECK_FALSE(ds[i].command);
      continue;
    }
    CHECK(ds[i].reason == kApplied);
    // A failed signature leaves the groups that shared it applied (they are recorded)
    // but without a command.
    if (fault != SignFault::None && i > 0) {
      CHECK_FALSE(ds[i].command);
      CHECK(ds[i].detail.find(failed) != std::string::npos);
      continue;
    }
    REQUIRE(ds[i].command);
    // Each command, alone or as one entry of the shared batch, verifies at its station.
    protocol::VerifyOptions o;
    o.now = subs[i].now;
    o.station = subs[i].station;
    o.action = "SetChargingProfile";
    auto v = protocol::verify_command(*ds[i].command, o, station_resolver, accept);
    INFO((v.ok() ? "" : v.error().code + ": " + v.error().message));
    REQUIRE(v.ok());
    seq[i] = v->claims.seq;
  }
  // The target's two commands went out with the last setpoint, after the stations'
  // earlier ones.
  INFO(json::serialize(fd.to_json()));
  CHECK(fd.reason == kApplied);
  REQUIRE(fd.setpoints.size() == 2);
  for (const auto& d : fd.setpoints) {
    if (fault != SignFault::None) {
      CHECK_FALSE(d.command);
      continue;
    }
    REQUIRE(d.command);
    protocol::VerifyOptions o;
    o.now = f.now + 1;
    o.station = d.station;
    o.action = "SetChargingProfile";
    auto v = protocol::verify_command(*d.command, o, station_resolver, accept);
    INFO((v.ok() ? "" : v.error().code + ": " + v.error().message));
    REQUIRE(v.ok());
    CHECK(v->claims.seq > seq[d.station == "CW-0" ? 0 : 1]);
  }
  if (fault != SignFault::None) CHECK(fd.detail.find("could not be signed") != std::string::npos);
  if (fault == SignFault::None) {
    // Numbered in the order of the groups: CW-7's second command is the newer, and
    // CW-6's command of the next second comes after its first.
    CHECK(seq[7] < seq[9]);
    CHECK(seq[6] < seq[10]);
  } else {
    // The turn went on past the failed groups: a later one is asked at once.
    Decision later = engine.submit(f.sign(request(1, "CentralSetpoint", 500.0), "CW-0", f.fleet_signer), f.now);
    CHECK(later.reason == kApplied);
    CHECK(gated.sizes().size() == 4);
  }
}

TEST_CASE("a shared signature takes no more commands than max_shared_signature") {
  Fixture f;
  constexpr int kStations = 8;
  EngineOptions options;
  options.max_shared_signature = 3;
  GatedWideSite site(f, kStations, SignFault::None, options);
  auto& [gated, engine] = site;
  std::vector<json::object> msgs;
  for (int i = 0; i < kStations; ++i) {
    const std::string station = "CW-" + std::to_string(i);
    REQUIRE(engine.start_session(ev("EV-W" + std::to_string(i), station, 1, f.now)).ok());
    msgs.push_back(f.sign(request(1, "CentralSetpoint", 1000.0 + i), station, f.fleet_signer));
  }
  std::vector<Decision> ds(kStations);
  std::vector<std::thread> ts;
  ts.emplace_back([&] { ds[0] = engine.submit(msgs[0], f.now); });
  REQUIRE(gated.wait_for_calls(1));
  for (std::size_t i = 1; i < kStations; ++i) {
    ts.emplace_back([&, i] { ds[i] = engine.submit(msgs[i], f.now); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (engine.groups_waiting_to_sign() < i && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(engine.groups_waiting_to_sign() == i);
  }
  gated.open();
  for (auto& t : ts) t.join();
  // Seven groups of one queued behind the first: three, three and one.
  CHECK(gated.sizes() == std::vector<std::size_t>{1, 3, 3, 1});
  for (const auto& d : ds) {
    INFO(describe(d));
    CHECK(d.reason == kApplied);
    CHECK(d.command);
  }
}

TEST_CASE("the intake verifies while a group waits for its signature, then decides what waited as one group") {
  Fixture f;
  constexpr int kStations = 8;
  GatedWideSite site(f, kStations);
  auto& [gated, engine] = site;
  // Handed in in this order: CW-0 (its group is held at the daemon's key); CW-1 three
  // times (sequence numbers 1, 2, 3: any reordering is a replay) and CW-2 to CW-4, all
  // verified while CW-0's group waits; then, a second later, CW-5 to CW-7.
  std::vector<std::pair<json::object, std::string>> msgs;
  auto add = [&](int i, double w) {
    const std::string station = "CW-" + std::to_string(i);
    msgs.emplace_back(f.sign(request(1, "CentralSetpoint", w), station, f.fleet_signer), station);
  };
  for (int i = 0; i < kStations; ++i)
    REQUIRE(engine.start_session(ev("EV-W" + std::to_string(i), "CW-" + std::to_string(i), 1, f.now)).ok());
  add(0, 1000);
  for (double w : {1100.0, 1200.0, 1300.0}) add(1, w);
  for (int i = 2; i < kStations; ++i) add(i, 1000.0 + i);
  const std::size_t first_second = 7;  // CW-0 .. CW-4
  std::atomic<std::int64_t> clock{f.now};
  std::mutex mu;
  std::vector<Decision> got;
  std::size_t batches = 0;
  auto wait_for = [](auto&& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return done();
  };
  {
    Intake intake(engine, [&] { return clock.load(); }, IntakeOptions{2, 16});
    auto hand_in = [&](std::size_t i) {
      intake.submit(msgs[i].first, msgs[i].second, [&](Decision d) {
        std::lock_guard g(mu);
        got.push_back(std::move(d));
      });
    };
    hand_in(0);
    REQUIRE(gated.wait_for_calls(1));  // the decider holds CW-0's group at the daemon's key
    for (std::size_t i = 1; i < first_second; ++i) hand_in(i);
    // Verified and waiting (not one more signature asked for them).
    REQUIRE(wait_for([&] { return intake.waiting_to_decide() == first_second - 1; }));
    clock = f.now + 1;
    for (std::size_t i = first_second; i < msgs.size(); ++i) hand_in(i);
    REQUIRE(wait_for([&] { return intake.waiting_to_decide() == msgs.size() - 1; }));
    CHECK(gated.sizes().size() == 1);
    gated.open();
    REQUIRE(wait_for([&] { return intake.setpoints() == msgs.size(); }));
    batches = intake.batches();
  }
  // One group for CW-0, one for the six verified while it waited, one for the three of
  // the next second; each signed once.
  CHECK(batches == 3);
  CHECK(gated.sizes() == std::vector<std::size_t>{1, 6, 3});
  REQUIRE(got.size() == msgs.size());
  for (const auto& d : got) {
    INFO(describe(d));
    CHECK(d.reason == kApplied);
    CHECK(d.command);
  }
  auto cw1 = engine.station_status("CW-1", f.now + 1);
  REQUIRE(cw1.ok());
  REQUIRE(cw1->size() == 1);
  CHECK(cw1->front().lo_w == Approx(1300));  // the last one handed in holds
}

TEST_CASE("setpoints handed to a stopping intake come after those handed in before them") {
  Fixture f;
  // One station's setpoints, handed in by a thread while the intake stops, and one more
  // after it stopped: any overtaking makes a replay.
  std::vector<json::object> msgs;
  for (int k = 0; k < 121; ++k) msgs.push_back(f.sign(request(1, "CentralSetpoint", 1000.0 + k), "CS-001", f.fleet_signer));
  std::mutex mu;
  std::vector<Decision> got;
  auto done = [&](Decision d) {
    std::lock_guard g(mu);
    got.push_back(std::move(d));
  };
  Intake intake(*f.engine, [&] { return f.now; }, IntakeOptions{2, 4});
  for (int k = 0; k < 40; ++k) intake.submit(msgs[k], "CS-001", done);
  std::atomic<bool> started{false};
  std::thread late([&] {
    started = true;
    for (int k = 40; k < 120; ++k) intake.submit(msgs[k], "CS-001", done);
  });
  while (!started) std::this_thread::yield();
  intake.stop();  // while the thread hands in: into the lane, to the decider, or decided at once
  late.join();
  {
    std::lock_guard g(mu);
    CHECK(got.size() >= 40);
  }
  intake.submit(msgs[120], "CS-001", done);  // stopped: decided in this thread, at once
  REQUIRE(got.size() == msgs.size());
  for (const auto& d : got) {
    INFO(describe(d));
    CHECK(d.reason == kApplied);
  }
  CHECK(got.back().seq == 121);
}

TEST_CASE("verified groups of different times are not decided as one") {
  Fixture f;
  auto a = f.engine->verify({}, f.now);
  auto b = f.engine->verify({}, f.now + 1);
  std::vector<Engine::Verified> groups;
  groups.push_back(std::move(a));
  groups.push_back(std::move(b));
  CHECK_THROWS_AS(f.engine->decide(std::move(groups)), std::invalid_argument);
  CHECK(f.engine->decide({}).empty());
}

namespace {
// Resolves as the fixture does, but throws for one signer (a bug deep in verification).
class ThrowingResolver final : public protocol::SignerResolver {
 public:
  ThrowingResolver(protocol::SignerResolver& inner, std::string thrown_for) : inner_(inner), thrown_for_(std::move(thrown_for)) {}
  Result<std::shared_ptr<const protocol::SignerCertificate>> find(const std::string& x5t_s256,
                                                                  const std::vector<Bytes>& x5c) override {
    auto found = inner_.find(x5t_s256, x5c);
    if (found.ok() && organisation_of((*found)->subject) == thrown_for_) throw std::runtime_error("resolver bug");
    return found;
  }
  Status judge(const protocol::SignerCertificate& signer, std::int64_t now) override { return inner_.judge(signer, now); }

 private:
  protocol::SignerResolver& inner_;
  std::string thrown_for_;
};
}  // namespace

TEST_CASE("an engine that throws while verifying refuses that batch with internal.error; the intake carries on") {
  Fixture f;
  ThrowingResolver throwing(f.resolver, "Other");
  auto fleet = load_fleet_yaml_text(kFleet, "fleet");
  REQUIRE(fleet.ok());
  Engine engine(std::move(*fleet), throwing, *f.pki.store, EngineOptions{}, &f.outgoing);
  REQUIRE(engine.start_session(ev("EV-1", "CS-001", 1, f.now)).ok());
  Intake intake(engine, [&] { return f.now; }, IntakeOptions{2, 1});  // a batch per setpoint
  Decision before = intake.submit_wait(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-001", f.fleet_signer), "CS-001");
  CHECK(before.reason == kApplied);
  Decision thrown =
      intake.submit_wait(f.sign(request(1, "CentralSetpoint", 1000.0), "CS-201", f.other_signer), "CS-201", "operator:CN=ops");
  CHECK(thrown.reason == "internal.error");
  CHECK(thrown.detail.find("resolver bug") != std::string::npos);
  CHECK(thrown.caller == "operator:CN=ops");
  CHECK_FALSE(thrown.command);
  Decision after = intake.submit_wait(f.sign(request(1, "CentralSetpoint", 1200.0), "CS-001", f.fleet_signer), "CS-001");
  CHECK(after.reason == kApplied);
  CHECK(after.command);
}
