#include "dispatch/simulation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <unordered_map>

#include <boost/json.hpp>

#include "dispatch/engine.h"

namespace gridtrust::dispatch {

namespace json = boost::json;

// ---- signals ----

Result<std::vector<SignalPoint>> parse_signal_csv(const std::string& text, const std::string& origin) {
  std::vector<SignalPoint> out;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto comma = line.find(',');
    if (comma == std::string::npos)
      return reject("dispatch.bad_signal", origin + ":" + std::to_string(n) + ": expected time,W");
    const std::string a = line.substr(0, comma), b = line.substr(comma + 1);
    char* end1 = nullptr;
    char* end2 = nullptr;
    const double t = std::strtod(a.c_str(), &end1);
    const double w = std::strtod(b.c_str(), &end2);
    const bool numbers = end1 != a.c_str() && *end1 == '\0' && end2 != b.c_str() && (*end2 == '\0' || *end2 == ' ');
    if (!numbers) {
      if (out.empty() && n == 1) continue;  // a header line
      return reject("dispatch.bad_signal", origin + ":" + std::to_string(n) + ": not two numbers");
    }
    if (!std::isfinite(t) || !std::isfinite(w) || t < 0 || (!out.empty() && t <= out.back().t_s))
      return reject("dispatch.bad_signal", origin + ":" + std::to_string(n) + ": times must be increasing, from 0");
    out.push_back({t, w});
  }
  if (out.empty()) return reject("dispatch.bad_signal", origin + ": no points");
  return out;
}

Result<std::vector<SignalPoint>> load_signal_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return reject("usage.unreadable_file", "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_signal_csv(ss.str(), path);
}

std::vector<SignalPoint> synthetic_signal(int evs, double hours, double step_s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  std::vector<SignalPoint> out;
  const double kTwoPi = 6.283185307179586;
  double slow_noise = 0;
  for (double t = 0; t < hours * 3600; t += step_s) {
    const double hour = std::fmod(t / 3600.0, 24.0);
    // A charging baseline, lower in the evening peak (the fleet discharges there),
    // plus regulation: 30 min and 5 min swings and a random walk.
    const double baseline = (hour >= 17 && hour < 21) ? -1500.0 : 2200.0;
    slow_noise = 0.9 * slow_noise + 0.1 * noise(rng);
    const double reg = 1800 * std::sin(kTwoPi * t / 1800) + 700 * std::sin(kTwoPi * t / 300 + 1) + 600 * slow_noise;
    out.push_back({t, evs * (baseline + reg)});
  }
  return out;
}

namespace {

// The simulation decides only: no signatures to check, nothing to store.
class NoSigners final : public protocol::SignerResolver {
 public:
  Result<std::shared_ptr<const protocol::SignerCertificate>> find(const std::string&, const std::vector<Bytes>&) override {
    return reject("verify.unknown_signer", "the simulation takes no signed input");
  }
  Status judge(const protocol::SignerCertificate&, std::int64_t) override {
    return reject("verify.untrusted_chain", "the simulation takes no signed input");
  }
};

struct SimEv {
  Session s;
  std::size_t site = 0;
  std::int64_t arrive = 0;
  bool present = false;
  bool excused = false;  // the fleet could not give it the charge it needed at some step
  double w = 0;
};

double signal_at(const std::vector<SignalPoint>& sig, double t) {
  auto it = std::upper_bound(sig.begin(), sig.end(), t, [](double v, const SignalPoint& p) { return v < p.t_s; });
  if (it == sig.begin()) return sig.front().w;
  return std::prev(it)->w;
}

}  // namespace

