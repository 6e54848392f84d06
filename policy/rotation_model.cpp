#include "policy/rotation_model.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>

namespace gridtrust::policy {
namespace {

constexpr double kDaysPerYear = 365;
constexpr double kInf = std::numeric_limits<double>::infinity();

// Below this x = lambda T the closed forms of g and h lose digits to cancellation
// (both are O(x^2) differences of O(x) terms); their Taylor series are alternating with
// term ratio at most x/3, so a few dozen terms reach full precision.
constexpr double kSeriesBelow = 0.5;

// g(x) = x - (1 - e^{-x}) = lambda E(T): the expected exposure of one interval in units
// of 1/lambda. Series: sum_{n>=2} (-x)^n / n!.
double g(double x) {
  if (x >= kSeriesBelow) return x + std::expm1(-x);
  double term = x * x / 2, sum = 0;
  for (int n = 2; n < 60 && term != 0; ++n) {
    sum += term;
    term *= -x / (n + 1);
  }
  return sum;
}

// h(x) = 1 - e^{-x} (1 + x): the exact optimum solves h(lambda T) = C lambda / L, because
// dJ/dT = (L h(x) / lambda - C) / T^2. Series: sum_{n>=2} (-1)^n (n-1) x^n / n!.
double h(double x) {
  if (x >= kSeriesBelow) return -std::expm1(-x) - x * std::exp(-x);
  double power = x * x / 2, sum = 0;  // power = (-1)^n x^n / n!
  for (int n = 2; n < 60 && power != 0; ++n) {
    sum += (n - 1) * power;
    power *= -x / (n + 1);
  }
  return sum;
}

// g(x) / x = E(T) / T, the fraction of time a key is exposed; g(x)/x -> x/2 at 0.
double exposed_fraction(double x) { return x == 0 ? 0 : g(x) / x; }

// The x >= 0 with f(x) = target for an increasing f with f(0) = 0 and target below
// sup f. Bisection: slower than Newton but cannot leave the bracket, and the 200
// halvings reach double precision for any x above 1e-45.
template <typename F>
double solve_increasing(F f, double target) {
  double lo = 0, hi = 1;
  for (int i = 0; i < 1100 && f(hi) < target; ++i) hi *= 2;
  for (int i = 0; i < 200; ++i) {
    double mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    (f(mid) < target ? lo : hi) = mid;
  }
  return lo + (hi - lo) / 2;
}

std::string field(const RotationRole& role, const char* name) {
  return "rotation.roles[" + role.name + "]." + name;
}

std::string shown(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

Status positive(const RotationRole& role, const char* name, double v) {
  if (!std::isfinite(v))
    return reject("policy.bad_parameter", field(role, name) + " must be a finite number (got " + shown(v) + ")");
  if (v <= 0) return reject("policy.bad_parameter", field(role, name) + " must be > 0 (got " + shown(v) + ")");
  return Ok{};
}

// Upper bounds on T beside max_interval_days; +inf where a constraint never binds.
double probability_bound(const RotationRole& role, double lambda) {
  if (!role.max_compromise_probability) return kInf;
  // P(T) = 1 - e^{-lambda T} <= p  <=>  T <= -log(1 - p) / lambda.
  return -std::log1p(-*role.max_compromise_probability) / lambda;
}

double exposure_bound(const RotationRole& role, double lambda) {
  if (!role.max_exposure_days_per_year) return kInf;
  // 365 E(T)/T rises from 0 to 365 days per year: a limit of 365 or more never binds.
  double fraction = *role.max_exposure_days_per_year / kDaysPerYear;
  if (fraction >= 1) return kInf;
  return solve_increasing(exposed_fraction, fraction) / lambda;
}

double per_year(const RotationRole& role, double per_key_per_day) {
  return kDaysPerYear * static_cast<double>(role.certificates) * per_key_per_day;
}

}  // namespace

const char* storage_name(KeyStorage s) {
  switch (s) {
    case KeyStorage::hsm: return "hsm";
    case KeyStorage::software: return "software";
    case KeyStorage::tpm: return "tpm";
  }
  return "hsm";
}

std::optional<KeyStorage> parse_storage(const std::string& text) {
  if (text == "hsm") return KeyStorage::hsm;
  if (text == "software") return KeyStorage::software;
  if (text == "tpm") return KeyStorage::tpm;
  return std::nullopt;
}

double lambda_per_day(const RotationRole& role) {
  double factor = role.storage == KeyStorage::hsm   ? role.hsm_factor
                  : role.storage == KeyStorage::tpm ? role.tpm_factor
                                                    : 1.0;
  return role.compromise_rate_per_year / kDaysPerYear / factor;
}

Status validate(const RotationRole& role) {
  if (role.name.empty()) return reject("policy.bad_parameter", "rotation.roles: a role needs a non-empty name");
  for (char c : role.name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return reject("policy.bad_parameter",
                    "rotation.roles[" + role.name + "]: a role name is letters, digits, '-', '_' or '.'");
  GT_TRY(positive(role, "compromise_rate_per_year", role.compromise_rate_per_year));
  GT_TRY(positive(role, "hsm_factor", role.hsm_factor));
  GT_TRY(positive(role, "tpm_factor", role.tpm_factor));
  GT_TRY(positive(role, "loss_per_day", role.loss_per_day));
  GT_TRY(positive(role, "overhead_per_rotation", role.overhead_per_rotation));
  if (role.certificates == 0)
    return reject("policy.bad_parameter", field(role, "certificates") + " must be at least 1 (got 0)");
  GT_TRY(positive(role, "max_interval_days", role.max_interval_days));
  if (auto p = role.max_compromise_probability) {
    if (!std::isfinite(*p) || *p <= 0 || *p >= 1)
      return reject("policy.bad_parameter",
                    field(role, "max_compromise_probability") + " must be in (0, 1) (got " + shown(*p) + ")");
  }
  if (auto e = role.max_exposure_days_per_year) GT_TRY(positive(role, "max_exposure_days_per_year", *e));
  if (auto r = role.rotations_per_day) GT_TRY(positive(role, "rotations_per_day", *r));
  // Rates so small that lambda underflows would divide by zero below.
  if (!(lambda_per_day(role) > 0))
    return reject("policy.bad_parameter", field(role, "compromise_rate_per_year") + " is too small for its storage factor");
  return Ok{};
}

CostBreakdown evaluate(const RotationRole& role, double interval_days) {
  const double lambda = lambda_per_day(role);
  const double x = lambda * interval_days;
  const double fraction = exposed_fraction(x);  // E(T) / T
  CostBreakdown b;
  b.interval_days = interval_days;
  b.overhead_per_year = per_year(role, role.overhead_per_rotation / interval_days);
  b.expected_loss_per_year = per_year(role, role.loss_per_day * fraction);
  b.cost_per_year = b.overhead_per_year + b.expected_loss_per_year;
  b.p_compromise = -std::expm1(-x);
  b.exposure_days_per_year = kDaysPerYear * fraction;
  return b;
}

double first_order_cost_per_year(const RotationRole& role, double interval_days) {
  const double lambda = lambda_per_day(role);
  return per_year(role, role.overhead_per_rotation / interval_days + lambda * role.loss_per_day * interval_days / 2);
}

Result<RotationPlan> plan_rotation(const RotationRole& role) {
  GT_TRY(validate(role));
  RotationPlan plan;
  plan.role = role.name;
  const double lambda = lambda_per_day(role);
  const double C = role.overhead_per_rotation, L = role.loss_per_day;
  plan.lambda_per_day = lambda;
  plan.first_order_optimum_days = std::sqrt(2 * C / (lambda * L));
  // h(x) < 1 for every x, so C >= L / lambda (one rotation costs more than a whole
  // exposure's expected loss) leaves J decreasing for ever.
  const double r = C * lambda / L;
  if (r < 1) plan.optimum_days = solve_increasing(h, r) / lambda;

  // The band. Lower: whole days, and a fleet of n certificates rotated at most
  // rotations_per_day a day needs n / rotations_per_day days per round.
  plan.min_days = 1;
  if (role.rotations_per_day)
    plan.min_days = std::max(1.0, static_cast<double>(role.certificates) / *role.rotations_per_day);
  plan.max_days = role.max_interval_days;
  plan.max_days_by = "max_interval";
  if (double t = probability_bound(role, lambda); t < plan.max_days) {
    plan.max_days = t;
    plan.max_days_by = "max_compromise_probability";
  }
  if (double t = exposure_bound(role, lambda); t < plan.max_days) {
    plan.max_days = t;
    plan.max_days_by = "max_exposure";
  }

  // Whole days inside the band. A relative slack of 1e-12 keeps a bound that is an
  // integer in exact arithmetic (1000 / 8 = 125) from losing that day to rounding.
  const double lo_day = std::max(1.0, std::ceil(plan.min_days * (1 - 1e-12)));
  const double hi_day = std::floor(plan.max_days * (1 + 1e-12));
  if (hi_day < lo_day) {
    plan.feasible = false;
    plan.conflict = {"min_interval", plan.max_days_by};
    plan.interval_days = 0;
    plan.binding = "none";
    return plan;
  }

  // J is quasi-convex (dJ/dT changes sign once, where h(x) = r), so the best whole day
  // in [lo_day, hi_day] is a neighbour of the clamped optimum.
  const double optimum = plan.optimum_days.value_or(kInf);
  const double clamped = std::clamp(optimum, lo_day, hi_day);
  double best = std::floor(clamped);  // both neighbours lie in the band: its ends are whole
  if (double up = std::ceil(clamped); up != best && evaluate(role, up).cost_per_year < evaluate(role, best).cost_per_year)
    best = up;
  plan.interval_days = static_cast<int>(std::min(best, static_cast<double>(std::numeric_limits<int>::max())));
  plan.at_interval = evaluate(role, plan.interval_days);
  if (optimum < plan.min_days) plan.binding = "min_interval";
  else if (optimum > plan.max_days) plan.binding = plan.max_days_by;
  else plan.binding = "none";
  return plan;
}

// Defaults: order-of-magnitude placeholders for a mid-size CPO/aggregator (a few
// thousand chargers, ten thousand contracts), in one currency unit. Operators replace
// them under rotation.roles in gridtrust.yaml. The reasoning:
//  - Software-key compromise rates: an online service key on a networked host is
//    assumed stolen about once in one to two years if nothing else protects it; a key
//    on a charger in the field somewhat less often per key, a vehicle-held contract key
//    in between. An HSM cuts this by ~100 (keys never leave it: the attacker must use
//    the key through the host while the access lasts), a TPM/secure element by ~10.
//  - Losses per day: an aggregator signer impersonated commands a whole fleet's
//    charging (grid-service penalties, battery wear); a Sub-CA can mint any leaf in its
//    domain; a single station or contract key misuses one site or one account.
//  - Overheads: daemon-held keys rotate automatically (an operator check and reload);
//    the aggregator signer and Sub-CAs need a ceremony and new trust at every station;
//    leaves cost a round trip plus the share that fails in the field.
//  - Constraints: the aggregator signer at most 180 days (DESIGN.md "Rotation risk
//    model"); the operator absorbs 20 station and 500 contract rotations a day.
std::vector<RotationRole> default_rotation_roles() {
  std::vector<RotationRole> roles;
  auto add = [&](std::string name, KeyStorage storage, double rate, double loss, double overhead,
                 std::uint64_t certificates, double max_interval) -> RotationRole& {
    RotationRole r;
    r.name = std::move(name);
    r.storage = storage;
    r.compromise_rate_per_year = rate;
    r.loss_per_day = loss;
    r.overhead_per_rotation = overhead;
    r.certificates = certificates;
    r.max_interval_days = max_interval;
    return roles.emplace_back(std::move(r));
  };
  // Signs dispatch commands for the whole fleet: the costliest key to lose.
  add("aggregator-signer", KeyStorage::hsm, 0.5, 20000, 5000, 1, 180).max_compromise_probability = 0.01;
  // gridtrustd's TLS server key; stations trust the CA, so rotating the leaf is cheap.
  add("csms-server", KeyStorage::hsm, 1.0, 5000, 500, 1, 365);
  // Responses it signs are trusted without a status check of its own certificate
  // (RFC 6960 id-pkix-ocsp-nocheck), so keep it short-lived.
  add("ocsp-signer", KeyStorage::hsm, 0.5, 10000, 100, 1, 90);
  // Forged checkpoints would hide tampering with the audit chain.
  add("audit-checkpoint", KeyStorage::hsm, 0.2, 1000, 50, 1, 365);
  // OCPP security profile 3 client keys; many stations keep them in software.
  auto& station = add("charging-station", KeyStorage::software, 0.05, 100, 5, 1000, 730);
  station.max_compromise_probability = 0.05;
  station.rotations_per_day = 20;
  // ISO 15118 TLS server keys of the chargers, assumed in a secure element.
  add("secc", KeyStorage::tpm, 0.05, 50, 10, 1000, 365).rotations_per_day = 20;
  // Contract keys are delivered to the vehicle (the one key gridtrust does not keep).
  auto& contract = add("vehicle-contract", KeyStorage::software, 0.1, 20, 10, 10000, 730);
  contract.max_exposure_days_per_year = 2;
  contract.rotations_per_day = 500;
  // CPO, CPS, OEM and MO Sub-CA 1 and 2 (the hierarchy gridtrust init makes).
  add("sub-ca", KeyStorage::hsm, 0.1, 200000, 50000, 8, 1825);
  return roles;
}

}  // namespace gridtrust::policy
