// gridtrustd with its token behind `p11-kit server`: the server is SIGKILLed while the
// daemon runs, then restarted on the same socket. The daemon must not hang, must keep
// its plain-HTTP status listener answering from what it cached, and must sign again
// after the restart without being restarted itself.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
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

namespace {

constexpr const char* kClientModule = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so";

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// `p11-kit server -f` for the data directory's SoftHSM2 token, in a process group of
// its own so that one SIGKILL also ends the p11-kit-remote child serving the daemon.
class TokenServer {
 public:
  TokenServer(std::string socket, std::string softhsm_conf, std::string log)
      : socket_(std::move(socket)), conf_(std::move(softhsm_conf)), log_(std::move(log)) {}
  ~TokenServer() { kill_group(); }

  void start() {
    REQUIRE(pid_ < 0);
    std::error_code ec;
    std::filesystem::remove(socket_, ec);
    std::vector<std::string> args = {"p11-kit", "server", "-f", "--provider", gt::test::kSoftHsmModule,
                                     "-n", socket_, "pkcs11:token=gridtrust"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string conf = "SOFTHSM2_CONF=" + conf_;
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::putenv(conf.data());
      ::unsetenv("P11_KIT_SERVER_ADDRESS");
      int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (log >= 0) {
        ::dup2(log, 1);
        ::dup2(log, 2);
      }
      ::close_range(3, ~0U, 0);
      ::execvp("p11-kit", argv.data());
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    pid_ = pid;
    for (auto t0 = Clock::now(); seconds_since(t0) < 15.0;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("p11-kit server exited: " << read_file(log_));
      }
      if (connectable()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("p11-kit server did not open " << socket_ << ": " << read_file(log_));
  }

  void kill_group() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  bool connectable() const {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, socket_.c_str(), sizeof sa.sun_path - 1);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return ok;
  }

  std::string socket_, conf_, log_;
  pid_t pid_ = -1;
};

}  // namespace

TEST_CASE("gridtrustd rides out a kill and restart of the p11-kit server holding its token",
          "[integration][daemon][hsm]") {
  REQUIRE(std::filesystem::exists(kClientModule));
  REQUIRE(run("command -v p11-kit").exit_code == 0);

  InitializedPki pki;
  TempDir work;
  const std::string data = pki.data_dir();
  const std::string socket = work / "p11-kit.sock";
  TokenServer server(socket, data + "/softhsm2.conf", work / "p11-kit.log");
  server.start();

  // Every later PKCS#11 user (CLI and daemon) reaches the token through the server.
  std::string yaml = read_file(data + "/gridtrust.yaml");
  const std::string direct = std::string("module: ") + gt::test::kSoftHsmModule;
  REQUIRE(yaml.find(direct) != std::string::npos);
  gt::test::replace_all(yaml, direct, std::string("module: ") + kClientModule);
  write_file(data + "/gridtrust.yaml", yaml);
  REQUIRE(::setenv("P11_KIT_SERVER_ADDRESS", ("unix:path=" + socket).c_str(), 1) == 0);

  auto daemon = std::make_unique<DaemonProcess>(pki, work, GRIDTRUSTD);
  const std::string root = work / "root.pem";
  REQUIRE(pki.gt("chain --profile v2g-root --out " + sh_quote(root)).exit_code == 0);
  ClientCert admin = gt::test::admin_profile_client(pki, work, "admin");
  ClientCert auditor = gt::test::admin_profile_client(pki, work, "auditor");
  daemon->start();

  // Leaf CSRs made by openssl.
  auto csr_body = [&](const std::string& name) {
    std::string key = work / (name + ".key"), csr = work / (name + ".csr");
    auto r = run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + sh_quote(key) +
                 " -subj " + sh_quote("/CN=DE*ABC*E" + name + "/O=gridtrust demo/DC=CPO") + " -out " + sh_quote(csr));
    INFO(describe(r));
    REQUIRE(r.exit_code == 0);
    return json::serialize(json::object{{"profile", "secc"}, {"csr", read_file(csr)}});
  };
  auto issue = [&](const std::string& name) {
    return curl("--max-time 20 " + gt::test::client_args(root, admin) +
                gt::test::json_post(work, name, csr_body(name)) + sh_quote(daemon->api() + "/v1/certificates"));
  };

  // An mTLS connection opened while the token is served and kept alive: the TLS server
  // key signs only in the handshake, so requests on this connection reach the handlers
  // during the outage. `openssl s_client` sends the first request at once and the
  // second when the file `go` appears.
  const std::string port = daemon->api().substr(daemon->api().rfind(':') + 1);
  auto http_request = [](const std::string& head, const std::string& body, bool close) {
    std::string req = head + "\r\nHost: localhost\r\n";
    if (close) req += "Connection: close\r\n";
    if (!body.empty())
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    return req + "\r\n" + body;
  };
  const std::string go = work / "go", kept_out = work / "kept.out";

