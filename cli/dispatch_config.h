#pragma once
// The `dispatch:` section of gridtrust.yaml (docs/dispatch.md): whether gridtrustd runs
// the dispatch engine, where its fleet registry is, the limits it holds setpoints to
// and what happens to the SetChargingProfileRequests it emits.
//
//   dispatch:
//     enabled: false
//     registry: fleet.yaml          # YAML or JSON, relative to the data directory
//     max_lifetime_s: 3600          # exp - iat of an accepted setpoint at most
//     max_clock_skew_s: 60          # iat may be this far ahead of the daemon's clock
//     default_duration_s: 900       # a setpoint without a duration holds this long
//     command_lifetime_s: 300       # exp - iat of the commands the daemon signs
//     output: return                # return | outbox
//     split: proportional           # proportional | least-degradation (fleet targets)
//     max_batch: 1000               # entries of one POST /v1/dispatch/setpoints batch
//     decision_log: 10000           # decisions kept for GET /v1/dispatch/decisions
#include <cstddef>
#include <cstdint>
#include <string>

#include <yaml-cpp/yaml.h>

#include "core/rejection.h"
#include "dispatch/allocation.h"

namespace gridtrust::app {

enum class DispatchOutput {
  Return,  // the signed command is in the API answer; the caller delivers it
  Outbox,  // the signed command is queued in the outbox (GET /v1/outbox) as well
};
const char* to_string(DispatchOutput o);

struct DispatchConfig {
  bool enabled = false;
  std::string registry;  // absolute once loaded; empty: <data dir>/fleet.yaml
  std::int64_t max_lifetime_s = 3600;
  std::int64_t max_clock_skew_s = 60;
  double default_duration_s = 900;
  std::int64_t command_lifetime_s = 300;
  DispatchOutput output = DispatchOutput::Return;
  dispatch::SplitPolicy split = dispatch::SplitPolicy::ProportionalHeadroom;
  std::size_t max_batch = 1000;
  std::size_t decision_log = 10000;

  bool operator==(const DispatchConfig&) const = default;
};

// `section` may be null (the defaults, registry <dir>/fleet.yaml). Every bad value is
// config.invalid, the message "<file>:<line>: dispatch.<field>: <why>".
Result<DispatchConfig> load_dispatch_section(const YAML::Node& section, const std::string& file,
                                             const std::string& data_dir);

// A commented, loadable `dispatch:` section (disabled) for default_config_yaml.
std::string dispatch_config_yaml();

}  // namespace gridtrust::app
