#include "daemon/server.h"

#include <csignal>
#include <thread>
#include <vector>

#include <boost/asio/signal_set.hpp>

#include "daemon/api_routes.h"
#include "daemon/log.h"
#include "daemon/sessions.h"
#include "daemon/status_routes.h"
#include "daemon/tls_context.h"

namespace gridtrust::daemon {
namespace asio = boost::asio;

Server::Server(app::PkiContext& pki, unsigned threads)
    : pki_(pki), threads_(threads == 0 ? 1 : threads), ioc_(static_cast<int>(threads_)), ops_(ioc_, pki),
      api_router_(make_api_router(*pki.ca,
                                  [this](const store::CertificateRecord& r) {
                                    if (status_publisher_) status_publisher_->revoked(r);
                                  })),
      limit_(pki.config.daemon.limits.max_connections), drain_timer_(ioc_) {}

Status Server::start() {
  const auto& cfg = pki_.config.daemon;
  api_router_.add("GET", "/metrics", Access::verified_peer, [this](const Request&) {
    return Reply{200, "text/plain; version=0.0.4; charset=utf-8", ops_.metrics().render()};
  });
  GT_TRY_ASSIGN(status_publisher_, StatusPublisher::create(*pki_.ca));
  status_router_ = make_status_router(*status_publisher_);
  GT_TRY_ASSIGN(tls_, make_api_tls_context(pki_));
  GT_TRY_ASSIGN(api_, Listener::bind(ioc_, cfg.api_listen, "api", limit_,
                                     [this](asio::ip::tcp::socket&& socket, std::unique_ptr<ConnectionLimit::Slot> slot) {
                                       SessionContext ctx{api_router_, pki_.config.daemon.limits, stopping_, "api",
                                                          &ops_.metrics(), &ops_.audit()};
                                       std::make_shared<TlsSession>(std::move(socket), *tls_, *pki_.store,
                                                                    std::move(ctx), std::move(slot))
                                           ->run();
                                     }));
  GT_TRY_ASSIGN(status_, Listener::bind(ioc_, cfg.status_listen, "status", limit_,
                                        [this](asio::ip::tcp::socket&& socket, std::unique_ptr<ConnectionLimit::Slot> slot) {
                                          SessionContext ctx{status_router_, pki_.config.daemon.limits, stopping_,
                                                             "status", &ops_.metrics()};
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
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads_; ++i) pool.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : pool) t.join();
  ops_.stopped();
  log_line("stopped");
}

void Server::on_signal(const boost::system::error_code& ec, int signal) {
  if (ec) return;
  log_line(std::string(signal == SIGTERM ? "SIGTERM" : "SIGINT") + ": no new connections, draining " +
           std::to_string(limit_.open()) + " open");
  stopping_ = true;
  ops_.stopping();
  api_->stop();
  status_->stop();
  // Open requests get at most one request timeout to finish.
  check_drained(std::chrono::steady_clock::now() +
                std::chrono::seconds(pki_.config.daemon.limits.request_timeout_s));
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
