// gridtrust fleet simulate: the dispatch engine against a regulation signal on a
// simulated clock (dispatch/simulation.h). Offline: no token, no store.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>

#include <boost/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "dispatch/simulation.h"

namespace gridtrust::cli {

namespace {

Result<double> number_option(const Args& a, const std::string& name, double def) {
  auto v = a.value(name);
  if (!v) return def;
  char* end = nullptr;
  const double d = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0' || !std::isfinite(d)) return reject("usage.bad_value", "--" + name + " must be a number");
  return d;
}

Status write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return reject("usage.unwritable_file", "cannot write " + path);
  out << text;
  out.close();
  if (!out) return reject("usage.unwritable_file", "cannot write " + path);
  return Ok{};
}

Status cmd_fleet_simulate(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"evs", "hours", "signal", "svg", "step", "seed", "policy", "evs-per-site"},
                                   {"json", "series"}));
  if (!a.positional.empty()) return reject("usage.unexpected_argument", "fleet simulate takes no arguments");
  dispatch::SimulationConfig c;
  GT_TRY_ASSIGN(double evs, number_option(a, "evs", 100));
  GT_TRY_ASSIGN(c.hours, number_option(a, "hours", 24));
  GT_TRY_ASSIGN(c.step_s, number_option(a, "step", 60));
  GT_TRY_ASSIGN(double seed, number_option(a, "seed", 1));
  GT_TRY_ASSIGN(double per_site, number_option(a, "evs-per-site", 100));
  if (evs != std::floor(evs) || per_site != std::floor(per_site) || seed < 0 || seed != std::floor(seed))
    return reject("usage.bad_value", "--evs, --evs-per-site and --seed must be whole numbers");
  c.evs = static_cast<int>(std::clamp(evs, -1.0, 2e6));
  c.evs_per_site = static_cast<int>(std::clamp(per_site, 0.0, 2e6));
  c.seed = static_cast<std::uint64_t>(seed);
  if (auto p = a.value("policy"); p && !dispatch::split_policy_from(*p, c.split))
    return reject("usage.bad_value", "--policy must be proportional or least-degradation");
  if (auto sig = a.value("signal")) {
    GT_TRY_ASSIGN(c.signal, dispatch::load_signal_csv(*sig));
  }
  GT_TRY_ASSIGN(dispatch::SimulationReport r, dispatch::run_simulation(c));
  if (auto svg = a.value("svg")) GT_TRY(write_text(*svg, r.svg()));
  if (a.flag("json")) {
    std::cout << boost::json::serialize(r.to_json(a.flag("series"))) << "\n";
  } else {
    std::cout << std::fixed << std::setprecision(1);
    std::cout << "fleet simulation: " << r.evs << " EVs at " << r.sites << " sites, " << r.hours << " h in "
              << r.steps << " steps of " << r.step_s << " s (" << r.sessions << " sessions)\n";
    std::cout << "  energy requested " << r.requested_wh / 1000 << " kWh, delivered " << r.delivered_wh / 1000
              << " kWh; tracking RMSE " << r.tracking_rmse_w / 1000 << " kW; steps short of the target "
              << r.shortfall_steps << "\n";
    std::cout << "  AC in " << r.energy.ac_in_wh / 1000 << " kWh, AC out " << r.energy.ac_out_wh / 1000
              << " kWh; DC throughput " << r.energy.throughput_wh() / 1000 << " kWh\n";
    std::cout << std::setprecision(2) << "  degradation cost $" << r.energy.degradation_cost << ", energy cost $"
              << r.energy.energy_cost << ", revenue $" << r.energy.energy_revenue << ", arbitrage $"
              << r.energy.arbitrage_profit() << ", demand charge avoided $" << r.demand_charge_avoided << "\n";
    std::cout << "  invariants " << (r.invariants_hold() ? "hold" : "VIOLATED") << ": SoC floor violations "
              << r.soc_floor_violations << ", departures " << r.departures << " (met " << r.departures_met
              << ", excused " << r.departures_excused << ", missed " << r.departure_violations
              << "), site limit violations " << r.site_limit_violations << "\n";
  }
  if (!r.invariants_hold()) return reject("dispatch.invariant_violated", "the simulation broke an invariant");
  return Ok{};
}

}  // namespace

Status cmd_fleet(const std::vector<std::string>& words) {
  if (words.empty() || words[0] != "simulate")
    return reject("usage.unknown_command", "fleet takes: simulate --evs N --hours H [--signal FILE] [--svg FILE] [--json]");
  return cmd_fleet_simulate(std::vector<std::string>(words.begin() + 1, words.end()));
}

}  // namespace gridtrust::cli
