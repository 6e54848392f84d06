#include "daemon/operations.h"

#include <unistd.h>

#include <csignal>

#include <boost/asio/post.hpp>

#include "daemon/log.h"
#include "daemon/systemd_notify.h"
#include "pki/audit_checkpoint.h"
#include "pki/profile_loader.h"

namespace gridtrust::daemon {

Operations::Operations(boost::asio::io_context& ioc, app::PkiContext& pki)
    : pki_(pki), strand_(boost::asio::make_strand(ioc)), audit_(*pki.store, metrics_),
      hangup_(strand_, SIGHUP), watchdog_timer_(strand_), checkpoint_timer_(strand_),
      checkpoint_interval_(pki.config.daemon.checkpoint_interval_s) {}

void Operations::started() {
  if (auto st = audit_.record("daemon-start", "{\"pid\":" + std::to_string(::getpid()) + "}"); !st.ok())
    log_line("audit of start failed: " + st.error().code + ": " + st.error().message);
  if (auto key = pki::checkpoint_key(*pki_.token); !key.ok())
    log_line("audit checkpoint key unavailable: " + key.error().code + ": " + key.error().message);
  hangup_.async_wait([this](const boost::system::error_code& ec, int) { on_hangup(ec); });
  if (auto interval = watchdog_ping_interval()) {
    watchdog_interval_ = *interval;
    notify_service_manager("WATCHDOG=1");
    arm_watchdog();
  }
  arm_checkpoint();
  notify_service_manager("READY=1");
}

void Operations::stopped() {
  if (auto st = audit_.record("daemon-stop", "{}"); !st.ok())
    log_line("audit of stop failed: " + st.error().code + ": " + st.error().message);
  checkpoint("shutdown");
}

void Operations::stopping() {
  notify_service_manager("STOPPING=1");
  // The watchdog keeps running: a drain must not look like a hang to systemd.
  boost::asio::post(strand_, [this] {
    boost::system::error_code ignored;
    hangup_.cancel(ignored);
    checkpoint_timer_.cancel();
  });
}

void Operations::on_hangup(const boost::system::error_code& ec) {
  if (ec) return;
  notify_reloading();
  reload();
  notify_service_manager("READY=1");
  hangup_.async_wait([this](const boost::system::error_code& e, int) { on_hangup(e); });
}

// Reads gridtrust.yaml and the profiles again. A file that does not load leaves the
// running configuration in place. What takes effect now: the checkpoint interval.
// Listen addresses, limits, the token and the profiles held by the CA are bound
// at start-up and change with a restart; the reload reports them as validated.
void Operations::reload() {
  auto config = app::load_app_config(pki_.config.data_dir);
  Status loaded = config.ok() ? Status(Ok{}) : Status(config.error());
  if (loaded.ok()) {
    auto profiles = pki::load_profiles(config->profiles_path);
    if (!profiles.ok()) loaded = profiles.error();
  }
  if (!loaded.ok()) {
    metrics_.count_reload(false);
    log_line("reload refused, keeping the running configuration: " + loaded.error().code + ": " +
             loaded.error().message);
    (void)audit_.record("config-reload", "{\"ok\":false,\"code\":\"" + loaded.error().code + "\"}");
    return;
  }
  checkpoint_interval_ = std::chrono::seconds(config->daemon.checkpoint_interval_s);
  arm_checkpoint();
  metrics_.count_reload(true);
  log_line("configuration reloaded");
  (void)audit_.record("config-reload",
                      "{\"ok\":true,\"checkpoint_interval_s\":" + std::to_string(checkpoint_interval_.count()) + "}");
}

void Operations::arm_watchdog() {
  watchdog_timer_.expires_after(watchdog_interval_);
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    notify_service_manager("WATCHDOG=1");
    arm_watchdog();
  });
}

void Operations::arm_checkpoint() {
  checkpoint_timer_.expires_after(checkpoint_interval_);
  checkpoint_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    checkpoint("interval");
    arm_checkpoint();
  });
}

void Operations::checkpoint(const char* why) {
  std::lock_guard g(checkpoint_mu_);
  auto c = pki::write_audit_checkpoint(*pki_.token, *pki_.store);
  metrics_.count_checkpoint(c.ok());
  if (c.ok()) log_line(std::string("audit checkpoint (") + why + ") at entry " + std::to_string(c->entry_id));
  else log_line(std::string("audit checkpoint (") + why + ") failed: " + c.error().code + ": " + c.error().message);
}

}  // namespace gridtrust::daemon
