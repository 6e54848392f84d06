#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "policy/rotation_model.h"

using namespace gridtrust::policy;

namespace {

// lambda = 0.00365 / 365 = 1e-5 per day (software key), L = 1000 per day, C = 50:
// T1 = sqrt(2 C / (lambda L)) = sqrt(100 / 0.01) = 100 days, x = lambda T ~ 1e-3.
RotationRole small_lambda() {
  RotationRole r;
  r.name = "small";
  r.storage = KeyStorage::software;
  r.compromise_rate_per_year = 0.00365;
  r.loss_per_day = 1000;
  r.overhead_per_rotation = 50;
  r.max_interval_days = 100000;
  return r;
}

// lambda = 3.65 / 365 = 0.01 per day, L = 100, and C = (L / lambda) h(1) with
// h(1) = 1 - 2/e = 0.26424111765711533, so the exact optimum is x = 1, T* = 100 days,
// while the first-order formula says sqrt(2 * 2642.41 / 1) = 72.6968 days.
RotationRole large_lambda() {
  RotationRole r;
  r.name = "large";
  r.storage = KeyStorage::software;
  r.compromise_rate_per_year = 3.65;
  r.loss_per_day = 100;
  r.overhead_per_rotation = 10000 * (1 - 2 / std::exp(1.0));
  r.max_interval_days = 365;
  return r;
}

RotationPlan plan_of(const RotationRole& r) {
  auto p = plan_rotation(r);
  INFO((p.ok() ? std::string() : p.error().message));
  REQUIRE(p.ok());
  return p.value();
}

}  // namespace

TEST_CASE("small lambda T: the exact optimum is the first-order sqrt(2C / (lambda L))") {
  auto p = plan_of(small_lambda());
  CHECK(p.lambda_per_day == Approx(1e-5).epsilon(1e-12));
  CHECK(p.first_order_optimum_days == Approx(100).epsilon(1e-12));
  REQUIRE(p.optimum_days);
  // h(x) = x^2/2 - x^3/3 + ...: x = s + s^2/3 with s = sqrt(2 C lambda / L) = 1e-3, so
  // T* = 100 (1 + 1e-3/3) = 100.0333 days.
  CHECK(*p.optimum_days == Approx(100.03333).margin(1e-4));
  CHECK(p.interval_days == 100);
  CHECK(p.binding == "none");
  CHECK(p.feasible);
  // At T = 100: overhead 365 * 50 / 100 = 182.5 a year; exposure E/T = x/2 - x^2/6 =
  // 4.99833e-4, loss 365 * 1000 * 4.99833e-4 = 182.44 a year; P = 1 - e^{-0.001}.
  CHECK(p.at_interval.overhead_per_year == Approx(182.5));
  CHECK(p.at_interval.expected_loss_per_year == Approx(182.439).epsilon(1e-5));
  CHECK(p.at_interval.cost_per_year == Approx(364.939).epsilon(1e-5));
  CHECK(p.at_interval.p_compromise == Approx(9.995e-4).epsilon(1e-6));
  CHECK(p.at_interval.exposure_days_per_year == Approx(0.182439).epsilon(1e-5));
}

TEST_CASE("large lambda T: the exact optimum solves C = (L / lambda)(1 - e^{-x}(1 + x))") {
  auto p = plan_of(large_lambda());
  REQUIRE(p.optimum_days);
  CHECK(*p.optimum_days == Approx(100).epsilon(1e-10));
  CHECK(p.first_order_optimum_days == Approx(72.6968).epsilon(1e-5));
  CHECK(p.interval_days == 100);
  CHECK(p.binding == "none");
  // At x = 1: C/T = 26.4241 and L E/T = 100 (1 - (1 - 1/e)) = 36.7879 per day, together
  // 100 (1 - 1/e) = 63.2121 per day, 23072.4 a year; P = 1 - 1/e; exposure 365/e days.
  CHECK(p.at_interval.overhead_per_year == Approx(365 * 26.424111765711533));
  CHECK(p.at_interval.expected_loss_per_year == Approx(365 * 36.787944117144233));
  CHECK(p.at_interval.cost_per_year == Approx(23072.40));
  CHECK(p.at_interval.p_compromise == Approx(0.6321205588));
  CHECK(p.at_interval.exposure_days_per_year == Approx(134.27599));
  // The first-order interval costs more under the exact model.
  CHECK(evaluate(large_lambda(), 73).cost_per_year > p.at_interval.cost_per_year);
}

