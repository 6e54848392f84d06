// gridtrustd as systemd runs it: sd_notify datagrams on $NOTIFY_SOCKET, the
// watchdog, SIGHUP reload, SIGTERM; its audit entries and signed checkpoints; the
// Prometheus metrics; and the unit file itself.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/daemon_process.h"
#include "tests/support/test_support.h"

namespace gt = gridtrust;
using gt::test::CommandResult;
using gt::test::DaemonProcess;
using gt::test::InitializedPki;
using gt::test::read_file;
using gt::test::replace_all;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::TempDir;
using gt::test::write_file;

namespace {

// The service manager's end of $NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    REQUIRE(path_.size() < sizeof a.sun_path);
    std::memcpy(a.sun_path, path_.c_str(), path_.size() + 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{0, 200000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() { ::close(fd_); }
  const std::string& path() const { return path_; }

  // Messages until one starts with `want` (true) or `seconds` pass (false); every
  // message seen is kept in `seen`.
  bool wait_for(const std::string& want, int seconds = 15) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    char buf[512];
    while (std::chrono::steady_clock::now() < deadline) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      seen.emplace_back(buf, static_cast<std::size_t>(n));
      if (seen.back().rfind(want, 0) == 0) return true;
    }
    return false;
  }
  std::vector<std::string> seen;

 private:
  std::string path_;
  int fd_ = -1;
};

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v) out += "[" + s + "] ";
  return out;
}

}  // namespace