json::object SimulationReport::to_json(bool with_series) const {
  json::object o{
      {"evs", evs},
      {"sites", sites},
      {"sessions", sessions},
      {"hours", hours},
      {"step_s", step_s},
      {"steps", steps},
      {"requested_kwh", requested_wh / 1000},
      {"delivered_kwh", delivered_wh / 1000},
      {"tracking_rmse_kw", tracking_rmse_w / 1000},
      {"shortfall_steps", shortfall_steps},
      {"ac_in_kwh", energy.ac_in_wh / 1000},
      {"ac_out_kwh", energy.ac_out_wh / 1000},
      {"dc_in_kwh", energy.dc_in_wh / 1000},
      {"dc_out_kwh", energy.dc_out_wh / 1000},
      {"dc_throughput_kwh", energy.throughput_wh() / 1000},
      {"degradation_cost", energy.degradation_cost},
      {"energy_cost", energy.energy_cost},
      {"energy_revenue", energy.energy_revenue},
      {"arbitrage_profit", energy.arbitrage_profit()},
      {"demand_peak_base_kw", demand_peak_base_kw},
      {"demand_peak_with_fleet_kw", demand_peak_with_kw},
      {"demand_charge_avoided", demand_charge_avoided},
      {"invariants",
       json::object{{"hold", invariants_hold()},
                    {"soc_floor_violations", soc_floor_violations},
                    {"lowest_soc_margin", lowest_soc_margin},
                    {"departures", departures},
                    {"departures_met", departures_met},
                    {"departures_excused", departures_excused},
                    {"departure_violations", departure_violations},
                    {"site_limit_violations", site_limit_violations},
                    {"highest_site_utilisation", highest_site_utilisation}}},
      {"wall_seconds", wall_seconds}};
  if (with_series) {
    json::array series;
    for (std::size_t i = 0; i < t_s.size(); ++i) series.push_back(json::array{t_s[i], requested_w[i], delivered_w[i]});
    o["series"] = std::move(series);
  }
  return o;
}

std::string SimulationReport::svg() const {
  const double W = 980, H = 420, L = 90, R = 20, T = 64, B = 56;
  double lo = 0, hi = 0;
  for (std::size_t i = 0; i < t_s.size(); ++i) {
    lo = std::min({lo, requested_w[i], delivered_w[i]});
    hi = std::max({hi, requested_w[i], delivered_w[i]});
  }
  if (hi - lo < 1) hi = lo + 1;
  const double pad = (hi - lo) * 0.05;
  lo -= pad;
  hi += pad;
  const double t_end = t_s.empty() ? 1 : std::max(1.0, t_s.back());
  auto x = [&](double t) { return L + (W - L - R) * t / t_end; };
  auto y = [&](double w) { return T + (H - T - B) * (hi - w) / (hi - lo); };
  auto line = [&](const std::vector<double>& v, const char* colour, const char* extra) {
    std::ostringstream p;
    p << "<polyline fill=\"none\" stroke=\"" << colour << "\" " << extra << " points=\"";
    for (std::size_t i = 0; i < t_s.size(); ++i) p << x(t_s[i]) << ',' << y(v[i]) << ' ';
    p << "\"/>\n";
    return p.str();
  };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<title>fleet power: requested vs delivered</title>\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << L << "\" y=\"20\" font-size=\"15\" font-weight=\"bold\">Fleet power: requested vs delivered ("
    << evs << " EVs, " << hours << " h simulated)</text>\n";
  s << "<text x=\"" << L << "\" y=\"38\" fill=\"#444\">positive: the fleet charges (imports); negative: it "
       "discharges to the grid. Delivered stays inside every EV, EVSE and site envelope.</text>\n";
  // Legend.
  s << "<line x1=\"" << W - 330 << "\" y1=\"54\" x2=\"" << W - 300 << "\" y2=\"54\" stroke=\"#1f77b4\" "
       "stroke-width=\"3\" stroke-dasharray=\"6 3\"/><text x=\"" << W - 295 << "\" y=\"58\">requested (signal)</text>\n";
  s << "<line x1=\"" << W - 170 << "\" y1=\"54\" x2=\"" << W - 140 << "\" y2=\"54\" stroke=\"#ff7f0e\" "
       "stroke-width=\"1.6\"/><text x=\"" << W - 135 << "\" y=\"58\">delivered</text>\n";
  // Axes, grid and ticks.
  s << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"none\" stroke=\"#333\"/>\n";
  for (int i = 0; i <= 5; ++i) {
    const double w = lo + (hi - lo) * i / 5;
    s << "<line x1=\"" << L << "\" y1=\"" << y(w) << "\" x2=\"" << W - R << "\" y2=\"" << y(w)
      << "\" stroke=\"#eee\"/>\n";
    s << "<text x=\"" << L - 6 << "\" y=\"" << y(w) + 4 << "\" text-anchor=\"end\">" << std::round(w / 100) / 10
      << "</text>\n";
  }
  s << "<line x1=\"" << L << "\" y1=\"" << y(0) << "\" x2=\"" << W - R << "\" y2=\"" << y(0)
    << "\" stroke=\"#777\" stroke-dasharray=\"4 3\"/><text x=\"" << W - R - 4 << "\" y=\"" << y(0) - 4
    << "\" text-anchor=\"end\" fill=\"#777\">0 kW</text>\n";
  const int step_h = std::max(1, static_cast<int>(t_end / 3600 / 12));
  for (int h = 0; h <= static_cast<int>(t_end / 3600); h += step_h)
    s << "<text x=\"" << x(h * 3600.0) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">" << h
      << "</text>\n";
  s << "<text x=\"" << L + (W - L - R) / 2 << "\" y=\"" << H - 12
    << "\" text-anchor=\"middle\">simulated time (hours)</text>\n";
  s << "<text transform=\"translate(18 " << T + (H - T - B) / 2
    << ") rotate(-90)\" text-anchor=\"middle\">fleet power (kW)</text>\n";
  s << line(requested_w, "#1f77b4", "stroke-width=\"3\" stroke-dasharray=\"6 3\" stroke-opacity=\"0.7\"")
    << line(delivered_w, "#ff7f0e", "stroke-width=\"1.6\"");
  s << "</svg>\n";
  return s.str();
}

