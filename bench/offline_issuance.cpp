#include "bench/offline_issuance.h"

#include <chrono>
#include <deque>
#include <future>
#include <thread>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "bench/bench_failure.h"
#include "core/openssl_ptr.h"
#include "pki/subject.h"

namespace gridtrust::bench {

Bytes make_station_csr(int i) {
  EvpPkeyPtr key(EVP_EC_gen("prime256v1"));
  X509ReqPtr req(X509_REQ_new());
  auto name = must(pki::parse_subject("CN=station-" + std::to_string(i) + ",O=Bench CPO"), "subject");
  X509_REQ_set_subject_name(req.get(), name.get());
  X509_REQ_set_pubkey(req.get(), key.get());
  X509_REQ_sign(req.get(), key.get(), EVP_sha256());
  int n = i2d_X509_REQ(req.get(), nullptr);
  Bytes der(n);
  unsigned char* p = der.data();
  i2d_X509_REQ(req.get(), &p);
  return der;
}

std::string csr_pem(const Bytes& der) {
  std::string out = "-----BEGIN CERTIFICATE REQUEST-----\n";
  std::string b64 = base64_encode(der);
  for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + "-----END CERTIFICATE REQUEST-----\n";
}

double issuance_rate(pki::CertificateAuthority& ca, const std::vector<Bytes>& csrs, std::size_t from, int threads,
                     int count, const std::string& profile) {
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      std::deque<std::future<Status>> window;
      for (int i = t; i < count; i += threads) {
        auto p = ca.issue_from_csr_async(profile, csrs[from + i], {});
        if (!p.ok()) die("issue: " + p.error().code + ": " + p.error().message);
        window.push_back(std::move(p->durable));
        if (window.size() >= 128) {
          if (!window.front().get().ok()) die("commit failed");
          window.pop_front();
        }
      }
      for (auto& f : window)
        if (!f.get().ok()) die("commit failed");
    });
  for (auto& t : ts) t.join();
  return count / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace gridtrust::bench
