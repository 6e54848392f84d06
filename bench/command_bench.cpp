// Signed OCPP command benchmark (the format: protocol/signed_command.h).
//
//   command_bench [N [sign|verify|batch]]   (N default 4000: signatures / verifications
//                                            per thread; one part only, for profiling)
//
// In one run, on one SoftHSM2 token and one store:
//  - signing: sign_command over a SetChargingProfile request with an HSM-held
//    aggregator-signer key, 1 and 2 threads, against raw PKCS#11 C_Sign (P-256,
//    CKM_ECDSA on a 32-byte digest) on the same key with as many threads;
//  - single verification: verify_command with the PkiSignerResolver (chain, EKU,
//    validity, revocation remembered until the store's revocation epoch moves) and an in-memory or the
//    store's durable replay guard, 1 and 2 threads, against a raw OpenSSL
//    EVP_PKEY_verify P-256 loop on a precomputed digest; and judge() alone;
//  - batches: sign_batch of 1,000 messages, verify_batch in messages/s, 1 and 2
//    threads each verifying its own batches, from parsed objects (in cache, as just
//    after parsing, and from memory) and from JSON text.
// One line per measurement, with its ratio where it has a baseline. Preparation
// (signing what is later verified, copies) is not timed unless a line says so.
// COMMAND_BENCH_CPU_TIME=1 divides by the busiest thread's CPU time instead of wall
// time, for a machine shared with other work.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>

#include "bench/bench_failure.h"
#include "core/digest.h"
#include "core/time.h"
#include "hsm/hsm_signer.h"
#include "hsm/token.h"
#include "pki/certificate_authority.h"
#include "pki/certificate_builder.h"
#include "pki/profile_loader.h"
#include "protocol/json_text.h"
#include "protocol/signed_command.h"
#include "protocol/signer_trust.h"
#include "store/sqlite_store.h"

using namespace gridtrust;
using bench::die;
using bench::must;
namespace fs = std::filesystem;
namespace json = boost::json;
using Seconds = std::chrono::duration<double>;

namespace {

constexpr const char* kModule = "/usr/lib/softhsm/libsofthsm2.so";
constexpr const char* kTokenLabel = "cmdbench";
constexpr std::size_t kBatchSize = 1000;

// OCPP 2.0.1 SetChargingProfileRequest: a bidirectional evening schedule (553 bytes).
constexpr const char* kSetChargingProfile =
    R"({"evseId":1,"chargingProfile":{"id":4711,"stackLevel":1,"chargingProfilePurpose":"TxDefaultProfile",)"
    R"("chargingProfileKind":"Absolute","validFrom":"2026-11-25T20:00:00Z","validTo":"2026-11-26T06:00:00Z",)"
    R"("chargingSchedule":[{"id":1,"startSchedule":"2026-11-25T20:00:00Z","duration":36000,"chargingRateUnit":"W",)"
    R"("minChargingRate":1380.0,"chargingSchedulePeriod":[{"startPeriod":0,"limit":11000.0,"numberPhases":3},)"
    R"({"startPeriod":900,"limit":7400.0,"numberPhases":3},{"startPeriod":1800,"limit":-3680.5,"numberPhases":1},)"
    R"({"startPeriod":3600,"limit":0.0}]}]}})";

// With COMMAND_BENCH_CPU_TIME=1 in the environment a rate is items over the busiest
// thread's own CPU time instead of wall time: a load-independent estimate for a machine
// shared with other work (meaningless where a thread waits, as for the durable guard).
bool cpu_time_rates() {
  static const bool on = [] {
    const char* v = std::getenv("COMMAND_BENCH_CPU_TIME");
    return v && std::string(v) == "1";
  }();
  return on;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

thread_local double cpu_at_start = 0;

// Every thread of a measurement sets itself up, then waits here; the clock runs from
// the release until the last thread is done.
class StartLine {
 public:
  explicit StartLine(int threads) : threads_(threads) {}
  void arrive() {
    ready_.fetch_add(1);
    while (!go_.load()) std::this_thread::yield();
    cpu_at_start = thread_cpu_seconds();
  }
  void release_when_ready() {
    while (ready_.load() < threads_) std::this_thread::yield();
    go_.store(true);
  }

 private:
  int threads_;
  std::atomic<int> ready_{0};
  std::atomic<bool> go_{false};
};

// Items per second over all threads; body(thread, start) returns the items it did and
// calls start.arrive() once its untimed setup is done.
double rate(int threads, const std::function<std::size_t(int, StartLine&)>& body) {
  StartLine start(threads);
  std::vector<std::size_t> done(static_cast<std::size_t>(threads));
  std::vector<double> cpu(static_cast<std::size_t>(threads));
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      done[static_cast<std::size_t>(t)] = body(t, start);
      cpu[static_cast<std::size_t>(t)] = thread_cpu_seconds() - cpu_at_start;
    });
  start.release_when_ready();
  auto begin = std::chrono::steady_clock::now();
  for (auto& t : ts) t.join();
  double secs = Seconds(std::chrono::steady_clock::now() - begin).count();
  std::size_t total = 0;
  for (std::size_t d : done) total += d;
  if (cpu_time_rates()) secs = *std::max_element(cpu.begin(), cpu.end());
  return static_cast<double>(total) / secs;
}

