#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include "dispatch/simulation.h"

using namespace gridtrust::dispatch;

TEST_CASE("10,000 EVs for 24 simulated hours: no EV below its floor, departures met, sites within limits") {
  SimulationConfig c;
  c.evs = 10000;
  c.hours = 24;
  c.step_s = 300;  // 288 allocations of the whole fleet (5-minute dispatch); the invariants hold per step
  auto r = run_simulation(c);
  REQUIRE(r.ok());
  INFO(boost::json::serialize(r->to_json()));
  CHECK(r->steps == 288);
  CHECK(r->soc_floor_violations == 0);
  CHECK(r->site_limit_violations == 0);
  CHECK(r->departure_violations == 0);
  CHECK(r->departures > 5000);
  CHECK(r->departures_met + r->departures_excused == r->departures);
  CHECK(r->lowest_soc_margin >= -1e-9);
  CHECK(r->highest_site_utilisation <= 1 + 1e-9);
  CHECK(r->energy.throughput_wh() > 0);
  CHECK(r->energy.degradation_cost > 0);
  WARN("simulation: " << boost::json::serialize(r->to_json()));
}

TEST_CASE("a short run tracks the signal when the fleet can, with both split policies") {
  for (auto policy : {SplitPolicy::ProportionalHeadroom, SplitPolicy::LeastDegradation}) {
    SimulationConfig c;
    c.evs = 200;
    c.hours = 6;
    c.step_s = 60;
    c.split = policy;
    c.signal = {{0, 100000}, {3600, -150000}, {7200, 50000}};
    auto r = run_simulation(c);
    REQUIRE(r.ok());
    CHECK(r->invariants_hold());
    CHECK(r->requested_w.size() == 360);
    CHECK(r->delivered_w[10] == Approx(100000).margin(1));
    const std::string svg = r->svg();
    CHECK(svg.find("<polyline") != std::string::npos);
    // Legible without a manual: both series in the legend, axis titles with units.
    CHECK(svg.find("requested (signal)") != std::string::npos);
    CHECK(svg.find(">delivered<") != std::string::npos);
    CHECK(svg.find("simulated time (hours)") != std::string::npos);
    CHECK(svg.find("fleet power (kW)") != std::string::npos);
  }
}

TEST_CASE("signal files are CSV time,W with an optional header") {
  auto s = parse_signal_csv("time,W\n0,1000\n60,-2000.5\n", "sig.csv");
  REQUIRE(s.ok());
  CHECK(s->size() == 2);
  CHECK((*s)[1].w == -2000.5);
  CHECK(parse_signal_csv("0,1\n0,2\n", "f").error().code == "dispatch.bad_signal");
  CHECK(parse_signal_csv("0,1\nx,y\n", "f").error().message.find("f:2") != std::string::npos);
  CHECK(load_signal_csv("/nonexistent.csv").error().code == "usage.unreadable_file");
}