  // 1. Token served: issuance works.
  auto first = issue("7001");
  INFO(first.body << first.err << daemon->log());
  REQUIRE(first.status == 201);
  auto certs = gt::test::split_pem_certs(std::string(json::parse(first.body).as_object().at("chain_pem").as_string()));
  REQUIRE(certs.size() == 3);
  const std::string leaf = work / "leaf.pem", sub2 = work / "sub2.pem", chain = work / "chain.pem";
  write_file(leaf, certs[0]);
  write_file(sub2, certs[1]);
  write_file(chain, certs[1] + certs[2]);

  // The API beside CSR issuance: a key generated in the token, the audit report and
  // the expiry filter of the listing.
  {
    auto hsm = curl("--max-time 20 " + gt::test::client_args(root, admin) +
                    gt::test::json_post(work, "hsm", R"({"profile":"csms-server","subject":"CN=csms2.example,O=gridtrust demo"})") +
                    sh_quote(daemon->api() + "/v1/certificates/hsm"));
    INFO(hsm.body << hsm.err);
    REQUIRE(hsm.status == 201);
    auto o = json::parse(hsm.body).as_object();
    CHECK(o.at("profile").as_string() == "csms-server");
    CHECK(gt::test::split_pem_certs(std::string(o.at("chain_pem").as_string())).size() == 3);
    auto forbidden = curl("--max-time 20 " + gt::test::client_args(root, auditor) +
                          gt::test::json_post(work, "hsm2", R"({"profile":"csms-server","subject":"CN=x"})") +
                          sh_quote(daemon->api() + "/v1/certificates/hsm"));
    CHECK(forbidden.status == 403);
    auto missing = curl("--max-time 20 " + gt::test::client_args(root, admin) +
                        gt::test::json_post(work, "hsm3", R"({"profile":"csms-server"})") +
                        sh_quote(daemon->api() + "/v1/certificates/hsm"));
    CHECK(missing.status == 400);

    auto audit = curl("--max-time 20 " + gt::test::client_args(root, auditor) +
                      sh_quote(daemon->api() + "/v1/audit/verify"));
    INFO(audit.body << audit.err);
    REQUIRE(audit.status == 200);
    auto a = json::parse(audit.body).as_object();
    CHECK(a.at("ok").as_bool());
    CHECK(a.at("entries").as_int64() > 0);
    CHECK(a.contains("head"));
    // The CLI's report over the same store, while the daemon keeps running.
    auto cli = pki.gt("audit verify --json");
    INFO(describe(cli));
    REQUIRE(cli.exit_code == 0);
    auto c = json::parse(cli.out).as_object();
    CHECK(c.at("ok").as_bool());
    CHECK(c.at("entries").as_int64() >= a.at("entries").as_int64());
    auto audit_admin = curl("--max-time 20 " + gt::test::client_args(root, admin) +
                            sh_quote(daemon->api() + "/v1/audit/verify"));
    CHECK(audit_admin.status == 200);

    auto count = [&](const std::string& query) {
      auto h = curl("--max-time 20 " + gt::test::client_args(root, auditor) +
                    sh_quote(daemon->api() + "/v1/certificates?" + query));
      INFO(query << ": " << h.body);
      REQUIRE(h.status == 200);
      return json::parse(h.body).as_object().at("certificates").as_array().size();
    };
    CHECK(count("expiring_before=0") == 0);
    CHECK(count("expiring_before=4102444800&profile=csms-server") == 2);  // before 2100 (init's and this one)
    CHECK(count("profile=secc") == 1);
    CHECK(count("expiring_before=4102444800&profile=secc") == 1);
    auto bad = curl("--max-time 20 " + gt::test::client_args(root, auditor) +
                    sh_quote(daemon->api() + "/v1/certificates?expiring_before=soon"));
    CHECK(bad.status == 400);
  }

  // Before the outage: the CRL and an OCSP answer (no nonce, so it may be reused).
  const std::string crl_url = daemon->status() + "/crl/cpo-sub2.crl";
  auto crl_before = run("curl -sS -f --max-time 20 -o " + sh_quote(work / "before.crl") + " " + sh_quote(crl_url));
  INFO(describe(crl_before));
  REQUIRE(crl_before.exit_code == 0);
  auto ocsp = [&](const std::string& out) {
    return run("openssl ocsp -no_nonce -timeout 20 -issuer " + sh_quote(sub2) + " -cert " + sh_quote(leaf) +
               " -url " + sh_quote(daemon->status() + "/ocsp") + " -CAfile " + sh_quote(root) + " -verify_other " +
               sh_quote(chain) + " -respout " + sh_quote(out));
  };
  auto ocsp_before = ocsp(work / "before.ocsp");
  INFO(describe(ocsp_before));
  REQUIRE(ocsp_before.exit_code == 0);
  CHECK(ocsp_before.out.find(": good") != std::string::npos);

