#pragma once
// A fleet simulation on a simulated clock: N EVs plugged in and out over H hours,
// a regulation signal (total W for the fleet) allocated by the engine every step,
// the EVs' batteries integrated with one-way efficiencies, and the invariants the
// engine promises checked at every step: no EV below its SoC floor, every departing
// EV holding its needed energy when the fleet could deliver it, no site over its
// limit. Used by `gridtrust fleet simulate` and by the tests.
#include <cstdint>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "core/rejection.h"
#include "dispatch/accounting.h"
#include "dispatch/allocation.h"

namespace gridtrust::dispatch {

struct SignalPoint {
  double t_s = 0;  // seconds from the start
  double w = 0;    // fleet target, W (positive = charge)
};

// CSV "time,W" (time in seconds from the start; a header line is allowed); the
// signal holds each value until the next time. Codes: usage.unreadable_file,
// dispatch.bad_signal (naming the line).
Result<std::vector<SignalPoint>> load_signal_csv(const std::string& path);
Result<std::vector<SignalPoint>> parse_signal_csv(const std::string& text, const std::string& origin);
// An AGC-like regulation signal around a charging baseline: slow and fast
// oscillations plus noise, scaled to the fleet.
std::vector<SignalPoint> synthetic_signal(int evs, double hours, double step_s, std::uint64_t seed);

struct SimulationConfig {
  int evs = 100;
  double hours = 24;
  double step_s = 60;
  std::uint64_t seed = 1;
  std::vector<SignalPoint> signal;  // empty: synthetic_signal()
  int evs_per_site = 100;
  SplitPolicy split = SplitPolicy::ProportionalHeadroom;
  double price_peak = 0.20, price_off = 0.08;  // $/kWh; peak 17:00-21:00
  double demand_rate_per_kw_month = 12;
};

struct SimulationReport {
  int evs = 0, steps = 0, sites = 0, sessions = 0;
  double hours = 0, step_s = 0;
  std::vector<double> t_s, requested_w, delivered_w;  // per step
  double requested_wh = 0, delivered_wh = 0;           // signed energy of the signal and of the fleet
  double tracking_rmse_w = 0;
  int shortfall_steps = 0;
  EnergyTotals energy;             // fleet AC/DC energy, costs
  double demand_peak_base_kw = 0;  // summed over sites: the monthly-peak 15-min demand without and with the fleet
  double demand_peak_with_kw = 0;
  double demand_charge_avoided = 0;
  // Invariants.
  int soc_floor_violations = 0;
  int departures = 0, departures_met = 0, departures_excused = 0, departure_violations = 0;
  int site_limit_violations = 0;
  double lowest_soc_margin = 1;  // min over EVs and steps of soc - soc_min
  double highest_site_utilisation = 0;
  double wall_seconds = 0;

  bool invariants_hold() const {
    return soc_floor_violations == 0 && departure_violations == 0 && site_limit_violations == 0;
  }
  boost::json::object to_json(bool with_series = false) const;
  std::string svg() const;  // requested vs delivered power over time
};

// Codes: usage.bad_value (evs, hours, step out of range).
Result<SimulationReport> run_simulation(const SimulationConfig& config);

}  // namespace gridtrust::dispatch