// The signing baseline: C_SignInit + C_Sign straight on the module, one session per
// thread, the aggregator key found by its CKA_ID.
double raw_sign_rate(const std::string& pin, const Bytes& key_id, int threads, int per_thread) {
  CK_FUNCTION_LIST* fn = p11_kit_module_load(kModule, 0);
  if (!fn || p11_kit_module_initialize(fn) != CKR_OK) die("raw: module load");
  CK_SLOT_ID slots[8];
  CK_ULONG n = 8;
  fn->C_GetSlotList(CK_TRUE, slots, &n);
  CK_SLOT_ID slot = 0;
  bool have_slot = false;
  const std::string label = kTokenLabel;
  for (CK_ULONG i = 0; i < n; ++i) {
    CK_TOKEN_INFO info;
    if (fn->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
        std::string(reinterpret_cast<char*>(info.label), label.size()) == label) {
      slot = slots[i];
      have_slot = true;
    }
  }
  if (!have_slot) die("raw: token not found");
  double r = rate(threads, [&](int, StartLine& start) -> std::size_t {
    CK_SESSION_HANDLE s;
    if (fn->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s) != CKR_OK) die("raw: C_OpenSession");
    CK_RV login = fn->C_Login(s, CKU_USER, reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.data())), pin.size());
    if (login != CKR_OK && login != CKR_USER_ALREADY_LOGGED_IN) die("raw: C_Login");
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, const_cast<std::uint8_t*>(key_id.data()), key_id.size()}};
    CK_OBJECT_HANDLE h;
    CK_ULONG found = 0;
    fn->C_FindObjectsInit(s, tmpl, 2);
    fn->C_FindObjects(s, &h, 1, &found);
    fn->C_FindObjectsFinal(s);
    if (!found) die("raw: key not found");
    CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};
    unsigned char digest[32] = {1}, sig[64];
    start.arrive();
    for (int i = 0; i < per_thread; ++i) {
      CK_ULONG len = sizeof sig;
      digest[1] = static_cast<unsigned char>(i);
      if (fn->C_SignInit(s, &mech, h) != CKR_OK || fn->C_Sign(s, digest, 32, sig, &len) != CKR_OK) die("raw: C_Sign");
    }
    fn->C_CloseSession(s);
    return static_cast<std::size_t>(per_thread);
  });
  p11_kit_module_finalize(fn);
  p11_kit_module_release(fn);
  return r;
}

// The verification baseline: one EVP_PKEY_CTX per thread, initialised once, then
// EVP_PKEY_verify on a precomputed SHA-256 digest and DER signature.
double raw_verify_rate(EVP_PKEY* key, const Bytes& digest, const Bytes& der_sig, int threads, int per_thread) {
  return rate(threads, [&](int, StartLine& start) -> std::size_t {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) die("raw: EVP_PKEY_verify_init");
    start.arrive();
    for (int i = 0; i < per_thread; ++i)
      if (EVP_PKEY_verify(ctx.get(), der_sig.data(), der_sig.size(), digest.data(), digest.size()) != 1)
        die("raw: EVP_PKEY_verify");
    return static_cast<std::size_t>(per_thread);
  });
}

