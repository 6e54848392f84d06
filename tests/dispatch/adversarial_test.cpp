// The adversarial suite: more than 10,000 generated setpoints, valid and hostile, with
// real signatures (a SoftHSM2 token holds the CA and one aggregator key), each checked
// against an oracle written from the rules of the issue and DESIGN.md, not from the
// engine's code: it keeps its own model of the fleet, the sequence numbers and what
// every EVSE was told, and predicts applied / clamped (with the value) / rejected
// (with the reason) before the engine is asked.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <map>
#include <random>
#include <set>

#include <boost/json.hpp>

#include "core/digest.h"
#include "core/time.h"
#include "dispatch/engine.h"
#include "tests/dispatch/dispatch_fixture.h"

using namespace gridtrust;
namespace json = boost::json;
namespace dp = gridtrust::dispatch;

namespace {

// ---------------- the oracle's own model ----------------

struct MSite {
  double imp, exp, ramp;
  bool reject;
};
struct MEvse {
  std::string site, station;
  int id;
  double ch, dis, ramp;
};
struct MEv {
  bool present = false;
  double cap_wh, soc, soc_min, soc_max, ch, dis, eta_c, eta_d, need_wh;
  std::int64_t departure;
};
struct MTold {
  double lo = 0, hi = 0;
  std::int64_t until = 0;
  bool has_last = false;
  double last = 0;
  std::int64_t last_at = 0;
};

struct Facts {
  bool known_signer = true, signature_ok = true, revoked = false;
  std::string signer, org;
  std::int64_t iat = 0, exp = 0;
  std::string action = "SetChargingProfile", station;
  std::uint64_t seq = 0;
  int evse = 1;
  std::string mode = "CentralSetpoint";
  std::optional<double> setpoint, limit, dlimit;
  int duration = 900;
};

struct Expect {
  std::string outcome;  // applied / clamped / rejected
  std::string reason;
  double lo = 0, hi = 0;
};

struct Bounds {
  double lo, hi;
  std::string lo_why, hi_why;
};

struct Oracle {
  std::map<std::string, MSite> sites;
  std::map<std::string, std::string> station_site, station_owner;
  std::map<std::string, MEvse> evses;  // "station/evse"
  std::map<std::string, MEv> evs;      // "station/evse"
  std::map<std::string, MTold> told;
  std::map<std::string, std::uint64_t> last_seq;

  static std::string at(const std::string& st, int e) { return st + "/" + std::to_string(e); }

