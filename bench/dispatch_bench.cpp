// Dispatch engine benchmark (dispatch/engine.h: Engine::submit, submit_batch,
// apply_target; dispatch/allocation.h: allocate).
//
//   dispatch_bench [N [PART]]   N: single-signed setpoints per thread (default 5000);
//                               PART: all (default), singles, many, batched, stages, latency
//                               or allocation (one part alone, e.g. under perf; many:
//                               the 100-per-call line of singles alone)
//
// In one run, on one SoftHSM2 token and one SQLite store (in $TMPDIR, default /tmp):
//  - baseline: a raw OpenSSL EVP_PKEY_verify P-256 loop on a precomputed digest, 2 threads,
//    at the start and again right before and after each single-signed line (the ratio
//    is to the mean of those two: this shared machine's speed drifts within a run);
//  - single-signed setpoints enforced per second (verification with the store-backed
//    signer trust, durable sequence acceptance, envelope, commit, audit queued): one
//    per call from 2 submitting threads and from 64 (group commit shares one fsync
//    among concurrent submitters), and 100 per call (Engine::submit_many, what a POST
//    of {"setpoints":[...]} does: each still verified alone) from 2 threads and from 4
//    (more callers than cores: one verifies while another waits for its commit); commands
//    returned unsigned, then signed by the HSM-held daemon key; ratio to the raw
//    verify loop;
//  - batches of 1,000 setpoints under one signature, 2 threads;
//  - latency from receipt to the emitted (HSM-signed) command, open loop at 10,000
//    setpoints/s offered one by one through the intake (dispatch/intake.h, as
//    gridtrustd takes single setpoints): p50 / p99;
//  - allocation of a fleet target across 100,000 EVs: allocate() per policy, and the
//    whole apply_target (envelopes of every EV, allocation, commit).
// Messages are signed before the clock starts; nothing else is prepared.
// The allocator is tuned as gridtrustd tunes it (core/allocator.h), so the figures are
// the daemon's; GLIBC_TUNABLES= (set, even empty) leaves glibc's defaults for an A/B.
// Instructions per setpoint, steadier than any timing on a shared machine, for an A/B:
//   DISPATCH_BENCH_RAW=10 valgrind --tool=callgrind --toggle-collect='*Engine::submit_batch*'
//     --toggle-collect='*record_dispatch*' dispatch_bench 100 batched
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <boost/json.hpp>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "bench/bench_failure.h"
#include "bench/setpoint_message.h"
#include "core/allocator.h"
#include "core/digest.h"
#include "core/time.h"
#include "dispatch/charging_profile.h"
#include "dispatch/engine.h"
#include "dispatch/setpoint.h"
#include "dispatch/intake.h"
#include "hsm/hsm_signer.h"
#include "hsm/token.h"
#include "pki/certificate_authority.h"
#include "pki/profile_loader.h"
#include "protocol/signer_trust.h"
#include "store/sqlite_store.h"

using namespace gridtrust;
using bench::die;
using bench::must;
namespace fs = std::filesystem;
namespace json = boost::json;
namespace dp = gridtrust::dispatch;
using Steady = std::chrono::steady_clock;

