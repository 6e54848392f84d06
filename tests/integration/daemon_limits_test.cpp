// gridtrustd under hostile or odd clients (DESIGN.md "Daemon": bounded everything):
// garbage on the TLS port, a flood of idle connections beyond max_connections, a
// byte-at-a-time client, JSON nested 100000 deep, an oversized header, and a GnuTLS
// client as a second TLS implementation. After each, a well-formed request succeeds.
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <future>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "tests/support/daemon_process.h"
#include "tests/support/test_support.h"

namespace gt = gridtrust;
namespace json = boost::json;
using gt::test::ClientCert;
using gt::test::client_args;
using gt::test::CommandResult;
using gt::test::curl;
using gt::test::DaemonProcess;
using gt::test::HttpResult;
using gt::test::InitializedPki;
using gt::test::read_file;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::TempDir;
using gt::test::write_file;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kMaxConnections = 200;
constexpr int kRequestTimeoutS = 2;
constexpr int kHandshakeTimeoutS = 3;

// Replaces the value of `key:` in the limits section init wrote.
void set_limit(std::string& yaml, const std::string& key, const std::string& value) {
  auto pos = yaml.find("    " + key + ": ");
  REQUIRE(pos != std::string::npos);
  auto start = pos + 4 + key.size() + 2;
  yaml.replace(start, yaml.find('\n', start) - start, value);
}

std::string error_code(const HttpResult& h) {
  auto v = json::parse(h.body);
  return std::string(v.as_object().at("error").as_object().at("code").as_string());
}