Bytes der_of_raw_signature(const Bytes& raw) {
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) die("ECDSA_SIG");
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) die("i2d_ECDSA_SIG");
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

// What a verifier without a store would keep: the last accepted number per (signer,
// station), shared by all verifying threads.
class MemoryReplayGuard final : public protocol::ReplayGuard {
 public:
  Status accept(const std::string& signer, const std::string& station, std::uint64_t seq) override {
    thread_local std::string key;
    key.assign(signer).append(1, '\n').append(station);
    std::lock_guard g(mu_);
    std::uint64_t& last = last_[key];
    if (seq <= last) return reject("verify.replay", "sequence number not above the last accepted one");
    last = seq;
    return Ok{};
  }
  // Every (signer, station) back to "nothing accepted", the entries kept: a batch can
  // be verified again as a long-running verifier sees the next one.
  void rewind() {
    std::lock_guard g(mu_);
    for (auto& [key, last] : last_) last = 0;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::uint64_t> last_;
};

struct Env {
  Env() = default;
  Env(const Env&) = delete;  // removes its directory on destruction
  Env& operator=(const Env&) = delete;
  ~Env() {
    signer.reset();
    ca.reset();
    store.reset();
    token.reset();
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }

  fs::path dir;
  std::string pin = "246810";
  std::shared_ptr<hsm::Token> token;
  std::shared_ptr<store::SqliteStore> store;
  std::unique_ptr<pki::CertificateAuthority> ca;
  pki::Issued signer_cert;
  std::unique_ptr<hsm::HsmSigner> signer;
  std::string fingerprint;
};

void set_up(Env& e) {
  char tmpl[] = "/tmp/gridtrust-cmdbench-XXXXXX";
  if (!mkdtemp(tmpl)) die("mkdtemp");
  e.dir = tmpl;
  fs::create_directories(e.dir / "tokens");
  {
    FILE* f = std::fopen((e.dir / "softhsm2.conf").c_str(), "w");
    if (!f) die("softhsm2.conf");
    std::fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
                 (e.dir / "tokens").c_str());
    std::fclose(f);
  }
  setenv("SOFTHSM2_CONF", (e.dir / "softhsm2.conf").c_str(), 1);
  if (auto st = hsm::init_token(kModule, kTokenLabel, SecureString("1357"), SecureString(e.pin)); !st.ok())
    die("init_token: " + st.error().message);
  hsm::TokenConfig tc;
  tc.module_path = kModule;
  tc.token_uri = std::string("pkcs11:token=") + kTokenLabel;
  tc.pin = SecureString(e.pin);
  e.token = must(hsm::Token::open(std::move(tc)), "token");
  e.store = must(store::SqliteStore::open((e.dir / "bench.db").string()), "store");
  auto profiles = must(pki::load_profiles(std::string(GRIDTRUST_SOURCE_DIR) + "/config/profiles.yaml"), "profiles");
  pki::PkiConfig cfg;
  cfg.endpoints = {"http://127.0.0.1:8081/crl/", "http://127.0.0.1:8081/ocsp"};
  e.ca = std::make_unique<pki::CertificateAuthority>(profiles, e.token, e.store, cfg);
  if (auto s = e.ca->create_hierarchy("bench"); !s.ok()) die("hierarchy: " + s.error().message);
  e.signer_cert = must(e.ca->issue_with_hsm_key("aggregator-signer", "CN=agg-bench,O=Bench Fleet", {}), "signer");
  auto key = must(e.token->find_key_by_id(*e.signer_cert.record.key_id), "signer key");
  e.signer = std::make_unique<hsm::HsmSigner>(e.token, std::move(key));
  e.fingerprint = base64url_encode(sha256(e.signer_cert.record.der));
}

protocol::CommandSigner command_signer(const Env& e) {
  return protocol::CommandSigner{*e.signer, e.signer_cert.record.der, e.signer_cert.chain_der};
}

