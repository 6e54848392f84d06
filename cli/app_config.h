#pragma once
// gridtrust.yaml: where the token, the store and the profiles are, and the URLs the
// PKI writes into certificates. Relative paths are relative to the data directory.
#include <cstddef>
#include <string>
#include <vector>

#include "core/rejection.h"
#include "hsm/pin_source.h"
#include "pki/certificate_authority.h"

namespace gridtrust::app {

// Bounds of every connection gridtrustd serves (DESIGN.md "Daemon": bounded everything).
struct DaemonLimits {
  std::size_t max_body_bytes = 65536;
  std::size_t max_header_bytes = 8192;
  std::size_t max_connections = 256;
  int request_timeout_s = 10;
  int handshake_timeout_s = 5;

  bool operator==(const DaemonLimits&) const = default;
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
};

Result<AppConfig> load_app_config(const std::string& data_dir);
std::string default_config_yaml(const std::string& module_path, const DaemonIdentity& identity = {});

}  // namespace gridtrust::app
