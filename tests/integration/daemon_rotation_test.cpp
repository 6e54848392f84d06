// A simulated year against the real gridtrustd (docs/rotation.md): the daemon reads
// "now" from a clock file (daemon.scheduler.clock_file with GRIDTRUST_SIMULATED_CLOCK=1)
// that this test advances hour by hour, draining the outbox as an aggregator would,
// with one SIGKILL (and two days of downtime) and one SIGTERM in the middle of the
// station renewal window.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "cli/pki_context.h"
#include "core/digest.h"
#include "core/encoding.h"
#include "protocol/signer_trust.h"
#include "tests/support/daemon_process.h"
#include "tests/support/test_support.h"

namespace gt = gridtrust;
namespace json = boost::json;
using gt::test::ClientCert;
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

constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kDay = 86400;
constexpr int kStations = 1000;
constexpr int kRatePerHour = 8;
constexpr int kOverlapDays = 5;
const std::map<std::string, int> kIntervals = {
    {"aggregator-signer", 60}, {"csms-server", 90}, {"ocsp-signer", 20}, {"audit-checkpoint", 100}};
constexpr int kStationInterval = 120;  // charging-station; jitter up to 10 % = 12 days

// GET on the plain-HTTP status listener without a process per request: the test asks
// after every simulated hour.
std::string http_get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  auto body = out.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : out.substr(body + 4);
}

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

void write_clock(const std::string& path, std::int64_t t) {
  // Write then rename: the daemon never reads a half-written file.
  write_file(path + ".new", std::to_string(t) + "\n");
  REQUIRE(std::rename((path + ".new").c_str(), path.c_str()) == 0);
}