// `count` signed SetChargingProfile requests for one station, sequence numbers from
// one reserved block.
std::vector<json::object> signed_messages(const Env& e, const json::object& payload, const std::string& station,
                                          std::size_t count, std::int64_t now) {
  std::uint64_t first = must(e.store->reserve_sequences(e.fingerprint, station, count), "reserve_sequences");
  std::vector<json::object> out;
  out.reserve(count);
  auto signer = command_signer(e);
  for (std::size_t i = 0; i < count; ++i)
    out.push_back(must(protocol::sign_command(payload, signer, {"SetChargingProfile", station, first + i}, {now, 300}),
                       "sign_command"));
  return out;
}

// One line per measurement: figure, and the ratio to its baseline when it has one.
void line(const char* what, int threads, double value, const char* unit, double base = -1, const char* base_name = "") {
  std::printf("  %-46s %d thread%s: %10.0f %-16s", what, threads, threads == 1 ? " " : "s", value, unit);
  if (base > 0) std::printf(" ratio to %s = %.2f", base_name, value / base);
  std::printf("\n");
}

struct Figures {
  double raw_sign[3] = {-1, -1, -1}, sign[3] = {-1, -1, -1};
  double raw_verify[3] = {-1, -1, -1}, verify_memory[3] = {-1, -1, -1}, verify_durable[3] = {-1, -1, -1};
  double judge[3] = {-1, -1, -1};
  double batch_sign[3] = {-1, -1, -1}, batch_warm[3] = {-1, -1, -1}, batch_cold[3] = {-1, -1, -1};
  double batch_text[3] = {-1, -1, -1};
};

struct Run {
  Env& env;
  int n;
  std::int64_t now;
  json::object payload;
  Figures f;

  // Sequence numbers: one block per (signer, station) reserved durably before timing,
  // as CommandService does; the timed loop takes numbers from it.
  double sign_rate(int threads) {
    return rate(threads, [&](int t, StartLine& start) -> std::size_t {
      const std::string station = "CS-SIGN-" + std::to_string(threads) + "-" + std::to_string(t);
      std::uint64_t seq = must(env.store->reserve_sequences(env.fingerprint, station, static_cast<std::uint64_t>(n)),
                               "reserve_sequences");
      auto signer = command_signer(env);
      start.arrive();
      for (int i = 0; i < n; ++i)
        must(protocol::sign_command(payload, signer, {"SetChargingProfile", station, seq++}, {now, 300}), "sign_command");
      return static_cast<std::size_t>(n);
    });
  }

  void signing() {
    sign_rate(1);  // warm-up: sessions in the pool
    for (int t : {1, 2}) f.raw_sign[t] = raw_sign_rate(env.pin, *env.signer_cert.record.key_id, t, n);
    for (int t : {1, 2}) f.sign[t] = sign_rate(t);
    std::printf("signing: sequence numbers from one block per station reserved once via store.reserve_sequences;\n"
                "the request is copied into sign_command each time, as a caller hands it over\n");
    for (int t : {1, 2}) line("raw C_Sign P-256 (same token, same key)", t, f.raw_sign[t], "signatures/s");
    for (int t : {1, 2}) line("sign_command", t, f.sign[t], "commands/s", f.raw_sign[t], "raw C_Sign");
  }