TEST_CASE("gridtrustd speaks sd_notify, reloads on SIGHUP, audits, checkpoints and exposes metrics",
          "[integration][daemon][service]") {
  InitializedPki pki;
  TempDir work;
  DaemonProcess daemon(pki, work, GRIDTRUSTD);
  const std::string yaml_path = daemon.config_path();
  std::string yaml = read_file(yaml_path);
  REQUIRE(yaml.find("checkpoint_interval_s: 300") != std::string::npos);
  replace_all(yaml, "checkpoint_interval_s: 300", "checkpoint_interval_s: 1");
  write_file(yaml_path, yaml);

  // An operator client certificate for the API.
  std::string root = work / "root.pem";
  REQUIRE(pki.gt("chain --profile v2g-root --out " + sh_quote(root)).exit_code == 0);
  const auto op = gt::test::admin_profile_client(pki, work, "operator");

  NotifySocket notify(work / "notify.sock");
  daemon.set_env("NOTIFY_SOCKET", notify.path());
  daemon.set_env("WATCHDOG_USEC", "200000");  // a ping every 100 ms
  daemon.start();

  INFO("notifications: " << joined(notify.seen));
  REQUIRE(notify.wait_for("READY=1"));
  INFO("log: " << daemon.log());
  REQUIRE(notify.wait_for("WATCHDOG=1", 2));

  const std::string api = daemon.api();
  const std::string client = gt::test::client_args(root, op);
  CommandResult r;
  // A refused request (bad serial) and a refused TLS login (no client certificate).
  r = run("curl -s -o /dev/null -w '%{http_code}' " + client + sh_quote(api + "/v1/certificates/zz"));
  CHECK(r.out == "400");
  r = run("curl -s --cacert " + sh_quote(root) + " " + sh_quote(api + "/healthz"));
  CHECK(r.exit_code != 0);

  SECTION("metrics") {
    auto m = run("curl -sf " + client + sh_quote(api + "/metrics"));
    INFO(m.describe());
    REQUIRE(m.exit_code == 0);
    CHECK(m.out.find("# TYPE gridtrustd_requests_total counter") != std::string::npos);
    CHECK(m.out.find("gridtrustd_requests_total{listener=\"api\",method=\"GET\",route=\"/v1/certificates/{serial}\","
                     "status=\"400\"} 1") != std::string::npos);
    CHECK(m.out.find("gridtrustd_request_duration_seconds_bucket{listener=\"api\",le=\"+Inf\"} 1") != std::string::npos);
    CHECK(m.out.find("gridtrustd_tls_login_failures_total 1") != std::string::npos);
    CHECK(m.out.find("gridtrustd_certificates_issued_total 0") != std::string::npos);
    CHECK(m.out.find("gridtrustd_hsm_errors_total 0") != std::string::npos);
  }

  SECTION("SIGHUP reloads, a bad configuration keeps the old one, SIGTERM stops with a checkpoint") {
    notify.seen.clear();
    daemon.send_signal(SIGHUP);
    REQUIRE(notify.wait_for("RELOADING=1"));
    CHECK(notify.seen.back().find("MONOTONIC_USEC=") != std::string::npos);
    REQUIRE(notify.wait_for("READY=1"));

    write_file(yaml_path, "hsm: [this is not: a mapping\n");
    daemon.send_signal(SIGHUP);
    REQUIRE(notify.wait_for("RELOADING=1"));
    REQUIRE(notify.wait_for("READY=1"));
    write_file(yaml_path, yaml);
    CHECK(daemon.log().find("reload refused, keeping the running configuration: config.invalid") !=
          std::string::npos);
    // Still serving on the same listener.
    r = run("curl -sf " + client + sh_quote(api + "/healthz"));
    CHECK(r.exit_code == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // one interval checkpoint

    daemon.send_signal(SIGTERM);
    REQUIRE(notify.wait_for("STOPPING=1"));
    CHECK(daemon.wait_for_exit() == 0);

    std::string db = pki.data_dir() + "/gridtrust.db";
    auto actions = run("sqlite3 " + sh_quote(db) + " \"SELECT group_concat(action, ',') FROM (SELECT DISTINCT action "
                       "FROM audit WHERE actor LIKE 'daemon%' ORDER BY action)\"");
    INFO(actions.describe());
    // rotation-schedule: the scheduler takes on the daemon's keys at the first start
    // (docs/rotation.md).
    CHECK(actions.out == "config-reload,daemon-start,daemon-stop,login-failure,request-refused,rotation-schedule\n");
    auto refused = run("sqlite3 " + sh_quote(db) +
                       " \"SELECT actor || ' ' || subject || ' ' || details FROM audit WHERE action='request-refused'\"");
    CHECK(refused.out.find("daemon:operator:") != std::string::npos);
    CHECK(refused.out.find("GET /v1/certificates/zz") != std::string::npos);
    CHECK(refused.out.find("\"code\":\"usage.bad_serial\"") != std::string::npos);
    CHECK(refused.out.find("\"route\":\"/v1/certificates/{serial}\"") != std::string::npos);
    // An interval checkpoint and the one at shutdown, which covers the stop entry.
    auto cps = run("sqlite3 " + sh_quote(db) + " \"SELECT count(*), max(entry_id) = (SELECT max(id) FROM audit) "
                   "FROM audit_checkpoints\"");
    INFO(cps.describe());
    CHECK(std::stoi(cps.out) >= 2);
    CHECK(cps.out.find("|1") != std::string::npos);
    auto v = pki.gt("audit verify --json");
    INFO(v.describe());
    CHECK(v.exit_code == 0);
    CHECK(v.out.find("\"signatures_checked\":true") != std::string::npos);
  }
}

TEST_CASE("config/gridtrustd.service passes systemd-analyze verify", "[integration][service]") {
  if (run("command -v systemd-analyze").exit_code != 0) {
    WARN("systemd-analyze not installed: unit file not verified");
    return;
  }
  TempDir work;
  // The unit names /usr/bin/gridtrustd; verify checks that ExecStart exists, so point
  // a copy at the binary under test.
  std::string unit = read_file(std::string(GRIDTRUST_SOURCE_DIR) + "/config/gridtrustd.service");
  replace_all(unit, "/usr/bin/gridtrustd", GRIDTRUSTD);
  CHECK(unit.find("Type=notify") != std::string::npos);
  CHECK(unit.find("WatchdogSec=30") != std::string::npos);
  write_file(work / "gridtrustd.service", unit);
  auto r = run("systemd-analyze verify " + sh_quote(work / "gridtrustd.service"));
  INFO(r.describe());
  CHECK(r.exit_code == 0);
}
