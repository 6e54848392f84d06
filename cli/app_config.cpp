#include "cli/app_config.h"

#include <algorithm>
#include <filesystem>
#include <type_traits>

#include <yaml-cpp/yaml.h>

#include "cli/rotation_config.h"

namespace gridtrust::app {
namespace fs = std::filesystem;

std::string default_config_yaml(const std::string& module_path, const DaemonIdentity& identity) {
  const DaemonLimits limits;
  return "# gridtrust configuration, written by `gridtrust init`.\n"
         "# Relative paths are relative to this file's directory (the data directory).\n"
         "# SIGHUP makes gridtrustd apply the profiles, daemon.limits, daemon.client_ca_files and\n"
         "# daemon.checkpoint_interval_s; the other settings take effect at a restart.\n"
         "hsm:\n"
         "  module: " + module_path + "\n"
         "  token_uri: \"pkcs11:token=gridtrust\"   # RFC 7512\n"
         "  pin_file: secrets/user.pin            # mode 0600; never on a command line\n"
         "  pin_env: GRIDTRUST_PIN                # takes precedence over pin_file when set\n"
         "  softhsm2_conf: softhsm2.conf          # the embedded SoftHSM2 token lives under tokens/\n"
         "store:\n"
         "  path: gridtrust.db\n"
         "pki:\n"
         "  profiles: profiles.yaml\n"
         "  crl_base_url: http://127.0.0.1:8081/crl/   # CRL of CA <profile> at <base><profile>.crl\n"
         "  ocsp_url: http://127.0.0.1:8081/ocsp\n"
         "  crl_validity_hours: 168\n"
         "daemon:\n"
         "  api_listen: 127.0.0.1:8443         # mTLS API; client certificates of the admin profile\n"
         "  status_listen: 127.0.0.1:8081      # plain HTTP: CRLs and health (the CRL URL above)\n"
         "  server_cert_label: \"" + identity.server_cert_label + "\"   # HSM key of the daemon's csms-server certificate\n"
         "  admin_cert_label: \"" + identity.admin_cert_label + "\"    # HSM key of the admin certificate made by init\n"
         "  checkpoint_interval_s: 300          # signed audit checkpoints (HSM key audit-checkpoint)\n"
         "  # client_ca_files: [monitoring-ca.pem]  # more client CAs (PEM, each chain up to its root):\n"
         "  #                                   # their certificates may call /healthz and /metrics; the\n"
         "  #                                   # admin profile's CAs are always trusted\n"
         "  # workers: 2                        # handler threads (signing, store); default max(2, CPU threads)\n"
         "  # scheduler:                        # re-keys the daemon's keys, queues station renewals (docs/rotation.md)\n"
         "  #   overlap_days: 7                 # a re-keyed certificate outlives its successor's start by this\n"
         "  #   renewal_rate_per_hour: 100      # TriggerMessage renewals queued per clock hour, at most\n"
         "  #   interval_days: {ocsp-signer: 20}  # fixed intervals instead of the risk model's (rotation:)\n"
         "  limits:\n"
         "    max_body_bytes: " + std::to_string(limits.max_body_bytes) + "\n"
         "    max_batch_body_bytes: " + std::to_string(limits.max_batch_body_bytes) +
         "   # POST /v1/dispatch/setpoints, from callers it admits\n"
         "    max_header_bytes: " + std::to_string(limits.max_header_bytes) + "\n"
         "    max_connections: " + std::to_string(limits.max_connections) + "\n"
         "    request_timeout_s: " + std::to_string(limits.request_timeout_s) + "\n"
         "    handshake_timeout_s: " + std::to_string(limits.handshake_timeout_s) + "\n"
         + rotation_config_yaml() + dispatch_config_yaml();
}

namespace {

// daemon.scheduler (docs/rotation.md). Each bad value names its field.
Status load_scheduler_section(const YAML::Node& n, const std::string& file, const fs::path& dir, SchedulerConfig& out) {
  if (!n.IsMap()) return reject("config.invalid", file + ": daemon.scheduler: must be a mapping");
  auto bad = [&](const std::string& key, const std::string& why) {
    return reject("config.invalid", file + ": daemon.scheduler." + key + ": " + why);
  };
  static const std::vector<std::string> known = {"enabled", "tick_ms", "overlap_days", "jitter_fraction",
                                                 "jitter_max_days", "renewal_rate_per_hour", "outbox_max_pending",
                                                 "outbox_page_max", "interval_days", "clock_file"};
  for (const auto& kv : n) {
    std::string key = kv.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end()) return bad(key, "unknown setting");
  }
  if (n["enabled"]) out.enabled = n["enabled"].as<bool>();
  auto integer = [&](const char* key, long long lo, long long hi, auto& field) -> Status {
    if (!n[key]) return Ok{};
    long long v = n[key].as<long long>();
    if (v < lo || v > hi) return bad(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    field = static_cast<std::remove_reference_t<decltype(field)>>(v);
    return Ok{};
  };
  GT_TRY(integer("tick_ms", 1, 3600000, out.tick_ms));
  GT_TRY(integer("overlap_days", 0, 365, out.overlap_days));
  GT_TRY(integer("jitter_max_days", 0, 365, out.jitter_max_days));
  GT_TRY(integer("renewal_rate_per_hour", 1, 1000000, out.renewal_rate_per_hour));
  GT_TRY(integer("outbox_max_pending", 1, 100000000, out.outbox_max_pending));
  GT_TRY(integer("outbox_page_max", 1, 100000, out.outbox_page_max));
  if (n["jitter_fraction"]) {
    double f = n["jitter_fraction"].as<double>();
    if (!(f >= 0 && f < 1)) return bad("jitter_fraction", "must be at least 0 and below 1");
    out.jitter_fraction = f;
  }
  if (auto iv = n["interval_days"]) {
    if (!iv.IsMap()) return bad("interval_days", "must map role names to days");
    for (const auto& kv : iv) {
      std::string role = kv.first.as<std::string>();
      long long days = kv.second.as<long long>();
      if (days < 1 || days > 3650) return bad("interval_days." + role, "must be between 1 and 3650");
      out.interval_days.emplace_back(role, static_cast<int>(days));
    }
  }
  if (n["clock_file"]) {
    fs::path p = n["clock_file"].as<std::string>();
    out.clock_file = p.is_absolute() ? p.string() : (dir / p).string();
  }
  return Ok{};
}

Status load_daemon_section(const YAML::Node& d, const std::string& file, const fs::path& dir, DaemonConfig& out) {
  auto text = [&](const char* key, std::string& field) {
    if (d[key]) field = d[key].as<std::string>();
  };
  text("api_listen", out.api_listen);
  text("status_listen", out.status_listen);
  text("server_cert_label", out.server_cert_label);
  text("admin_cert_label", out.admin_cert_label);
  if (d["checkpoint_interval_s"]) {
    out.checkpoint_interval_s = d["checkpoint_interval_s"].as<int>();
    if (out.checkpoint_interval_s <= 0)
      return reject("config.invalid", file + ": daemon.checkpoint_interval_s: must be positive");
  }
  if (d["workers"]) {
    long long w = d["workers"].as<long long>();
    if (w < 1 || w > 256) return reject("config.invalid", file + ": daemon.workers: must be between 1 and 256");
    out.workers = static_cast<unsigned>(w);
  }
  if (auto files = d["client_ca_files"]) {
    if (!files.IsSequence())
      return reject("config.invalid", file + ": daemon.client_ca_files: must be a list of PEM files");
    for (const auto& f : files) {
      fs::path p = f.as<std::string>();
      out.client_ca_files.push_back(p.is_absolute() ? p.string() : (dir / p).string());
    }
  }
  if (auto sched = d["scheduler"]) GT_TRY(load_scheduler_section(sched, file, dir, out.scheduler));
  auto l = d["limits"];
  if (!l) return Ok{};
  auto positive = [&](const char* key, auto& field) -> Status {
    if (!l[key]) return Ok{};
    long long v = l[key].as<long long>();
    if (v <= 0) return reject("config.invalid", file + ": daemon.limits." + key + ": must be positive");
    field = static_cast<std::remove_reference_t<decltype(field)>>(v);
    return Ok{};
  };
  GT_TRY(positive("max_body_bytes", out.limits.max_body_bytes));
  GT_TRY(positive("max_batch_body_bytes", out.limits.max_batch_body_bytes));
  GT_TRY(positive("max_header_bytes", out.limits.max_header_bytes));
  GT_TRY(positive("max_connections", out.limits.max_connections));
  GT_TRY(positive("request_timeout_s", out.limits.request_timeout_s));
  GT_TRY(positive("handshake_timeout_s", out.limits.handshake_timeout_s));
  return Ok{};
}

}  // namespace

Result<AppConfig> load_app_config(const std::string& data_dir) {
  std::error_code ec;
  fs::path dir = fs::absolute(data_dir, ec);
  fs::path file = dir / "gridtrust.yaml";
  if (!fs::exists(file, ec))
    return reject("config.missing", file.string() + " not found (run gridtrust init --data-dir " + data_dir + ")");
  auto resolve = [&](const std::string& p) { return p.empty() ? p : (fs::path(p).is_absolute() ? p : (dir / p).string()); };
  try {
    YAML::Node y = YAML::LoadFile(file.string());
    auto need = [&](const YAML::Node& parent, const char* key, const std::string& field) {
      auto n = parent[key];
      if (!n || !n.IsScalar())
        throw YAML::Exception(parent.Mark(), field + ": required value is missing");
      return n.as<std::string>();
    };
    AppConfig c;
    c.data_dir = dir.string();
    auto hsm = y["hsm"];
    if (!hsm || !hsm.IsMap()) return reject("config.invalid", file.string() + ": hsm: required section is missing");
    c.module_path = need(hsm, "module", "hsm.module");
    c.token_uri = need(hsm, "token_uri", "hsm.token_uri");
    if (hsm["pin_file"]) c.pin.file = resolve(hsm["pin_file"].as<std::string>());
    if (hsm["pin_env"]) c.pin.env_var = hsm["pin_env"].as<std::string>();
    if (hsm["softhsm2_conf"]) c.softhsm2_conf = resolve(hsm["softhsm2_conf"].as<std::string>());
    auto store = y["store"];
    c.store_path = resolve(store ? need(store, "path", "store.path") : "gridtrust.db");
    auto pki = y["pki"];
    if (!pki || !pki.IsMap()) return reject("config.invalid", file.string() + ": pki: required section is missing");
    c.profiles_path = resolve(need(pki, "profiles", "pki.profiles"));
    if (pki["crl_base_url"]) c.endpoints.crl_base_url = pki["crl_base_url"].as<std::string>();
    if (pki["ocsp_url"]) c.endpoints.ocsp_url = pki["ocsp_url"].as<std::string>();
    if (pki["crl_validity_hours"]) {
      c.crl_validity_hours = pki["crl_validity_hours"].as<int>();
      if (c.crl_validity_hours <= 0)
        return reject("config.invalid", file.string() + ": pki.crl_validity_hours: must be positive");
    }
    if (auto d = y["daemon"]) {
      if (!d.IsMap()) return reject("config.invalid", file.string() + ": daemon: must be a mapping");
      GT_TRY(load_daemon_section(d, file.string(), dir, c.daemon));
    }
    GT_TRY_ASSIGN(c.rotation, load_rotation_section(y["rotation"], file.string()));
    GT_TRY_ASSIGN(c.dispatch, load_dispatch_section(y["dispatch"], file.string(), dir.string()));
    return c;
  } catch (const YAML::Exception& e) {
    return reject("config.invalid", file.string() + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace gridtrust::app
