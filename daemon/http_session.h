#pragma once
// One HTTP/1.1 connection, read -> route -> write, for a plain or a TLS stream.
//
// The flow reads top to bottom: do_read / on_read / do_write / on_write, with the
// derived class (TlsSession, PlainSession) supplying stream() and do_close(). The
// request timeout is set on the stream before every read, so a slow or idle client
// cannot hold a connection longer than limits.request_timeout_s.
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "cli/app_config.h"
#include "daemon/audit_trail.h"
#include "daemon/connection_limit.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/router.h"

namespace gridtrust::daemon {

namespace beast = boost::beast;
namespace http = boost::beast::http;

// The limits in force. SIGHUP swaps in new ones; a session takes the current ones at
// the start of each request, so a request is bounded by one consistent set.
using CurrentLimits = std::atomic<std::shared_ptr<const app::DaemonLimits>>;

// What every session of a listener shares.
struct SessionContext {
  const Router& router;
  const CurrentLimits& limits;
  const std::atomic<bool>& stopping;  // set on SIGTERM: finish the current request, then close
  std::string listener_name;          // "api" or "status", for logs
  Metrics* metrics = nullptr;         // null: not counted
  AuditTrail* audit = nullptr;        // null: refusals on this listener are not audited
  // Where handlers run (HSM signing, SQLite), so that a slow one never holds up the
  // I/O of other connections. Null: handlers run inline on the connection's strand.
  boost::asio::thread_pool* workers = nullptr;
  // False: only refusals (4xx/5xx) get a log line; the metrics count every request.
  // The status listener answers OCSP at tens of thousands per second, where a line
  // (a locked write to stderr) per answer is a large part of the answer's cost.
  bool log_every_request = true;
};

template <class Derived>
class HttpSession {
 public:
  HttpSession(SessionContext ctx, std::unique_ptr<ConnectionLimit::Slot> slot)
      : ctx_(std::move(ctx)), slot_(std::move(slot)) {}

 protected:
  // Set by the TLS session after the handshake; the plain listener has no callers.
  std::optional<Caller> caller_;
  std::optional<Rejection> caller_rejection_;
  const SessionContext& context() const { return ctx_; }

  void do_read() {
    limits_ = ctx_.limits.load();
    parser_.emplace();
    body_limit_ = limits_->max_body_bytes;
    parser_->header_limit(static_cast<std::uint32_t>(limits_->max_header_bytes));
    beast::get_lowest_layer(derived().stream()).expires_after(std::chrono::seconds(limits_->request_timeout_s));
    if (!batch_bodies()) {  // one limit for every request (the status listener): read it whole
      parser_->body_limit(body_limit_);
      return read_body();
    }
    // The header first: the route it names decides how large a body is read
    // (on_header). Until then the larger limit stands, so that a Content-Length within
    // it is not refused before the route is known.
    parser_->body_limit(limits_->max_batch_body_bytes);
    http::async_read_header(derived().stream(), buffer_, *parser_,
                            beast::bind_front_handler(&HttpSession::on_header, derived().shared_from_this()));
  }

  // Whether some route here takes a larger body than the rest (Router::takes_batch_body).
  bool batch_bodies() const {
    return ctx_.router.has_batch_routes() && limits_->max_batch_body_bytes > limits_->max_body_bytes;
  }

  // The body limit of the request whose header was read: the batch limit for a route
  // that carries signed batches and admits this caller, else the general one.
  std::size_t body_limit_for(const http::request<http::string_body>& msg) const {
    if (!batch_bodies() || msg.target().empty()) return limits_->max_body_bytes;
    Request head;
    head.method = std::string(msg.method_string());
    parse_target(std::string(msg.target()), head);
    head.caller = caller_;
    head.caller_rejection = caller_rejection_;
    return ctx_.router.takes_batch_body(head) ? limits_->max_batch_body_bytes : limits_->max_body_bytes;
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec) return on_read(ec, 0);
    auto& msg = parser_->get();
    body_limit_ = body_limit_for(msg);
    // A declared length above the limit is refused before a byte of the body is read;
    // a chunked body is cut off where it passes the limit (the parser counts).
    if (auto length = parser_->content_length(); length && *length > body_limit_)
      return on_read(http::error::body_limit, 0);
    parser_->body_limit(body_limit_);  // (no body octet parsed yet)
    if (msg.version() >= 11 && beast::iequals(msg[http::field::expect], "100-continue") && !parser_->is_done()) {
      // The client waits for this before it sends the body (RFC 9110 10.1.1).
      continue_.emplace(http::status::continue_, msg.version());
      return http::async_write(derived().stream(), *continue_,
                               beast::bind_front_handler(&HttpSession::on_continue, derived().shared_from_this()));
    }
    read_body();
  }

