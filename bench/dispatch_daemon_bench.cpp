// Dispatch through gridtrustd, end to end: signed batches of 1,000 setpoints POSTed over
// mTLS to /v1/dispatch/setpoints by 2 keep-alive clients, each answer checked (every
// entry applied, a command for each). What the daemon adds to the engine: TLS, HTTP,
// the strict parse of a ~1.2 MB body, the daemon's HSM signature on the emitted
// commands (one per batch) and the JSON answer with a signed command per entry.
//
//   dispatch_daemon_bench [BATCHES]     (default 20)
//
// A fresh `gridtrust init` PKI and a registry of 2,000 stations (one EVSE and one
// plugged-in EV each, 20 stations per site, limits that never bind); the batches are
// signed with `gridtrust sign-batch` by init's aggregator signer before the clock
// starts. The baseline, in the same run: dispatch_bench's batched line (Engine::submit_batch
// in process, commands unsigned) on this machine, run as a child right before.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>
#include <boost/json.hpp>

#include "bench/bench_failure.h"
#include "bench/bench_pki.h"
#include "bench/http_load.h"
#include "bench/setpoint_message.h"

using namespace gridtrust;
using namespace gridtrust::bench;
namespace json = boost::json;

namespace {

constexpr int kStations = 2000;
constexpr int kPerBatch = 1000;

std::string registry_yaml() {
  const long long departure = static_cast<long long>(std::time(nullptr)) + 8 * 3600;
  std::string y = "sites:\n";
  for (int s = 0; s < kStations / 20; ++s) {
    y += "  - id: site-" + std::to_string(s) + "\n    import_limit_w: 1000000000\n    export_limit_w: 1000000000\n" +
         "    policy: clamp\n    stations:\n";
    for (int i = 20 * s; i < 20 * (s + 1); ++i)
      y += "      - id: CS-" + std::to_string(i) + "\n        aggregator: gridtrust demo\n" +
           "        evses:\n          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}\n";
  }
  y += "sessions:\n";
  for (int i = 0; i < kStations; ++i)
    y += "  - {ev: EV-" + std::to_string(i) + ", station: CS-" + std::to_string(i) +
         ", evse: 1, battery_kwh: 60, soc: 0.5, soc_min: 0.2, soc_max: 0.9, max_charge_w: 11000, "
         "max_discharge_w: 11000, eta_charge: 0.95, eta_discharge: 0.95, departure: " +
         std::to_string(departure) + "}\n";
  return y;
}

json::object setpoint(double w) { return bench::setpoint_message(w); }

// dispatch_bench's batched rate, from its own output.
double in_process_rate() {
  auto r = run(std::string(DISPATCH_BENCH) + " 5000 batched");
  if (r.exit_code != 0) die("dispatch_bench: " + r.out);
  auto at = r.out.find("batched (1,000 per signature)");
  if (at == std::string::npos) die("dispatch_bench printed no batched line: " + r.out);
  auto unit = r.out.find("setpoints/s", at);
  auto start = r.out.rfind(' ', unit - 2);
  return std::atof(r.out.substr(start, unit - start).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const int batches = argc > 1 ? std::atoi(argv[1]) : 20;
  if (batches < 2 || batches > 1000) die("BATCHES must be 2 to 1000");

  std::printf("dispatch_daemon_bench: in-process baseline (dispatch_bench 5000 batched)...\n");
  const double baseline = in_process_rate();

  std::printf("init, client certificate, registry of %d stations, %d batches signed (not timed)...\n", kStations,
              batches);
  BenchPki pki;
  const BenchPki::Client client = pki.admin_client();
  write_file(pki.data_dir() + "/fleet.yaml", registry_yaml());
  {
    const std::string yaml_path = pki.data_dir() + "/gridtrust.yaml";
    std::string yaml = read_file(yaml_path);
    auto at = yaml.find("\ndispatch:");
    if (at == std::string::npos) die("gridtrust.yaml has no dispatch section");
    yaml = yaml.substr(0, at + 1) +
           "dispatch:\n  enabled: true\n  registry: fleet.yaml\n  max_batch: 1000\n  output: return\n";
    write_file(yaml_path, yaml);
  }
  std::vector<std::string> bodies;
  std::size_t body_bytes = 0;
  for (int b = 0; b < batches; ++b) {
    json::array items;
    for (int i = 0; i < kPerBatch; ++i)  // each batch a station once; batch b+2 after batch b for it
      items.push_back(json::object{{"action", "SetChargingProfile"},
                                   {"station", "CS-" + std::to_string((b % 2) + 2 * ((i + kPerBatch * (b / 2)) % (kStations / 2)))},
                                   {"message", setpoint(1000 + i % 50)}});
    const std::string file = pki.path("items-" + std::to_string(b) + ".json");
    write_file(file, json::serialize(items));
    bodies.push_back("{\"batch\":" + pki.gt("sign-batch --lifetime 3600 " + sh_quote(file)) + "}");
    body_bytes += bodies.back().size();
  }

  boost::asio::ssl::context tls = client_tls(client.cert, client.key);
  LoadTarget api{pki.api_port(), "/v1/dispatch/setpoints", "application/json", &tls};
  auto all_applied = [](int status, const std::string& body) {
    if (status != 200) return false;
    auto v = json::parse(body).as_object();
    const auto& results = v.at("results").as_array();
    if (v.at("applied").to_number<std::int64_t>() != kPerBatch || results.size() != kPerBatch) return false;
    for (const auto& r : results)
      if (!r.as_object().contains("command")) return false;
    return true;
  };

  LoadResult timed;
  {
    Daemon daemon(pki);
    timed = drive(api, bodies, LoadPlan{2, 2, static_cast<std::uint64_t>(batches), {}}, all_applied);
    if (timed.failures) die(std::to_string(timed.failures) + " batches not all applied; see " + pki.path("gridtrustd.log"));
    if (daemon.stop() != 0) die("gridtrustd did not stop cleanly");
  }
  const double rate = timed.rate() * kPerBatch;
  std::printf("\nDispatch through gridtrustd: %d batches of %d signed setpoints (%.2f MB per request), 2 mTLS "
              "keep-alive clients, commands signed by the daemon's HSM key, SQLite WAL synchronous=FULL, 2 cores "
              "shared by clients and daemon\n",
              batches, kPerBatch, body_bytes / 1e6 / batches);
  std::printf("  in process (dispatch_bench batched, commands unsigned): %8.0f setpoints/s\n", baseline);
  std::printf("  through gridtrustd:                                      %8.0f setpoints/s (%.1f ms per batch)\n",
              rate, timed.seconds * 1000 * 2 / batches);
  std::printf("dispatch_daemon_bench: gridtrustd %.0f setpoints/s, in process %.0f/s, ratio %.2f\n", rate, baseline,
              baseline > 0 ? rate / baseline : 0);
  return 0;
}
