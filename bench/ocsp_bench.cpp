// OCSP benchmark: responses/s from a warm cache over keep-alive connections, gridtrustd
// against `openssl ocsp -index ... -port` answering the same requests in the same run.
//
//   ocsp_bench [LEAVES] [SECONDS] [CONNECTIONS]     (defaults 1000, 5, 16)
//
// A fresh `gridtrust init` PKI issues LEAVES charging-station certificates (one in ten
// revoked); one OCSP request per leaf (SHA-1 CertID, no nonce, so responses may be
// shared). Both responders are driven by the same client: CONNECTIONS HTTP/1.1
// clients on 2 threads, POST application/ocsp-request, each response checked for
// responseStatus successful. gridtrustd signs with its delegated ocsp-signer key in
// the token and serves repeats from its cache (every request still reads the
// certificate's status from the store); openssl ocsp needs a software key, so it
// signs with a throwaway self-made P-256 signer and has no cache. openssl ocsp answers
// one request per connection and then closes it; it is measured as it is (the client
// reconnects), once as a single process and once with -multi 2.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <openssl/bn.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "bench/bench_failure.h"
#include "bench/bench_pki.h"
#include "bench/http_load.h"
#include "bench/offline_issuance.h"
#include "cli/pki_context.h"
#include "core/openssl_ptr.h"
#include "pki/certificate_builder.h"

using namespace gridtrust;
using namespace gridtrust::bench;

namespace {

using OcspRequestPtr = std::unique_ptr<OCSP_REQUEST, OsslDeleter<OCSP_REQUEST_free>>;
using OcspResponsePtr = std::unique_ptr<OCSP_RESPONSE, OsslDeleter<OCSP_RESPONSE_free>>;
using OcspBasicRespPtr = std::unique_ptr<OCSP_BASICRESP, OsslDeleter<OCSP_BASICRESP_free>>;
using OcspCertIdPtr = std::unique_ptr<OCSP_CERTID, OsslDeleter<OCSP_CERTID_free>>;

struct Leaf {
  X509Ptr cert;
  bool revoked = false;
  std::string request;  // DER OCSPRequest
};

std::string ocsp_request(X509* leaf, X509* issuer) {
  OcspRequestPtr req(OCSP_REQUEST_new());
  OCSP_CERTID* id = OCSP_cert_to_id(nullptr, leaf, issuer);  // SHA-1, as most clients
  if (!req || !id || !OCSP_request_add0_id(req.get(), id)) die("cannot build an OCSP request");
  unsigned char* der = nullptr;
  int n = i2d_OCSP_REQUEST(req.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

// responseStatus of a DER OCSPResponse is successful (RFC 6960 4.2.1), read from the
// first bytes so that the client spends as little as possible on each answer.
bool successful_ocsp(int status, const std::string& body) {
  if (status != 200 || body.size() < 8 || static_cast<unsigned char>(body[0]) != 0x30) return false;
  auto len = static_cast<unsigned char>(body[1]);
  std::size_t at = 2 + (len & 0x80 ? (len & 0x7f) : 0);
  return at + 3 <= body.size() && body[at] == 0x0a && body[at + 1] == 0x01 && body[at + 2] == 0x00;
}

// The status one response gives for a leaf: V_OCSP_CERTSTATUS_*, or -1.
int answered_status(const std::string& body, X509* leaf, X509* issuer) {
  const auto* p = reinterpret_cast<const unsigned char*>(body.data());
  OcspResponsePtr resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(body.size())));
  if (!resp || OCSP_response_status(resp.get()) != OCSP_RESPONSE_STATUS_SUCCESSFUL) return -1;
  OcspBasicRespPtr basic(OCSP_response_get1_basic(resp.get()));
  OcspCertIdPtr id(OCSP_cert_to_id(nullptr, leaf, issuer));
  int status = -1, reason = 0;
  if (!basic || !OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, nullptr, nullptr, nullptr)) return -1;
  return status;
}