// Until the daemon's scheduler has run a tick at (or after) `t`.
void wait_processed(int status_port, std::int64_t t) {
  for (int i = 0; i < 50000; ++i) {
    std::string body = http_get(status_port, "/scheduler");
    if (!body.empty()) {
      auto v = json::parse(body).as_object();
      if (v.at("processed_through").as_int64() >= t) return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  FAIL("scheduler did not reach " << t);
}

struct Aggregator {
  std::string args;                        // curl options for the mTLS API
  std::string api;
  std::set<std::string> acked;             // ids processed and acknowledged
  std::map<std::string, std::string> station_of;
  int redeliveries = 0;                    // un-acked entries seen again (after the SIGKILL)
  std::set<std::string> seen_unacked;

  json::array fetch() {
    HttpResult r = curl(args + sh_quote(api + "/v1/outbox?limit=1000"));
    INFO(r.err << r.body);
    REQUIRE(r.status == 200);
    json::array entries = json::parse(r.body).as_object().at("entries").as_array();
    for (const auto& e : entries) {
      std::string id(e.at("id").as_string());
      // Exactly once: an acknowledged entry is never delivered again.
      INFO(id);
      REQUIRE(acked.count(id) == 0);
      if (seen_unacked.count(id)) ++redeliveries;
      seen_unacked.insert(id);
      station_of[id] = std::string(e.at("station").as_string());
      REQUIRE(e.at("action").as_string() == "TriggerMessage");
      REQUIRE(e.at("payload").at("requestedMessage").as_string() == "SignChargingStationCertificate");
    }
    return entries;
  }

  void ack(const json::array& entries, const TempDir& work) {
    if (entries.empty()) return;
    json::array ids;
    for (const auto& e : entries) ids.push_back(e.at("id"));
    HttpResult r = curl(args + gt::test::json_post(work, "ack", json::serialize(json::object{{"ids", ids}})) +
                        sh_quote(api + "/v1/outbox/ack"));
    INFO(r.err << r.body);
    REQUIRE(r.status == 200);
    auto answer = json::parse(r.body).as_object();
    REQUIRE(answer.at("acked").as_array().size() == entries.size());
    for (const auto& e : entries) acked.insert(std::string(e.at("id").as_string()));
  }

  void drain(const TempDir& work) { ack(fetch(), work); }
};

// Signer checks at a chosen time: chain, validity and revocation as of `at`.
class SignerAt final : public gt::protocol::SignerResolver {
 public:
  SignerAt(gt::protocol::PkiSignerResolver& inner, std::int64_t at) : inner_(inner), at_(at) {}
  gt::Result<std::shared_ptr<const gt::protocol::SignerCertificate>> find(const std::string& x5t,
                                                                           const std::vector<gt::Bytes>& x5c) override {
    return inner_.find(x5t, x5c);
  }
  gt::Status judge(const gt::protocol::SignerCertificate& signer, std::int64_t) override {
    return inner_.judge(signer, at_);
  }

 private:
  gt::protocol::PkiSignerResolver& inner_;
  std::int64_t at_;
};

struct AcceptAll final : public gt::protocol::ReplayGuard {
  gt::Status accept(const std::string&, const std::string&, std::uint64_t) override { return gt::Ok{}; }
};

std::set<std::string> token_labels(const std::string& data_dir) {
  std::string pin = read_file(data_dir + "/secrets/user.pin");
  while (!pin.empty() && (pin.back() == '\n' || pin.back() == '\r')) pin.pop_back();
  auto r = run("SOFTHSM2_CONF=" + sh_quote(data_dir + "/softhsm2.conf") + " pkcs11-tool --module " +
               sh_quote(gt::test::kSoftHsmModule) + " --token-label gridtrust --login --pin " + sh_quote(pin) +
               " --list-objects");
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  std::set<std::string> labels;
  std::size_t pos = 0;
  while ((pos = r.out.find("label:", pos)) != std::string::npos) {
    pos += 6;
    std::size_t end = r.out.find('\n', pos);
    std::string label = r.out.substr(pos, end - pos);
    while (!label.empty() && label.front() == ' ') label.erase(label.begin());
    while (!label.empty() && label.back() == ' ') label.pop_back();
    labels.insert(label);
  }
  return labels;
}

// Every retired key whose certificate expired (an hour ago: one tick) is gone from the
// token; every key in use and every retired key still within its certificate is there.
void check_token(const std::string& data_dir, const json::object& status, std::int64_t now) {
  std::set<std::string> labels = token_labels(data_dir);
  for (const auto& k : status.at("keys").as_array()) {
    INFO("key in use " << k.at("key_label"));
    CHECK(labels.count(std::string(k.at("key_label").as_string())) == 1);
  }
  for (const auto& rv : status.at("retired_keys").as_array()) {
    const auto& r = rv.as_object();
    std::string label(r.at("key_label").as_string());
    std::int64_t after = r.at("destroy_after_at").as_int64();
    INFO("retired key " << label << " destroy_after " << after << " now " << now);
    if (after + kHour < now) {
      CHECK_FALSE(r.at("pending_destruction").as_bool());
      CHECK(labels.count(label) == 0);
    } else if (after > now) {
      CHECK(labels.count(label) == 1);
    }
  }
}

}  // namespace

TEST_CASE("a simulated year: daemon keys re-keyed on schedule, old keys destroyed after expiry, every station "
          "renewal delivered once within the hourly rate despite a SIGKILL and a SIGTERM") {
  const auto started = std::chrono::steady_clock::now();
  InitializedPki pki;
  TempDir work;

  // 1,000 charging stations, issued before the daemon starts.
  {
    std::string list;
    for (int i = 0; i < kStations; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "CS-%04d", i);
      auto key = gt::test::make_key("P-256");
      std::string path = work / (std::string(name) + ".csr");
      write_file(path, gt::test::make_csr_pem(key.get(), std::string("CN=") + name + ",O=gridtrust demo"));
      list += path + "\n";
    }
    write_file(work / "csrs.txt", list);
    auto r = pki.gt("issue-bulk --profile charging-station --csr-list " + sh_quote(work / "csrs.txt"));
    INFO(r.err.substr(0, 2000));
    REQUIRE(r.exit_code == 0);
  }

  const double setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  DaemonProcess daemon(pki, work, GRIDTRUSTD);
  const std::string clock = work / "clock";
  const std::int64_t t0 = gt::to_unix(gt::now_seconds()) + 60;
  write_clock(clock, t0);
  {
    std::string yaml = read_file(daemon.config_path());
    std::string section = "daemon:\n  scheduler:\n    tick_ms: 1\n    overlap_days: " + std::to_string(kOverlapDays) +
                          "\n    jitter_fraction: 0.1\n    renewal_rate_per_hour: " + std::to_string(kRatePerHour) +
                          "\n    clock_file: " + clock + "\n    interval_days: {charging-station: " +
                          std::to_string(kStationInterval);
    for (const auto& [role, days] : kIntervals) section += ", " + role + ": " + std::to_string(days);
    section += "}\n";
    auto pos = yaml.find("\ndaemon:\n");
    REQUIRE(pos != std::string::npos);
    yaml.replace(pos + 1, 8, section);
    write_file(daemon.config_path(), yaml);
  }
  daemon.set_env("GRIDTRUST_SIMULATED_CLOCK", "1");
  daemon.start();
  const int status_port = port_of(daemon.status());

  ClientCert client = gt::test::admin_profile_client(pki, work, "aggregator");
  // The daemon's TLS certificate is re-keyed at simulated times the system clock has not
  // reached: the client skips server verification (-k) and the test checks the served
  // certificate itself at the end.
  Aggregator agg{"-k --cert " + sh_quote(client.cert) + " --key " + sh_quote(client.key) + " ", daemon.api()};

  auto sign_command = [&](const std::string& station) {
    json::object body{{"action", "SetChargingProfile"},
                      {"station", station},
                      {"x5c", true},
                      {"lifetime_s", 3600},
                      {"message", json::object{{"evseId", 1}}}};
    HttpResult r = curl(agg.args + gt::test::json_post(work, "sign", json::serialize(body)) +
                        sh_quote(daemon.api() + "/v1/commands/sign"));
    INFO(r.err << r.body);
    REQUIRE(r.status == 200);
    return json::parse(r.body).as_object().at("message").as_object();
  };
  auto status = [&]() {
    HttpResult r = curl(agg.args + sh_quote(daemon.api() + "/v1/rotation/status"));
    INFO(r.err << r.body);
    REQUIRE(r.status == 200);
    return json::parse(r.body).as_object();
  };

  json::object before_rotation, after_rotation;
  const std::int64_t kill_hour = 112 * 24, restart_hour = 114 * 24, term_hour = 116 * 24;
  const std::int64_t hours = 365 * 24;
  for (std::int64_t h = 1; h <= hours; ++h) {
    const std::int64_t t = t0 + h * kHour;
    if (h == kill_hour) {
      // Delivered but not acknowledged when the daemon dies: delivered again after.
      agg.fetch();
      daemon.send_signal(SIGKILL);
      daemon.wait_for_exit();
      // Down for two simulated days; the backlog must not come out in a burst.
      write_clock(clock, t0 + restart_hour * kHour);
      daemon.start();
      h = restart_hour;
      wait_processed(status_port, t0 + h * kHour);
      agg.drain(work);
      continue;
    }
    if (h == term_hour) {
      REQUIRE(daemon.terminate() == 0);
      daemon.start();
    }
    write_clock(clock, t);
    wait_processed(status_port, t);
    if (h == 59 * 24) before_rotation = sign_command("CS-0001");
    if (h == 61 * 24) after_rotation = sign_command("CS-0001");
    if (h % 72 == 0) agg.drain(work);  // every three simulated days
    if (h % (10 * 24) == 0) check_token(pki.data_dir(), status(), t);
  }
  agg.drain(work);
  const json::object final_status = status();
  check_token(pki.data_dir(), final_status, t0 + hours * kHour);

  // The TLS listener serves the csms-server certificate the schedule names.
  std::string served_serial;
  {
    auto r = run("openssl s_client -connect 127.0.0.1:" + std::to_string(port_of(daemon.api())) + " -cert " +
                 sh_quote(client.cert) + " -key " + sh_quote(client.key) +
                 " </dev/null 2>/dev/null | openssl x509 -noout -serial");
    served_serial = r.out.substr(r.out.find('=') + 1);
    while (!served_serial.empty() && served_serial.back() == '\n') served_serial.pop_back();
  }
  REQUIRE(daemon.terminate() == 0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  WARN("init + 1,000 stations: " << setup_s << " s; whole test: " << seconds << " s");

  // Every station renewal delivered exactly once: one outbox id per station, all acked.
  CHECK(agg.acked.size() == static_cast<std::size_t>(kStations));
  std::set<std::string> stations;
  for (const auto& id : agg.acked) stations.insert(agg.station_of[id]);
  CHECK(stations.size() == static_cast<std::size_t>(kStations));
  CHECK(agg.redeliveries > 0);  // what was fetched before the SIGKILL came again

  auto ctx = gt::app::open_pki(pki.data_dir());
  REQUIRE(ctx.ok());
  auto& store = *ctx.value()->store;

  // Renewals queued per simulated hour never above the rate, never before they were
  // due, none while the daemon was down.
  auto outbox = store.outbox_entries(100000, true);
  REQUIRE(outbox.ok());
  REQUIRE(outbox->size() == static_cast<std::size_t>(kStations));
  std::map<std::int64_t, int> per_hour;
  for (const auto& e : outbox.value()) {
    ++per_hour[e.enqueued_at / kHour];
    CHECK(e.enqueued_at >= e.due);
    CHECK(e.acked_at.has_value());
    CHECK_FALSE((e.enqueued_at > t0 + kill_hour * kHour && e.enqueued_at < t0 + restart_hour * kHour));
  }
  int busiest = 0;
  for (const auto& [hour, n] : per_hour) busiest = std::max(busiest, n);
  CHECK(busiest <= kRatePerHour);
  CHECK(busiest == kRatePerHour);  // the catch-up after the downtime ran at the limit

  // Each daemon-held key re-keyed at its interval: the gaps between switch-overs (from
  // the audit chain) are the interval, give or take one simulated hour (the test's
  // step), or longer only across the downtime.
  auto audit = store.audit_entries();
  REQUIRE(audit.ok());
  std::map<std::string, std::vector<std::int64_t>> switched;  // role -> switch-over times
  for (const auto& e : audit.value()) {
    if (e.event.action != "rotation-switch") continue;
    auto d = json::parse(e.event.details).as_object();
    std::string role(d.at("role").as_string());
    switched[role].push_back(d.at("next_due").as_int64() - kIntervals.at(role) * kDay);
  }
  for (const auto& [role, days] : kIntervals) {
    INFO(role);
    const auto& times = switched[role];
    REQUIRE(!times.empty());
    for (std::size_t i = 1; i < times.size(); ++i) {
      std::int64_t gap = times[i] - times[i - 1];
      CHECK(gap >= days * kDay);
      bool across_downtime = times[i] >= t0 + restart_hour * kHour && times[i - 1] < t0 + kill_hour * kHour;
      CHECK(gap <= days * kDay + (across_downtime ? 2 * kDay : 0) + kHour);
    }
    // First re-key one interval after init (their certificates are from init).
    CHECK(times.front() - t0 <= days * kDay + kHour);
    CHECK(static_cast<int>(times.size()) >= 365 / days - 1);
    CHECK(static_cast<int>(times.size()) <= 365 / days);
    for (const auto& kv : final_status.at("keys").as_array())
      if (kv.at("role").as_string() == role) CHECK(kv.at("rotations").as_int64() == static_cast<std::int64_t>(times.size()));
  }
  // The audit chain (checkpoints signed by re-keyed, since destroyed keys included) holds.
  {
    auto v = pki.gt("audit verify --json");
    INFO(v.describe());
    CHECK(v.exit_code == 0);
  }
  for (const auto& kv : final_status.at("keys").as_array())
    if (kv.at("role").as_string() == "csms-server") CHECK(served_serial == std::string(kv.at("serial").as_string()));

  // A command signed with the old aggregator signer before its re-key verifies up to
  // that certificate's expiry and not after; the one signed after the re-key names the
  // new signer.
  {
    gt::protocol::PkiSignerResolver resolver(*ctx.value()->ca);
    AcceptAll replay;
    gt::protocol::VerifyOptions opt;
    // Freshness as of the signing; the signer's validity as of `at`.
    opt.now = t0 + 59 * 24 * kHour;
    auto verify_at = [&](std::int64_t at) {
      SignerAt signer(resolver, at);
      return gt::protocol::verify_command(before_rotation, opt, signer, replay);
    };
    auto first = verify_at(opt.now);
    REQUIRE(first.ok());
    std::int64_t old_not_after = 0;
    gt::store::CertificateFilter f;
    f.profile = "aggregator-signer";
    auto certs = store.list(f);
    REQUIRE(certs.ok());
    for (const auto& c : certs.value())
      if (gt::base64url_encode(gt::sha256(c.der)) == first->signer_fingerprint) old_not_after = c.not_after;
    REQUIRE(old_not_after > opt.now);
    {
      gt::protocol::VerifyOptions later = opt;
      later.now = t0 + 61 * kDay;
      SignerAt signer(resolver, later.now);
      auto second = gt::protocol::verify_command(after_rotation, later, signer, replay);
      REQUIRE(second.ok());
      CHECK(second->signer_fingerprint != first->signer_fingerprint);
    }
    CHECK(verify_at(t0 + 70 * kDay).ok());  // after the re-key at day 60
    CHECK(verify_at(old_not_after - 60).ok());
    auto expired = verify_at(old_not_after + 60);
    REQUIRE_FALSE(expired.ok());
    CHECK(expired.error().code == "verify.signer_expired");
  }
  // Duration is reported (WARN above), not asserted: the cores are shared in CI.
}

TEST_CASE("a clock file without GRIDTRUST_SIMULATED_CLOCK=1 refuses to start; bad scheduler settings name the field") {
  InitializedPki pki;
  TempDir work;
  const std::string yaml_path = pki.data_dir() + "/gridtrust.yaml";
  const std::string original = read_file(yaml_path);
  auto with_scheduler = [&](const std::string& lines) {
    std::string yaml = original;
    auto pos = yaml.find("\ndaemon:\n");
    REQUIRE(pos != std::string::npos);
    yaml.replace(pos + 1, 8, "daemon:\n  scheduler:\n" + lines);
    write_file(yaml_path, yaml);
  };
  write_file(work / "clock", "1800000000\n");
  with_scheduler("    clock_file: " + work / "clock" + "\n");
  auto r = run("env -u GRIDTRUST_SIMULATED_CLOCK " + sh_quote(GRIDTRUSTD) + " --data-dir " + sh_quote(pki.data_dir()));
  INFO(r.describe());
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("scheduler.simulated_clock_not_enabled") != std::string::npos);

  with_scheduler("    renewal_rate_per_hour: 0\n");
  auto bad = pki.gt("rotation status");
  INFO(bad.describe());
  CHECK(bad.exit_code == 3);
  CHECK(bad.err.find("config.invalid") != std::string::npos);
  CHECK(bad.err.find("daemon.scheduler.renewal_rate_per_hour") != std::string::npos);

  with_scheduler("    renewal_rate: 5\n");
  auto unknown = pki.gt("rotation status");
  CHECK(unknown.err.find("daemon.scheduler.renewal_rate: unknown setting") != std::string::npos);

  // Offline status before any daemon ran: nothing scheduled yet, and it says so.
  write_file(yaml_path, original);
  auto status = pki.gt("rotation status");
  INFO(status.describe());
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("none scheduled yet") != std::string::npos);
}