TEST_CASE("an optimum between two days takes the cheaper neighbour by the exact J") {
  // lambda = 0.01 / 365 per day, L = 1000: C = 100 gives T* = 85.507 days (J(86) is
  // 854.0811 a year, J(85) 854.0820); C = 99.5 gives T* = 85.293 (J(85) = 851.935,
  // J(86) = 851.959).
  RotationRole r = small_lambda();
  r.compromise_rate_per_year = 0.01;
  r.overhead_per_rotation = 100;
  auto p = plan_of(r);
  REQUIRE(p.optimum_days);
  CHECK(*p.optimum_days == Approx(85.5068).margin(1e-3));
  CHECK(p.interval_days == 86);
  CHECK(p.at_interval.cost_per_year == Approx(854.08109).epsilon(1e-7));
  r.overhead_per_rotation = 99.5;
  p = plan_of(r);
  CHECK(*p.optimum_days == Approx(85.2926).margin(1e-3));
  CHECK(p.interval_days == 85);
  CHECK(p.at_interval.cost_per_year == Approx(851.93499).epsilon(1e-7));
}

TEST_CASE("an HSM's factor 100 lengthens T* tenfold when no constraint binds") {
  RotationRole sw = small_lambda();
  RotationRole hsm = sw;
  hsm.storage = KeyStorage::hsm;  // hsm_factor defaults to 100
  auto a = plan_of(sw), b = plan_of(hsm);
  CHECK(b.lambda_per_day == Approx(1e-7).epsilon(1e-12));
  CHECK(b.first_order_optimum_days == Approx(10 * a.first_order_optimum_days).epsilon(1e-12));
  REQUIRE(b.optimum_days);
  // x = 1e-4 now: T* = 1000 (1 + 1e-4/3) = 1000.0333.
  CHECK(*b.optimum_days == Approx(1000.0333).margin(1e-3));
  CHECK(*b.optimum_days / *a.optimum_days == Approx(10).epsilon(1e-3));
  CHECK(a.interval_days == 100);
  CHECK(b.interval_days == 1000);
  CHECK(b.binding == "none");
  // A TPM (factor 10) gives sqrt(10).
  RotationRole tpm = sw;
  tpm.storage = KeyStorage::tpm;
  CHECK(plan_of(tpm).first_order_optimum_days == Approx(100 * std::sqrt(10.0)));
}

TEST_CASE("max_interval binds when the optimum lies beyond it") {
  RotationRole r = small_lambda();
  r.max_interval_days = 80;
  auto p = plan_of(r);
  CHECK(p.interval_days == 80);
  CHECK(p.binding == "max_interval");
  CHECK(p.max_days == 80);
  CHECK(p.max_days_by == "max_interval");
}

TEST_CASE("max_compromise_probability binds: T <= -log(1 - p) / lambda") {
  RotationRole r = small_lambda();
  r.max_compromise_probability = 5e-4;  // -log(1 - 5e-4) / 1e-5 = 50.0125 days
  auto p = plan_of(r);
  CHECK(p.max_days == Approx(50.0125).epsilon(1e-6));
  CHECK(p.max_days_by == "max_compromise_probability");
  CHECK(p.interval_days == 50);
  CHECK(p.binding == "max_compromise_probability");
  CHECK(p.at_interval.p_compromise <= 5e-4);
}

