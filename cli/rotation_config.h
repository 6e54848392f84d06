#pragma once
// The `rotation:` section of gridtrust.yaml: the risk model's parameters per role
// (policy/rotation_model.h).
//
//   rotation:
//     roles:
//       <name>: {storage, compromise_rate_per_year, hsm_factor, tpm_factor, loss_per_day,
//                overhead_per_rotation, certificates, max_interval_days,
//                max_compromise_probability, max_exposure_days_per_year, rotations_per_day}
//
// storage, compromise_rate_per_year, loss_per_day and overhead_per_rotation are
// required; the rest default as in RotationRole. A configured role replaces the
// built-in default of the same name as a whole; other defaults stay, in their order,
// and new roles follow.
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "core/rejection.h"
#include "policy/rotation_model.h"

namespace gridtrust::app {

// `section` is the value of `rotation` (may be null: the defaults). Every bad value is
// policy.bad_parameter, the message starting "<file>:<line>: rotation.roles[<name>].<field>".
Result<std::vector<policy::RotationRole>> load_rotation_section(const YAML::Node& section, const std::string& file);

// The defaults as a commented, loadable `rotation:` section for default_config_yaml.
std::string rotation_config_yaml();

}  // namespace gridtrust::app
