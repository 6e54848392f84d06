#pragma once
// The load generator both daemon benchmarks share: `connections` HTTP/1.1 keep-alive
// clients on `threads` threads, each POSTing one request after the other (no
// pipelining) and reading each response before the next. A server that closes after
// a response (openssl ocsp does) gets a new connection, counted.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

namespace gridtrust::bench {

struct LoadTarget {
  int port = 0;
  std::string path;           // "/ocsp"
  std::string content_type;   // of every request
  boost::asio::ssl::context* tls = nullptr;  // null: plain HTTP
};

struct LoadPlan {
  int connections = 1;
  int threads = 2;
  // Either the first `total` bodies, each sent once, or bodies in turn until
  // `duration` has passed.
  std::uint64_t total = 0;
  std::chrono::milliseconds duration{0};
};

struct LoadResult {
  std::uint64_t responses = 0;  // that passed the check
  std::uint64_t failures = 0;   // failed the check, or the connection failed
  std::uint64_t connects = 0;
  double seconds = 0;
  double rate() const { return seconds > 0 ? responses / seconds : 0; }
};

// True when a response is what the benchmark expects; called concurrently.
using ResponseCheck = std::function<bool(int status, const std::string& body)>;

// A TLS client context that presents `cert` and `key` (PEM files) and does not verify
// the server: the client measures; the daemon's tests verify it.
boost::asio::ssl::context client_tls(const std::string& cert, const std::string& key);

LoadResult drive(const LoadTarget& target, const std::vector<std::string>& bodies, const LoadPlan& plan,
                 const ResponseCheck& check);

}  // namespace gridtrust::bench
