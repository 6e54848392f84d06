// gridtrustd end to end: `gridtrust init`, the daemon as a child process on free
// loopback ports, and curl/openssl as independent clients.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "tests/support/test_support.h"

namespace gt = gridtrust;
namespace json = boost::json;
using gt::test::CommandResult;
using gt::test::InitializedPki;
using gt::test::read_file;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::TempDir;
using gt::test::write_file;

namespace {

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

// A loopback port nobody listens on right now (the kernel picks it).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

// A client key and an `admin`-profile certificate for it, issued from an openssl CSR.
struct ClientCert {
  std::string cert;  // chain PEM: leaf, Sub-CA 2, Sub-CA 1
  std::string key;
};

ClientCert admin_profile_client(const InitializedPki& pki, const TempDir& work, const std::string& role) {
  ClientCert c{work / (role + ".pem"), work / (role + ".key")};
  std::string csr = work / (role + ".csr");
  auto r = run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + sh_quote(c.key) +
               " -subj " + sh_quote("/CN=" + role + " client/O=gridtrust demo/OU=" + role) + " -out " + sh_quote(csr));
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  auto i = pki.gt("issue --profile admin --csr " + sh_quote(csr) + " --out " + sh_quote(c.cert));
  INFO(describe(i));
  REQUIRE(i.exit_code == 0);
  return c;
}