TEST_CASE("a re-key of the daemon's TLS key: a kept-alive connection carries on, new connections get the new "
          "certificate") {
  InitializedPki pki;
  TempDir work;
  DaemonProcess daemon(pki, work, GRIDTRUSTD);
  const std::string clock = work / "clock";
  const std::int64_t t0 = gt::to_unix(gt::now_seconds()) + 60;
  write_clock(clock, t0);
  {
    std::string yaml = read_file(daemon.config_path());
    auto pos = yaml.find("\ndaemon:\n");
    REQUIRE(pos != std::string::npos);
    yaml.replace(pos + 1, 8,
                 "daemon:\n  scheduler:\n    tick_ms: 1\n    overlap_days: 1\n    clock_file: " + clock +
                     "\n    interval_days: {csms-server: 1}\n");
    write_file(daemon.config_path(), yaml);
  }
  daemon.set_env("GRIDTRUST_SIMULATED_CLOCK", "1");
  daemon.start();
  const int status_port = port_of(daemon.status());
  wait_processed(status_port, t0);

  std::string root = work / "root.pem";
  REQUIRE(pki.gt("chain --profile v2g-root --out " + sh_quote(root)).exit_code == 0);
  ClientCert admin = gt::test::admin_profile_client(pki, work, "admin");
  const std::string api_port = std::to_string(port_of(daemon.api()));
  auto served_serial = [&] {
    auto r = run("openssl s_client -connect 127.0.0.1:" + api_port + " -servername localhost -cert " +
                 sh_quote(admin.cert) + " -key " + sh_quote(admin.key) +
                 " </dev/null 2>/dev/null | openssl x509 -noout -serial");
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    return r.out;
  };
  auto first = run("openssl x509 -noout -serial -in " + sh_quote(pki.data_dir() + "/server-chain.pem"));
  REQUIRE(first.exit_code == 0);
  REQUIRE(served_serial() == first.out);

  // One TLS connection, verified against the PKI at the real time: a request, then (once
  // the test has made the daemon re-key) another on the same connection.
  std::string go = work / "go";
  std::string cmd =
      "(printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'; "
      "while [ ! -f " + sh_quote(go) + " ]; do sleep 0.05; done; "
      "printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'; sleep 1) | "
      "timeout 60 openssl s_client -quiet -connect 127.0.0.1:" + api_port + " -servername localhost -CAfile " +
      sh_quote(root) + " -cert " + sh_quote(admin.cert) + " -key " + sh_quote(admin.key) + " -verify_return_error";
  auto served = [&] {
    const std::string log = daemon.log();
    int n = 0;
    for (std::size_t p = 0; (p = log.find("GET /healthz 200", p)) != std::string::npos; ++p) ++n;
    return n;
  };
  const int before = served();
  auto client = std::async(std::launch::async, [cmd] { return run(cmd); });
  for (int i = 0; i < 400 && served() == before; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(served() > before);

  // Two simulated days: the 1-day interval of the TLS key has passed.
  write_clock(clock, t0 + 2 * kDay);
  wait_processed(status_port, t0 + 2 * kDay);
  std::string now_served;
  for (int i = 0; i < 100 && (now_served = served_serial()) == first.out; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(now_served != first.out);  // new connections: the new certificate

  write_file(go, "");
  auto r = client.get();
  INFO(r.describe() << daemon.log());
  std::size_t oks = 0;
  for (std::size_t p = 0; (p = r.out.find("HTTP/1.1 200 OK", p)) != std::string::npos; ++p) ++oks;
  CHECK(oks == 2);  // the old connection was not dropped by the switch
  REQUIRE(daemon.terminate() == 0);
}
