// Issuance benchmark: N certificates from CSRs through a SoftHSM2 token, each durably
// stored, with 1 and 2 worker threads; the baseline is the raw PKCS#11 C_Sign rate
// (P-256, CKM_ECDSA on a 32-byte digest) on the same token in the same run.
//
//   issuance_bench [N]        (default 2000)
//
// Prints certificates/s and the ratio issuance/raw. CSR generation is not timed.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <deque>
#include <future>
#include <thread>
#include <vector>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>

#include "bench/bench_failure.h"
#include "bench/offline_issuance.h"
#include "hsm/evp_bridge.h"
#include "hsm/hsm_signer.h"
#include "hsm/token.h"
#include "pki/certificate_authority.h"
#include "pki/profile_loader.h"
#include "pki/subject.h"
#include "store/sqlite_store.h"

using namespace gridtrust;
using bench::die;
using bench::issuance_rate;
using bench::must;
namespace fs = std::filesystem;
using Seconds = std::chrono::duration<double>;

namespace {

constexpr const char* kModule = "/usr/lib/softhsm/libsofthsm2.so";

// The baseline: C_SignInit + C_Sign straight on the module, one session per thread.
double raw_sign_rate(const std::string& pin, const Bytes& key_id, int threads, int per_thread) {
  CK_FUNCTION_LIST* fn = p11_kit_module_load(kModule, 0);
  if (!fn || p11_kit_module_initialize(fn) != CKR_OK) die("raw: module load");
  CK_ULONG n = 1;
  CK_SLOT_ID slots[8];
  n = 8;
  fn->C_GetSlotList(CK_TRUE, slots, &n);
  CK_SLOT_ID slot = 0;
  for (CK_ULONG i = 0; i < n; ++i) {
    CK_TOKEN_INFO info;
    if (fn->C_GetTokenInfo(slots[i], &info) == CKR_OK && std::string((char*)info.label, 5) == "bench") slot = slots[i];
  }
  auto worker = [&](std::promise<void> ready, std::shared_future<void> go) {
    CK_SESSION_HANDLE s;
    fn->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s);
    fn->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin.data(), pin.size());
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, (void*)key_id.data(), key_id.size()}};
    CK_OBJECT_HANDLE h;
    CK_ULONG found = 0;
    fn->C_FindObjectsInit(s, tmpl, 2);
    fn->C_FindObjects(s, &h, 1, &found);
    fn->C_FindObjectsFinal(s);
    if (!found) die("raw: key not found");
    CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};
    unsigned char digest[32] = {1}, sig[64];
    ready.set_value();
    go.wait();
    for (int i = 0; i < per_thread; ++i) {
      CK_ULONG len = sizeof sig;
      digest[1] = static_cast<unsigned char>(i);
      if (fn->C_SignInit(s, &mech, h) != CKR_OK || fn->C_Sign(s, digest, 32, sig, &len) != CKR_OK) die("raw: C_Sign");
    }
    fn->C_CloseSession(s);
  };
  std::promise<void> go;
  std::shared_future<void> go_f = go.get_future().share();
  std::vector<std::thread> ts;
  std::vector<std::future<void>> readies;
  for (int t = 0; t < threads; ++t) {
    std::promise<void> ready;
    readies.push_back(ready.get_future());
    ts.emplace_back(worker, std::move(ready), go_f);
  }
  for (auto& r : readies) r.wait();
  auto start = std::chrono::steady_clock::now();
  go.set_value();
  for (auto& t : ts) t.join();
  double secs = Seconds(std::chrono::steady_clock::now() - start).count();
  p11_kit_module_finalize(fn);
  p11_kit_module_release(fn);
  return threads * per_thread / secs;
}

