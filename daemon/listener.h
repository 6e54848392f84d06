#pragma once
// Accepts connections on one endpoint and hands each to a new session, refusing
// connections beyond the limit at once rather than queueing them.
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/rejection.h"
#include "daemon/connection_limit.h"

namespace gridtrust::daemon {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  using OnConnection = std::function<void(boost::asio::ip::tcp::socket&&, std::unique_ptr<ConnectionLimit::Slot>)>;

  // Binds now, so that a port in use fails start-up instead of the first request.
  static Result<std::shared_ptr<Listener>> bind(boost::asio::io_context& ioc, const std::string& host_port,
                                                std::string name, ConnectionLimit& limit, OnConnection on_connection);
  void run() { do_accept(); }
  void stop();  // stops accepting; open sessions finish on their own
  const std::string& name() const { return name_; }

 private:
  Listener(boost::asio::io_context& ioc, std::string name, ConnectionLimit& limit, OnConnection on_connection);
  void do_accept();
  void on_accept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::string name_;
  ConnectionLimit& limit_;
  OnConnection on_connection_;
};

// "127.0.0.1:8443", "[::1]:8443" -> endpoint.
Result<boost::asio::ip::tcp::endpoint> parse_endpoint(const std::string& host_port);

}  // namespace gridtrust::daemon