// Asks once about a valid and a revoked leaf and checks the answers in full.
void check_answers(const char* who, const LoadTarget& target, const std::vector<Leaf>& leaves, X509* issuer) {
  for (std::size_t i : {std::size_t{1}, std::size_t{0}}) {
    std::string body;
    std::mutex mu;
    LoadResult r;
    // openssl ocsp -multi may take a moment after it listens before its children answer.
    for (int attempt = 0; attempt < 20 && r.responses != 1; ++attempt) {
      if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      r = drive(target, {leaves[i].request}, LoadPlan{1, 1, 1, {}}, [&](int status, const std::string& b) {
        std::lock_guard g(mu);
        body = b;
        return status == 200;
      });
    }
    int want = leaves[i].revoked ? V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_GOOD;
    int got = answered_status(body, leaves[i].cert.get(), issuer);
    if (r.responses != 1 || got != want)
      die(std::string(who) + ": wrong answer for leaf " + std::to_string(i) + ": " + std::to_string(r.responses) +
          " responses, " + std::to_string(r.failures) + " failures, status " + std::to_string(got) + ", " +
          std::to_string(body.size()) + " bytes");
  }
}

std::string utc_time(const ASN1_TIME* t) {
  std::tm tm{};
  ASN1_TIME_to_tm(t, &tm);
  char out[16];
  std::strftime(out, sizeof out, "%y%m%d%H%M%SZ", &tm);
  return out;
}

// The `openssl ca` database openssl ocsp answers from: V/R, expiry, revocation time
// and reason, serial, file, subject.
std::string openssl_index(const std::vector<Leaf>& leaves) {
  std::string index;
  const std::string revoked_at = utc_time(X509_get0_notBefore(leaves.front().cert.get()));
  for (const auto& leaf : leaves) {
    BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf.cert.get()), nullptr));
    char* hex = BN_bn2hex(bn.get());
    char* dn = X509_NAME_oneline(X509_get_subject_name(leaf.cert.get()), nullptr, 0);
    index += std::string(leaf.revoked ? "R" : "V") + "\t" + utc_time(X509_get0_notAfter(leaf.cert.get())) + "\t" +
             (leaf.revoked ? revoked_at + ",keyCompromise" : "") + "\t" + hex + "\tunknown\t" + dn + "\n";
    OPENSSL_free(hex);
    OPENSSL_free(dn);
  }
  return index;
}

