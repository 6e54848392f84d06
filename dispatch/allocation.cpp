#include "dispatch/allocation.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace gridtrust::dispatch {

const char* to_string(SplitPolicy p) {
  return p == SplitPolicy::ProportionalHeadroom ? "proportional" : "least-degradation";
}

bool split_policy_from(const std::string& name, SplitPolicy& out) {
  if (name == "proportional") out = SplitPolicy::ProportionalHeadroom;
  else if (name == "least-degradation") out = SplitPolicy::LeastDegradation;
  else return false;
  return true;
}

namespace {

constexpr double kEps = 1e-6;

// Moves the units from their base toward the target in one direction (`up`): the
// residual `r` (> 0) is what is still to be moved, headroom[i] how far unit i can
// still go, room[s] how far site s can still go.
void move_proportional(std::vector<double>& w, std::vector<double>& headroom, std::vector<double>& room, double& r,
                       const std::vector<AllocationUnit>& units, double sign) {
  std::vector<double> x(units.size()), per_site(room.size());
  for (int round = 0; round < 64 && r > kEps; ++round) {
    double total = 0;
    for (std::size_t i = 0; i < units.size(); ++i)
      if (headroom[i] > kEps && room[units[i].site] > kEps) total += headroom[i];
    if (total <= kEps) break;
    const double share = std::min(1.0, r / total);
    std::fill(per_site.begin(), per_site.end(), 0.0);
    for (std::size_t i = 0; i < units.size(); ++i) {
      x[i] = (headroom[i] > kEps && room[units[i].site] > kEps) ? headroom[i] * share : 0.0;
      per_site[units[i].site] += x[i];
    }
    // A site that cannot take its share takes what it can, in the same proportions;
    // the rest goes round again to the units elsewhere.
    for (std::size_t s = 0; s < room.size(); ++s)
      per_site[s] = per_site[s] > room[s] ? room[s] / per_site[s] : 1.0;
    double moved = 0;
    for (std::size_t i = 0; i < units.size(); ++i) {
      if (x[i] == 0) continue;
      const std::size_t s = units[i].site;
      const double xi = x[i] * per_site[s];
      w[i] += sign * xi;
      headroom[i] -= xi;
      room[s] -= xi;
      moved += xi;
    }
    for (auto& v : room) v = std::max(v, 0.0);
    r -= moved;
    if (moved <= kEps) break;
  }
}

void move_cheapest(std::vector<double>& w, std::vector<double>& headroom, std::vector<double>& room, double& r,
                   const std::vector<AllocationUnit>& units, double sign) {
  // (cost, index) pairs sorted once: cheaper to compare than through the units.
  std::vector<std::pair<double, std::size_t>> order;
  order.reserve(units.size());
  for (std::size_t i = 0; i < units.size(); ++i)
    if (headroom[i] > kEps) order.emplace_back(sign > 0 ? units[i].cost_up : units[i].cost_down, i);
  std::sort(order.begin(), order.end());
  for (const auto& [cost, i] : order) {
    if (r <= kEps) break;
    const std::size_t s = units[i].site;
    const double xi = std::min({headroom[i], r, room[s]});
    if (xi <= 0) continue;
    w[i] += sign * xi;
    headroom[i] -= xi;
    room[s] -= xi;
    r -= xi;
  }
}

}  // namespace

Allocation allocate(double target_w, const std::vector<AllocationUnit>& units, const std::vector<SiteCapacity>& sites,
                    SplitPolicy policy) {
  Allocation out;
  const std::size_t n = units.size();
  out.w.assign(n, 0.0);
  std::vector<double> lo(n), site_sum(sites.size(), 0.0);
  // Base: every unit at the point of its range nearest to 0, its departure floor
  // included.
  for (std::size_t i = 0; i < n; ++i) {
    const auto& u = units[i];
    lo[i] = u.floor_w > 0 ? std::max(u.min_w, std::min(u.floor_w, u.max_w)) : u.min_w;
    out.w[i] = std::clamp(0.0, lo[i], std::max(lo[i], u.max_w));
    site_sum[u.site] += out.w[i];
  }
  // A site whose forced charging alone exceeds its limit: scale the forced parts down.
  for (std::size_t s = 0; s < sites.size(); ++s) {
    if (site_sum[s] <= sites[s].max_w + kEps) continue;
    double forced = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (units[i].site == s && out.w[i] > 0) forced += out.w[i];
    const double keep = forced > 0 ? std::max(0.0, forced - (site_sum[s] - sites[s].max_w)) / forced : 0.0;
    for (std::size_t i = 0; i < n; ++i)
      if (units[i].site == s && out.w[i] > 0) {
        site_sum[s] -= out.w[i] * (1 - keep);
        out.w[i] *= keep;
        lo[i] = std::min(lo[i], out.w[i]);
      }
  }
  double base = std::accumulate(out.w.begin(), out.w.end(), 0.0);
  double r = target_w - base;
  const double sign = r >= 0 ? 1.0 : -1.0;
  r = std::fabs(r);
  std::vector<double> headroom(n), room(sites.size());
  for (std::size_t i = 0; i < n; ++i)
    headroom[i] = std::max(0.0, sign > 0 ? units[i].max_w - out.w[i] : out.w[i] - lo[i]);
  for (std::size_t s = 0; s < sites.size(); ++s)
    room[s] = std::max(0.0, sign > 0 ? sites[s].max_w - site_sum[s] : site_sum[s] - sites[s].min_w);
  if (policy == SplitPolicy::ProportionalHeadroom) move_proportional(out.w, headroom, room, r, units, sign);
  else move_cheapest(out.w, headroom, room, r, units, sign);
  out.delivered_w = std::accumulate(out.w.begin(), out.w.end(), 0.0);
  out.shortfall_w = std::fabs(target_w - out.delivered_w) <= 1e-3 ? 0.0 : target_w - out.delivered_w;
  return out;
}

}  // namespace gridtrust::dispatch
