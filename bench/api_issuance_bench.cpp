// API issuance benchmark: certificates/s issued through gridtrustd's mTLS API by 2
// concurrent clients, and the ratio to the offline issuance benchmark (issuance_bench's
// code path) measured in the same run on the same token and store.
//
//   api_issuance_bench [N]        (default 2000)
//
// A fresh `gridtrust init` PKI; the client identity is an `admin`-profile certificate
// issued for the benchmark from an openssl CSR (software key), role OU=admin. CSRs are
// made in software before anything is timed.
//   offline: CertificateAuthority::issue_from_csr_async with 1 and 2 threads, each
//            keeping up to 128 durable commits in flight (as issuance_bench);
//   API:     2 client threads, each with one mTLS keep-alive connection, POST
//            /v1/certificates {"profile":"charging-station","csr":PEM} one after the
//            other; each 201 carries a certificate that is already durably stored.
// The ratio is API / offline with 2 threads. A last phase, not the goal's setting,
// runs 16 connections against daemon.workers 16 to show how much of the gap is the
// durable commit each client waits for before it sends its next request.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>
#include <boost/json.hpp>

#include "bench/bench_failure.h"
#include "bench/bench_pki.h"
#include "bench/http_load.h"
#include "bench/offline_issuance.h"
#include "cli/pki_context.h"

using namespace gridtrust;
using namespace gridtrust::bench;

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  if (n <= 0) die("N must be positive");
  constexpr int kWarm = 100;

  std::printf("init, client certificate, %d CSRs (not timed)...\n", 4 * n + 2 * kWarm);
  BenchPki pki;
  const BenchPki::Client client = pki.admin_client();

  std::vector<Bytes> csrs;
  for (int i = 0; i < 4 * n + 2 * kWarm; ++i) csrs.push_back(make_station_csr(i));

  // Offline, in this process, on the data directory the daemon will serve.
  double offline1 = 0, offline2 = 0;
  {
    auto ctx = must(app::open_pki(pki.data_dir(), 256), "open the PKI");
    issuance_rate(*ctx->ca, csrs, 0, 1, kWarm);  // issuer keys, caches, first serial block
    offline1 = issuance_rate(*ctx->ca, csrs, kWarm, 1, n);
    offline2 = issuance_rate(*ctx->ca, csrs, kWarm + n, 2, n);
  }  // the daemon logs in to the token on its own

  std::vector<std::string> bodies;
  for (std::size_t i = kWarm + 2 * n; i < csrs.size(); ++i)
    bodies.push_back(boost::json::serialize(
        boost::json::object{{"profile", "charging-station"}, {"csr", csr_pem(csrs[i])}}));

  boost::asio::ssl::context tls = client_tls(client.cert, client.key);
  LoadTarget api{pki.api_port(), "/v1/certificates", "application/json", &tls};
  auto created = [](int status, const std::string& body) {
    return status == 201 && body.find("\"serial\"") != std::string::npos;
  };

  LoadResult warm, timed;
  {
    Daemon daemon(pki);
    std::vector<std::string> warm_bodies(bodies.begin(), bodies.begin() + kWarm);
    warm = drive(api, warm_bodies, LoadPlan{2, 2, kWarm, {}}, created);
    if (warm.failures) die("API warm-up failed; see " + pki.path("gridtrustd.log"));
    std::vector<std::string> timed_bodies(bodies.begin() + kWarm, bodies.begin() + kWarm + n);
    timed = drive(api, timed_bodies, LoadPlan{2, 2, static_cast<std::uint64_t>(n), {}}, created);
    if (timed.failures) die("API issuance failed; see " + pki.path("gridtrustd.log"));
    if (daemon.stop() != 0) die("gridtrustd did not stop cleanly");
  }
  // Not the goal's setting: many requests in flight, to tell the daemon's capacity from
  // the latency of one durable commit that each client waits for.
  LoadResult wide;
  {
    pki.set_daemon_option("workers", "16");
    Daemon daemon(pki);
    std::vector<std::string> wide_bodies(bodies.begin() + kWarm + n, bodies.end());
    wide = drive(api, wide_bodies, LoadPlan{16, 2, static_cast<std::uint64_t>(n), {}}, created);
    if (wide.failures) die("API issuance (16 connections) failed; see " + pki.path("gridtrustd.log"));
    if (daemon.stop() != 0) die("gridtrustd did not stop cleanly");
  }

  const double ratio = offline2 > 0 ? timed.rate() / offline2 : 0;
  std::printf("\nAPI issuance benchmark: %d certificates per run, P-256 CA key in SoftHSM2, SQLite WAL "
              "synchronous=FULL, 2 cores shared by clients and daemon\n",
              n);
  std::printf("  offline issuance (issuance_bench path) 1 thread : %7.0f certificates/s\n", offline1);
  std::printf("  offline issuance (issuance_bench path) 2 threads: %7.0f certificates/s\n", offline2);
  std::printf("  mTLS API, 2 clients, 1 keep-alive connection each: %7.0f certificates/s (%llu connections)\n",
              timed.rate(), static_cast<unsigned long long>(timed.connects));
  std::printf("  (16 connections, daemon.workers 16:             %7.0f certificates/s, ratio %.2f; not the goal's setting)\n",
              wide.rate(), offline2 > 0 ? wide.rate() / offline2 : 0);
  std::printf("  every 201 waits for its own durable commit (WAL fsync); a client sends its next request after it\n");
  std::printf("api_issuance_bench: API %.0f/s, offline %.0f/s (2 threads), ratio %.2f; goal >= 0.7: %s\n",
              timed.rate(), offline2, ratio, ratio >= 0.7 ? "met" : "NOT met");
  return 0;
}