// gridtrustd as a child process; SIGKILLed if a test leaves it running.
class Daemon {
 public:
  Daemon(const InitializedPki& pki, const TempDir& work) : log_(work / "gridtrustd.log") {
    api_port_ = free_port();
    status_port_ = free_port();
    std::string yaml_path = pki.data_dir() + "/gridtrust.yaml";
    std::string yaml = read_file(yaml_path);
    REQUIRE(yaml.find("api_listen: 127.0.0.1:8443") != std::string::npos);
    replace_all(yaml, "127.0.0.1:8443", "127.0.0.1:" + std::to_string(api_port_));
    replace_all(yaml, "127.0.0.1:8081", "127.0.0.1:" + std::to_string(status_port_));
    write_file(yaml_path, yaml);

    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 2);
      ::dup2(fd, 1);
      ::execl(GRIDTRUSTD, GRIDTRUSTD, "--config", yaml_path.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    wait_ready();
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  std::string api() const { return "https://localhost:" + std::to_string(api_port_); }
  std::string status() const { return "http://127.0.0.1:" + std::to_string(status_port_); }
  std::string log() const { return read_file(log_); }

  // SIGTERM, then the exit status (-1 when it did not exit within 15 s).
  int terminate() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 300; ++i) {
      int wstatus = 0;
      if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

 private:
  void wait_ready() {
    for (int i = 0; i < 200; ++i) {
      int wstatus = 0;
      if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("gridtrustd exited during start-up: " << log());
      }
      if (run("curl -sf " + sh_quote(status() + "/healthz")).exit_code == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL("gridtrustd not ready after 10 s: " << log());
  }

  std::string log_;
  int api_port_ = 0;
  int status_port_ = 0;
  pid_t pid_ = -1;
};

struct HttpResult {
  int curl_exit = -1;
  int status = 0;
  std::string body;
  std::string err;
};

// curl with the PKI's root as the only trust anchor; the HTTP status is appended by
// -w and split off here.
HttpResult curl(const std::string& args) {
  auto r = run("curl -sS -w '\\n%{http_code}' " + args);
  HttpResult h;
  h.curl_exit = r.exit_code;
  h.err = r.err;
  auto nl = r.out.rfind('\n');
  if (nl != std::string::npos) {
    h.body = r.out.substr(0, nl);
    h.status = std::atoi(r.out.substr(nl + 1).c_str());
  }
  return h;
}

std::string client_args(const std::string& root, const ClientCert& c) {
  return "--cacert " + sh_quote(root) + " --cert " + sh_quote(c.cert) + " --key " + sh_quote(c.key) + " ";
}

std::string json_post(const TempDir& work, const std::string& name, const std::string& body) {
  std::string file = work / (name + ".json");
  write_file(file, body);
  return "-X POST -H 'Content-Type: application/json' --data-binary @" + sh_quote(file) + " ";
}

std::string error_code(const HttpResult& h) {
  auto v = json::parse(h.body);
  return std::string(v.as_object().at("error").as_object().at("code").as_string());
}

// One PKI and one daemon for the API checks below (init and start-up take seconds).
struct Fixture {
  InitializedPki pki;
  TempDir work;
  std::string root;  // the V2G root, the only trust anchor clients need
  ClientCert op;
  ClientCert admin;
  std::unique_ptr<Daemon> daemon;

  Fixture() {
    root = work / "root.pem";
    auto c = pki.gt("chain --profile v2g-root --out " + sh_quote(root));
    REQUIRE(c.exit_code == 0);
    op = admin_profile_client(pki, work, "operator");
    admin = admin_profile_client(pki, work, "admin");
    daemon = std::make_unique<Daemon>(pki, work);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

TEST_CASE("gridtrust init writes the daemon section, its TLS certificate and the admin chain",
          "[integration][daemon]") {
  auto& f = fixture();
  std::string yaml = read_file(f.pki.data_dir() + "/gridtrust.yaml");
  CHECK(yaml.find("server_cert_label: \"csms-server-") != std::string::npos);
  CHECK(yaml.find("admin_cert_label: \"admin-") != std::string::npos);
  CHECK(yaml.find("max_body_bytes: 65536") != std::string::npos);
  auto server = gt::test::split_pem_certs(read_file(f.pki.data_dir() + "/server-chain.pem"));
  auto admin = gt::test::split_pem_certs(read_file(f.pki.data_dir() + "/admin-chain.pem"));
  REQUIRE(server.size() == 3);  // leaf, CPO Sub-CA 2, CPO Sub-CA 1
  REQUIRE(admin.size() == 3);
  CHECK(read_file(f.pki.data_dir() + "/server-chain.pem").find("PRIVATE KEY") == std::string::npos);
  auto subject = run("printf '%s' " + sh_quote(server[0]) + " | openssl x509 -noout -subject -nameopt RFC2253");
  CHECK(subject.out.find("CN=localhost") != std::string::npos);
  subject = run("printf '%s' " + sh_quote(admin[0]) + " | openssl x509 -noout -subject -nameopt RFC2253");
  CHECK(subject.out.find("OU=admin") != std::string::npos);
  CHECK(subject.out.find("CN=admin") != std::string::npos);
}

TEST_CASE("the API refuses a TLS client without a certificate", "[integration][daemon][mtls]") {
  auto& f = fixture();
  auto h = curl("--cacert " + sh_quote(f.root) + " " + sh_quote(f.daemon->api() + "/healthz"));
  INFO(h.err);
  CHECK(h.curl_exit != 0);
  CHECK(h.status == 0);
}

TEST_CASE("the API refuses a client certificate from a foreign CA", "[integration][daemon][mtls]") {
  auto& f = fixture();
  std::string ca_key = f.work / "foreign-ca.key", ca = f.work / "foreign-ca.pem";
  std::string key = f.work / "foreign.key", csr = f.work / "foreign.csr", cert = f.work / "foreign.pem";
  auto r = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -keyout " +
               sh_quote(ca_key) + " -subj '/CN=gridtrust V2G Root CA/O=gridtrust demo/C=DE/DC=V2G' -out " + sh_quote(ca) +
               " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + sh_quote(key) +
               " -subj '/CN=mallory/O=gridtrust demo/OU=admin' -out " + sh_quote(csr) +
               " && openssl x509 -req -in " + sh_quote(csr) + " -CA " + sh_quote(ca) + " -CAkey " + sh_quote(ca_key) +
               " -CAcreateserial -days 1 -out " + sh_quote(cert));
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  auto h = curl(client_args(f.root, ClientCert{cert, key}) + sh_quote(f.daemon->api() + "/healthz"));
  INFO(h.err);
  CHECK(h.curl_exit != 0);
  CHECK(h.status == 0);
}

TEST_CASE("an operator may read and issue but revoking is admin only: 403 auth.forbidden",
          "[integration][daemon][roles]") {
  auto& f = fixture();
  auto health = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/healthz"));
  INFO(health.err);
  REQUIRE(health.status == 200);

  auto list = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/v1/certificates?profile=admin"));
  REQUIRE(list.status == 200);
  auto certs = json::parse(list.body).as_object().at("certificates").as_array();
  CHECK(certs.size() == 3);  // init's admin, and the operator and admin clients of this test

  std::string serial(certs[0].as_object().at("serial").as_string());
  auto h = curl(client_args(f.root, f.op) + json_post(f.work, "op-revoke", R"({"reason":"superseded"})") +
                sh_quote(f.daemon->api() + "/v1/certificates/" + serial + "/revoke"));
  INFO(h.body);
  CHECK(h.status == 403);
  CHECK(error_code(h) == "auth.forbidden");
  auto show = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/v1/certificates/" + serial));
  REQUIRE(show.status == 200);
  CHECK(json::parse(show.body).as_object().at("status").as_string() == "valid");
}

TEST_CASE("an admin issues a certificate from a CSR and revokes it; the status listener's CRL lists it",
          "[integration][daemon][issue][revoke][crl]") {
  auto& f = fixture();
  auto key = gt::test::make_key("P-256");
  json::object req{{"profile", "secc"},
                   {"csr", gt::test::make_csr_pem(key.get(), "CN=DE*ABC*E9001,O=gridtrust demo,DC=CPO")}};
  auto issued = curl(client_args(f.root, f.admin) + json_post(f.work, "issue", json::serialize(req)) +
                     sh_quote(f.daemon->api() + "/v1/certificates"));
  INFO(issued.body << issued.err);
  REQUIRE(issued.status == 201);
  auto body = json::parse(issued.body).as_object();
  std::string serial(body.at("serial").as_string());
  CHECK(body.at("profile").as_string() == "secc");
  CHECK(gt::test::split_pem_certs(std::string(body.at("chain_pem").as_string())).size() == 3);

  auto revoked = curl(client_args(f.root, f.admin) + json_post(f.work, "revoke", R"({"reason":"keyCompromise"})") +
                      sh_quote(f.daemon->api() + "/v1/certificates/" + serial + "/revoke"));
  INFO(revoked.body);
  REQUIRE(revoked.status == 200);
  CHECK(json::parse(revoked.body).as_object().at("status").as_string() == "revoked");
  CHECK(json::parse(revoked.body).as_object().at("reason").as_string() == "keyCompromise");

  // The CRL, over plain HTTP at the URL written into certificates, as DER.
  std::string crl = f.work / "cpo-sub2.crl", chain = f.work / "cpo-sub2-chain.pem";
  REQUIRE(f.pki.gt("chain --profile cpo-sub2 --out " + sh_quote(chain)).exit_code == 0);
  auto get = run("curl -sS -f -o " + sh_quote(crl) + " " + sh_quote(f.daemon->status() + "/crl/cpo-sub2.crl"));
  INFO(describe(get));
  REQUIRE(get.exit_code == 0);
  auto v = run("openssl crl -inform DER -in " + sh_quote(crl) + " -CAfile " + sh_quote(chain) + " -noout -verify -text");
  INFO(describe(v));
  CHECK(v.exit_code == 0);
  CHECK(v.err.find("verify OK") != std::string::npos);
  CHECK(v.out.find("Serial Number: " + serial) != std::string::npos);

  // The chain and an unknown CRL issuer through the API.
  auto ch = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/v1/chain/secc"));
  REQUIRE(ch.status == 200);
  auto missing = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/v1/crl/no-such-ca"));
  CHECK(missing.status == 400);
  CHECK(error_code(missing) == "profile.unknown");
}

TEST_CASE("malformed requests get JSON errors: 400 bad JSON, 415 content type, 413 too large, 404 route",
          "[integration][daemon][errors]") {
  auto& f = fixture();
  const std::string url = sh_quote(f.daemon->api() + "/v1/certificates");

  auto bad_json = curl(client_args(f.root, f.op) + json_post(f.work, "bad", "{\"profile\": ") + url);
  CHECK(bad_json.status == 400);
  CHECK(error_code(bad_json) == "request.bad_json");

  std::string body = f.work / "plain.txt";
  write_file(body, "{}");
  auto wrong_type = curl(client_args(f.root, f.op) + "-X POST -H 'Content-Type: text/plain' --data-binary @" +
                         sh_quote(body) + " " + url);
  CHECK(wrong_type.status == 415);
  CHECK(error_code(wrong_type) == "request.bad_content_type");

  std::string big(100000, ' ');
  auto too_large = curl(client_args(f.root, f.op) + json_post(f.work, "big", "{\"csr\":\"" + big + "\"}") + url);
  INFO(too_large.err);
  CHECK(too_large.status == 413);
  CHECK(error_code(too_large) == "request.too_large");

  auto no_route = curl(client_args(f.root, f.op) + sh_quote(f.daemon->api() + "/v2/nothing"));
  CHECK(no_route.status == 404);
  CHECK(error_code(no_route) == "notfound.route");
}

TEST_CASE("gridtrustd exits 0 on SIGTERM", "[integration][daemon][signals]") {
  InitializedPki pki;  // its own daemon: the shared one keeps serving the cases above
  TempDir work;
  Daemon d(pki, work);
  CHECK(run("curl -sf " + sh_quote(d.status() + "/healthz")).exit_code == 0);
  CHECK(d.terminate() == 0);
  CHECK(d.log().find("stopped") != std::string::npos);
  CHECK(d.log().find(read_file(pki.data_dir() + "/secrets/user.pin").substr(0, 32)) == std::string::npos);
}
