#pragma once
// The rotation risk model (DESIGN.md "Rotation risk model").
//
// A key is compromised at the first event of a Poisson process of rate lambda and
// stays usable by the attacker until the end of its rotation interval T. Per key and
// interval the expected exposure is  E(T) = T - (1 - e^{-lambda T}) / lambda  days,
// so the cost rate (per day) is
//     J(T) = C / T + L * E(T) / T
// with C the overhead of one rotation and L the loss per day of exposure. For small
// lambda T, E(T) ~ lambda T^2 / 2 and J ~ C/T + lambda L T / 2, whose optimum is
// T* = sqrt(2 C / (lambda L)). The exact optimum solves
//     C = (L / lambda) (1 - e^{-x} (1 + x)),  x = lambda T,
// which has a solution only when C < L / lambda; otherwise J falls for ever and the
// optimum is unbounded (only the constraints limit T).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/rejection.h"

namespace gridtrust::policy {

enum class KeyStorage { hsm, software, tpm };

// One role's parameters, as configured under `rotation.roles` in gridtrust.yaml.
struct RotationRole {
  std::string name;  // aggregator-signer, csms-server, ocsp-signer, audit-checkpoint,
                     // charging-station, secc, vehicle-contract, sub-ca
  KeyStorage storage = KeyStorage::hsm;
  double compromise_rate_per_year = 0;  // lambda for a software key
  double hsm_factor = 100;              // an HSM key is compromised this much less often
  double tpm_factor = 10;               // same for a TPM-held key
  double loss_per_day = 0;              // loss while a compromised key stays usable
  double overhead_per_rotation = 0;     // cost of rotating one certificate
  std::uint64_t certificates = 1;       // certificates of the role (each its own key)
  // Constraints.
  double max_interval_days = 365;
  std::optional<double> max_compromise_probability;  // within one interval, (0,1)
  std::optional<double> max_exposure_days_per_year;  // expected, per key
  // Rotations per day the operator can absorb for this role; the fleet then needs at
  // least certificates / rotations_per_day days per round.
  std::optional<double> rotations_per_day;
};

struct CostBreakdown {
  double interval_days = 0;
  double overhead_per_year = 0;       // all certificates of the role
  double expected_loss_per_year = 0;  // all certificates of the role
  double cost_per_year = 0;           // the sum: 365 * certificates * J(T)
  double p_compromise = 0;            // one key within one interval
  double exposure_days_per_year = 0;  // expected, per key
};

struct RotationPlan {
  std::string role;
  double lambda_per_day = 0;  // effective rate after the storage factor
  // Unconstrained optimum of the exact J(T); nullopt when it is unbounded.
  std::optional<double> optimum_days;
  double first_order_optimum_days = 0;  // sqrt(2 C / (lambda L))
  // The feasible band [min_days, max_days] the constraints leave.
  double min_days = 1;
  double max_days = 0;
  bool feasible = true;
  // When infeasible: the two constraints that conflict, e.g. {"min_interval", "max_interval"}.
  std::vector<std::string> conflict;
  int interval_days = 0;  // the chosen whole-day interval (0 when infeasible)
  // "none", "max_interval", "max_compromise_probability", "max_exposure", "min_interval".
  std::string binding = "none";
  CostBreakdown at_interval;  // breakdown at interval_days
  // Added: the upper-bound constraint that sets max_days (the lower bound is always
  // "min_interval": whole days, and the fleet's capacity).
  std::string max_days_by = "max_interval";
};

// Checks every field (policy.bad_parameter naming the field) and plans the role.
Result<RotationPlan> plan_rotation(const RotationRole& role);

// The exact model at T days, for tables and plots.
CostBreakdown evaluate(const RotationRole& role, double interval_days);

// The field checks of plan_rotation alone, for config loading: policy.bad_parameter
// with a message such as "rotation.roles[secc].loss_per_day must be > 0 (got 0)".
Status validate(const RotationRole& role);

// lambda per day after the storage factor: rate / 365 / (hsm_factor | tpm_factor | 1).
double lambda_per_day(const RotationRole& role);

// 365 * certificates * (C / T + lambda L T / 2): the first-order cost per year, which
// the plot draws beside the exact one.
double first_order_cost_per_year(const RotationRole& role, double interval_days);

// "hsm", "software", "tpm".
const char* storage_name(KeyStorage s);
std::optional<KeyStorage> parse_storage(const std::string& text);

// The defaults for the standard roles when gridtrust.yaml has no rotation section.
std::vector<RotationRole> default_rotation_roles();

}  // namespace gridtrust::policy
