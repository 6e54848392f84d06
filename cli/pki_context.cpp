#include "cli/pki_context.h"

#include <cstdlib>

#include "pki/profile_loader.h"

namespace gridtrust::app {

void use_softhsm2_conf(const AppConfig& config) {
  if (!config.softhsm2_conf.empty()) setenv("SOFTHSM2_CONF", config.softhsm2_conf.c_str(), 1);
}

Result<std::unique_ptr<PkiContext>> open_pki(const std::string& data_dir, std::size_t serial_block,
                                             std::function<TimePoint()> now) {
  auto ctx = std::make_unique<PkiContext>();
  GT_TRY_ASSIGN(ctx->config, load_app_config(data_dir));
  GT_TRY_ASSIGN(auto profiles, pki::load_profiles(ctx->config.profiles_path));
  use_softhsm2_conf(ctx->config);
  GT_TRY_ASSIGN(SecureString pin, hsm::read_pin(ctx->config.pin));
  hsm::TokenConfig tc;
  tc.module_path = ctx->config.module_path;
  tc.token_uri = ctx->config.token_uri;
  tc.pin = std::move(pin);
  GT_TRY_ASSIGN(std::unique_ptr<hsm::Token> token, hsm::Token::open(std::move(tc)));
  ctx->token = std::move(token);
  GT_TRY_ASSIGN(std::unique_ptr<store::SqliteStore> st, store::SqliteStore::open(ctx->config.store_path));
  ctx->store = std::move(st);
  pki::PkiConfig pc;
  pc.endpoints = ctx->config.endpoints;
  pc.crl_validity_hours = ctx->config.crl_validity_hours;
  pc.serial_block = serial_block;
  if (now) pc.now = std::move(now);
  ctx->ca = std::make_unique<pki::CertificateAuthority>(std::move(profiles), ctx->token, ctx->store, pc);
  return ctx;
}

}  // namespace gridtrust::app
