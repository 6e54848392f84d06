#pragma once
// gridtrust.yaml: where the token, the store and the profiles are, and the URLs the
// PKI writes into certificates. Relative paths are relative to the data directory.
#include <string>

#include "core/rejection.h"
#include "hsm/pin_source.h"
#include "pki/certificate_authority.h"

namespace gridtrust::app {

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
};

Result<AppConfig> load_app_config(const std::string& data_dir);
std::string default_config_yaml(const std::string& module_path);

}  // namespace gridtrust::app