  void on_continue(beast::error_code ec, std::size_t) {
    continue_.reset();
    if (ec) return;
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return on_read({}, 0);  // no body (a GET): nothing more to read
    http::async_read(derived().stream(), buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::on_read, derived().shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return derived().do_close();
    if (ec == http::error::body_limit || ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      // The rest of the request is still on the wire: answer, then discard it. (A
      // Content-Length above both limits stops the header's own read: name this route's.)
      if (ec == http::error::body_limit) body_limit_ = body_limit_for(parser_->get());
      auto reply = error_reply(reject("request.too_large", "request exceeds " +
                                      std::to_string(body_limit_) + " body bytes or " +
                                      std::to_string(limits_->max_header_bytes) + " header bytes"));
      log_request("-", "-", reply.status);
      Request req;
      req.method = "-";
      req.path = "-";
      req.caller = caller_;
      observe(req, reply, std::chrono::nanoseconds(0));
      return do_write(std::move(reply), parser_->get().version(), After::drain);
    }
    if (ec) return;  // timeout or reset: the stream closes with this session

    auto& msg = parser_->get();
    Request req;
    req.method = std::string(msg.method_string());
    parse_target(std::string(msg.target()), req);
    req.content_type = std::string(msg[http::field::content_type]);
    req.body = std::move(msg.body());
    req.caller = caller_;
    req.caller_rejection = caller_rejection_;
    const bool keep_alive = msg.keep_alive();
    const unsigned version = msg.version();
    if (!ctx_.workers) {
      Reply reply = handle(req);
      return on_handled(std::move(reply), version, keep_alive);
    }
    // The session stays alive (and holds its connection slot, which the SIGTERM drain
    // waits for) until the reply is written: both hops capture shared_from_this. No
    // I/O is pending meanwhile, and the write still expires at the deadline set
    // before the read, as when handlers ran inline.
    auto strand = derived().stream().get_executor();
    boost::asio::post(*ctx_.workers, [self = derived().shared_from_this(), strand, req = std::move(req), version,
                                      keep_alive]() mutable {
      Reply reply = self->handle(req);
      boost::asio::post(strand, [self = std::move(self), reply = std::move(reply), version, keep_alive]() mutable {
        self->on_handled(std::move(reply), version, keep_alive);
      });
    });
  }

  // Routes, logs and counts one request; runs on a worker or inline.
  Reply handle(Request& req) const {
    auto started = std::chrono::steady_clock::now();
    Reply reply = ctx_.router.route(req);
    if (ctx_.log_every_request || reply.status >= 400) log_request(req.method, req.path, reply.status);
    observe(req, reply, std::chrono::steady_clock::now() - started);
    return reply;
  }

  // Back on the connection's strand.
  void on_handled(Reply reply, unsigned version, bool keep_alive) {
    keep_alive = keep_alive && !ctx_.stopping.load();
    do_write(std::move(reply), version, keep_alive ? After::read : After::close);
  }

  enum class After { read, close, drain };

  void do_write(Reply reply, unsigned version, After after) {
    // The answer gets a deadline of its own: the request's may have gone on a slow
    // upload (a batch of several MB) or a long handler, and an answer not written is
    // a signed command the client never gets.
    beast::get_lowest_layer(derived().stream()).expires_after(std::chrono::seconds(limits_->request_timeout_s));
    response_.emplace(static_cast<http::status>(reply.status), version);
    response_->set(http::field::server, "gridtrustd");
    response_->set(http::field::content_type, reply.content_type);
    response_->body() = std::move(reply.body);
    response_->keep_alive(after == After::read);
    response_->prepare_payload();
    http::async_write(derived().stream(), *response_,
                      beast::bind_front_handler(&HttpSession::on_write, derived().shared_from_this(), after));
  }

  void on_write(After after, beast::error_code ec, std::size_t) {
    if (ec) return;
    response_.reset();
    switch (after) {
      case After::read: return do_read();
      case After::close: return derived().do_close();
      case After::drain: return do_drain();
    }
  }

  // After refusing an oversized request, read and drop what the client still sends,
  // for 2 s at most in all (a client that keeps sending does not keep its connection),
  // so that closing does not reset the connection before the client has read our answer.
  void do_drain() {
    beast::get_lowest_layer(derived().stream()).expires_after(std::chrono::seconds(2));
    drain_some();
  }
  void drain_some() {
    derived().stream().async_read_some(boost::asio::buffer(discard_),
                                       beast::bind_front_handler(&HttpSession::on_drain, derived().shared_from_this()));
  }
  void on_drain(beast::error_code ec, std::size_t) {
    if (ec) return derived().do_close();
    drain_some();
  }

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }

  void observe(const Request& req, const Reply& reply, std::chrono::nanoseconds latency) const {
    if (ctx_.metrics)
      ctx_.metrics->observe_request(ctx_.listener_name, req.method, req.route, reply.status, reply.error_code, latency);
    if (ctx_.audit && reply.status >= 400) ctx_.audit->request_refused(ctx_.listener_name, req, reply);
  }

  void log_request(const std::string& method, const std::string& path, int status) const {
    std::string who = caller_ ? caller_->role + " " + caller_->serial : std::string("-");
    log_line(ctx_.listener_name + " " + method + " " + path + " " + std::to_string(status) + " " + who);
  }

  SessionContext ctx_;
  std::shared_ptr<const app::DaemonLimits> limits_;  // those of the request being read
  std::size_t body_limit_ = 0;                        // the body limit of the request being read
  std::unique_ptr<ConnectionLimit::Slot> slot_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::optional<http::response<http::empty_body>> continue_;  // "100 Continue", while it is written
  std::array<char, 4096> discard_{};
};

}  // namespace gridtrust::daemon
