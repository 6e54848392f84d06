#include <catch2/catch.hpp>

#include "dispatch/fleet.h"

using namespace gridtrust::dispatch;

namespace {

const char* kYaml = R"(
sites:
  - id: depot-1
    import_limit_w: 150000
    export_limit_w: 100000
    policy: reject
    ramp_w_per_s: 500
    stations:
      - id: CS-001
        aggregator: Fleet
        evses:
          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}
          - {id: 2, max_charge_w: 22000}
sessions:
  - ev: EV-1
    station: CS-001
    evse: 1
    battery_kwh: 60
    soc: 0.5
    soc_min: 0.2
    soc_max: 0.9
    max_charge_w: 11000
    max_discharge_w: 7400
    eta_charge: 0.95
    eta_discharge: 0.93
    departure: 1795639141
    energy_needed_kwh: 48
)";

std::string code_of(const gridtrust::Result<Fleet>& r) { return r.ok() ? "ok" : r.error().code; }

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  return s.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("a YAML registry loads with its sites, stations, EVSEs and sessions") {
  auto f = load_fleet_yaml_text(kYaml, "fleet.yaml");
  REQUIRE(f.ok());
  REQUIRE(f->sites.size() == 1);
  const Site& s = f->sites.at("depot-1");
  CHECK(s.import_limit_w == 150000);
  CHECK(s.export_limit_w == 100000);
  CHECK(s.policy == EnforcementPolicy::Reject);
  CHECK(s.ramp_w_per_s == 500);
  CHECK(f->stations.at("CS-001").aggregator == "Fleet");
  CHECK(f->evses.at(evse_key("CS-001", 2)).max_discharge_w == 0);
  const Session& ev = f->sessions.at(evse_key("CS-001", 1));
  CHECK(ev.battery_wh == 60000);
  CHECK(ev.energy_needed_wh == 48000);
  CHECK(ev.eta_discharge == Approx(0.93));
  CHECK(f->session_of("EV-1") == &ev);
}

TEST_CASE("a JSON registry goes through the strict parser") {
  const char* json = R"({"sites":[{"id":"s","import_limit_w":1000,"stations":[{"id":"CS","aggregator":"A",
      "evses":[{"id":1,"max_charge_w":500}]}]}]})";
  auto f = load_fleet_json_text(json);
  REQUIRE(f.ok());
  CHECK(f->sites.at("s").export_limit_w == 1000);  // defaults to the import limit
  CHECK(f->sites.at("s").policy == EnforcementPolicy::Clamp);
  auto dup = load_fleet_json_text(R"({"sites":[],"sites":[]})");
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().code == "dispatch.bad_registry");
  CHECK(dup.error().message.find("json.duplicate_key") != std::string::npos);
}

TEST_CASE("registry errors name the entry and the field, with stable codes") {
  auto r = load_fleet_yaml_text(replace(kYaml, "soc: 0.5", "soc: 1.5"), "fleet.yaml");
  CHECK(code_of(r) == "dispatch.bad_registry");
  CHECK(r.error().message.find("fleet.yaml.sessions[0].soc") != std::string::npos);
  r = load_fleet_yaml_text(replace(kYaml, "policy: reject", "policy: maybe"), "fleet.yaml");
  CHECK(code_of(r) == "dispatch.bad_registry");
  CHECK(r.error().message.find("sites[0].policy") != std::string::npos);
  r = load_fleet_yaml_text(replace(kYaml, "aggregator: Fleet", "aggregator: Fleet\n        colour: red"), "f");
  CHECK(code_of(r) == "dispatch.bad_registry");
  CHECK(r.error().message.find("colour: unknown field") != std::string::npos);
  r = load_fleet_yaml_text(replace(kYaml, "station: CS-001", "station: CS-404"), "f");
  CHECK(code_of(r) == "dispatch.unknown_reference");
  r = load_fleet_yaml_text(replace(kYaml, "evse: 1", "evse: 3"), "f");
  CHECK(code_of(r) == "dispatch.unknown_reference");
  r = load_fleet_yaml_text(replace(kYaml, "- {id: 2,", "- {id: 1,"), "f");
  CHECK(code_of(r) == "dispatch.duplicate_id");
  r = load_fleet_yaml_text(replace(kYaml, "energy_needed_kwh: 48", "energy_needed_kwh: 58"), "f");
  CHECK(code_of(r) == "dispatch.bad_registry");
  r = load_fleet_yaml_text(replace(kYaml, "eta_charge: 0.95", "eta_charge: 0"), "f");
  CHECK(code_of(r) == "dispatch.bad_registry");
  r = load_fleet_yaml_text(replace(kYaml, "import_limit_w: 150000", "import_limit_w: lots"), "f");
  CHECK(code_of(r) == "dispatch.bad_registry");
  r = load_fleet_yaml_text(replace(kYaml, "- id: CS-001", "- id: CS#001"), "f");
  CHECK(code_of(r) == "dispatch.bad_registry");
  CHECK(code_of(load_fleet_yaml_text("sites: [", "f")) == "dispatch.bad_registry");
  // Beyond what arithmetic on them can hold (the fuzz target's finds).
  for (const char* bad : {"departure: -9223372036854775808", "departure: -1", "departure: 253402300800"}) {
    r = load_fleet_yaml_text(replace(kYaml, "departure: 1795639141", bad), "f");
    CHECK(code_of(r) == "dispatch.bad_registry");
    CHECK(r.error().message.find("sessions[0].departure") != std::string::npos);
  }
  r = load_fleet_yaml_text(replace(kYaml, "battery_kwh: 60", "battery_kwh: 1e306"), "f");
  CHECK(code_of(r) == "dispatch.bad_registry");
  CHECK(r.error().message.find("battery_kwh: is too large") != std::string::npos);
  CHECK(code_of(load_fleet_file("/nonexistent/fleet.yaml")) == "usage.unreadable_file");
}