namespace {

constexpr const char* kModule = "/usr/lib/softhsm/libsofthsm2.so";
constexpr int kStations = 2000;

struct Env {
  fs::path dir;
  std::shared_ptr<hsm::Token> token;
  std::shared_ptr<store::SqliteStore> store;
  std::unique_ptr<pki::CertificateAuthority> ca;
  pki::Issued aggregator, daemon;
  std::unique_ptr<hsm::HsmSigner> aggregator_key, daemon_key;
  ~Env() {
    aggregator_key.reset();
    daemon_key.reset();
    ca.reset();
    store.reset();
    token.reset();
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

void set_up(Env& e) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/gridtrust-dispatchbench-XXXXXX";
  if (!mkdtemp(tmpl.data())) die("mkdtemp");
  e.dir = tmpl;
  fs::create_directories(e.dir / "tokens");
  FILE* f = std::fopen((e.dir / "softhsm2.conf").c_str(), "w");
  if (!f) die("softhsm2.conf");
  std::fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", (e.dir / "tokens").c_str());
  std::fclose(f);
  setenv("SOFTHSM2_CONF", (e.dir / "softhsm2.conf").c_str(), 1);
  if (auto st = hsm::init_token(kModule, "dispatchbench", SecureString("1357"), SecureString("2468")); !st.ok())
    die("init_token: " + st.error().message);
  hsm::TokenConfig tc;
  tc.module_path = kModule;
  tc.token_uri = "pkcs11:token=dispatchbench";
  tc.pin = SecureString("2468");
  e.token = must(hsm::Token::open(std::move(tc)), "token");
  e.store = must(store::SqliteStore::open((e.dir / "bench.db").string()), "store");
  auto profiles = must(pki::load_profiles(std::string(GRIDTRUST_SOURCE_DIR) + "/config/profiles.yaml"), "profiles");
  pki::PkiConfig cfg;
  cfg.endpoints = {"http://127.0.0.1:8081/crl/", "http://127.0.0.1:8081/ocsp"};
  e.ca = std::make_unique<pki::CertificateAuthority>(profiles, e.token, e.store, cfg);
  if (auto s = e.ca->create_hierarchy("bench"); !s.ok()) die("hierarchy: " + s.error().message);
  e.aggregator = must(e.ca->issue_with_hsm_key("aggregator-signer", "CN=agg-bench,O=Fleet", {}), "aggregator");
  e.aggregator_key = std::make_unique<hsm::HsmSigner>(e.token, must(e.token->find_key_by_id(*e.aggregator.record.key_id), "key"));
  e.daemon = must(e.ca->issue_with_hsm_key("aggregator-signer", "CN=gridtrustd,O=Fleet", {}), "daemon");
  e.daemon_key = std::make_unique<hsm::HsmSigner>(e.token, must(e.token->find_key_by_id(*e.daemon.record.key_id), "key"));
}

// kStations stations with one EVSE and one EV each, 20 per site; site limits far
// away so that every setpoint is applied (the enforcement work is the same).
dp::Fleet bench_fleet(std::int64_t now) {
  dp::Fleet f;
  for (int i = 0; i < kStations; ++i) {
    const std::string site = "site-" + std::to_string(i / 20), st = "CS-" + std::to_string(i);
    if (!f.sites.count(site)) f.sites[site] = dp::Site{site, 1e9, 1e9, dp::EnforcementPolicy::Clamp, 0};
    f.stations[st] = dp::Station{st, site, "Fleet"};
    f.evses[dp::evse_key(st, 1)] = dp::Evse{st, 1, 11000, 11000, 0};
    dp::Session s;
    s.ev = "EV-" + std::to_string(i);
    s.station = st;
    s.evse = 1;
    s.battery_wh = 60000;
    s.soc = 0.5;
    s.soc_min = 0.2;
    s.soc_max = 0.9;
    s.max_charge_w = 11000;
    s.max_discharge_w = 11000;
    s.eta_charge = s.eta_discharge = 0.95;
    s.departure = now + 8 * 3600;
    s.energy_needed_wh = 40000;
    f.sessions[dp::evse_key(st, 1)] = s;
  }
  return f;
}

json::object setpoint(double w) { return bench::setpoint_message(w); }

// Sequence numbers per station above everything used so far in the run.
std::map<std::string, std::uint64_t> g_seq;

// `per_station` messages for each of `stations`, interleaved so that consecutive
// messages go to different stations; thread t of n later takes every n-th station.
std::vector<json::object> sign_singles(Env& e, int stations, int per_station, std::int64_t now) {
  protocol::CommandSigner signer{*e.aggregator_key, e.aggregator.record.der, {}};
  std::vector<json::object> out;
  out.reserve(static_cast<std::size_t>(stations) * per_station);
  for (int k = 0; k < per_station; ++k)
    for (int i = 0; i < stations; ++i) {
      const std::string st = "CS-" + std::to_string(i);
      out.push_back(must(protocol::sign_command(setpoint(1000 + (k % 7) * 100), signer,
                                                {"SetChargingProfile", st, ++g_seq[st]}, {now, 600}),
                         "sign"));
    }
  return out;
}

double raw_verify_rate(int threads, int per_thread) {
  EvpPkeyCtxPtr kctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!kctx || EVP_PKEY_keygen_init(kctx.get()) != 1 ||
      EVP_PKEY_CTX_set_group_name(kctx.get(), "P-256") != 1 || EVP_PKEY_keygen(kctx.get(), &raw) != 1)
    die("raw: keygen");
  EvpPkeyPtr key(raw);
  Bytes digest = sha256(to_bytes("a setpoint"));
  EvpPkeyCtxPtr sctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  std::size_t len = 0;
  EVP_PKEY_sign_init(sctx.get());
  EVP_PKEY_sign(sctx.get(), nullptr, &len, digest.data(), digest.size());
  Bytes sig(len);
  if (EVP_PKEY_sign(sctx.get(), sig.data(), &len, digest.data(), digest.size()) != 1) die("raw: sign");
  sig.resize(len);
  auto t0 = Steady::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
      if (EVP_PKEY_verify_init(ctx.get()) != 1) die("raw: verify_init");
      for (int i = 0; i < per_thread; ++i)
        if (EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), digest.data(), digest.size()) != 1) die("raw: verify");
    });
  for (auto& t : ts) t.join();
  return threads * per_thread / std::chrono::duration<double>(Steady::now() - t0).count();
}

