#pragma once
// gridtrust.yaml: where the token, the store and the profiles are, and the URLs the
// PKI writes into certificates. Relative paths are relative to the data directory.
#include <cstddef>
#include <string>
#include <vector>

#include "core/rejection.h"
#include "hsm/pin_source.h"
#include "cli/dispatch_config.h"
#include "pki/certificate_authority.h"
#include "policy/rotation_model.h"

namespace gridtrust::app {

// Bounds of every connection gridtrustd serves (DESIGN.md "Daemon": bounded everything).
struct DaemonLimits {
  std::size_t max_body_bytes = 65536;
  // Requests to routes that carry signed batches (POST /v1/dispatch/setpoints), from
  // callers that route admits: a 1,000-entry batch is about 1.2 MB.
  std::size_t max_batch_body_bytes = 4194304;
  std::size_t max_header_bytes = 8192;
  std::size_t max_connections = 256;
  int request_timeout_s = 10;
  int handshake_timeout_s = 5;

  bool operator==(const DaemonLimits&) const = default;
};

// gridtrustd's rotation scheduler (docs/rotation.md): re-keys the keys the daemon holds
// and queues renewal triggers for station certificates in the outbox.
struct SchedulerConfig {
  bool enabled = true;
  int tick_ms = 60000;     // how often the scheduler looks at the clock
  int overlap_days = 7;    // a re-keyed certificate stays valid this long past its successor
  // Station/vehicle renewals are due at issued + interval - jitter, the jitter drawn
  // (per certificate, deterministically) from [0, jitter_fraction * interval],
  // at most jitter_max_days.
  double jitter_fraction = 0.1;
  int jitter_max_days = 30;
  // TriggerMessage renewals queued per clock hour at most; also bounds the catch-up
  // after downtime.
  int renewal_rate_per_hour = 100;
  std::size_t outbox_max_pending = 100000;  // undelivered entries; renewals wait beyond that
  std::size_t outbox_page_max = 1000;       // largest ?limit= of GET /v1/outbox
  // Per role, a fixed interval in days instead of the risk model's (rotation section).
  std::vector<std::pair<std::string, int>> interval_days;
  // Tests only: a file holding the Unix time the daemon takes as "now"; refused unless
  // GRIDTRUST_SIMULATED_CLOCK=1 is set too. Absolute.
  std::string clock_file;
};

struct DaemonConfig {
  std::string api_listen = "127.0.0.1:8443";     // mTLS JSON API
  std::string status_listen = "127.0.0.1:8081";  // plain HTTP: CRLs (signed objects), health
  std::string server_cert_label;  // HSM key label of the daemon's csms-server certificate
  std::string admin_cert_label;   // HSM key label of the admin certificate made by init
  DaemonLimits limits;
  // PEM files of further CA certificates (each chain up to its root) whose client
  // certificates pass the API's TLS handshake, e.g. a monitoring system's CA. The
  // chain of the `admin` profile's issuer is always trusted; roles still come only
  // from this PKI's admin-profile certificates (daemon/caller_identity.h). Absolute.
  std::vector<std::string> client_ca_files;
  int checkpoint_interval_s = 300;  // how often the daemon signs the audit chain head
  // Threads that run request handlers (HSM signing, the store) off the I/O threads;
  // 0: max(2, hardware threads).
  unsigned workers = 0;
  SchedulerConfig scheduler;
};

// What `gridtrust init` issued for the daemon; empty before the token exists.
struct DaemonIdentity {
  std::string server_cert_label;
  std::string admin_cert_label;
};

struct AppConfig {
  std::string data_dir;        // absolute
  std::string module_path;
  std::string token_uri;
  hsm::PinSource pin;
  std::string softhsm2_conf;   // absolute, or empty when the module is not SoftHSM2
  std::string store_path;      // absolute
  std::string profiles_path;   // absolute
  pki::Endpoints endpoints;
  int crl_validity_hours = 168;
  DaemonConfig daemon;  // files written before the daemon existed load with the defaults
  // The rotation risk model per role (`rotation.roles`, cli/rotation_config.h); without
  // that section, policy::default_rotation_roles().
  std::vector<policy::RotationRole> rotation = policy::default_rotation_roles();
  DispatchConfig dispatch;  // the `dispatch:` section (cli/dispatch_config.h)
};

Result<AppConfig> load_app_config(const std::string& data_dir);
std::string default_config_yaml(const std::string& module_path, const DaemonIdentity& identity = {});

}  // namespace gridtrust::app
