#include <catch2/catch.hpp>

#include <string>

#include "dispatch/envelope.h"

using namespace gridtrust::dispatch;

namespace {

struct Case {
  Site site{"S", 100000, 80000, EnforcementPolicy::Clamp, 0};
  Evse evse{"CS-1", 1, 11000, 10000, 0};
  Session ev;
  std::int64_t now = 1'000'000;

  Case() {
    ev.ev = "EV-1";
    ev.station = "CS-1";
    ev.evse = 1;
    ev.battery_wh = 60000;
    ev.soc = 0.5;
    ev.soc_min = 0.2;
    ev.soc_max = 0.9;
    ev.max_charge_w = 9000;
    ev.max_discharge_w = 7000;
    ev.eta_charge = 0.9;
    ev.eta_discharge = 0.8;
    ev.departure = now + 10 * 3600;
    ev.energy_needed_wh = 0;
  }
  EnvelopeInput input(double duration = 900) const {
    EnvelopeInput in;
    in.evse = &evse;
    in.session = &ev;
    in.site = &site;
    in.now = now;
    in.duration_s = duration;
    return in;
  }
};

}  // namespace

TEST_CASE("the tighter of the EVSE's and the EV's power limits binds, each way") {
  Case c;
  Envelope e = compute_envelope(c.input());
  CHECK(e.max_w == 9000);
  CHECK(std::string(e.max_reason) == reason::kEvLimit);
  CHECK(e.min_w == -7000);
  CHECK(std::string(e.min_reason) == reason::kEvLimit);
  c.evse.max_charge_w = 7400;
  c.evse.max_discharge_w = 5000;
  e = compute_envelope(c.input());
  CHECK(e.max_w == 7400);
  CHECK(std::string(e.max_reason) == reason::kEvseLimit);
  CHECK(e.min_w == -5000);
}

TEST_CASE("SoC floor and ceiling hold over the whole duration with one-way efficiencies") {
  Case c;
  c.ev.soc = 0.21;  // 600 Wh above the floor
  Envelope e = compute_envelope(c.input(3600));
  // 600 Wh DC out of the battery over 1 h is 600 x 0.8 = 480 W AC.
  CHECK(e.min_w == Approx(-480));
  CHECK(std::string(e.min_reason) == reason::kSocFloor);
  c.ev.soc = 0.89;  // 600 Wh below the ceiling
  e = compute_envelope(c.input(3600));
  CHECK(e.max_w == Approx(600 / 0.9));
  CHECK(std::string(e.max_reason) == reason::kSocCeiling);
  c.ev.soc = 0.1;  // below the floor: no discharge at all, charging allowed
  e = compute_envelope(c.input());
  CHECK(e.min_w == 0);
  CHECK(e.max_w == 9000);
  c.ev.soc = 0.95;
  e = compute_envelope(c.input());
  CHECK(e.max_w == 0);
}

TEST_CASE("a discharge that would make the departure energy unreachable at full charge power is cut") {
  Case c;
  c.ev.soc = 0.5;  // 30 kWh stored
  c.ev.departure = c.now + 3600 + 900;
  c.ev.energy_needed_wh = 36000;
  // After 900 s of the setpoint, 3600 s at 9 kW x 0.9 add 8100 Wh: the battery must
  // hold 27900 Wh after the setpoint, so at most 2100 Wh DC may leave in 900 s.
  Envelope e = compute_envelope(c.input(900));
  CHECK(e.min_w == Approx(-2100 * 0.8 * 4));
  CHECK(std::string(e.min_reason) == reason::kDepartureEnergy);
  CHECK(e.need_w == 0);
  // Behind schedule: no discharge, and the allocator is told the charge it needs now.
  c.ev.energy_needed_wh = 40000;
  e = compute_envelope(c.input(900));
  CHECK(e.min_w == 0);
  CHECK(e.need_w == Approx((40000 - 8100 - 30000) * 4 / 0.9));
}

TEST_CASE("the site limit counts what the other EVSEs were told") {
  Case c;
  EnvelopeInput in = c.input();
  in.others_max_w = 95000;
  in.others_min_w = -76000;
  Envelope e = compute_envelope(in);
  CHECK(e.max_w == Approx(5000));
  CHECK(std::string(e.max_reason) == reason::kSiteLimit);
  CHECK(e.min_w == Approx(-4000));
  CHECK(std::string(e.min_reason) == reason::kSiteLimit);
}

TEST_CASE("the ramp rate limits the change from the last setpoint, and yields to safety limits") {
  Case c;
  c.evse.ramp_w_per_s = 100;
  EnvelopeInput in = c.input();
  in.last_w = 1000;
  in.last_at = c.now - 10;
  Envelope e = compute_envelope(in);
  CHECK(e.max_w == 2000);
  CHECK(e.min_w == 0);
  CHECK(std::string(e.max_reason) == reason::kRampRate);
  in.apply_ramp = false;
  CHECK(compute_envelope(in).max_w == 9000);
  // The last setpoint is now above what the SoC ceiling allows: the ceiling wins.
  in.apply_ramp = true;
  c.ev.soc = 0.9;
  e = compute_envelope(in);
  CHECK(e.max_w == 0);
  CHECK(e.min_w == 0);
  CHECK(std::string(e.max_reason) == reason::kSocCeiling);
}

TEST_CASE("an EVSE without a vehicle may only be told 0") {
  Case c;
  EnvelopeInput in = c.input();
  in.session = nullptr;
  Envelope e = compute_envelope(in);
  CHECK(e.min_w == 0);
  CHECK(e.max_w == 0);
  CHECK(std::string(e.max_reason) == reason::kNoVehicle);
}