TEST_CASE("max_exposure binds: 365 E(T)/T <= the limit") {
  RotationRole r = small_lambda();
  r.max_exposure_days_per_year = 0.1;
  // E/T = x/2 - x^2/6 = 0.1/365 => x = 5.4795e-4 (1 + 1.83e-4), T = 54.80 days.
  auto p = plan_of(r);
  CHECK(p.max_days == Approx(54.80).margin(0.005));
  CHECK(p.max_days_by == "max_exposure");
  CHECK(p.interval_days == 54);
  CHECK(p.binding == "max_exposure");
  CHECK(p.at_interval.exposure_days_per_year <= 0.1);
  CHECK(evaluate(r, 55).exposure_days_per_year > 0.1);
  // A limit of 365 days a year or more can never bind.
  r.max_exposure_days_per_year = 400;
  CHECK(plan_of(r).binding == "none");
}

TEST_CASE("min_interval binds: a fleet of n certificates needs n / rotations_per_day days") {
  RotationRole r = small_lambda();
  r.certificates = 1000;
  r.rotations_per_day = 8;  // 125 days per round, above T* = 100
  auto p = plan_of(r);
  CHECK(p.min_days == 125);
  CHECK(p.interval_days == 125);
  CHECK(p.binding == "min_interval");
  // Costs scale with the certificates: 365 * 1000 * 50 / 125 overhead a year.
  CHECK(p.at_interval.overhead_per_year == Approx(146000));
  CHECK(p.at_interval.exposure_days_per_year == Approx(evaluate(small_lambda(), 125).exposure_days_per_year));
}

TEST_CASE("the tightest of several upper bounds is the one reported") {
  RotationRole r = small_lambda();
  r.max_interval_days = 60;
  r.max_compromise_probability = 5e-4;   // 50.0125 days
  r.max_exposure_days_per_year = 0.1;    // 54.80 days
  auto p = plan_of(r);
  CHECK(p.binding == "max_compromise_probability");
  CHECK(p.interval_days == 50);
}

TEST_CASE("C >= L / lambda: the optimum is unbounded and the upper bound decides") {
  RotationRole r = large_lambda();
  r.overhead_per_rotation = 20000;  // L / lambda = 10000
  auto p = plan_of(r);
  CHECK_FALSE(p.optimum_days);
  CHECK(p.first_order_optimum_days == Approx(200));
  CHECK(p.interval_days == 365);
  CHECK(p.binding == "max_interval");
}

TEST_CASE("an empty band is infeasible and names the conflicting pair") {
  RotationRole r = small_lambda();
  r.certificates = 1000;
  r.rotations_per_day = 5;  // at least 200 days
  r.max_interval_days = 180;
  auto p = plan_of(r);
  CHECK_FALSE(p.feasible);
  CHECK(p.interval_days == 0);
  CHECK(p.conflict == std::vector<std::string>{"min_interval", "max_interval"});

  r.max_interval_days = 365;
  r.max_compromise_probability = 1e-3;  // 100.05 days
  p = plan_of(r);
  CHECK_FALSE(p.feasible);
  CHECK(p.conflict == std::vector<std::string>{"min_interval", "max_compromise_probability"});

  r.max_compromise_probability.reset();
  r.max_exposure_days_per_year = 0.1;  // 54.80 days
  p = plan_of(r);
  CHECK_FALSE(p.feasible);
  CHECK(p.conflict == std::vector<std::string>{"min_interval", "max_exposure"});
}

TEST_CASE("a band without a whole day is infeasible") {
  RotationRole r = small_lambda();
  r.certificates = 1000;
  r.rotations_per_day = 7;     // 142.857 days
  r.max_interval_days = 142.9;  // the band [142.857, 142.9] holds no whole day
  auto p = plan_of(r);
  CHECK_FALSE(p.feasible);
  CHECK(p.conflict == std::vector<std::string>{"min_interval", "max_interval"});
  // Less than one day is infeasible too (whole days, at least 1).
  r = small_lambda();
  r.max_interval_days = 0.5;
  CHECK_FALSE(plan_of(r).feasible);
  r.max_interval_days = 143;
  r.certificates = 1000;
  r.rotations_per_day = 7;
  CHECK(plan_of(r).interval_days == 143);
}