// Submits `msgs` from `threads` threads; each station's messages go to one thread, in
// their order.
double run_singles(dp::Engine& engine, const std::vector<json::object>& msgs, int threads, std::int64_t now) {
  std::atomic<int> bad{0};
  auto t0 = Steady::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (std::size_t i = 0; i < msgs.size(); ++i)
        if (static_cast<int>((i % kStations) % threads) == t && !engine.submit(msgs[i], now).applied()) ++bad;
    });
  for (auto& t : ts) t.join();
  const double rate = msgs.size() / std::chrono::duration<double>(Steady::now() - t0).count();
  if (bad) die("singles: " + std::to_string(bad.load()) + " not applied");
  return rate;
}

// The same, `per_call` messages at a time through submit_many (what one POST of
// {"setpoints":[...]} does): each message still verified on its own.
double run_many(dp::Engine& engine, const std::vector<json::object>& msgs, int threads, std::size_t per_call,
                std::int64_t now) {
  std::vector<std::vector<std::vector<json::object>>> calls(threads);
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    auto& mine = calls[(i % kStations) % threads];
    if (mine.empty() || mine.back().size() == per_call) mine.emplace_back();
    mine.back().push_back(msgs[i]);
  }
  std::atomic<int> bad{0};
  auto t0 = Steady::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (const auto& call : calls[t])
        for (const auto& d : engine.submit_many(call, now))
          if (!d.applied()) ++bad;
    });
  for (auto& t : ts) t.join();
  const double rate = msgs.size() / std::chrono::duration<double>(Steady::now() - t0).count();
  if (bad) die("many: " + std::to_string(bad.load()) + " not applied");
  return rate;
}

double process_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

void line(const char* what, double value, const char* unit, double base = -1, const char* base_name = "") {
  std::printf("  %-62s %12.0f %-14s", what, value, unit);
  if (base > 0) std::printf(" ratio to %s = %.2f", base_name, value / base);
  std::printf("\n");
}

