#pragma once
// The two kinds of connection: mTLS for the API, plain TCP for the status listener.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "daemon/http_session.h"
#include "store/store.h"

namespace gridtrust::daemon {

class TlsSession : public HttpSession<TlsSession>, public std::enable_shared_from_this<TlsSession> {
 public:
  // `tls`: the context in force when the connection was accepted; the session keeps it
  // alive, so a SIGHUP that installs another leaves this connection as it is.
  TlsSession(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<boost::asio::ssl::context> tls,
             store::Store& store, SessionContext ctx, std::unique_ptr<ConnectionLimit::Slot> slot);
  void run();

  beast::ssl_stream<beast::tcp_stream>& stream() { return stream_; }
  void do_close();

 private:
  friend class HttpSession<TlsSession>;
  void on_run();
  void on_handshake(beast::error_code ec);
  void on_shutdown(beast::error_code ec);

  std::shared_ptr<boost::asio::ssl::context> tls_;  // before stream_, which uses it to the end
  beast::ssl_stream<beast::tcp_stream> stream_;
  store::Store& store_;
};

class PlainSession : public HttpSession<PlainSession>, public std::enable_shared_from_this<PlainSession> {
 public:
  PlainSession(boost::asio::ip::tcp::socket&& socket, SessionContext ctx, std::unique_ptr<ConnectionLimit::Slot> slot);
  void run();

  beast::tcp_stream& stream() { return stream_; }
  void do_close();

 private:
  friend class HttpSession<PlainSession>;
  beast::tcp_stream stream_;
};

}  // namespace gridtrust::daemon