  write_file(work / "req1.http", http_request("GET /healthz HTTP/1.1", "", false));
  write_file(work / "req2.http", http_request("POST /v1/certificates HTTP/1.1", csr_body("7004"), true));
  auto bg = run("( { cat " + sh_quote(work / "req1.http") + "; while [ ! -e " + sh_quote(go) +
                " ]; do sleep 0.05; done; cat " + sh_quote(work / "req2.http") +
                "; } | timeout 60 openssl s_client -quiet -ign_eof -connect 127.0.0.1:" + port +
                " -servername localhost -CAfile " + sh_quote(root) + " -cert " + sh_quote(admin.cert) +
                " -cert_chain " + sh_quote(admin.cert) + " -key " + sh_quote(admin.key) + " > " +
                sh_quote(kept_out) + " 2>&1; touch " + sh_quote(work / "kept.done") + " ) < /dev/null > /dev/null 2>&1 &");
  REQUIRE(bg.exit_code == 0);
  for (auto t = Clock::now(); seconds_since(t) < 15.0; std::this_thread::sleep_for(std::chrono::milliseconds(50)))
    if (read_file(kept_out).find("HTTP/1.1 200") != std::string::npos) break;
  INFO(read_file(kept_out));
  REQUIRE(read_file(kept_out).find("HTTP/1.1 200") != std::string::npos);

  // 2. The token server dies (with the connection the daemon holds to it).
  server.kill_group();

  auto t0 = Clock::now();
  auto during = issue("7002");
  const double took = seconds_since(t0);
  INFO("during the outage: curl exit " << during.curl_exit << ", HTTP " << during.status << ", " << took
                                       << " s\n" << during.body << during.err << "\n" << daemon->log());
  CHECK(took < 20.0);  // bounded: no hang
  HttpResult api_health = curl("--max-time 20 " + gt::test::client_args(root, admin) +
                               sh_quote(daemon->api() + "/healthz"));
  INFO("API /healthz during the outage: curl exit " << api_health.curl_exit << ", HTTP " << api_health.status
                                                    << " " << api_health.err);
  WARN("outage: POST /v1/certificates curl exit " << during.curl_exit << " HTTP " << during.status << " in " << took
                                                   << " s; API /healthz curl exit " << api_health.curl_exit
                                                   << " HTTP " << api_health.status);
  // New connections: the handshake needs the TLS server key, which lives in the token,
  // so it is refused (alert internal_error; curl exit 35) quickly instead of hanging.
  CHECK(during.curl_exit == 35);
  CHECK(api_health.curl_exit == 35);
  CHECK(daemon->log().find("api handshake refused") != std::string::npos);

  // The kept-alive connection: the signing request reaches the handler, which answers
  // 503 hsm.unavailable within a bounded time.
  auto t2 = Clock::now();
  write_file(go, "");
  std::string kept;
  for (; seconds_since(t2) < 25.0; std::this_thread::sleep_for(std::chrono::milliseconds(50))) {
    kept = read_file(kept_out);
    if (std::filesystem::exists(work / "kept.done")) break;
  }
  const double kept_took = seconds_since(t2);
  INFO("kept-alive connection during the outage (" << kept_took << " s): " << kept << "\n" << daemon->log());
  CHECK(kept.find("HTTP/1.1 503") != std::string::npos);
  CHECK(kept.find("\"code\":\"hsm.unavailable\"") != std::string::npos);
  CHECK(kept_took < 20.0);

  // The status listener is plain HTTP and needs no key for the transport.
  auto status_health = curl("--max-time 20 " + sh_quote(daemon->status() + "/healthz"));
  CHECK(status_health.status == 200);
  // The CRL fetched before the outage is served from the cache.
  auto crl_during = run("curl -sS -f --max-time 20 -o " + sh_quote(work / "during.crl") + " " + sh_quote(crl_url));
  INFO(describe(crl_during));
  CHECK(crl_during.exit_code == 0);
  CHECK(read_file(work / "during.crl") == read_file(work / "before.crl"));
  // So is the OCSP answer made before the outage (no nonce: the responder reuses it).
  auto ocsp_during = ocsp(work / "during.ocsp");
  INFO(describe(ocsp_during));
  CHECK(ocsp_during.exit_code == 0);
  CHECK(ocsp_during.out.find(": good") != std::string::npos);
  CHECK(read_file(work / "during.ocsp") == read_file(work / "before.ocsp"));

  // 3. The server is back on the same socket: the daemon signs again, unrestarted.
  server.start();
  // The first request after the restart already succeeds: the handshake's signature
  // and the certificate's make the token pool reconnect and log in again.
  HttpResult after = issue("7003");
  INFO(after.body << after.err << daemon->log());
  CHECK(after.status == 201);
  auto status_after = curl("--max-time 20 " + gt::test::client_args(root, admin) +
                           sh_quote(daemon->api() + "/v1/certificates?profile=secc"));
  CHECK(status_after.status == 200);
  CHECK(daemon->terminate() == 0);
  ::unsetenv("P11_KIT_SERVER_ADDRESS");
}
