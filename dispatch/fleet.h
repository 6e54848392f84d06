#pragma once
// The fleet registry: sites (feeder/transformer limits), charging stations and their
// EVSEs (power limits, owning aggregator) and the EV sessions plugged into them
// (battery, state of charge, limits, efficiencies, departure). Loaded once from YAML
// or JSON, then changed through the engine (session start/stop, SoC telemetry).
//
// Units: power in W (positive = charge, i.e. import from the grid; negative =
// discharge), energy in Wh, time in seconds since the epoch. The files use kWh for
// battery sizes and needed energy because that is how people write them.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "core/rejection.h"

namespace gridtrust::dispatch {

// What the engine does with a setpoint outside the physical envelope.
enum class EnforcementPolicy { Reject, Clamp };

struct Site {
  std::string id;
  double import_limit_w = 0;  // feeder/transformer limit on the sum of the site's EVSEs, charging
  double export_limit_w = 0;  // the same for discharge (a positive number)
  EnforcementPolicy policy = EnforcementPolicy::Clamp;
  double ramp_w_per_s = 0;    // default ramp limit of its EVSEs; 0: none
};

struct Station {
  std::string id;          // OCPP security-profile identity
  std::string site;
  std::string aggregator;  // the organisation (O=) of the aggregator signer that may command it
};

struct Evse {
  std::string station;
  int id = 0;  // OCPP evseId, > 0
  double max_charge_w = 0;
  double max_discharge_w = 0;  // a positive number
  double ramp_w_per_s = 0;     // 0: the site's
};

// An EV plugged into an EVSE.
struct Session {
  std::string ev;
  std::string station;
  int evse = 0;
  double battery_wh = 0;
  double soc = 0;  // state of charge, 0..1
  double soc_min = 0, soc_max = 1;
  double max_charge_w = 0;
  double max_discharge_w = 0;  // a positive number
  double eta_charge = 1;       // AC -> DC, one way
  double eta_discharge = 1;    // DC -> AC, one way
  std::int64_t departure = 0;
  double energy_needed_wh = 0;  // energy the battery must hold at departure
  double alpha_per_kwh = 0.05;  // degradation cost per kWh of DC throughput

  double stored_wh() const { return soc * battery_wh; }
};

std::string evse_key(const std::string& station, int evse);

// The latest departure a session may have (9999-12-31T23:59:59Z): times in the registry
// stay far from the ends of int64 (the envelope subtracts them).
inline constexpr std::int64_t kLastDeparture = 253402300799;

struct Fleet {
  std::map<std::string, Site> sites;
  std::map<std::string, Station> stations;
  std::map<std::string, Evse> evses;        // by evse_key
  std::map<std::string, Session> sessions;  // by evse_key of the EVSE it is plugged into

  const Site* site_of_station(const std::string& station) const;
  const Session* session_of(const std::string& ev) const;
};

// Codes (docs/error-codes.md): dispatch.bad_registry (the message names the file, the
// entry and the field), dispatch.duplicate_id, dispatch.unknown_reference.
Result<Fleet> load_fleet_yaml_text(const std::string& text, const std::string& origin = "fleet");
Result<Fleet> load_fleet_json_text(const std::string& text, const std::string& origin = "fleet");
// By extension: .yaml/.yml or .json. Code usage.unreadable_file when it cannot be read.
Result<Fleet> load_fleet_file(const std::string& path);

// One session from its JSON/YAML form (the same fields as a registry file's
// `sessions` entries); `where` prefixes error messages.
Result<Session> session_from_json(const boost::json::object& o, const std::string& where);
// What session_from_json reads (kWh for energies, as the registry file has them).
boost::json::object session_to_json(const Session& s);

// The checks a session must pass to join the registry (also for API session starts).
Status validate_session(const Fleet& fleet, const Session& s, const std::string& where);

}  // namespace gridtrust::dispatch
