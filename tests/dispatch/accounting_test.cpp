#include <catch2/catch.hpp>

#include <cmath>

#include "dispatch/accounting.h"

using namespace gridtrust::dispatch;

TEST_CASE("arbitrage: 20 kWh out at $0.20, back in at $0.08 with round-trip 0.90 earns $2.22") {
  const double profit = arbitrage_profit(20, 0.20, 0.08, 0.90);
  CHECK(profit == Approx(2.2222).margin(1e-4));
  CHECK(std::round(profit * 100) / 100 == Approx(2.22));
}

TEST_CASE("degradation: 68.6 kWh of throughput at alpha $0.05/kWh costs $3.43") {
  CHECK(degradation_cost(68.6, 0.05) == Approx(3.43).margin(1e-9));
}

TEST_CASE("demand charge: 10 kW shaved at the monthly peak at $12/kW-month avoids $120") {
  CHECK(demand_charge_avoided(10, 12) == Approx(120.0));
}

TEST_CASE("the ledger turns AC energy into DC energy with one-way efficiencies") {
  EnergyLedger ledger;
  // 10 kW for one hour in at eta_ch 0.95, then 9 kW for one hour out at eta_dis 0.95.
  ledger.record("EV-1", 10000, 3600, 0.95, 0.95, 0.08, 0.05);
  ledger.record("EV-1", -9000, 3600, 0.95, 0.95, 0.20, 0.05);
  const EnergyTotals t = ledger.ev("EV-1");
  CHECK(t.ac_in_wh == Approx(10000));
  CHECK(t.ac_out_wh == Approx(9000));
  CHECK(t.dc_in_wh == Approx(9500));
  CHECK(t.dc_out_wh == Approx(9000 / 0.95));
  CHECK(t.throughput_wh() == Approx(9500 + 9000 / 0.95));
  CHECK(t.degradation_cost == Approx(0.05 * (9.5 + 9.0 / 0.95)));
  CHECK(t.arbitrage_profit() == Approx(9 * 0.20 - 10 * 0.08));
  ledger.record("EV-2", 1000, 1800, 1, 1, 0.1, 0.05);
  CHECK(ledger.fleet().ac_in_wh == Approx(10500));
  CHECK(ledger.all().size() == 2);
}

TEST_CASE("the ledger reproduces the worked arbitrage cycle") {
  // 20 kWh delivered to the grid; round-trip 0.90 as eta_ch = 1, eta_dis = 0.9: the
  // battery took 20/0.9 kWh DC, bought as AC at $0.08.
  EnergyLedger ledger;
  ledger.record("EV", 20000 / 0.9, 3600, 1.0, 0.9, 0.08, 0.05);
  ledger.record("EV", -20000, 3600, 1.0, 0.9, 0.20, 0.05);
  CHECK(ledger.ev("EV").arbitrage_profit() == Approx(2.2222).margin(1e-4));
}