  void single_verification() {
    protocol::PkiSignerResolver resolver(*env.ca);
    // Three stations: one for 1 thread, two for 2 threads (the durable guard remembers).
    std::vector<std::vector<json::object>> by_station;
    for (int s = 0; s < 3; ++s)
      by_station.push_back(signed_messages(env, payload, "CS-VERIFY-" + std::to_string(s), static_cast<std::size_t>(n), now));
    protocol::VerifyOptions vopt;
    vopt.now = now;
    vopt.action = "SetChargingProfile";
    auto verify_rate = [&](int threads, protocol::ReplayGuard& replay, std::size_t per_thread) {
      return rate(threads, [&](int t, StartLine& start) -> std::size_t {
        const std::size_t station = threads == 1 ? 0 : static_cast<std::size_t>(1 + t);
        const auto& msgs = by_station[station];
        protocol::VerifyOptions o = vopt;
        o.station = "CS-VERIFY-" + std::to_string(station);
        start.arrive();
        for (std::size_t i = 0; i < per_thread; ++i) must(protocol::verify_command(msgs[i], o, resolver, replay), "verify");
        return per_thread;
      });
    };
    {
      MemoryReplayGuard warm;  // the resolver's first look at the signer (chain check)
      verify_rate(1, warm, 50);
    }
    Bytes digest = sha256(std::string_view("a precomputed digest"));
    Bytes der_sig = der_of_raw_signature(must(env.signer->sign_raw(digest), "sign digest"));
    EvpPkeyPtr pub(X509_get_pubkey(must(pki::certificate_from_der(env.signer_cert.record.der), "cert").get()));
    for (int t : {1, 2}) f.raw_verify[t] = raw_verify_rate(pub.get(), digest, der_sig, t, n);
    for (int t : {1, 2}) {
      MemoryReplayGuard g;
      f.verify_memory[t] = verify_rate(t, g, static_cast<std::size_t>(n));
    }
    // Part of the above: the signer's trust (its revocation remembered between revocations).
    auto signer_cert = must(resolver.find(env.fingerprint, {}), "find");
    for (int t : {1, 2})
      f.judge[t] = rate(t, [&](int, StartLine& start) -> std::size_t {
        start.arrive();
        for (int i = 0; i < n; ++i) must(resolver.judge(*signer_cert, now), "judge");
        return static_cast<std::size_t>(n);
      });
    // The durable guard commits every accepted number (one fsync per commit, shared by
    // concurrent threads): fewer messages keep the run short.
    const std::size_t durable_n = static_cast<std::size_t>(n) / 4;
    auto commits_before = env.store->commits();
    protocol::StoreReplayGuard durable(*env.store);
    for (int t : {1, 2}) f.verify_durable[t] = verify_rate(t, durable, durable_n);
    auto durable_commits = env.store->commits() - commits_before;
    std::printf("\nsingle-message verification: verify_command with the PkiSignerResolver (revocation remembered\n"
                "until the store's revocation epoch moves); a station checking its own commands\n");
    for (int t : {1, 2}) line("raw EVP_PKEY_verify P-256 (digest given)", t, f.raw_verify[t], "verifications/s");
    for (int t : {1, 2})
      line("verify_command, in-memory replay guard", t, f.verify_memory[t], "verifications/s", f.raw_verify[t], "raw verify");
    for (int t : {1, 2})
      line("verify_command, StoreReplayGuard (durable)", t, f.verify_durable[t], "verifications/s", f.raw_verify[t],
           "raw verify");
    for (int t : {1, 2}) line("of which PkiSignerResolver::judge alone", t, f.judge[t], "judgements/s");
    std::printf("  durable guard: %llu commits for %zu accepted sequence numbers\n",
                static_cast<unsigned long long>(durable_commits), 3 * durable_n);
  }

