#pragma once
// gridtrustd: the API listener (mTLS) and the status listener (plain HTTP) on one
// pool of I/O threads, until SIGTERM or SIGINT; then it stops accepting, lets open
// requests finish (bounded by the request timeout) and returns. SIGHUP swaps in new
// profiles, limits and client trust anchors without closing a connection.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "cli/command_signing.h"
#include "cli/pki_context.h"
#include "core/time_source.h"
#include "daemon/client_trust.h"
#include "daemon/connection_limit.h"
#include "daemon/dispatch_routes.h"
#include "daemon/http_session.h"
#include "daemon/listener.h"
#include "daemon/operations.h"
#include "daemon/rotation_scheduler.h"
#include "daemon/router.h"
#include "daemon/status_publisher.h"
#include "daemon/tls_context.h"

namespace gridtrust::daemon {

class Server {
 public:
  // `clock`: the daemon's time (core/time_source.h); the system clock when null.
  explicit Server(app::PkiContext& pki, unsigned threads = 2, std::shared_ptr<const TimeSource> clock = nullptr);
  Server(const Server&) = delete;  // sessions hold references into it
  Server& operator=(const Server&) = delete;

  // Builds the TLS context and binds both listeners; start-up errors are rejections.
  Status start();
  // Serves until a termination signal and the drain that follows.
  void run();

 private:
  void on_signal(const boost::system::error_code& ec, int signal);
  void check_drained(std::chrono::steady_clock::time_point deadline);
  // The server's part of a SIGHUP (see ApplyConfig), on the operations strand.
  Result<std::vector<std::string>> apply_config(const app::AppConfig& config, pki::ProfileSet profiles);
  // After the scheduler switched a role to a new key, on the operations strand.
  void on_key_switch(const store::RotationEntry& entry);

  app::PkiContext& pki_;
  unsigned threads_;
  std::shared_ptr<const TimeSource> clock_;
  std::shared_ptr<app::CommandService> commands_;  // /v1/commands; told when its key is re-keyed
  boost::asio::io_context ioc_;
  Operations ops_;  // systemd, checkpoints, reload, metrics, the daemon's own audit entries
  CurrentLimits limits_;      // read by every session at each request
  ServerIdentity identity_;   // loaded at start; every TLS context is built around it
  ClientTrust client_trust_;  // that of tls_; changed on the operations strand only
  // The context new API connections are accepted with; each session holds its own.
  std::atomic<std::shared_ptr<boost::asio::ssl::context>> tls_;
  std::unique_ptr<StatusPublisher> status_publisher_;  // before the routers that use it
  // Re-keys the daemon's keys and queues station renewals (docs/rotation.md).
  std::unique_ptr<RotationScheduler> scheduler_;
  // The dispatch engine (docs/dispatch.md) when dispatch.enabled; before the routers.
  std::unique_ptr<app::DispatchRuntime> dispatch_runtime_;
  std::unique_ptr<DispatchService> dispatch_;
  Router api_router_;
  Router status_router_;
  ConnectionLimit limit_;
  std::atomic<bool> stopping_{false};
  std::shared_ptr<Listener> api_;
  std::shared_ptr<Listener> status_;
  boost::asio::steady_timer drain_timer_;
  // Request handlers run here (config daemon.workers). Last, so it is destroyed first:
  // a handler still running uses the routers, and the sessions it holds own sockets
  // of ioc_.
  boost::asio::thread_pool workers_;
};

}  // namespace gridtrust::daemon
