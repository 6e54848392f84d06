#include "daemon/server.h"

#include <algorithm>
#include <csignal>
#include <thread>
#include <vector>

#include <boost/asio/signal_set.hpp>

#include "daemon/api_routes.h"
#include "daemon/log.h"
#include "daemon/command_routes.h"
#include "daemon/ocpp_routes.h"
#include "daemon/rotation_routes.h"
#include "daemon/sessions.h"
#include "daemon/status_routes.h"
#include "daemon/tls_context.h"

namespace gridtrust::daemon {
namespace asio = boost::asio;

namespace {

std::size_t worker_count(unsigned configured) {
  if (configured > 0) return configured;
  return std::max(2u, std::thread::hardware_concurrency());
}

}  // namespace

Server::Server(app::PkiContext& pki, unsigned threads, std::shared_ptr<const TimeSource> clock)
    : pki_(pki), threads_(threads == 0 ? 1 : threads),
      clock_(clock ? std::move(clock) : std::make_shared<SystemTimeSource>()),
      commands_(make_command_service(*pki.ca, now_function(clock_))), ioc_(static_cast<int>(threads_)),
      ops_(ioc_, pki,
           [this](const app::AppConfig& config, pki::ProfileSet profiles) {
             return apply_config(config, std::move(profiles));
           }),
      limits_(std::make_shared<const app::DaemonLimits>(pki.config.daemon.limits)),
      api_router_(make_api_router(*pki.ca,
                                  [this](const store::CertificateRecord& r) {
                                    if (status_publisher_) status_publisher_->revoked(r);
                                  },
                                  commands_)),
      limit_(pki.config.daemon.limits.max_connections), drain_timer_(ioc_),
      workers_(worker_count(pki.config.daemon.workers)) {}

Status Server::start() {
  const auto& cfg = pki_.config.daemon;
  api_router_.add("GET", "/metrics", Access::verified_peer, [this](const Request&) {
    return Reply{200, "text/plain; version=0.0.4; charset=utf-8",
                 ops_.metrics().render() + (scheduler_ ? scheduler_->metrics_text() : std::string()) +
                     (dispatch_ ? dispatch_->metrics_text() : std::string())};
  });
  GT_TRY_ASSIGN(status_publisher_, StatusPublisher::create(*pki_.ca, now_function(clock_)));
  status_router_ = make_status_router(*status_publisher_);
  // The scheduler first: a rotation interrupted by a crash is finished by its first
  // tick, and the TLS listener starts with the csms-server key the schedule names.
  scheduler_ = std::make_unique<RotationScheduler>(pki_, clock_, [this](const store::RotationEntry& e) {
    on_key_switch(e);
  });
  // Not fatal: with the token away at start, the first ticks try again.
  if (auto prepared = scheduler_->prepare(); !prepared.ok())
    log_line("rotation: cannot schedule the daemon's keys yet: " + prepared.error().code + ": " +
             prepared.error().message);
  add_rotation_routes(api_router_, *scheduler_, *pki_.store, cfg.scheduler);
  if (clock_->simulated()) {
    // Tests steering a simulated clock wait for the scheduler to have caught up.
    status_router_.add("GET", "/scheduler", Access::anyone, [this](const Request&) {
      return json_reply(boost::json::object{{"processed_through", scheduler_->processed_through()},
                                            {"now", to_unix(clock_->now())}});
    });
  }
  if (auto e = scheduler_->entry("audit-checkpoint")) ops_.set_checkpoint_key_label(e->key_label);
  // GetCertificateStatus is answered by the status listener's own responder.
  add_ocpp_routes(api_router_, *pki_.ca, status_publisher_->ocsp());
  if (pki_.config.dispatch.enabled) {
    // Replay state is the store's: a restart does not reopen a sequence number.
    GT_TRY_ASSIGN(dispatch_runtime_,
                  app::DispatchRuntime::open(pki_.config.dispatch, *pki_.ca, commands_, "daemon:dispatch",
                                                            pki_.config.store_path, 10000));
    dispatch_ = std::make_unique<DispatchService>(*dispatch_runtime_, *pki_.store,
                                                  [clock = clock_] { return to_unix(clock->now()); });
    add_dispatch_routes(api_router_, *dispatch_);
  } else {
    add_dispatch_disabled_routes(api_router_);
  }
  if (auto e = scheduler_->entry("csms-server")) {
    GT_TRY_ASSIGN(identity_, load_server_identity(pki_, e->key_label));
  } else {
    GT_TRY_ASSIGN(identity_, load_server_identity(pki_));
  }
  GT_TRY_ASSIGN(client_trust_, load_client_trust(*pki_.ca, *pki_.ca->profiles(), cfg.client_ca_files));
  GT_TRY_ASSIGN(auto tls, make_api_tls_context(identity_, client_trust_));
  tls_.store(std::move(tls));
  GT_TRY_ASSIGN(api_, Listener::bind(ioc_, cfg.api_listen, "api", limit_,
                                     [this](asio::ip::tcp::socket&& socket, std::unique_ptr<ConnectionLimit::Slot> slot) {
                                       SessionContext ctx{api_router_, limits_, stopping_, "api", &ops_.metrics(),
                                                          &ops_.audit()};
                                       ctx.workers = &workers_;
                                       std::make_shared<TlsSession>(std::move(socket), tls_.load(), *pki_.store,
                                                                    std::move(ctx), std::move(slot))
                                           ->run();
                                     }));
  GT_TRY_ASSIGN(status_, Listener::bind(ioc_, cfg.status_listen, "status", limit_,
                                        [this](asio::ip::tcp::socket&& socket, std::unique_ptr<ConnectionLimit::Slot> slot) {
                                          SessionContext ctx{status_router_, limits_, stopping_, "status",
                                                             &ops_.metrics()};
                                          ctx.log_every_request = false;
                                          std::make_shared<PlainSession>(std::move(socket), std::move(ctx),
                                                                         std::move(slot))
                                              ->run();
                                        }));
  return Ok{};
}

void Server::run() {
  asio::signal_set signals(ioc_, SIGTERM, SIGINT);
  signals.async_wait([this](const boost::system::error_code& ec, int signal) { on_signal(ec, signal); });
  api_->run();
  status_->run();
  log_line("ready");
  ops_.started();
  scheduler_->start(ops_.strand());
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads_; ++i) pool.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : pool) t.join();
  // After a drain every handler has answered; after a drain timeout, those still
  // running finish before the last checkpoint is signed.
  workers_.stop();
  workers_.join();
  ops_.stopped();
  log_line("stopped");
}

