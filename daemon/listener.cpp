#include "daemon/listener.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "daemon/log.h"

namespace gridtrust::daemon {
namespace asio = boost::asio;
using asio::ip::tcp;

Result<tcp::endpoint> parse_endpoint(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos || colon + 1 == host_port.size())
    return reject("config.invalid", "listen address '" + host_port + "' is not HOST:PORT");
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    std::size_t used = 0;
    port = std::stoi(host_port.substr(colon + 1), &used);
    if (used != host_port.size() - colon - 1) port = -1;
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 0 || port > 65535) return reject("config.invalid", "listen address '" + host_port + "': bad port");
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return reject("config.invalid", "listen address '" + host_port + "': bad IP address");
  return tcp::endpoint(address, static_cast<unsigned short>(port));
}

Listener::Listener(asio::io_context& ioc, std::string name, ConnectionLimit& limit, OnConnection on_connection)
    : ioc_(ioc), acceptor_(asio::make_strand(ioc)), name_(std::move(name)), limit_(limit),
      on_connection_(std::move(on_connection)) {}

Result<std::shared_ptr<Listener>> Listener::bind(asio::io_context& ioc, const std::string& host_port, std::string name,
                                                 ConnectionLimit& limit, OnConnection on_connection) {
  GT_TRY_ASSIGN(tcp::endpoint endpoint, parse_endpoint(host_port));
  std::shared_ptr<Listener> l(new Listener(ioc, std::move(name), limit, std::move(on_connection)));
  boost::system::error_code ec;
  l->acceptor_.open(endpoint.protocol(), ec);
  if (!ec) l->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) l->acceptor_.bind(endpoint, ec);
  if (!ec) l->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return reject("config.listen_failed", "cannot listen on " + host_port + ": " + ec.message());
  log_line(l->name_ + " listening on " + host_port);
  return l;
}

void Listener::stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ec;
    self->acceptor_.close(ec);
  });
}

void Listener::do_accept() {
  // Each connection gets its own strand; sessions run in parallel on the I/O threads.
  acceptor_.async_accept(asio::make_strand(ioc_),
                         [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
                           self->on_accept(ec, std::move(socket));
                         });
}

void Listener::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;  // stopped
  if (!ec) {
    if (auto slot = limit_.try_acquire()) {
      on_connection_(std::move(socket), std::move(slot));
    } else {
      log_line(name_ + ": connection limit reached, refusing a connection");
      socket.close(ec);
    }
  }
  do_accept();
}

}  // namespace gridtrust::daemon
