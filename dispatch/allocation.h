#pragma once
// Splitting a fleet-level target (total W, e.g. a regulation signal) across EVs, each
// within its envelope, and each site within what its limit leaves.
#include <cstddef>
#include <string>
#include <vector>

namespace gridtrust::dispatch {

enum class SplitPolicy {
  ProportionalHeadroom,  // each EV moves in proportion to how far it can move
  LeastDegradation,      // the cheapest battery wear first (linear cost: a greedy fill is optimal)
};
const char* to_string(SplitPolicy p);
bool split_policy_from(const std::string& name, SplitPolicy& out);

struct AllocationUnit {
  double min_w = 0, max_w = 0;  // the EV's envelope
  double floor_w = 0;           // charge it needs now (departure); raised to min_w, cut to max_w
  // Degradation cost of one more AC watt-hour each way: alpha x eta_charge when
  // charging, alpha / eta_discharge when discharging (DC throughput per AC Wh).
  double cost_up = 0, cost_down = 0;
  std::size_t site = 0;  // index into the site capacities
};

struct SiteCapacity {
  double max_w = 0;  // the most the units at the site may draw together
  double min_w = 0;  // the lowest (most negative) they may reach together
};

struct Allocation {
  std::vector<double> w;  // per unit
  double delivered_w = 0;
  double shortfall_w = 0;  // target - delivered (0 when met)
};

Allocation allocate(double target_w, const std::vector<AllocationUnit>& units, const std::vector<SiteCapacity>& sites,
                    SplitPolicy policy);

}  // namespace gridtrust::dispatch
