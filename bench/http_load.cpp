#include "bench/http_load.h"

#include <atomic>
#include <optional>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace gridtrust::bench {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

namespace {

struct Shared {
  const LoadTarget& target;
  const std::vector<std::string>& bodies;
  const LoadPlan& plan;
  const ResponseCheck& check;
  Clock::time_point deadline;
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> responses{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> connects{0};

  // The index of the next request to send, or nothing when the run is over.
  std::optional<std::uint64_t> claim() {
    if (plan.total > 0) {
      std::uint64_t i = next.fetch_add(1);
      if (i >= plan.total) return std::nullopt;
      return i;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    return next.fetch_add(1);
  }
};

// Requests on one open connection until the run is over (false) or the server
// closes it (true: connect again).
// `first` is the request claimed before connecting: a connection that sends nothing
// is never opened (openssl 3.0's ocsp responder spins on one).
template <class Stream>
asio::awaitable<bool> exchange(Stream& stream, Shared& sh, std::uint64_t first) {
  beast::flat_buffer buffer;
  for (std::optional<std::uint64_t> i = first;; i = sh.claim()) {
    if (!i) co_return false;
    http::request<http::string_body> req{http::verb::post, sh.target.path, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, sh.target.content_type);
    req.keep_alive(true);
    req.body() = sh.bodies[*i % sh.bodies.size()];
    req.prepare_payload();
    co_await http::async_write(stream, req, use_awaitable);
    http::response<http::string_body> res;
    co_await http::async_read(stream, buffer, res, use_awaitable);
    if (sh.check(res.result_int(), res.body())) sh.responses.fetch_add(1, std::memory_order_relaxed);
    else sh.failures.fetch_add(1, std::memory_order_relaxed);
    if (!res.keep_alive()) co_return true;
  }
}

asio::awaitable<void> client(Shared& sh) {
  auto ex = co_await asio::this_coro::executor;
  const asio::ip::tcp::endpoint server(asio::ip::make_address("127.0.0.1"),
                                       static_cast<unsigned short>(sh.target.port));
  for (bool again = true; again;) {
    auto first = sh.claim();
    if (!first) co_return;
    try {
      sh.connects.fetch_add(1, std::memory_order_relaxed);
      if (sh.target.tls) {
        beast::ssl_stream<beast::tcp_stream> stream(ex, *sh.target.tls);
        co_await beast::get_lowest_layer(stream).async_connect(server, use_awaitable);
        beast::get_lowest_layer(stream).socket().set_option(asio::ip::tcp::no_delay(true));
        co_await stream.async_handshake(asio::ssl::stream_base::client, use_awaitable);
        again = co_await exchange(stream, sh, *first);
        beast::error_code ignored;
        beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      } else {
        beast::tcp_stream stream(ex);
        co_await stream.async_connect(server, use_awaitable);
        stream.socket().set_option(asio::ip::tcp::no_delay(true));
        again = co_await exchange(stream, sh, *first);
        beast::error_code ignored;
        stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      }
    } catch (const std::exception&) {
      // A reset or refused connection: counted, then a new one while the run lasts.
      sh.failures.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

}  // namespace

boost::asio::ssl::context client_tls(const std::string& cert, const std::string& key) {
  boost::asio::ssl::context tls(boost::asio::ssl::context::tls_client);
  tls.use_certificate_chain_file(cert);
  tls.use_private_key_file(key, boost::asio::ssl::context::pem);
  tls.set_verify_mode(boost::asio::ssl::verify_none);
  return tls;
}

LoadResult drive(const LoadTarget& target, const std::vector<std::string>& bodies, const LoadPlan& plan,
                 const ResponseCheck& check) {
  asio::io_context ioc(plan.threads);
  Shared sh{target, bodies, plan, check, Clock::now() + plan.duration};
  auto start = Clock::now();
  sh.deadline = start + plan.duration;
  for (int c = 0; c < plan.connections; ++c) asio::co_spawn(asio::make_strand(ioc), client(sh), asio::detached);
  std::vector<std::thread> threads;
  for (int t = 1; t < plan.threads; ++t) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  LoadResult r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.responses = sh.responses.load();
  r.failures = sh.failures.load();
  r.connects = sh.connects.load();
  return r;
}

}  // namespace gridtrust::bench
