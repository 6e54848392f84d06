#pragma once
// `gridtrust rotation plan --svg FILE`: the cost per year J(T) of each role against the
// rotation interval, one panel per role, as a self-contained SVG document.
#include <string>
#include <vector>

#include "policy/rotation_model.h"

namespace gridtrust::cli {

struct PlannedRole {
  policy::RotationRole role;
  policy::RotationPlan plan;
};

// Each panel: log-log axes (interval in days, cost per year in currency units), the
// exact curve (class "series exact", data-role = the role's name), the first-order
// curve dashed ("series first-order"), the feasible band shaded ("band"), the
// unconstrained optimum ("optimum") and the chosen interval ("chosen") marked and
// labelled. An infeasible role shows its two conflicting bounds instead of a band.
std::string rotation_plot_svg(const std::vector<PlannedRole>& roles);

// Numbers as the table and the plot show them, independent of the locale: days as
// "180" or "374.4"; amounts >= 100 as whole units with thousands separators
// ("19,132"), smaller ones to three significant digits.
std::string format_days(double days);
std::string format_amount(double amount);

}  // namespace gridtrust::cli