void report(const char* what, const LoadResult& r) {
  std::printf("  %-44s %9.0f responses/s  (%llu in %.1f s, %llu connections, %llu failed)\n", what, r.rate(),
              static_cast<unsigned long long>(r.responses), r.seconds, static_cast<unsigned long long>(r.connects),
              static_cast<unsigned long long>(r.failures));
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 5;
  const int connections = argc > 3 ? std::atoi(argv[3]) : 16;
  if (n < 10 || seconds <= 0 || connections <= 0) die("usage: ocsp_bench [LEAVES>=10] [SECONDS] [CONNECTIONS]");

  std::printf("init, %d leaves (not timed)...\n", n);
  BenchPki pki;
  std::vector<Leaf> leaves;
  X509Ptr issuer;
  {
    auto ctx = must(app::open_pki(pki.data_dir(), 256), "open the PKI");
    issuer = must(pki::certificate_from_der(must(ctx->store->issuer("cpo-sub2"), "issuer")->cert_der), "issuer");
    for (int i = 0; i < n; ++i) {
      auto issued = must(ctx->ca->issue_from_csr("charging-station", make_station_csr(i), {}), "issue");
      Leaf leaf;
      leaf.cert = must(pki::certificate_from_der(issued.record.der), "leaf");
      if (i % 10 == 0) {
        must(ctx->ca->revoke(issued.record.serial, "keyCompromise", "bench"), "revoke");
        leaf.revoked = true;
      }
      leaf.request = ocsp_request(leaf.cert.get(), issuer.get());
      leaves.push_back(std::move(leaf));
    }
  }  // the daemon logs in to the token on its own
  std::vector<std::string> requests;
  for (const auto& l : leaves) requests.push_back(l.request);
  const LoadPlan timed{connections, 2, 0, std::chrono::seconds(seconds)};

  LoadTarget gridtrustd{pki.status_port(), "/ocsp", "application/ocsp-request", nullptr};
  LoadResult ours;
  {
    Daemon daemon(pki);
    check_answers("gridtrustd", gridtrustd, leaves, issuer.get());
    // Warm: every leaf's response signed once and cached.
    auto warm = drive(gridtrustd, requests, LoadPlan{connections, 2, requests.size(), {}}, successful_ocsp);
    if (warm.failures) die("gridtrustd: failed responses while warming the cache");
    ours = drive(gridtrustd, requests, timed, successful_ocsp);
    if (daemon.stop() != 0) die("gridtrustd did not stop cleanly");
  }

  // openssl ocsp: the same requests, answered from an index.txt written from the same
  // leaves, signed by a software key made for the benchmark.
  write_file(pki.path("index.txt"), openssl_index(leaves));
  write_file(pki.path("issuer.pem"), pki::certificate_pem(issuer.get()));
  auto made = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "
                  "'/CN=bench throwaway OCSP signer' -keyout " + sh_quote(pki.path("rkey.pem")) + " -out " +
                  sh_quote(pki.path("rsigner.pem")));
  if (made.exit_code != 0) die("openssl req: " + made.out);
  auto openssl_run = [&](const std::string& extra) {
    int port = free_port();
    ChildProcess responder("openssl ocsp -index " + sh_quote(pki.path("index.txt")) + " -port " +
                               std::to_string(port) + " -rsigner " + sh_quote(pki.path("rsigner.pem")) + " -rkey " +
                               sh_quote(pki.path("rkey.pem")) + " -CA " + sh_quote(pki.path("issuer.pem")) +
                               " -ignore_err" + extra,
                           pki.path("openssl-ocsp.log"));
    // Not probed with an empty connection: openssl 3.0's responder spins on one.
    if (!wait_for_text(pki.path("openssl-ocsp.log"), "ACCEPT", 10000)) die("openssl ocsp did not start: " + read_file(pki.path("openssl-ocsp.log")));
    LoadTarget target{port, "/", "application/ocsp-request", nullptr};
    check_answers("openssl ocsp", target, leaves, issuer.get());
    return drive(target, requests, timed, successful_ocsp);
  };
  LoadResult theirs = openssl_run("");
  LoadResult theirs_multi = openssl_run(" -multi 2");

  std::printf("\nOCSP benchmark: %d leaves (10%% revoked), warm cache, %d client connections on 2 threads, %d s each, "
              "2 cores shared by client and responder\n",
              n, connections, seconds);
  report("gridtrustd (keep-alive, HSM-signed, cached)", ours);
  report("openssl ocsp (1 request/connection)", theirs);
  report("openssl ocsp -multi 2 (1 request/connection)", theirs_multi);
  std::printf("  openssl ocsp signs with a throwaway software P-256 key made for this run; it closes every\n"
              "  connection after one response, so its clients reconnect (measured as it is)\n");
  const double ratio = theirs.rate() > 0 ? ours.rate() / theirs.rate() : 0;
  const double ratio_multi = theirs_multi.rate() > 0 ? ours.rate() / theirs_multi.rate() : 0;
  const bool met = ours.rate() >= 20000 && ratio >= 20;
  std::printf("ocsp_bench: gridtrustd %.0f/s, openssl ocsp %.0f/s (-multi 2: %.0f/s), ratio %.1fx (%.1fx); "
              "goal >= 20000/s and >= 20x: %s\n",
              ours.rate(), theirs.rate(), theirs_multi.rate(), ratio, ratio_multi, met ? "met" : "NOT met");
  return 0;
}