  // The rules of the envelope, as the issue lists them: each limit in turn narrows
  // what is left; a limit that would leave nothing pins the range at the nearest
  // value still allowed, and keeps the earlier limit's name.
  Bounds bounds(const std::string& k, std::int64_t now, double T, bool with_ramp) const {
    const MEvse& e = evses.at(k);
    const MEv& v = evs.count(k) ? evs.at(k) : MEv{};
    Bounds b{-e.dis, e.ch, "dispatch.evse_limit", "dispatch.evse_limit"};
    if (!v.present) return {0, 0, "dispatch.no_vehicle", "dispatch.no_vehicle"};
    std::vector<std::pair<double, std::string>> lows, highs;
    lows.push_back({-v.dis, "dispatch.ev_limit"});
    highs.push_back({v.ch, "dispatch.ev_limit"});
    const double e_now = v.soc * v.cap_wh;
    const double e_min = v.soc_min * v.cap_wh, e_max = v.soc_max * v.cap_wh;
    // Wh per hour at the battery -> W at the grid: charging divides by eta_c,
    // discharging multiplies by eta_d.
    lows.push_back({e_now > e_min ? -(e_now - e_min) / (T / 3600.0) * v.eta_d : 0.0, "dispatch.soc_floor"});
    highs.push_back({e_now < e_max ? (e_max - e_now) / (T / 3600.0) / v.eta_c : 0.0, "dispatch.soc_ceiling"});
    const double full = std::min(v.ch, e.ch);
    const double tail_s = std::max(0.0, double(v.departure - now) - T);
    const double must_hold = v.need_wh - full * v.eta_c * tail_s / 3600.0;
    double dep = 0;
    if (must_hold < e_now) dep = -(e_now - must_hold) / (T / 3600.0) * v.eta_d;
    lows.push_back({dep, "dispatch.departure_energy"});
    double others_hi = 0, others_lo = 0;
    for (const auto& [ok, oe] : evses) {
      if (ok == k || oe.site != e.site) continue;
      auto t = told.find(ok);
      if (t == told.end() || t->second.until <= now) continue;
      others_hi += t->second.hi;
      others_lo += t->second.lo;
    }
    const MSite& s = sites.at(e.site);
    lows.push_back({-s.exp - others_lo, "dispatch.site_limit"});
    highs.push_back({s.imp - others_hi, "dispatch.site_limit"});
    const double ramp = e.ramp > 0 ? e.ramp : s.ramp;
    auto t = told.find(k);
    if (with_ramp && ramp > 0 && t != told.end() && t->second.has_last) {
      const double dt = std::max<double>(1, double(now - t->second.last_at));
      lows.push_back({t->second.last - ramp * dt, "dispatch.ramp_rate"});
      highs.push_back({t->second.last + ramp * dt, "dispatch.ramp_rate"});
    }
    // Pairs in the order: EV, SoC, departure, site, ramp (lows and highs
    // interleaved per rule).
    std::size_t li = 0, hi = 0;
    const std::vector<int> order_low{0, 1, 2, 3, 4}, order_high{0, 1, 2, 3};
    auto apply_low = [&](std::size_t i) {
      if (i >= lows.size()) return;
      double x = std::min(lows[i].first, b.hi);
      if (x > b.lo) b.lo = x, b.lo_why = lows[i].second;
    };
    auto apply_high = [&](std::size_t i) {
      if (i >= highs.size()) return;
      double x = std::max(highs[i].first, b.lo);
      if (x < b.hi) b.hi = x, b.hi_why = highs[i].second;
    };
    // EV limits, then the SoC pair, then departure (low only), site pair, ramp pair.
    apply_low(0), apply_high(0);
    apply_low(1), apply_high(1);
    apply_low(2);
    apply_low(3), apply_high(2);
    apply_low(4), apply_high(3);
    (void)li, (void)hi, (void)order_low, (void)order_high;
    return b;
  }

