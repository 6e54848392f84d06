#pragma once
// Energy and money, following the seed's formulas:
//  - DC energy from AC energy with one-way efficiencies: into the battery
//    E_dc = E_ac x eta_ch; out of it E_dc = E_ac / eta_dis.
//  - DC throughput: the sum of DC energy in and out; degradation cost alpha x throughput.
//  - Arbitrage profit of one cycle: E_out (p_peak - p_off / eta_rt), eta_rt = E_out / E_in.
//  - Demand charge avoided: kW shaved at the monthly peak x the demand rate per kW-month.
#include <map>
#include <mutex>
#include <string>

namespace gridtrust::dispatch {

double degradation_cost(double throughput_kwh, double alpha_per_kwh);
double arbitrage_profit(double e_out_kwh, double p_peak, double p_off, double eta_round_trip);
double demand_charge_avoided(double shaved_kw, double rate_per_kw_month);
inline double round_trip_efficiency(double eta_charge, double eta_discharge) { return eta_charge * eta_discharge; }

struct EnergyTotals {
  double ac_in_wh = 0, ac_out_wh = 0;  // grid side: drawn while charging, delivered while discharging
  double dc_in_wh = 0, dc_out_wh = 0;  // battery side
  double energy_cost = 0;              // paid for ac_in at the prices of the moment
  double energy_revenue = 0;           // earned for ac_out
  double degradation_cost = 0;         // alpha x DC throughput

  double throughput_wh() const { return dc_in_wh + dc_out_wh; }
  // Arbitrage profit as metered: revenue for what went out minus the cost of what came in.
  double arbitrage_profit() const { return energy_revenue - energy_cost; }
  void add(const EnergyTotals& o);
};

// Per-EV and fleet totals; thread-safe.
class EnergyLedger {
 public:
  // AC power `ac_w` (positive = charging) held for `seconds` at `price_per_kwh`.
  void record(const std::string& ev, double ac_w, double seconds, double eta_charge, double eta_discharge,
              double price_per_kwh, double alpha_per_kwh);
  EnergyTotals ev(const std::string& ev) const;
  EnergyTotals fleet() const;
  std::map<std::string, EnergyTotals> all() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, EnergyTotals> by_ev_;
  EnergyTotals fleet_;
};

}  // namespace gridtrust::dispatch