// Signatures through the pool (Token::sign) and through the EVP bridge
// (EVP_DigestSign over a certificate-sized body), to show each layer's cost.
std::pair<double, double> layered_sign_rates(const std::shared_ptr<hsm::Token>& token, const hsm::KeyRef& key, int count) {
  Bytes digest(32, 7);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i)
    if (!token->sign(key, digest).ok()) die("Token::sign");
  double pool = count / Seconds(std::chrono::steady_clock::now() - start).count();
  auto pkey = must(hsm::make_evp_pkey(std::make_shared<hsm::HsmSigner>(token, key)), "bridge");
  Bytes body(400, 0x42), sig(80);
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    std::size_t len = sig.size();
    if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1 ||
        EVP_DigestSign(ctx.get(), sig.data(), &len, body.data(), body.size()) != 1)
      die("EVP_DigestSign through the bridge");
  }
  double bridge = count / Seconds(std::chrono::steady_clock::now() - start).count();
  return {pool, bridge};
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  if (n <= 0) die("N must be positive");
  char tmpl[] = "/tmp/gridtrust-bench-XXXXXX";
  if (!mkdtemp(tmpl)) die("mkdtemp");
  fs::path dir = tmpl;
  fs::create_directories(dir / "tokens");
  {
    FILE* f = std::fopen((dir / "softhsm2.conf").c_str(), "w");
    std::fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
                 (dir / "tokens").c_str());
    std::fclose(f);
  }
  setenv("SOFTHSM2_CONF", (dir / "softhsm2.conf").c_str(), 1);
  const std::string pin = "246810";
  if (auto st = hsm::init_token(kModule, "bench", SecureString("1357"), SecureString(pin)); !st.ok())
    die("init_token: " + st.error().message);
  hsm::TokenConfig tc;
  tc.module_path = kModule;
  tc.token_uri = "pkcs11:token=bench";
  tc.pin = SecureString(pin);
  std::shared_ptr<hsm::Token> token = must(hsm::Token::open(std::move(tc)), "token");
  std::shared_ptr<store::Store> st = must(store::SqliteStore::open((dir / "bench.db").string()), "store");
  auto profiles = must(pki::load_profiles(std::string(GRIDTRUST_SOURCE_DIR) + "/config/profiles.yaml"), "profiles");
  pki::PkiConfig cfg;
  cfg.endpoints = {"http://127.0.0.1:8081/crl/", "http://127.0.0.1:8081/ocsp"};
  cfg.serial_block = 256;
  pki::CertificateAuthority ca(profiles, token, st, cfg);
  if (auto s = ca.create_hierarchy("bench"); !s.ok()) die("hierarchy: " + s.error().message);
  auto issuer = must(st->issuer("cpo-sub2"), "issuer");

  std::printf("generating %d CSRs (not timed)...\n", 2 * n + 100);
  std::vector<Bytes> csrs;
  for (int i = 0; i < 2 * n + 100; ++i) csrs.push_back(bench::make_station_csr(i));
  issuance_rate(ca, csrs, 0, 1, 100);  // warm-up: issuer keys, caches, first serial block

  double raw1 = raw_sign_rate(pin, issuer->key_id, 1, n * 2);
  double raw2 = raw_sign_rate(pin, issuer->key_id, 2, n);
  auto issuer_key = must(token->find_key_by_id(issuer->key_id), "issuer key");
  auto [pool1, bridge1] = layered_sign_rates(token, issuer_key, n);
  double iss1 = issuance_rate(ca, csrs, 100, 1, n);
  double iss2 = issuance_rate(ca, csrs, 100 + n, 2, n);
  std::printf("\nissuance benchmark: %d certificates per run, P-256 CA key in SoftHSM2, SQLite WAL synchronous=FULL\n", n);
  std::printf("  raw C_Sign (P-256)     1 thread : %9.0f signatures/s\n", raw1);
  std::printf("  raw C_Sign (P-256)     2 threads: %9.0f signatures/s\n", raw2);
  std::printf("  Token::sign (pool)     1 thread : %9.0f signatures/s   ratio to raw = %.2f\n", pool1, pool1 / raw1);
  std::printf("  EVP bridge sign        1 thread : %9.0f signatures/s   ratio to raw = %.2f\n", bridge1, bridge1 / raw1);
  std::printf("  issuance from CSR      1 thread : %9.0f certificates/s   ratio issuance/raw = %.2f\n", iss1, iss1 / raw1);
  std::printf("  issuance from CSR      2 threads: %9.0f certificates/s   ratio issuance/raw = %.2f\n", iss2, iss2 / raw2);
  std::printf("  durable commits: %llu for %d certificates (group commit)\n",
              static_cast<unsigned long long>(static_cast<store::SqliteStore&>(*st).commits()), 2 * n + 100);
  token.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