  Expect judge(const Facts& f, std::int64_t now) {
    auto no = [](std::string r) { return Expect{"rejected", std::move(r)}; };
    if (!f.known_signer) return no("dispatch.unknown_signer");
    if (!f.signature_ok) return no("dispatch.bad_signature");
    if (f.revoked) return no("dispatch.signer_revoked");
    if (f.exp - f.iat > 3600) return no("dispatch.lifetime_too_long");
    if (f.iat > now + 60) return no("dispatch.future_dated");
    if (now >= f.exp) return no("dispatch.expired");
    if (f.action != "SetChargingProfile") return no("dispatch.wrong_action");
    if (!station_site.count(f.station)) return no("dispatch.unknown_station");
    auto& last = last_seq[f.signer + "|" + f.station];
    if (f.seq <= last) return no("dispatch.replay");
    last = f.seq;
    if (station_owner.at(f.station) != f.org) return no("dispatch.wrong_aggregator");
    double lo, hi;
    if (f.mode == "CentralSetpoint") {
      if (!f.setpoint) return no("dispatch.bad_setpoint");
      if ((f.limit && *f.setpoint > *f.limit) || (f.dlimit && *f.setpoint < *f.dlimit)) return no("dispatch.bad_setpoint");
      lo = hi = *f.setpoint;
    } else if (f.mode == "ExternalSetpoint") {
      if (!f.limit) return no("dispatch.bad_setpoint");
      lo = f.dlimit.value_or(0);
      hi = *f.limit;
    } else if (f.mode == "Idle") {
      lo = hi = 0;
    } else {
      return no("dispatch.unsupported_mode");
    }
    const std::string k = at(f.station, f.evse);
    if (!evses.count(k)) return no("dispatch.unknown_evse");
    const Bounds b = bounds(k, now, f.duration, f.mode == "CentralSetpoint");
    Expect x;
    if (hi <= b.hi + 1e-6 && lo >= b.lo - 1e-6) {
      x = {"applied", "dispatch.applied", lo, hi};
    } else {
      x.reason = hi > b.hi + 1e-6 ? b.hi_why : b.lo_why;
      if (sites.at(evses.at(k).site).reject) return no(x.reason);
      x.outcome = "clamped";
      x.lo = std::min(std::max(lo, b.lo), b.hi);
      x.hi = std::min(std::max(hi, b.lo), b.hi);
    }
    MTold& t = told[k];
    t.lo = x.lo;
    t.hi = x.hi;
    t.until = now + f.duration;
    if (f.mode != "ExternalSetpoint") t.has_last = true, t.last = x.lo, t.last_at = now;
    return x;
  }
};

// ---------------- the generator ----------------

json::object profile(const Facts& f) {
  json::object period{{"startPeriod", 0}, {"operationMode", f.mode}};
  if (f.setpoint) period["setpoint"] = *f.setpoint;
  if (f.limit) period["limit"] = *f.limit;
  if (f.dlimit) period["dischargeLimit"] = *f.dlimit;
  json::object schedule{{"id", 1}, {"chargingRateUnit", "W"}, {"duration", f.duration},
                        {"chargingSchedulePeriod", json::array{period}}};
  return json::object{{"evseId", f.evse},
                      {"chargingProfile", json::object{{"id", 1},
                                                       {"stackLevel", 0},
                                                       {"chargingProfilePurpose", "TxDefaultProfile"},
                                                       {"chargingProfileKind", "Absolute"},
                                                       {"chargingSchedule", json::array{schedule}}}}};
}

// What the emitted command must look like to pass the OCPP 2.1 schema of
// SetChargingProfileRequest (the members gridtrust writes; additionalProperties is
// false at every level).
bool schema_shaped(const json::object& m) {
  static const std::set<std::string> top{"evseId", "chargingProfile", "customData"},
      prof{"id", "stackLevel", "chargingProfilePurpose", "chargingProfileKind", "chargingSchedule", "transactionId"},
      sched{"id", "chargingRateUnit", "duration", "startSchedule", "chargingSchedulePeriod"},
      per{"startPeriod", "operationMode", "setpoint", "limit", "dischargeLimit"};
  auto only = [](const json::object& o, const std::set<std::string>& allowed) {
    for (const auto& kv : o)
      if (!allowed.count(std::string(kv.key()))) return false;
    return true;
  };
  if (!only(m, top) || !m.at("evseId").is_int64()) return false;
  const auto& p = m.at("chargingProfile").as_object();
  if (!only(p, prof) || p.at("stackLevel").as_int64() < 0) return false;
  const auto& ss = p.at("chargingSchedule").as_array();
  if (ss.empty() || ss.size() > 3) return false;
  for (const auto& s : ss) {
    if (!only(s.as_object(), sched) || s.at("chargingRateUnit").as_string() != "W") return false;
    const auto& ps = s.at("chargingSchedulePeriod").as_array();
    if (ps.empty() || ps.size() > 1024) return false;
    for (const auto& q : ps) {
      const auto& o = q.as_object();
      if (!only(o, per) || !o.at("startPeriod").is_int64()) return false;
      if (o.contains("dischargeLimit") && o.at("dischargeLimit").to_number<double>() > 0) return false;
      static const std::set<std::string> modes{"Idle", "ChargingOnly", "CentralSetpoint", "ExternalSetpoint",
                                               "ExternalLimits", "CentralFrequency", "LocalFrequency",
                                               "LocalLoadBalancing"};
      if (o.contains("operationMode") && !modes.count(std::string(o.at("operationMode").as_string()))) return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("adversarial: over 10,000 generated setpoints, none wrongly applied and none wrongly rejected") {
  // Decisions, not fsync, are under test: on tmpfs the store's durable commits cost
  // microseconds instead of the milliseconds of a disk (same semantics for a crash of
  // the process).
  if (!std::getenv("TMPDIR") && std::filesystem::exists("/dev/shm")) setenv("TMPDIR", "/dev/shm", 0);
  test::DispatchPki pki;
  auto f1 = pki.hsm_signer("agg-hsm", "Fleet");
  auto f2 = pki.software_signer("agg-soft", "Fleet");
  auto o1 = pki.software_signer("agg-other", "Other");
  auto rev = pki.software_signer("agg-revoked", "Fleet");
  auto csx = pki.software_signer("CS-X", "Fleet", "charging-station");  // no dispatch authority: not a signer
  auto daemon = pki.software_signer("gridtrustd", "Fleet");
  test::SoftP256Signer forger(test::make_key("P-256"));
  protocol::PkiSignerResolver resolver(*pki.ca);
  dp::StoreOutgoingSigner outgoing(daemon.command_signer(), *pki.store);

  std::mt19937_64 rng(20261126);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  std::int64_t now = to_unix(now_seconds());

  // Fleet: three sites (clamp; reject with a ramp; clamp with a ramp), Fleet's and
  // Other's stations, EVSEs with and without vehicles.
  Oracle oracle;
  oracle.sites = {{"A", {40000, 30000, 0, false}}, {"B", {25000, 25000, 200, true}}, {"C", {60000, 45000, 50, false}}};
  dp::Fleet fleet;
  for (const auto& [id, s] : oracle.sites)
    fleet.sites[id] = dp::Site{id, s.imp, s.exp, s.reject ? dp::EnforcementPolicy::Reject : dp::EnforcementPolicy::Clamp,
                               s.ramp};
  std::vector<std::string> stations;
  for (const char* site : {"A", "B", "C"})
    for (int i = 1; i <= 4; ++i) {
      std::string st = std::string(site) + std::to_string(i);
      std::string owner = i == 4 ? "Other" : "Fleet";
      stations.push_back(st);
      oracle.station_site[st] = site;
      oracle.station_owner[st] = owner;
      fleet.stations[st] = dp::Station{st, site, owner};
      for (int e = 1; e <= 2; ++e) {
        const double ch = e == 1 ? 11000 : 7400, dis = e == 1 ? 11000 : 5000;
        oracle.evses[Oracle::at(st, e)] = MEvse{site, st, e, ch, dis, 0};
        fleet.evses[dp::evse_key(st, e)] = dp::Evse{st, e, ch, dis, 0};
      }
    }
  auto make_session = [&](const std::string& st, int e) {
    MEv v;
    v.present = true;
    v.cap_wh = uni(30000, 90000);
    v.soc_min = uni(0.1, 0.3);
    v.soc_max = uni(0.8, 0.95);
    v.soc = uni(v.soc_min - 0.05, v.soc_max + 0.03);
    v.soc = std::clamp(v.soc, 0.0, 1.0);
    v.ch = pick(2) ? 11000 : uni(3000, 10000);
    v.dis = uni(2000, 10000);
    v.eta_c = uni(0.85, 0.97);
    v.eta_d = uni(0.85, 0.97);
    v.departure = now + static_cast<std::int64_t>(uni(600, 6 * 3600));
    v.need_wh = std::min(v.soc_max * v.cap_wh, uni(0.3, 0.9) * v.cap_wh);
    dp::Session s;
    s.ev = "EV-" + st + "-" + std::to_string(e);
    s.station = st;
    s.evse = e;
    s.battery_wh = v.cap_wh;
    s.soc = v.soc;
    s.soc_min = v.soc_min;
    s.soc_max = v.soc_max;
    s.max_charge_w = v.ch;
    s.max_discharge_w = v.dis;
    s.eta_charge = v.eta_c;
    s.eta_discharge = v.eta_d;
    s.departure = v.departure;
    s.energy_needed_wh = v.need_wh;
    return std::make_pair(v, s);
  };
  for (const auto& st : stations)
    for (int e = 1; e <= 2; ++e) {
      if (st == "A2" && e == 2) continue;  // an EVSE with nothing plugged in
      auto [v, s] = make_session(st, e);
      oracle.evs[Oracle::at(st, e)] = v;
      fleet.sessions[dp::evse_key(st, e)] = s;
    }
  dp::EngineOptions opt;
  opt.decision_log_size = 100;
  dp::Engine engine(fleet, resolver, *pki.store, opt, &outgoing);

  struct Who {
    test::SignerIdentity* id;
    std::string org;
    std::string fp;
  };
  auto fp = [](const test::SignerIdentity& s) { return base64url_encode(sha256(s.issued.record.der)); };
  std::vector<Who> fleet_signers{{&f1, "Fleet", fp(f1)}, {&f2, "Fleet", fp(f2)}, {&rev, "Fleet", fp(rev)}};
  Who other{&o1, "Other", fp(o1)};
  std::map<std::string, std::uint64_t> next_seq;  // signer|station -> last handed out
  bool revoked = false;

  std::map<std::string, int> by_category, by_reason;
  int total = 0, wrongly_applied = 0, wrongly_rejected = 0, wrong_reason = 0, wrong_value = 0, bad_command = 0;
  std::vector<std::string> failures;

  auto compare = [&](const dp::Decision& d, const Expect& x, const std::string& category) {
    ++total;
    ++by_category[category];
    ++by_reason[x.reason];
    const std::string got = dp::to_string(d.outcome);
    const bool ok_outcome = got == x.outcome;
    if (!ok_outcome && x.outcome == "rejected") ++wrongly_applied;
    if (!ok_outcome && x.outcome != "rejected" && got == "rejected") ++wrongly_rejected;
    if (ok_outcome && d.reason != x.reason) ++wrong_reason;
    if (ok_outcome && x.outcome != "rejected" &&
        (std::fabs(d.applied_lo_w - x.lo) > 1e-3 || std::fabs(d.applied_hi_w - x.hi) > 1e-3))
      ++wrong_value;
    if (d.applied() && (!d.command || !schema_shaped(*d.command))) ++bad_command;
    if ((!ok_outcome || d.reason != x.reason) && failures.size() < 10)
      failures.push_back(category + ": expected " + x.outcome + " " + x.reason + " [" + std::to_string(x.lo) + "," +
                         std::to_string(x.hi) + "], got " + json::serialize(d.to_json()));
  };

  // A value for `f` near the interesting edges of the oracle's envelope, never
  // within a watt of an edge (where float rounding could decide).
  auto choose_value = [&](Facts& f, const std::string& kind) {
    const std::string k = Oracle::at(f.station, f.evse);
    if (!oracle.evses.count(k)) {
      f.setpoint = uni(-5000, 5000);
      return;
    }
    const Bounds b = oracle.bounds(k, now, f.duration, true);
    double v;
    if (kind == "inside" && b.hi - b.lo > 4) v = uni(b.lo + 2, b.hi - 2);
    else if (kind == "above") v = b.hi + uni(2, 6000);
    else if (kind == "below") v = b.lo - uni(2, 6000);
    else v = pick(2) ? b.hi + uni(2, 3000) : b.lo - uni(2, 3000);
    f.setpoint = std::round(v * 100) / 100;
  };

  auto sign_facts = [&](Facts& f, const Who& w, std::int64_t iat, std::int64_t lifetime) {
    f.signer = w.fp;
    f.org = w.org;
    f.iat = iat;
    f.exp = iat + lifetime;
    f.seq = ++next_seq[w.fp + "|" + f.station];
    f.revoked = revoked && w.id == &rev;
    auto m = protocol::sign_command(profile(f), w.id->command_signer(), {f.action, f.station, f.seq}, {iat, lifetime});
    REQUIRE(m.ok());
    return std::move(m).value();
  };

  struct Sent {
    json::object message;
    Facts facts;
  };
  std::vector<Sent> history;

  const std::vector<std::pair<std::string, int>> weights{
      {"valid", 22},       {"out_of_envelope", 14}, {"site_overload", 6}, {"soc", 6},        {"departure", 5},
      {"external_idle", 4}, {"forged", 4},          {"tampered", 5},      {"expired", 4},    {"future", 4},
      {"replayed", 6},      {"reordered", 4},       {"wrong_aggregator", 4}, {"revoked", 3}, {"unknown_station", 3},
      {"unknown_signer", 2}, {"malformed_setpoint", 2}, {"batch", 2}};
  int weight_sum = 0;
  for (const auto& w : weights) weight_sum += w.second;

  for (int step = 0; total < 10500; ++step) {
    now += pick(3);
    if (step == 4000) {
      REQUIRE(pki.ca->revoke(rev.issued.record.serial, "keyCompromise", "test").ok());
      revoked = true;
    }
    // Telemetry now and then: the SoC moves, for engine and oracle alike.
    if (step % 7 == 0) {
      const std::string st = stations[pick(static_cast<int>(stations.size()))];
      const int e = 1 + pick(2);
      auto it = oracle.evs.find(Oracle::at(st, e));
      if (it != oracle.evs.end()) {
        it->second.soc = std::clamp(it->second.soc + uni(-0.05, 0.05), 0.0, 1.0);
        REQUIRE(engine.update_soc("EV-" + st + "-" + std::to_string(e), it->second.soc, now).ok());
      }
    }
    int r = pick(weight_sum);
    std::string cat;
    for (const auto& w : weights)
      if ((r -= w.second) < 0) {
        cat = w.first;
        break;
      }
    Facts f;
    f.station = stations[pick(static_cast<int>(stations.size()))];
    if (oracle.station_owner[f.station] != "Fleet" && cat != "wrong_aggregator") f.station = "A1";
    f.evse = 1 + pick(2);
    f.duration = 60 + 60 * pick(30);
    const Who& fw = fleet_signers[pick(2)];  // f1 or f2

    if (cat == "batch") {
      std::vector<protocol::BatchItem> items;
      std::vector<Facts> fs;
      const int n = 5 + pick(30);
      for (int i = 0; i < n; ++i) {
        Facts g;
        g.station = stations[pick(static_cast<int>(stations.size()))];
        g.evse = 1 + pick(2);
        g.duration = 60 + 60 * pick(30);
        g.signer = f2.issued.record.der.empty() ? "" : fleet_signers[1].fp;
        g.org = "Fleet";
        g.iat = now;
        g.exp = now + 300;
        g.seq = ++next_seq[g.signer + "|" + g.station];
        choose_value(g, pick(2) ? "inside" : "outside");
        fs.push_back(g);
        items.push_back({profile(g), {g.action, g.station, g.seq}});
      }
      auto batch = protocol::sign_batch(items, f2.command_signer(), {now, 300});
      REQUIRE(batch.ok());
      const bool tamper = pick(4) == 0;
      if (tamper) (*batch)[pick(n)]["evseId"] = 7;
      auto ds = engine.submit_batch(*batch, now);
      REQUIRE(ds.size() == fs.size());
      for (int i = 0; i < n; ++i) {
        if (tamper) fs[i].signature_ok = false;
        compare(ds[i], oracle.judge(fs[i], now), tamper ? "batch_tampered" : "batch");
      }
      continue;
    }

    json::object msg;
    if (cat == "replayed" || cat == "tampered") {
      if (history.empty()) continue;
      Sent s = history[pick(static_cast<int>(history.size()))];
      if (cat == "tampered") {
        if (pick(2)) s.message["evseId"] = s.facts.evse == 1 ? 2 : 1;
        else
          s.message["chargingProfile"].as_object()["chargingSchedule"].as_array()[0].as_object()["duration"] =
              s.facts.duration + 60;
        s.facts.signature_ok = false;
      }
      s.facts.revoked = revoked && s.facts.signer == fleet_signers[2].fp;
      compare(engine.submit(s.message, now), oracle.judge(s.facts, now), cat);
      continue;
    }
    if (cat == "reordered") {
      choose_value(f, "inside");
      Facts g = f;
      json::object first = sign_facts(f, fw, now, 300);
      json::object second = sign_facts(g, fw, now, 300);
      compare(engine.submit(second, now), oracle.judge(g, now), cat);
      compare(engine.submit(first, now), oracle.judge(f, now), cat);
      continue;
    }
    std::int64_t iat = now, lifetime = 300;
    const Who* who = &fw;
    if (cat == "valid") choose_value(f, "inside");
    else if (cat == "out_of_envelope") choose_value(f, pick(2) ? "above" : "below");
    else if (cat == "site_overload") {
      // Push the site: several EVSEs of one site towards their maximum.
      f.station = std::string(1, "ABC"[pick(3)]) + std::to_string(1 + pick(3));
      choose_value(f, pick(3) ? "above" : "inside");
    } else if (cat == "soc") {
      const std::string k = Oracle::at(f.station, f.evse);
      auto it = oracle.evs.find(k);
      if (it != oracle.evs.end()) {
        const bool low = pick(2);
        it->second.soc = low ? it->second.soc_min + uni(0.0, 0.02) : it->second.soc_max - uni(0.0, 0.02);
        REQUIRE(engine.update_soc("EV-" + f.station + "-" + std::to_string(f.evse), it->second.soc, now).ok());
        f.duration = 600 + 60 * pick(50);
        choose_value(f, low ? "below" : "above");
      } else {
        choose_value(f, "inside");
      }
    } else if (cat == "departure") {
      // A fresh session leaving soon with much still needed, then a discharge.
      const std::string k = Oracle::at(f.station, f.evse);
      if (oracle.evs.count(k)) {
        auto [v, s] = make_session(f.station, f.evse);
        v.departure = now + static_cast<std::int64_t>(uni(1200, 7200));
        v.need_wh = std::min(v.soc_max * v.cap_wh, v.soc * v.cap_wh + uni(-3000, 9000));
        v.need_wh = std::max(v.need_wh, 0.0);
        s.departure = v.departure;
        s.energy_needed_wh = v.need_wh;
        oracle.evs[k] = v;
        REQUIRE(engine.start_session(s).ok());
      }
      choose_value(f, "below");
    } else if (cat == "external_idle") {
      if (pick(2)) {
        f.mode = "Idle";
      } else {
        f.mode = "ExternalSetpoint";
        f.limit = std::round(uni(0, 12000));
        f.dlimit = -std::round(uni(0, 12000));
      }
    } else if (cat == "forged") {
      choose_value(f, "inside");
      f.signer = fw.fp;
      f.org = fw.org;
      f.iat = now;
      f.exp = now + 300;
      f.seq = next_seq[fw.fp + "|" + f.station] + 1;  // even a fresh sequence number does not help
      f.signature_ok = false;
      protocol::CommandSigner forged{forger, fw.id->issued.record.der, {}};
      auto m = protocol::sign_command(profile(f), forged, {f.action, f.station, f.seq}, {now, 300});
      REQUIRE(m.ok());
      compare(engine.submit(*m, now), oracle.judge(f, now), cat);
      continue;
    } else if (cat == "expired") {
      choose_value(f, "inside");
      iat = now - 300 - pick(600);
    } else if (cat == "future") {
      choose_value(f, "inside");
      iat = now + 61 + pick(600);
    } else if (cat == "wrong_aggregator") {
      choose_value(f, "inside");
      if (pick(2)) f.station = "B4";  // Other's station, Fleet's signer
      else who = &other;              // Other's signer for a Fleet station (or its own)
    } else if (cat == "revoked") {
      choose_value(f, "inside");
      who = &fleet_signers[2];
    } else if (cat == "unknown_station") {
      choose_value(f, "inside");
      f.station = "ZZ" + std::to_string(pick(5));
    } else if (cat == "unknown_signer") {
      choose_value(f, "inside");
      f.known_signer = false;
      Who x{&csx, "Fleet", fp(csx)};
      json::object m = sign_facts(f, x, iat, lifetime);
      compare(engine.submit(m, now), oracle.judge(f, now), cat);
      continue;
    } else if (cat == "malformed_setpoint") {
      switch (pick(3)) {
        case 0: f.mode = "ChargingOnly"; f.setpoint = 1000; break;
        case 1: f.setpoint = -6000; f.dlimit = -5000; break;
        default: f.evse = 5; f.setpoint = 1000; break;
      }
    }
    if (pick(20) == 0) lifetime = 3601 + pick(100);  // too long a lifetime, whatever else
    msg = sign_facts(f, *who, iat, lifetime);
    history.push_back({msg, f});
    if (history.size() > 400) history.erase(history.begin());
    compare(engine.submit(msg, now), oracle.judge(f, now), cat);
  }

  for (const auto& s : failures) UNSCOPED_INFO(s);
  std::string cats, reasons;
  for (const auto& [k, v] : by_category) cats += k + "=" + std::to_string(v) + " ";
  for (const auto& [k, v] : by_reason) reasons += k + "=" + std::to_string(v) + " ";
  INFO("categories: " << cats);
  INFO("reasons: " << reasons);
  CHECK(total >= 10000);
  CHECK(wrongly_applied == 0);
  CHECK(wrongly_rejected == 0);
  CHECK(wrong_reason == 0);
  CHECK(wrong_value == 0);
  CHECK(bad_command == 0);
  // Every rule was exercised.
  for (const char* code : {"dispatch.applied", "dispatch.bad_signature", "dispatch.unknown_signer",
                           "dispatch.signer_revoked", "dispatch.expired", "dispatch.future_dated",
                           "dispatch.lifetime_too_long", "dispatch.replay", "dispatch.wrong_aggregator",
                           "dispatch.unknown_station", "dispatch.unknown_evse", "dispatch.bad_setpoint",
                           "dispatch.unsupported_mode", "dispatch.evse_limit", "dispatch.ev_limit",
                           "dispatch.soc_floor", "dispatch.soc_ceiling", "dispatch.departure_energy",
                           "dispatch.site_limit", "dispatch.ramp_rate", "dispatch.no_vehicle"}) {
    INFO(code);
    CHECK(by_reason[code] > 0);
  }
  WARN("adversarial: " << total << " setpoints; " << reasons);
}
