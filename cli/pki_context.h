#pragma once
// Opens what an offline command needs: the token (PIN from file or environment), the
// store, the profiles and the CA over them.
#include <functional>
#include <memory>

#include "cli/app_config.h"
#include "hsm/token.h"
#include "pki/certificate_authority.h"
#include "store/sqlite_store.h"

namespace gridtrust::app {

struct PkiContext {
  AppConfig config;
  std::shared_ptr<hsm::Token> token;
  std::shared_ptr<store::SqliteStore> store;
  std::unique_ptr<pki::CertificateAuthority> ca;
};

// SoftHSM2 reads SOFTHSM2_CONF when the module initialises: point it at the data
// directory's own token before anything loads the module.
void use_softhsm2_conf(const AppConfig& config);

// `now`: the CA's clock (gridtrustd's TimeSource); the system clock when empty.
Result<std::unique_ptr<PkiContext>> open_pki(const std::string& data_dir, std::size_t serial_block = 1,
                                             std::function<TimePoint()> now = {});

}  // namespace gridtrust::app
