#include "daemon/config_changes.h"

#include <boost/json.hpp>

namespace gridtrust::daemon {
namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

boost::json::array json_array(const std::vector<std::string>& items) {
  boost::json::array a;
  for (const auto& i : items) a.emplace_back(i);
  return a;
}

void compare_profiles(const pki::ProfileSet& running, const pki::ProfileSet& next, std::vector<std::string>& out) {
  if (running.organisation != next.organisation) out.push_back("profiles.organisation");
  for (const auto& [name, profile] : next.profiles) {
    const pki::Profile* before = running.find(name);
    if (!before) out.push_back("profile " + name + " added");
    else if (!(*before == profile)) out.push_back("profile " + name);
  }
  for (const auto& [name, profile] : running.profiles)
    if (!next.find(name)) out.push_back("profile " + name + " removed");
}

}  // namespace

std::string ConfigChanges::summary() const {
  std::string out = applied.empty() ? "nothing changed" : "applied " + joined(applied);
  if (!restart_required.empty()) out += "; unchanged until a restart: " + joined(restart_required);
  return out;
}

boost::json::object ConfigChanges::to_json() const {
  return boost::json::object{{"changed", json_array(applied)}, {"restart_required", json_array(restart_required)}};
}

ConfigChanges compare_configs(const app::AppConfig& running, const pki::ProfileSet& running_profiles,
                              const app::AppConfig& next, const pki::ProfileSet& next_profiles) {
  ConfigChanges c;
  if (running.profiles_path != next.profiles_path) c.applied.push_back("pki.profiles");
  compare_profiles(running_profiles, next_profiles, c.applied);
  const app::DaemonLimits& a = running.daemon.limits;
  const app::DaemonLimits& b = next.daemon.limits;
  auto applied = [&](bool differs, const char* name) {
    if (differs) c.applied.push_back(name);
  };
  applied(a.max_body_bytes != b.max_body_bytes, "daemon.limits.max_body_bytes");
  applied(a.max_batch_body_bytes != b.max_batch_body_bytes, "daemon.limits.max_batch_body_bytes");
  applied(a.max_header_bytes != b.max_header_bytes, "daemon.limits.max_header_bytes");
  applied(a.max_connections != b.max_connections, "daemon.limits.max_connections");
  applied(a.request_timeout_s != b.request_timeout_s, "daemon.limits.request_timeout_s");
  applied(a.handshake_timeout_s != b.handshake_timeout_s, "daemon.limits.handshake_timeout_s");
  applied(running.daemon.client_ca_files != next.daemon.client_ca_files, "daemon.client_ca_files");
  applied(running.daemon.checkpoint_interval_s != next.daemon.checkpoint_interval_s, "daemon.checkpoint_interval_s");

  auto restart = [&](bool differs, const char* name) {
    if (differs) c.restart_required.push_back(name);
  };
  restart(running.module_path != next.module_path, "hsm.module");
  restart(running.token_uri != next.token_uri, "hsm.token_uri");
  restart(running.pin.file != next.pin.file || running.pin.env_var != next.pin.env_var, "hsm.pin_file/pin_env");
  restart(running.softhsm2_conf != next.softhsm2_conf, "hsm.softhsm2_conf");
  restart(running.store_path != next.store_path, "store.path");
  restart(running.endpoints.crl_base_url != next.endpoints.crl_base_url, "pki.crl_base_url");
  restart(running.endpoints.ocsp_url != next.endpoints.ocsp_url, "pki.ocsp_url");
  restart(running.crl_validity_hours != next.crl_validity_hours, "pki.crl_validity_hours");
  restart(running.daemon.api_listen != next.daemon.api_listen, "daemon.api_listen");
  restart(running.daemon.status_listen != next.daemon.status_listen, "daemon.status_listen");
  restart(running.daemon.server_cert_label != next.daemon.server_cert_label, "daemon.server_cert_label");
  restart(running.daemon.workers != next.daemon.workers, "daemon.workers");
  restart(!(running.dispatch == next.dispatch), "dispatch");
  return c;
}

}  // namespace gridtrust::daemon
