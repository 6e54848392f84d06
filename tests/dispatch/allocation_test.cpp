#include <catch2/catch.hpp>

#include <numeric>

#include "dispatch/allocation.h"

using namespace gridtrust::dispatch;

namespace {
AllocationUnit unit(double min_w, double max_w, double cost_up = 0.05, double cost_down = 0.05, std::size_t site = 0) {
  AllocationUnit u;
  u.min_w = min_w;
  u.max_w = max_w;
  u.cost_up = cost_up;
  u.cost_down = cost_down;
  u.site = site;
  return u;
}
const std::vector<SiteCapacity> kBigSite{{1e9, -1e9}};
}  // namespace

TEST_CASE("proportional split moves each EV in proportion to its headroom") {
  std::vector<AllocationUnit> units{unit(-10000, 10000), unit(-5000, 5000), unit(-1000, 0)};
  Allocation a = allocate(7500, units, kBigSite, SplitPolicy::ProportionalHeadroom);
  CHECK(a.w[0] == Approx(5000));
  CHECK(a.w[1] == Approx(2500));
  CHECK(a.w[2] == Approx(0));
  CHECK(a.shortfall_w == 0);
  a = allocate(-8000, units, kBigSite, SplitPolicy::ProportionalHeadroom);
  CHECK(a.w[0] == Approx(-5000));
  CHECK(a.w[1] == Approx(-2500));
  CHECK(a.w[2] == Approx(-500));
  CHECK(a.delivered_w == Approx(-8000));
}

TEST_CASE("a target beyond the fleet's envelope is met as far as it goes and the shortfall reported") {
  std::vector<AllocationUnit> units{unit(-10000, 10000), unit(-5000, 5000)};
  for (auto policy : {SplitPolicy::ProportionalHeadroom, SplitPolicy::LeastDegradation}) {
    Allocation a = allocate(20000, units, kBigSite, policy);
    CHECK(a.delivered_w == Approx(15000));
    CHECK(a.shortfall_w == Approx(5000));
    a = allocate(-16000, units, kBigSite, policy);
    CHECK(a.delivered_w == Approx(-15000));
    CHECK(a.shortfall_w == Approx(-1000));
  }
}

TEST_CASE("least degradation cost fills the cheapest batteries first") {
  std::vector<AllocationUnit> units{unit(-10000, 10000, 0.09, 0.12), unit(-10000, 10000, 0.04, 0.06),
                                    unit(-10000, 10000, 0.05, 0.03)};
  Allocation a = allocate(12000, units, kBigSite, SplitPolicy::LeastDegradation);
  CHECK(a.w[1] == Approx(10000));
  CHECK(a.w[2] == Approx(2000));
  CHECK(a.w[0] == Approx(0));
  a = allocate(-15000, units, kBigSite, SplitPolicy::LeastDegradation);
  CHECK(a.w[2] == Approx(-10000));
  CHECK(a.w[1] == Approx(-5000));
  CHECK(a.w[0] == Approx(0));
}

TEST_CASE("site capacity caps the EVs at a site together; the rest goes elsewhere") {
  std::vector<AllocationUnit> units{unit(-10000, 10000, 0.05, 0.05, 0), unit(-10000, 10000, 0.05, 0.05, 0),
                                    unit(-10000, 10000, 0.05, 0.05, 1)};
  std::vector<SiteCapacity> sites{{8000, -8000}, {100000, -100000}};
  for (auto policy : {SplitPolicy::ProportionalHeadroom, SplitPolicy::LeastDegradation}) {
    Allocation a = allocate(18000, units, sites, policy);
    CHECK(a.w[0] + a.w[1] == Approx(8000));
    CHECK(a.w[2] == Approx(10000));
    CHECK(a.shortfall_w == 0);
    a = allocate(25000, units, sites, policy);
    CHECK(a.w[0] + a.w[1] <= 8000 + 1e-6);
    CHECK(a.shortfall_w == Approx(7000));
  }
}

TEST_CASE("an EV that must charge for its departure charges even against the target") {
  std::vector<AllocationUnit> units{unit(0, 10000), unit(-10000, 10000)};
  units[0].floor_w = 6000;
  Allocation a = allocate(-4000, units, kBigSite, SplitPolicy::ProportionalHeadroom);
  CHECK(a.w[0] == Approx(6000));
  CHECK(a.w[1] == Approx(-10000));
  CHECK(a.delivered_w == Approx(-4000));
}
