#include "dispatch/accounting.h"

namespace gridtrust::dispatch {

double degradation_cost(double throughput_kwh, double alpha_per_kwh) { return alpha_per_kwh * throughput_kwh; }

double arbitrage_profit(double e_out_kwh, double p_peak, double p_off, double eta_round_trip) {
  // E_in = E_out / eta_rt is bought at p_off.
  return e_out_kwh * (p_peak - p_off / eta_round_trip);
}

double demand_charge_avoided(double shaved_kw, double rate_per_kw_month) { return shaved_kw * rate_per_kw_month; }

void EnergyTotals::add(const EnergyTotals& o) {
  ac_in_wh += o.ac_in_wh;
  ac_out_wh += o.ac_out_wh;
  dc_in_wh += o.dc_in_wh;
  dc_out_wh += o.dc_out_wh;
  energy_cost += o.energy_cost;
  energy_revenue += o.energy_revenue;
  degradation_cost += o.degradation_cost;
}

void EnergyLedger::record(const std::string& ev, double ac_w, double seconds, double eta_charge,
                          double eta_discharge, double price_per_kwh, double alpha_per_kwh) {
  EnergyTotals d;
  const double ac_wh = ac_w * seconds / 3600.0;
  if (ac_wh >= 0) {
    d.ac_in_wh = ac_wh;
    d.dc_in_wh = ac_wh * eta_charge;
    d.energy_cost = ac_wh / 1000.0 * price_per_kwh;
  } else {
    d.ac_out_wh = -ac_wh;
    d.dc_out_wh = -ac_wh / eta_discharge;
    d.energy_revenue = -ac_wh / 1000.0 * price_per_kwh;
  }
  d.degradation_cost = degradation_cost(d.throughput_wh() / 1000.0, alpha_per_kwh);
  std::lock_guard g(mu_);
  by_ev_[ev].add(d);
  fleet_.add(d);
}

EnergyTotals EnergyLedger::ev(const std::string& ev) const {
  std::lock_guard g(mu_);
  auto it = by_ev_.find(ev);
  return it == by_ev_.end() ? EnergyTotals{} : it->second;
}

EnergyTotals EnergyLedger::fleet() const {
  std::lock_guard g(mu_);
  return fleet_;
}

std::map<std::string, EnergyTotals> EnergyLedger::all() const {
  std::lock_guard g(mu_);
  return by_ev_;
}

}  // namespace gridtrust::dispatch