TEST_CASE("every invalid parameter is refused naming its field") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto refused = [](RotationRole r, const std::string& field) {
    auto p = plan_rotation(r);
    INFO(field);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().code == "policy.bad_parameter");
    CHECK(p.error().message.find("rotation.roles[small]." + field) != std::string::npos);
    CHECK(validate(r).error().code == "policy.bad_parameter");
  };
  for (double bad : {0.0, -1.0, nan, inf}) {
    RotationRole r = small_lambda();
    r.compromise_rate_per_year = bad;
    refused(r, "compromise_rate_per_year");
    r = small_lambda();
    r.hsm_factor = bad;
    refused(r, "hsm_factor");
    r = small_lambda();
    r.tpm_factor = bad;
    refused(r, "tpm_factor");
    r = small_lambda();
    r.loss_per_day = bad;
    refused(r, "loss_per_day");
    r = small_lambda();
    r.overhead_per_rotation = bad;
    refused(r, "overhead_per_rotation");
    r = small_lambda();
    r.max_interval_days = bad;
    refused(r, "max_interval_days");
    r = small_lambda();
    r.max_exposure_days_per_year = bad;
    refused(r, "max_exposure_days_per_year");
    r = small_lambda();
    r.rotations_per_day = bad;
    refused(r, "rotations_per_day");
  }
  for (double bad : {0.0, 1.0, 1.5, -0.1, nan}) {
    RotationRole r = small_lambda();
    r.max_compromise_probability = bad;
    refused(r, "max_compromise_probability");
  }
  RotationRole r = small_lambda();
  r.certificates = 0;
  refused(r, "certificates");
  r = small_lambda();
  r.name = "";
  CHECK(plan_rotation(r).error().code == "policy.bad_parameter");
  r.name = "a b";
  CHECK(plan_rotation(r).error().code == "policy.bad_parameter");
  CHECK(validate(small_lambda()).ok());
}

TEST_CASE("the default roles are valid, feasible and cap the aggregator signer at 180 days") {
  auto roles = default_rotation_roles();
  REQUIRE(roles.size() == 8);
  for (const auto& name : {"aggregator-signer", "csms-server", "ocsp-signer", "audit-checkpoint",
                           "charging-station", "secc", "vehicle-contract", "sub-ca"}) {
    auto it = std::find_if(roles.begin(), roles.end(), [&](const RotationRole& r) { return r.name == name; });
    INFO(name);
    REQUIRE(it != roles.end());
    auto p = plan_of(*it);
    CHECK(p.feasible);
    CHECK(p.interval_days >= 1);
    CHECK(p.interval_days <= it->max_interval_days);
  }
  auto agg = plan_of(roles.front());
  CHECK(roles.front().name == "aggregator-signer");
  CHECK(roles.front().max_interval_days == 180);
  CHECK(agg.interval_days == 180);
  CHECK(agg.binding == "max_interval");
}

TEST_CASE("the first-order cost is C/T + lambda L T / 2 per key and day, times 365 n") {
  RotationRole r = small_lambda();
  r.certificates = 2;
  // 730 (50/100 + 1e-5 * 1000 * 100 / 2) = 730 * 1.0 = 730.
  CHECK(first_order_cost_per_year(r, 100) == Approx(730));
  CHECK(evaluate(r, 100).cost_per_year < 730);  // E(T) < lambda T^2 / 2
}

TEST_CASE("storage names round-trip") {
  for (auto s : {KeyStorage::hsm, KeyStorage::software, KeyStorage::tpm}) CHECK(parse_storage(storage_name(s)) == s);
  CHECK_FALSE(parse_storage("HSM"));
  CHECK_FALSE(parse_storage(""));
}