int connect_tcp(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

// True once the peer has closed (EOF or reset); reads and drops anything it sent.
bool closed_by_peer(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

// Waits up to `limit` for the peer to close; the time it took, or nothing.
std::optional<Clock::duration> wait_closed(int fd, std::chrono::milliseconds limit) {
  auto start = Clock::now();
  while (Clock::now() - start < limit) {
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 50);
    if (closed_by_peer(fd)) return Clock::now() - start;
  }
  return std::nullopt;
}

struct Fixture {
  InitializedPki pki;
  TempDir work;
  std::string root;
  ClientCert admin;
  std::unique_ptr<DaemonProcess> daemon;
  int api_port = 0;

  Fixture() {
    root = work / "root.pem";
    REQUIRE(pki.gt("chain --profile v2g-root --out " + sh_quote(root)).exit_code == 0);
    admin = gt::test::admin_profile_client(pki, work, "admin");
    daemon = std::make_unique<DaemonProcess>(pki, work, GRIDTRUSTD);
    std::string yaml_path = pki.data_dir() + "/gridtrust.yaml";
    std::string yaml = read_file(yaml_path);
    set_limit(yaml, "max_connections", std::to_string(kMaxConnections));
    set_limit(yaml, "request_timeout_s", std::to_string(kRequestTimeoutS));
    set_limit(yaml, "handshake_timeout_s", std::to_string(kHandshakeTimeoutS));
    set_limit(yaml, "max_body_bytes", "262144");  // room for the nesting case below
    write_file(yaml_path, yaml);
    daemon->start();
    api_port = std::stoi(daemon->api().substr(daemon->api().rfind(':') + 1));
  }

  HttpResult healthz() const { return curl(client_args(root, admin) + sh_quote(daemon->api() + "/healthz")); }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

TEST_CASE("garbage bytes on the TLS port close that connection and nothing else", "[integration][limits]") {
  auto& f = fixture();
  int fd = connect_tcp(f.api_port);
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk += static_cast<char>((i * 7919 + 13) & 0xff);
  junk.replace(0, 5, "\x16\x03\x01\xff\xff", 5);  // a TLS record header with a nonsense length
  ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
  auto closed = wait_closed(fd, std::chrono::milliseconds(5000));
  CHECK(closed.has_value());
  ::close(fd);

  fd = connect_tcp(f.api_port);  // plain HTTP on the TLS port
  std::string plain = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  ::send(fd, plain.data(), plain.size(), MSG_NOSIGNAL);
  CHECK(wait_closed(fd, std::chrono::milliseconds(5000)).has_value());
  ::close(fd);

  auto h = f.healthz();
  INFO(h.err << f.daemon->log());
  CHECK(h.status == 200);
}

TEST_CASE("1000 idle connections: beyond max_connections they are closed at once, the rest time out, "
          "then a real request succeeds",
          "[integration][limits][connections]") {
  auto& f = fixture();
  std::vector<int> fds;
  auto opened = Clock::now();
  for (int i = 0; i < 1000; ++i) fds.push_back(connect_tcp(f.api_port));

  // While the first 200 sit in their handshake, the slots are all taken: the daemon
  // refuses (accepts and closes) every further connection, including a real client.
  auto refused = f.healthz();
  bool still_held = Clock::now() - opened < std::chrono::seconds(kHandshakeTimeoutS) - std::chrono::milliseconds(500);
  INFO(refused.err);
  if (still_held) CHECK(refused.status == 0);

  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  int closed_early = 0;
  for (int fd : fds) closed_early += closed_by_peer(fd) ? 1 : 0;
  bool before_timeout = Clock::now() - opened < std::chrono::seconds(kHandshakeTimeoutS);
  INFO("closed " << closed_early << " of 1000 after " << (Clock::now() - opened).count() / 1000000 << " ms");
  CHECK(closed_early >= 1000 - kMaxConnections - 10);
  if (before_timeout) CHECK(closed_early <= 1000 - kMaxConnections + 10);

  // The held ones end at the handshake timeout, not later.
  int closed_late = 0;
  for (int fd : fds)
    if (wait_closed(fd, std::chrono::seconds(kHandshakeTimeoutS + 3))) ++closed_late;
  CHECK(closed_late == 1000);
  for (int fd : fds) ::close(fd);

  auto h = f.healthz();
  INFO(h.err << f.daemon->log().substr(0, 2000));
  CHECK(h.status == 200);
  CHECK(f.daemon->log().find("connection limit reached") != std::string::npos);
}

TEST_CASE("a byte-every-200-ms client is dropped by the request timeout and does not block others",
          "[integration][limits][slow]") {
  auto& f = fixture();
  // 100 bytes at 5 per second would take 20 s; the request timeout is 2 s.
  std::string request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
  request += std::string(100 - request.size(), 'a');
  std::string feed = "(";
  for (char c : request) {
    if (c == '\r') feed += "printf '\\r'; sleep 0.2; ";
    else if (c == '\n') feed += "printf '\\n'; sleep 0.2; ";
    else feed += "printf '%s' '" + std::string(1, c) + "'; sleep 0.2; ";
  }
  feed += ")";
  std::string cmd = feed + " | openssl s_client -quiet -connect 127.0.0.1:" + std::to_string(f.api_port) +
                    " -servername localhost -CAfile " + sh_quote(f.root) + " -cert " + sh_quote(f.admin.cert) +
                    " -key " + sh_quote(f.admin.key) + " -verify_return_error";
  auto slow = std::async(std::launch::async, [cmd] {
    auto start = Clock::now();
    auto r = run(cmd);
    return std::make_pair(r, Clock::now() - start);
  });

  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  auto start = Clock::now();
  auto h = f.healthz();
  auto other_took = Clock::now() - start;
  INFO(h.err);
  CHECK(h.status == 200);
  CHECK(other_took < std::chrono::milliseconds(1500));  // not queued behind the slow one

  auto [r, slow_took] = slow.get();
  INFO(describe(r));
  CHECK(slow_took >= std::chrono::milliseconds(1500));
  CHECK(slow_took < std::chrono::seconds(kRequestTimeoutS + 4));
  CHECK(r.out.find("HTTP/1.1 200") == std::string::npos);  // never answered
  CHECK(f.healthz().status == 200);
}

TEST_CASE("after a 413 the daemon drains what the client still sends for 2 s at most, then closes",
          "[integration][limits][drain]") {
  auto& f = fixture();
  const std::string status = f.daemon->status();
  int fd = connect_tcp(std::stoi(status.substr(status.rfind(':') + 1)));
  const std::string head =
      "POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\nContent-Length: 100000000\r\n\r\n";
  REQUIRE(::send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size()));
  std::string answer;
  const auto asked = Clock::now();
  while (answer.find("\r\n\r\n") == std::string::npos && Clock::now() - asked < std::chrono::seconds(5)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  INFO(answer);
  CHECK(answer.rfind("HTTP/1.1 413", 0) == 0);
  // A client that goes on sending its body (100 bytes every 100 ms) is cut off anyway.
  const std::string chunk(100, 'x');
  const auto start = Clock::now();
  bool closed = false;
  while (!closed && Clock::now() - start < std::chrono::seconds(8)) {
    closed = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0 || closed_by_peer(fd);
    if (!closed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const auto took = Clock::now() - start;
  ::close(fd);
  CHECK(closed);
  CHECK(took < std::chrono::seconds(5));
  CHECK(f.healthz().status == 200);
}

TEST_CASE("JSON nested 100000 deep is 400 request.bad_json, not a crash", "[integration][limits][json]") {
  auto& f = fixture();
  std::string body = f.work / "nested.json";
  write_file(body, std::string(100000, '['));
  auto h = curl(client_args(f.root, f.admin) + "-X POST -H 'Content-Type: application/json' --data-binary @" +
                sh_quote(body) + " " + sh_quote(f.daemon->api() + "/v1/certificates"));
  INFO(h.body << h.err);
  CHECK(h.status == 400);
  CHECK(error_code(h) == "request.bad_json");

  write_file(body, std::string(50000, '{') + std::string(50000, '}'));
  h = curl(client_args(f.root, f.admin) + "-X POST -H 'Content-Type: application/json' --data-binary @" +
           sh_quote(body) + " " + sh_quote(f.daemon->api() + "/v1/certificates"));
  CHECK(h.status == 400);
  CHECK(f.healthz().status == 200);
}

TEST_CASE("a header over max_header_bytes is refused with 413 and the daemon keeps serving",
          "[integration][limits][headers]") {
  auto& f = fixture();
  std::string big = "X-Big: " + std::string(20000, 'h');
  auto h = curl(client_args(f.root, f.admin) + "-H " + sh_quote(big) + " " + sh_quote(f.daemon->api() + "/healthz"));
  INFO(h.body << h.err);
  CHECK((h.status == 413 || h.status == 431));
  if (h.status == 413) CHECK(error_code(h) == "request.too_large");

  // Many small headers adding up over the limit count too.
  std::string many;
  for (int i = 0; i < 400; ++i) many += "-H " + sh_quote("X-H" + std::to_string(i) + ": " + std::string(40, 'v')) + " ";
  auto m = curl(client_args(f.root, f.admin) + many + sh_quote(f.daemon->api() + "/healthz"));
  CHECK((m.status == 413 || m.status == 431));
  CHECK(f.healthz().status == 200);
}

TEST_CASE("a GnuTLS client with a certtool key and an admin-profile certificate gets 200 from /healthz",
          "[integration][limits][interop]") {
  auto& f = fixture();
  std::string key = f.work / "gnutls.key", csr = f.work / "gnutls.csr", cert = f.work / "gnutls.pem";
  std::string tmpl = f.work / "gnutls.tmpl";
  write_file(tmpl, "cn = \"gnutls client\"\norganization = \"gridtrust demo\"\nunit = \"operator\"\n");
  auto k = run("certtool --generate-privkey --key-type ecdsa --curve secp256r1 --no-text --outfile " + sh_quote(key) +
               " && certtool --generate-request --no-text --load-privkey " + sh_quote(key) + " --template " +
               sh_quote(tmpl) + " --outfile " + sh_quote(csr));
  INFO(describe(k));
  REQUIRE(k.exit_code == 0);
  auto issued = f.pki.gt("issue --profile admin --csr " + sh_quote(csr) + " --out " + sh_quote(cert));
  INFO(describe(issued));
  REQUIRE(issued.exit_code == 0);

  auto r = run("(printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n'; sleep 3) | "
               "timeout 20 gnutls-cli --x509cafile " + sh_quote(f.root) + " --x509certfile " + sh_quote(cert) +
               " --x509keyfile " + sh_quote(key) + " -p " + std::to_string(f.api_port) + " localhost");
  INFO(describe(r) << f.daemon->log().substr(0, 3000));
  CHECK(r.out.find("HTTP/1.1 200") != std::string::npos);
  CHECK(r.out.find("{\"status\":\"ok\"}") != std::string::npos);
}
