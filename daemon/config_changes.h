#pragma once
// What a SIGHUP finds different between the running configuration and the files, for
// the log and the audit entry: the settings it applies, and those that keep their
// start-up value until a restart (listeners, the token, the store, the URLs written
// into certificates).
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "cli/app_config.h"
#include "pki/profile.h"

namespace gridtrust::daemon {

struct ConfigChanges {
  std::vector<std::string> applied;           // "profile secc", "profile x added", "daemon.limits.max_body_bytes"
  std::vector<std::string> restart_required;  // "daemon.api_listen", "pki.ocsp_url", ...

  std::string summary() const;          // one line for the log
  boost::json::object to_json() const;  // {"changed":[...],"restart_required":[...]}, for the audit
};

ConfigChanges compare_configs(const app::AppConfig& running, const pki::ProfileSet& running_profiles,
                              const app::AppConfig& next, const pki::ProfileSet& next_profiles);

}  // namespace gridtrust::daemon