void Server::on_signal(const boost::system::error_code& ec, int signal) {
  if (ec) return;
  log_line(std::string(signal == SIGTERM ? "SIGTERM" : "SIGINT") + ": no new connections, draining " +
           std::to_string(limit_.open()) + " open");
  stopping_ = true;
  ops_.stopping();
  if (scheduler_) scheduler_->stop();
  api_->stop();
  status_->stop();
  // Open requests get at most one request timeout to finish.
  check_drained(std::chrono::steady_clock::now() +
                std::chrono::seconds(limits_.load()->request_timeout_s));
}

// Everything that can fail is built first, from the new files; then the swaps, none of
// which can fail. Issuance under way finishes with the profiles it started with, a
// connection keeps the TLS context it was accepted with, and each request takes the
// limits in force when it starts.
Result<std::vector<std::string>> Server::apply_config(const app::AppConfig& config, pki::ProfileSet profiles) {
  GT_TRY_ASSIGN(ClientTrust trust, load_client_trust(*pki_.ca, profiles, config.daemon.client_ca_files));
  GT_TRY_ASSIGN(auto tls, make_api_tls_context(identity_, trust));
  std::vector<std::string> also;
  if (trust != client_trust_) also.push_back("client trust anchors");

  pki_.ca->replace_profiles(std::move(profiles));
  limits_.store(std::make_shared<const app::DaemonLimits>(config.daemon.limits));
  limit_.set_max(config.daemon.limits.max_connections);
  tls_.store(std::move(tls));
  client_trust_ = std::move(trust);

  // Not configuration but the store, which the offline CLI may have changed meanwhile
  // (an OCSP signer issued, a revocation): a failure is logged and undoes nothing.
  if (auto refreshed = status_publisher_->refresh(); !refreshed.ok())
    log_line("ocsp: keeping the running signers: " + refreshed.error().code + ": " + refreshed.error().message);
  return also;
}

// The live users of a re-keyed key take the new one; nothing here fails the switch,
// which is committed already: a failure is logged and the old key stays in use until
// a restart (its certificate still verifies for the overlap).
void Server::on_key_switch(const store::RotationEntry& e) {
  if (e.role == "csms-server") {
    // New connections get the new key; open ones keep the context they have.
    auto id = load_server_identity(pki_, e.key_label);
    if (!id.ok()) {
      log_line("rotation: TLS keeps the old key: " + id.error().code + ": " + id.error().message);
      return;
    }
    auto tls = make_api_tls_context(id.value(), client_trust_);
    if (!tls.ok()) {
      log_line("rotation: TLS keeps the old key: " + tls.error().code + ": " + tls.error().message);
      return;
    }
    identity_ = std::move(id).value();
    tls_.store(std::move(tls).value());
  } else if (e.role == "ocsp-signer") {
    if (auto st = status_publisher_->refresh(); !st.ok())
      log_line("rotation: OCSP signer not reloaded: " + st.error().code + ": " + st.error().message);
  } else if (e.role == "aggregator-signer") {
    commands_->forget_signer();
  } else if (e.role == "audit-checkpoint") {
    ops_.set_checkpoint_key_label(e.key_label);
  }
}

void Server::check_drained(std::chrono::steady_clock::time_point deadline) {
  if (limit_.open() == 0 || std::chrono::steady_clock::now() >= deadline) {
    if (limit_.open() != 0) log_line("drain timeout: closing " + std::to_string(limit_.open()) + " connections");
    ioc_.stop();
    return;
  }
  drain_timer_.expires_after(std::chrono::milliseconds(50));
  drain_timer_.async_wait([this, deadline](const boost::system::error_code& ec) {
    if (!ec) check_drained(deadline);
  });
}

}  // namespace gridtrust::daemon