  void batches() {
    protocol::PkiSignerResolver resolver(*env.ca);
    // Each thread signs its own batches: 1,000 requests to 1,000 stations, numbers rising
    // from batch to batch; the batch signing rate is measured on the way.
    const std::size_t batches_per_thread = 8;
    std::vector<std::vector<std::vector<json::object>>> signed_batches(2);
    auto batch_sign_rate = [&](int threads) {
      return rate(threads, [&](int t, StartLine& start) -> std::size_t {
        auto signer = command_signer(env);
        std::vector<std::vector<protocol::BatchItem>> items(batches_per_thread);
        for (std::size_t b = 0; b < batches_per_thread; ++b)
          for (std::size_t j = 0; j < kBatchSize; ++j)
            items[b].push_back({payload, {"SetChargingProfile", "B" + std::to_string(t) + "-" + std::to_string(j), b + 1}});
        start.arrive();
        auto& mine = signed_batches[static_cast<std::size_t>(t)];
        mine.clear();
        for (auto& it : items) mine.push_back(must(protocol::sign_batch(std::move(it), signer, {now, 300}), "sign_batch"));
        return batches_per_thread * kBatchSize;
      });
    };
    for (int t : {1, 2}) f.batch_sign[t] = batch_sign_rate(t);
    std::vector<std::vector<std::vector<std::string>>> texts(2);
    for (std::size_t t = 0; t < 2; ++t)
      for (const auto& b : signed_batches[t]) {
        texts[t].emplace_back();
        for (const auto& m : b) texts[t].back().push_back(json::serialize(m));
      }
    protocol::VerifyOptions bopt;
    bopt.now = now;
    // The same batches again and again: before each, the thread's in-memory guard is
    // rewound, its 1,000 stations staying known as in a long-running verifier.
    // Warm: one batch over and over, its objects in cache as just after parsing.
    // Cold: the thread's 8 batches in turn (~30 MB of objects for two threads), mostly
    // from memory. Text: parse_strict of each entry, then verify_batch.
    enum class Source { warm, cold, text };
    const std::size_t per_thread = std::max<std::size_t>(8, static_cast<std::size_t>(n) / 50);  // batches
    auto batch_verify_rate = [&](int threads, Source source) {
      return rate(threads, [&](int t, StartLine& start) -> std::size_t {
        const auto& mine = signed_batches[static_cast<std::size_t>(t)];
        const auto& my_texts = texts[static_cast<std::size_t>(t)];
        std::vector<json::object> parsed;
        MemoryReplayGuard replay;
        must(protocol::verify_batch(mine[0], bopt, resolver, replay), "verify_batch");  // the guard learns the stations
        start.arrive();
        for (std::size_t v = 0; v < per_thread; ++v) {
          replay.rewind();
          const std::size_t b = source == Source::warm ? 0 : v % mine.size();
          const std::vector<json::object>* entries = &mine[b];
          if (source == Source::text) {
            parsed.clear();
            for (const auto& text : my_texts[b])
              parsed.push_back(std::move(must(protocol::parse_strict(text), "parse").as_object()));
            entries = &parsed;
          }
          if (must(protocol::verify_batch(*entries, bopt, resolver, replay), "verify_batch").size() != kBatchSize)
            die("verify_batch: wrong size");
        }
        return per_thread * kBatchSize;
      });
    };
    batch_verify_rate(2, Source::cold);  // warm-up: caches, the allocator's arenas
    for (int t : {1, 2}) f.batch_warm[t] = batch_verify_rate(t, Source::warm);
    for (int t : {1, 2}) f.batch_cold[t] = batch_verify_rate(t, Source::cold);
    for (int t : {1, 2}) f.batch_text[t] = batch_verify_rate(t, Source::text);
    std::printf("\nbatches of %zu: one HSM signature per batch; an entry is %zu bytes of JSON; each thread verifies its\n"
                "own batches with its own in-memory replay guard\n",
                kBatchSize, texts[0][0][0].size());
    for (int t : {1, 2}) line("sign_batch", t, f.batch_sign[t], "messages/s");
    for (int t : {1, 2}) line("verify_batch, parsed objects in cache", t, f.batch_warm[t], "messages/s");
    for (int t : {1, 2}) line("verify_batch, parsed objects from memory", t, f.batch_cold[t], "messages/s");
    for (int t : {1, 2}) line("parse_strict + verify_batch, from text", t, f.batch_text[t], "messages/s");
    std::printf("  goal 1,000,000 messages/s with 2 threads: %s in cache, %s from memory\n",
                f.batch_warm[2] >= 1e6 ? "met" : "NOT met", f.batch_cold[2] >= 1e6 ? "met" : "NOT met");
  }
};

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 4000;
  if (n < 100) die("N must be at least 100");
  const std::string only = argc > 2 ? argv[2] : "";
  if (!only.empty() && only != "sign" && only != "verify" && only != "batch") die("part must be sign, verify or batch");
  Env env;
  set_up(env);
  Run run{env, n, to_unix(now_seconds()), json::parse(kSetChargingProfile).as_object(), {}};
  if (cpu_time_rates())
    std::printf("COMMAND_BENCH_CPU_TIME=1: rates over the busiest thread's CPU time, not wall time\n");
  std::printf("signed-command benchmark: N=%d per thread; SetChargingProfile request of %zu bytes (as sent: %zu); "
              "aggregator-signer P-256 key in SoftHSM2; SQLite WAL synchronous=FULL\n\n",
              n, std::string_view(kSetChargingProfile).size(), json::serialize(run.payload).size());
  if (only.empty() || only == "sign") run.signing();
  if (only.empty() || only == "verify") run.single_verification();
  if (only.empty() || only == "batch") run.batches();
  return 0;
}
