#include "daemon/operations.h"

#include <unistd.h>

#include <csignal>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "daemon/log.h"
#include "daemon/systemd_notify.h"
#include "pki/audit_checkpoint.h"
#include "pki/profile_loader.h"

namespace gridtrust::daemon {

Operations::Operations(boost::asio::io_context& ioc, app::PkiContext& pki, ApplyConfig apply_config)
    : pki_(pki), apply_config_(std::move(apply_config)), running_(pki.config), strand_(boost::asio::make_strand(ioc)), audit_(*pki.store, metrics_),
      hangup_(strand_, SIGHUP), watchdog_timer_(strand_), checkpoint_timer_(strand_),
      checkpoint_interval_(pki.config.daemon.checkpoint_interval_s), checkpoint_label_(pki::kCheckpointKeyLabel) {}

void Operations::set_checkpoint_key_label(std::string label) {
  std::lock_guard g(checkpoint_mu_);
  checkpoint_label_ = std::move(label);
}

void Operations::started() {
  if (auto st = audit_.record("daemon-start", "{\"pid\":" + std::to_string(::getpid()) + "}"); !st.ok())
    log_line("audit of start failed: " + st.error().code + ": " + st.error().message);
  std::string label;
  {
    std::lock_guard g(checkpoint_mu_);
    label = checkpoint_label_;
  }
  if (auto key = pki::checkpoint_key(*pki_.token, label); !key.ok())
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

// A SIGHUP applies gridtrust.yaml and the profiles it names: the profiles the CA issues
// with, the limits, the client trust anchors (a new TLS context for new connections) and
// the checkpoint interval. Everything that can fail comes before anything is swapped,
// so a file that does not load, a profile with an error, a bad limit or a trust anchor
// that does not load leaves the running configuration as it was. Open connections
// stay open. Settings bound at start-up (listeners, token, store, URLs) are reported
// as waiting for a restart.
void Operations::reload() {
  auto changes = load_and_apply();
  if (!changes.ok()) {
    metrics_.count_reload(false);
    log_line("reload refused, keeping the running configuration: " + changes.error().code + ": " +
             changes.error().message);
    (void)audit_.record("config-reload",
                        boost::json::serialize(boost::json::object{{"ok", false}, {"code", changes.error().code}}));
    return;
  }
  metrics_.count_reload(true);
  log_line("configuration reloaded: " + changes->summary());
  boost::json::object details{{"ok", true}};
  for (auto& [key, value] : changes->to_json()) details[key] = value;
  (void)audit_.record("config-reload", boost::json::serialize(details));
}

Result<ConfigChanges> Operations::load_and_apply() {
  GT_TRY_ASSIGN(app::AppConfig config, app::load_app_config(running_.data_dir));
  GT_TRY_ASSIGN(pki::ProfileSet profiles, pki::load_profiles(config.profiles_path));
  ConfigChanges changes = compare_configs(running_, *pki_.ca->profiles(), config, profiles);
  GT_TRY_ASSIGN(std::vector<std::string> also, apply_config_(config, std::move(profiles)));
  changes.applied.insert(changes.applied.end(), also.begin(), also.end());
  // Nothing fails from here on. The timer restarts only for a new interval: SIGHUPs
  // more frequent than the interval must not postpone every checkpoint.
  if (config.daemon.checkpoint_interval_s != running_.daemon.checkpoint_interval_s) {
    checkpoint_interval_ = std::chrono::seconds(config.daemon.checkpoint_interval_s);
    arm_checkpoint();
  }
  running_ = std::move(config);
  return changes;
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
  auto c = pki::write_audit_checkpoint(*pki_.token, *pki_.store, checkpoint_label_);
  metrics_.count_checkpoint(c.ok());
  if (c.ok()) log_line(std::string("audit checkpoint (") + why + ") at entry " + std::to_string(c->entry_id));
  else log_line(std::string("audit checkpoint (") + why + ") failed: " + c.error().code + ": " + c.error().message);
}

}  // namespace gridtrust::daemon
