#include "daemon/sessions.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl/error.hpp>

#include "daemon/caller_identity.h"

namespace gridtrust::daemon {

TlsSession::TlsSession(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<boost::asio::ssl::context> tls,
                       store::Store& store, SessionContext ctx, std::unique_ptr<ConnectionLimit::Slot> slot)
    : HttpSession(std::move(ctx), std::move(slot)), tls_(std::move(tls)), stream_(std::move(socket), *tls_),
      store_(store) {}

void TlsSession::run() {
  // Start on the connection's strand: everything the session does runs there.
  boost::asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&TlsSession::on_run, shared_from_this()));
}

void TlsSession::on_run() {
  beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(context().limits.load()->handshake_timeout_s));
  stream_.async_handshake(boost::asio::ssl::stream_base::server,
                          beast::bind_front_handler(&TlsSession::on_handshake, shared_from_this()));
}

void TlsSession::on_handshake(beast::error_code ec) {
  if (ec) {
    log_line("api handshake refused: " + ec.message());
    // A refusal by the TLS library (no client certificate, an unknown CA, a bad
    // signature) is a failed login; a peer that connects and leaves, or times out, is not.
    if (context().audit && ec.category() == boost::asio::error::get_ssl_category()) {
      boost::system::error_code peer_ec;
      auto peer = beast::get_lowest_layer(stream_).socket().remote_endpoint(peer_ec);
      std::string who = peer_ec ? std::string("unknown") : peer.address().to_string() + ":" + std::to_string(peer.port());
      context().audit->login_failure(who, ec.message());
    }
    return;
  }
  // The handshake verified the chain; who the peer is for the API is decided here,
  // once per connection.
  X509* peer = SSL_get0_peer_certificate(stream_.native_handle());
  auto caller = identify_caller(peer, store_);
  if (caller.ok()) caller_ = caller.value();
  else caller_rejection_ = caller.error();
  do_read();
}

void TlsSession::do_close() {
  beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(context().limits.load()->handshake_timeout_s));
  stream_.async_shutdown(beast::bind_front_handler(&TlsSession::on_shutdown, shared_from_this()));
}

void TlsSession::on_shutdown(beast::error_code) {}  // the socket closes with the session

PlainSession::PlainSession(boost::asio::ip::tcp::socket&& socket, SessionContext ctx,
                           std::unique_ptr<ConnectionLimit::Slot> slot)
    : HttpSession(std::move(ctx), std::move(slot)), stream_(std::move(socket)) {}

void PlainSession::run() {
  boost::asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&PlainSession::do_read, shared_from_this()));
}

void PlainSession::do_close() {
  beast::error_code ec;
  stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
}

}  // namespace gridtrust::daemon