// What a batched setpoint costs at the least: each stage the engine cannot leave out,
// alone on one thread over the same batches, in µs per setpoint. 1,000,000 setpoints/s
// on 2 cores leaves 2 µs of CPU per setpoint for all of them together.
void batched_stages(Env& env, protocol::SignerResolver& resolver, const std::vector<std::vector<json::object>>& all,
                    std::int64_t now) {
  const double count = static_cast<double>(all.size()) * 1000;
  auto per_setpoint = [&](auto&& run) {
    const auto t0 = Steady::now();
    run();
    return std::chrono::duration<double, std::micro>(Steady::now() - t0).count() / count;
  };
  struct NoReplay final : protocol::ReplayGuard {
    Status accept(const std::string&, const std::string&, std::uint64_t) override { return Ok{}; }
  } no_replay;
  protocol::VerifyOptions vo;
  vo.now = now;
  vo.max_lifetime_s = 3600;
  vo.action = "SetChargingProfile";
  std::string fingerprint;
  const double verify = per_setpoint([&] {
    for (const auto& batch : all) fingerprint = must(protocol::verify_batch(batch, vo, resolver, no_replay), "verify_batch")[0].signer_fingerprint;
  });
  std::vector<dp::Setpoint> sps;
  sps.reserve(all.size() * 1000);
  const double parse = per_setpoint([&] {
    for (const auto& batch : all)
      for (const auto& e : batch) sps.push_back(must(dp::parse_setpoint(e, "CS-0", 900), "parse_setpoint"));
  });
  std::size_t k = 0;
  const double command = per_setpoint([&] {
    for (const auto& batch : all)
      for (const auto& e : batch) {
        const dp::Setpoint& sp = sps[k++];
        json::object cmd = dp::applied_request(e, sp, sp.lo_w, sp.hi_w, -11000, 11000,
                                               json::make_shared_resource<json::monotonic_resource>(2048));
        if (cmd.empty()) die("empty command");
      }
  });
  // The decisions as the engine makes them, their audit text, and their record.
  std::vector<std::vector<dp::Decision>> decided(all.size());
  k = 0;
  for (std::size_t b = 0; b < all.size(); ++b)
    for (std::size_t i = 0; i < all[b].size(); ++i, ++k) {
      dp::Decision d;
      d.outcome = dp::Outcome::Applied;
      d.reason = dp::kApplied;
      d.station = "CS-" + std::to_string(k % kStations);
      d.evse = 1;
      d.ev = "EV-" + std::to_string(k % kStations);
      d.signer = fingerprint;
      d.seq = 1000000 + k;
      d.mode = sps[k].mode;
      d.requested_lo_w = d.applied_lo_w = sps[k].lo_w;
      d.requested_hi_w = d.applied_hi_w = sps[k].hi_w;
      d.envelope_min_w = -11000;
      d.envelope_max_w = 11000;
      d.at = now;
      decided[b].push_back(std::move(d));
    }
  std::vector<std::string> texts(all.size());
  const double audit = per_setpoint([&] {
    for (std::size_t b = 0; b < all.size(); ++b) {
      texts[b] = "{\"decisions\":[";
      for (const auto& d : decided[b]) {
        if (texts[b].size() > 15) texts[b] += ',';
        d.append_json(texts[b]);
      }
      texts[b] += "]}";
    }
  });
  // The durable record of each batch: its sequence numbers (a signer of their own, so
  // they are all new), the EVSE states they set and the audit entry, one commit each.
  std::vector<std::vector<store::Store::SequenceClaim>> claims(all.size());
  std::vector<std::vector<store::Store::DispatchEvseState>> states(all.size());
  for (std::size_t b = 0; b < all.size(); ++b)
    for (const auto& d : decided[b]) {
      claims[b].push_back({"stages-floor", d.station, d.seq});
      states[b].push_back({"stages-" + d.station + "#1", d.applied_lo_w, d.applied_hi_w, now + 60, d.applied_lo_w, now, d.seq});
    }
  const double record = per_setpoint([&] {
    for (std::size_t b = 0; b < all.size(); ++b) {
      auto done = env.store->record_dispatch(std::move(claims[b]), std::move(states[b]),
                                             store::AuditEvent{"bench", "dispatch.batch", "batch/1000", texts[b]},
                                             nullptr, 0);
      must(done.get(), "record_dispatch");
    }
  });
  const double sum = verify + parse + command + audit + record;
  std::printf("  %-62s %12.2f %-14s\n", "batched, each stage alone (1 thread): verify_batch", verify, "us/setpoint");
  std::printf("  %-62s %12.2f %-14s\n", "  parse the setpoint", parse, "us/setpoint");
  std::printf("  %-62s %12.2f %-14s\n", "  build the emitted command (JSON)", command, "us/setpoint");
  std::printf("  %-62s %12.2f %-14s\n", "  the decision's audit text", audit, "us/setpoint");
  std::printf("  %-62s %12.2f %-14s\n", "  durable record (sequence, EVSE state, audit entry)", record, "us/setpoint");
  std::printf("  %-62s %12.2f %-14s\n", "  sum (deciding itself not counted)", sum, "us/setpoint");
  std::printf("  %-62s %12.0f %-14s\n", "  at most, were 2 cores to share the sum perfectly", 2e6 / sum, "setpoints/s");
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();
  const int n = argc > 1 ? std::atoi(argv[1]) : 5000;
  if (n < 100) die("N must be at least 100");
  const std::string part = argc > 2 ? argv[2] : "all";
  if (part != "all" && part != "singles" && part != "many" && part != "batched" && part != "stages" &&
      part != "latency" && part != "allocation")
    die("PART must be all, singles, many, batched, stages, latency or allocation");
  auto wanted = [&](const char* p) { return part == "all" || part == p; };
  Env env;
  set_up(env);
  const std::int64_t now = to_unix(now_seconds());
  protocol::PkiSignerResolver resolver(*env.ca);
  dp::EngineOptions opt;
  opt.decision_log_size = 1000;
  std::printf("dispatch_bench: store and token in %s; %u hardware threads\n", env.dir.c_str(),
              std::thread::hardware_concurrency());

  // DISPATCH_BENCH_RAW=N: N verifies per thread for the first baseline (default 20000;
  // a few for a run under valgrind's callgrind, which counts instructions, not time).
  const char* raw_n = std::getenv("DISPATCH_BENCH_RAW");
  const double raw = raw_verify_rate(2, raw_n ? std::max(1, std::atoi(raw_n)) : 20000);
  line("raw OpenSSL EVP_PKEY_verify P-256, 2 threads", raw, "verifies/s");
  // This machine's speed drifts within a run (shared host): each single-signed line is
  // set against the raw loop measured right before and right after it.
  auto adjacent = [](const char* what, const auto& run) {
    const double before = raw_verify_rate(2, 8000);
    const double rate = run();
    const double after = raw_verify_rate(2, 8000);
    line(what, rate, "setpoints/s", (before + after) / 2, "raw verify");
    std::printf("  %-62s %12.0f %-14s\n", "  (raw verify just before / after)", before, "verifies/s");
    std::printf("  %-62s %12.0f %-14s\n", "", after, "verifies/s");
  };

  // Single-signed setpoints.
  if (wanted("singles")) {
    dp::Engine engine(bench_fleet(now), resolver, *env.store, opt);
    const int per_station = std::max(1, 2 * n / kStations);
    auto msgs = sign_singles(env, kStations, per_station, now);
    adjacent("single-signed, 2 threads, commands unsigned", [&] { return run_singles(engine, msgs, 2, now); });
    msgs = sign_singles(env, kStations, per_station, now);
    adjacent("single-signed, 64 threads (group commit), commands unsigned",
             [&] { return run_singles(engine, msgs, 64, now); });
  }
  if (wanted("singles") || part == "many") {
    dp::Engine engine(bench_fleet(now), resolver, *env.store, opt);
    auto msgs = sign_singles(env, kStations, std::max(1, 2 * n / kStations), now);
    adjacent("single-signed, 100 per call, 2 threads, commands unsigned",
             [&] { return run_many(engine, msgs, 2, 100, now); });
    // More callers than cores (as a daemon with several clients has): while one waits
    // for its group's commit, the others verify.
    msgs = sign_singles(env, kStations, std::max(1, 2 * n / kStations), now);
    adjacent("single-signed, 100 per call, 4 threads, commands unsigned",
             [&] { return run_many(engine, msgs, 4, 100, now); });
  }
  if (wanted("singles")) {
    protocol::CommandSigner daemon{*env.daemon_key, env.daemon.record.der, {}};
    dp::StoreOutgoingSigner outgoing(daemon, *env.store);
    dp::Engine engine(bench_fleet(now), resolver, *env.store, opt, &outgoing);
    auto msgs = sign_singles(env, kStations, std::max(1, 2 * n / kStations), now);
    adjacent("single-signed, 64 threads, commands signed (HSM)", [&] { return run_singles(engine, msgs, 64, now); });
    msgs = sign_singles(env, kStations, std::max(1, 2 * n / kStations), now);
    adjacent("single-signed, 100 per call, 2 threads, commands signed (HSM)",
             [&] { return run_many(engine, msgs, 2, 100, now); });
  }

  // Batches of 1,000.
  const int batches = std::max(40, 2 * (n / 250));  // 40 at the default N; more for a profile
  std::vector<std::vector<json::object>> all;
  if (wanted("batched") || wanted("stages")) {
    protocol::CommandSigner signer{*env.aggregator_key, env.aggregator.record.der, {}};
    for (int b = 0; b < batches; ++b) {
      std::vector<protocol::BatchItem> items;
      for (int i = 0; i < 1000; ++i) {
        // Thread b % 2 owns even / odd stations, so each station's batches stay in order.
        const std::string st = "CS-" + std::to_string((b % 2) + 2 * ((i + 1000 * (b / 2)) % (kStations / 2)));
        items.push_back({setpoint(1000 + i % 50), {"SetChargingProfile", st, ++g_seq[st]}});
      }
      all.push_back(must(protocol::sign_batch(std::move(items), signer, {now, 600}), "sign_batch"));
    }
  }
  if (wanted("batched")) {
    dp::Engine engine(bench_fleet(now), resolver, *env.store, opt);
    std::atomic<int> bad{0};
    const double cpu0 = process_cpu_s();
    auto t0 = Steady::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < 2; ++t)
      ts.emplace_back([&, t] {
        for (int b = t; b < batches; b += 2)
          for (const auto& d : engine.submit_batch(all[b], now))
            if (!d.applied()) ++bad;
      });
    for (auto& t : ts) t.join();
    const double rate = batches * 1000 / std::chrono::duration<double>(Steady::now() - t0).count();
    const double cpu_us = (process_cpu_s() - cpu0) * 1e6 / (batches * 1000.0);
    if (bad) die("batches: " + std::to_string(bad.load()) + " not applied");
    line("batched (1,000 per signature), 2 threads, commands unsigned", rate, "setpoints/s", raw, "raw verify");
    // CPU time of the whole process (callers, the store's writer) per setpoint: steadier
    // than the rate on a shared machine, whose steal time counts in the rate only.
    std::printf("  %-62s %12.2f %-14s\n", "  CPU per setpoint (all threads)", cpu_us, "us");
  }
  if (wanted("stages")) batched_stages(env, resolver, all, now);

  // Latency at 10,000 setpoints/s offered (the goal's rate) and at 1,000/s, receipt ->
  // HSM-signed command; open loop: a setpoint's clock starts when it is due, so a
  // queue behind a saturated engine counts.
  for (const double rate : {10000.0, 1000.0}) {
    if (!wanted("latency")) break;
    protocol::CommandSigner daemon{*env.daemon_key, env.daemon.record.der, {}};
    dp::StoreOutgoingSigner outgoing(daemon, *env.store);
    dp::Engine engine(bench_fleet(now), resolver, *env.store, opt, &outgoing);
    std::uint64_t batches = 0;
    auto msgs = sign_singles(env, kStations, std::max(1, static_cast<int>(rate * 4 / kStations)), now);
    std::vector<double> latency(msgs.size(), -1);
    std::vector<double> late(msgs.size(), 0);  // how late this loop handed a setpoint in (it counts in latency)
    std::atomic<std::size_t> missing{0};
    const auto start = Steady::now();
    {
      // Setpoints handed in one by one, as HTTP requests would; the intake batches
      // whatever queues up while a batch is decided (dispatch/intake.h).
      dp::Intake intake(engine, [now] { return now; }, dp::IntakeOptions{2, 256});
      for (std::size_t i = 0; i < msgs.size(); ++i) {
        const auto due = start + std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(i / rate));
        std::this_thread::sleep_until(due);
        late[i] = std::chrono::duration<double, std::milli>(Steady::now() - due).count();
        intake.submit(msgs[i], "CS-" + std::to_string(i % kStations), [&latency, &missing, i, due](dp::Decision d) {
          if (!d.command) ++missing;
          latency[i] = std::chrono::duration<double, std::milli>(Steady::now() - due).count();
        });
      }
      batches = intake.batches();
    }
    if (missing) die("latency: " + std::to_string(missing.load()) + " setpoints without a command");
    const double achieved = msgs.size() / std::chrono::duration<double>(Steady::now() - start).count();
    std::sort(latency.begin(), latency.end());
    std::sort(late.begin(), late.end());
    std::printf("  latency run: offered %.0f/s, achieved %.0f/s; receipt -> signed command p50 %.3f ms, p99 %.3f ms, "
                "max %.3f ms; %.1f setpoints per group%s\n"
                "    (of which the hand-in loop itself was late by p50 %.3f ms, p99 %.3f ms)\n",
                rate, achieved, latency[latency.size() / 2], latency[latency.size() * 99 / 100], latency.back(),
                static_cast<double>(msgs.size()) / static_cast<double>(std::max<std::uint64_t>(1, batches)),
                rate == 10000 ? " (goal p99 < 2 ms at 10,000/s)" : "", late[late.size() / 2], late[late.size() * 99 / 100]);
  }

  // Allocation across 100,000 EVs.
  if (wanted("allocation")) {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<dp::AllocationUnit> units(100000);
    std::vector<dp::SiteCapacity> sites(1000, dp::SiteCapacity{400000, -300000});
    for (std::size_t i = 0; i < units.size(); ++i) {
      units[i].min_w = -11000 * u(rng);
      units[i].max_w = 11000 * u(rng);
      units[i].floor_w = u(rng) < 0.05 ? 3000 * u(rng) : 0;
      units[i].cost_up = 0.05 * (0.9 + 0.1 * u(rng));
      units[i].cost_down = 0.05 / (0.9 + 0.05 * u(rng));
      units[i].site = i / 100;
    }
    for (auto policy : {dp::SplitPolicy::ProportionalHeadroom, dp::SplitPolicy::LeastDegradation}) {
      const int reps = 20;
      auto t0 = Steady::now();
      double sink = 0;
      for (int r = 0; r < reps; ++r) sink += dp::allocate(r % 2 ? 150e6 : -120e6, units, sites, policy).delivered_w;
      const double ms = std::chrono::duration<double, std::milli>(Steady::now() - t0).count() / reps;
      std::printf("  %-62s %12.2f ms (goal < 20 ms)%s\n",
                  (std::string("allocate() 100,000 EVs, ") + dp::to_string(policy)).c_str(), ms, sink == 0.123 ? "!" : "");
    }
    // The whole engine path for a target over 100,000 EVs.
    dp::Fleet f;
    std::vector<std::string> stations;
    for (int i = 0; i < 100000; ++i) {
      const std::string site = "site-" + std::to_string(i / 100), st = "CS-" + std::to_string(i / 2);
      if (!f.sites.count(site)) f.sites[site] = dp::Site{site, 500000, 400000, dp::EnforcementPolicy::Clamp, 0};
      if (!f.stations.count(st)) {
        f.stations[st] = dp::Station{st, site, "Fleet"};
        stations.push_back(st);
      }
      const int e = i % 2 + 1;
      f.evses[dp::evse_key(st, e)] = dp::Evse{st, e, 11000, 11000, 0};
      dp::Session s;
      s.ev = "EV-" + std::to_string(i);
      s.station = st;
      s.evse = e;
      s.battery_wh = 60000;
      s.soc = 0.3 + 0.4 * u(rng);
      s.soc_min = 0.2;
      s.soc_max = 0.9;
      s.max_charge_w = 11000;
      s.max_discharge_w = 11000;
      s.eta_charge = s.eta_discharge = 0.93;
      s.departure = now + 6 * 3600;
      s.energy_needed_wh = 36000;
      f.sessions[dp::evse_key(st, e)] = s;
    }
    dp::EngineOptions o;
    o.audit = false;
    o.emit_commands = false;
    dp::Engine engine(std::move(f), resolver, nullptr, o);
    dp::FleetTarget target{"bench", 0, stations, 60};
    const int reps = 5;
    auto t0 = Steady::now();
    for (int r = 0; r < reps; ++r) {
      target.target_w = r % 2 ? 200e6 : -150e6;
      (void)engine.apply_target(target, now + r * 60);
    }
    const double ms = std::chrono::duration<double, std::milli>(Steady::now() - t0).count() / reps;
    std::printf("  %-62s %12.2f ms\n", "apply_target 100,000 EVs (envelopes + allocation + commit)", ms);
  }
  return 0;
}