Result<SimulationReport> run_simulation(const SimulationConfig& c) {
  if (c.evs < 1 || c.evs > 1000000) return reject("usage.bad_value", "--evs must be 1 to 1,000,000");
  if (!(c.hours > 0 && c.hours <= 24 * 31)) return reject("usage.bad_value", "--hours must be above 0, at most 744");
  if (!(c.step_s >= 1 && c.step_s <= 3600)) return reject("usage.bad_value", "--step must be 1 to 3600 s");
  if (c.evs_per_site < 1) return reject("usage.bad_value", "evs per site must be at least 1");
  const auto wall_start = std::chrono::steady_clock::now();
  std::mt19937_64 rng(c.seed);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  const std::int64_t t0 = 1'800'000'000;  // any epoch: the clock is simulated
  const double step = c.step_s;
  auto align = [&](double t) { return static_cast<std::int64_t>(std::ceil(t / step) * step); };

  // Sites of evs_per_site EVSEs, two EVSEs per station; one EV per EVSE at a time.
  Fleet fleet;
  const int site_count = (c.evs + c.evs_per_site - 1) / c.evs_per_site;
  std::vector<double> site_import(site_count, 0), site_export(site_count, 0);
  std::vector<SimEv> evs(c.evs);
  std::vector<std::string> station_ids;
  for (int i = 0; i < c.evs; ++i) {
    const int site = i / c.evs_per_site;
    const std::string station = "S" + std::to_string(site) + "-CS" + std::to_string((i % c.evs_per_site) / 2);
    if (i % 2 == 0 || (i % c.evs_per_site) == 0) {
      if (!fleet.stations.count(station)) {
        fleet.stations[station] = Station{station, "site-" + std::to_string(site), "sim"};
        station_ids.push_back(station);
      }
    }
    const int evse = i % 2 + 1;
    const double ch = i % 3 == 0 ? 7400 : 11000;
    fleet.evses[evse_key(station, evse)] = Evse{station, evse, ch, ch, 0};
    site_import[site] += ch;
    site_export[site] += ch;
    evs[i].site = static_cast<std::size_t>(site);
    evs[i].s.station = station;
    evs[i].s.evse = evse;
  }
  for (int s = 0; s < site_count; ++s)
    fleet.sites["site-" + std::to_string(s)] =
        Site{"site-" + std::to_string(s), 0.5 * site_import[s], 0.4 * site_export[s], EnforcementPolicy::Clamp, 0};

  int session_counter = 0;
  auto new_session = [&](SimEv& ev, std::int64_t arrive) {
    Session& s = ev.s;
    s.ev = "EV-" + std::to_string(session_counter++);
    s.battery_wh = uni(40000, 100000);
    s.soc_min = uni(0.15, 0.25);
    s.soc_max = uni(0.85, 0.95);
    s.soc = uni(s.soc_min + 0.05, 0.7);
    s.max_charge_w = uni(7000, 11000);
    s.max_discharge_w = uni(5000, 10000);
    s.eta_charge = uni(0.88, 0.96);
    s.eta_discharge = uni(0.88, 0.96);
    s.alpha_per_kwh = uni(0.03, 0.08);
    const double dwell = uni(3, 12) * 3600;
    s.departure = align(static_cast<double>(arrive) + dwell);
    const double full = std::min(s.max_charge_w, fleet.evses.at(evse_key(s.station, s.evse)).max_charge_w);
    // Reachable at 70 % of full power over the dwell: flexibility left for regulation.
    const double reachable = s.stored_wh() + 0.7 * full * s.eta_charge * (s.departure - arrive) / 3600.0;
    s.energy_needed_wh = std::min({s.stored_wh() + uni(0.05, 0.5) * s.battery_wh, reachable, s.soc_max * s.battery_wh});
    ev.arrive = arrive;
    ev.present = true;
    ev.excused = false;
    ev.w = 0;
  };
  for (auto& ev : evs) {
    if (uni(0, 1) < 0.8) {
      new_session(ev, t0);
      fleet.sessions[evse_key(ev.s.station, ev.s.evse)] = ev.s;
    } else {
      ev.arrive = align(t0 + uni(0, 3) * 3600);
    }
  }

  NoSigners no_signers;
  EngineOptions opt;
  opt.audit = false;
  opt.emit_commands = false;
  opt.decision_log_size = 0;
  opt.split = c.split;
  Engine engine(fleet, no_signers, nullptr, opt);
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < evs.size(); ++i)
    if (evs[i].present) index[evs[i].s.ev] = i;

  const std::vector<SignalPoint> signal = c.signal.empty() ? synthetic_signal(c.evs, c.hours, step, c.seed) : c.signal;
  SimulationReport rep;
  rep.evs = c.evs;
  rep.sites = site_count;
  rep.hours = c.hours;
  rep.step_s = step;
  EnergyLedger ledger;
  FleetTarget target{"sim", 0, station_ids, step};
  // Demand: each site's own load (offices, depot) plus its EVs, in 15-minute means.
  const double window_s = 900;
  std::vector<double> base_acc(site_count, 0), with_acc(site_count, 0), peak_base(site_count, 0),
      peak_with(site_count, 0), site_w(site_count, 0);
  double acc_s = 0, sq_err = 0;
  const int steps = static_cast<int>(std::ceil(c.hours * 3600 / step));
  for (int k = 0; k < steps; ++k) {
    const std::int64_t now = t0 + static_cast<std::int64_t>(k * step);
    // Departures, then arrivals.
    for (auto& ev : evs) {
      if (ev.present && ev.s.departure <= now) {
        ++rep.departures;
        if (ev.s.stored_wh() >= ev.s.energy_needed_wh - 1e-3) ++rep.departures_met;
        else if (ev.excused) ++rep.departures_excused;
        else ++rep.departure_violations;
        (void)engine.stop_session(ev.s.ev);
        index.erase(ev.s.ev);
        ev.present = false;
        ev.arrive = align(now + uni(0, 3) * 3600);
      }
      if (!ev.present && ev.arrive <= now && now + 3 * 3600 < t0 + c.hours * 3600) {
        new_session(ev, now);
        GT_TRY(engine.start_session(ev.s));
        index[ev.s.ev] = static_cast<std::size_t>(&ev - evs.data());
      }
    }
    const double requested = signal_at(signal, static_cast<double>(now - t0));
    target.target_w = requested;
    FleetDecision fd = engine.apply_target(target, now);
    std::fill(site_w.begin(), site_w.end(), 0.0);
    for (auto& ev : evs) ev.w = 0;
    for (const auto& d : fd.setpoints) {
      auto it = index.find(d.ev);
      if (it == index.end()) continue;
      SimEv& ev = evs[it->second];
      ev.w = d.applied_lo_w;
      if (d.applied_lo_w < d.need_w - 1e-6) ev.excused = true;
    }
    // The batteries follow for one step.
    const double hour = std::fmod(static_cast<double>(now - t0) / 3600.0, 24.0);
    const double price = (hour >= 17 && hour < 21) ? c.price_peak : c.price_off;
    for (auto& ev : evs) {
      if (!ev.present) continue;
      const double dc_wh = (ev.w >= 0 ? ev.w * ev.s.eta_charge : ev.w / ev.s.eta_discharge) * step / 3600.0;
      ev.s.soc = std::clamp((ev.s.stored_wh() + dc_wh) / ev.s.battery_wh, 0.0, 1.0);
      if (ev.w != 0) ledger.record(ev.s.ev, ev.w, step, ev.s.eta_charge, ev.s.eta_discharge, price, ev.s.alpha_per_kwh);
      const double margin = ev.s.soc - ev.s.soc_min;
      rep.lowest_soc_margin = std::min(rep.lowest_soc_margin, margin);
      if (margin < -1e-9) ++rep.soc_floor_violations;
      site_w[ev.site] += ev.w;
      (void)engine.update_soc(ev.s.ev, ev.s.soc, now + static_cast<std::int64_t>(step));
    }
    for (int s = 0; s < site_count; ++s) {
      const Site& site = fleet.sites.at("site-" + std::to_string(s));
      if (site_w[s] > site.import_limit_w * (1 + 1e-9) + 1e-3 || site_w[s] < -site.export_limit_w * (1 + 1e-9) - 1e-3)
        ++rep.site_limit_violations;
      rep.highest_site_utilisation =
          std::max(rep.highest_site_utilisation,
                   site_w[s] >= 0 ? site_w[s] / std::max(1.0, site.import_limit_w) : -site_w[s] / std::max(1.0, site.export_limit_w));
      // The site's own load: a working-day shape up to 60 % of its EV import limit.
      const double base = site.import_limit_w * (0.3 + 0.3 * std::exp(-std::pow((hour - 18) / 2.5, 2)));
      base_acc[s] += base * step;
      with_acc[s] += (base + site_w[s]) * step;
    }
    acc_s += step;
    if (acc_s >= window_s - 1e-9 || k == steps - 1) {
      for (int s = 0; s < site_count; ++s) {
        peak_base[s] = std::max(peak_base[s], base_acc[s] / acc_s);
        peak_with[s] = std::max(peak_with[s], with_acc[s] / acc_s);
        base_acc[s] = with_acc[s] = 0;
      }
      acc_s = 0;
    }
    rep.t_s.push_back(static_cast<double>(now - t0));
    rep.requested_w.push_back(requested);
    rep.delivered_w.push_back(fd.delivered_w);
    rep.requested_wh += requested * step / 3600.0;
    rep.delivered_wh += fd.delivered_w * step / 3600.0;
    sq_err += (requested - fd.delivered_w) * (requested - fd.delivered_w);
    if (fd.shortfall_w != 0) ++rep.shortfall_steps;
  }
  rep.steps = steps;
  rep.sessions = session_counter;
  rep.tracking_rmse_w = steps ? std::sqrt(sq_err / steps) : 0;
  rep.energy = ledger.fleet();
  for (int s = 0; s < site_count; ++s) {
    rep.demand_peak_base_kw += peak_base[s] / 1000;
    rep.demand_peak_with_kw += peak_with[s] / 1000;
  }
  rep.demand_charge_avoided =
      demand_charge_avoided(rep.demand_peak_base_kw - rep.demand_peak_with_kw, c.demand_rate_per_kw_month);
  rep.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return rep;
}

}  // namespace gridtrust::dispatch
