// Acceptance test for the session pool's recovery (DESIGN.md, "Keys and the HSM"):
// with the token served by `p11-kit server`, kill the server mid-run; signing fails
// with a clear error while it is down and succeeds again after it restarts, with no
// restart of this process.
//
// The SoftHSM2 token lives in a temp dir and is served by a `p11-kit server` child
// (its own process group, so SIGKILL reaches the per-connection `p11-kit-remote`
// children as well). This process talks to it through p11-kit-client.so only.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>

#include "core/digest.h"
#include "hsm/evp_bridge.h"
#include "hsm/hsm_signer.h"
#include "hsm/token.h"
#include "tests/support/test_support.h"

extern char** environ;

using namespace gridtrust;
using namespace gridtrust::hsm;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kClientModule = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so";
constexpr const char* kLabel = "remote";
constexpr const char* kKeyLabel = "remote-signing-key";
// A single call taking this long counts as a hang (not a timing assertion).
constexpr double kHangSeconds = 10.0;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Sets an environment variable for the scope and restores the previous state.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* prev = std::getenv(name)) {
      had_ = true;
      prev_ = prev;
    }
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, prev_.c_str(), 1);
    else unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  bool had_ = false;
  std::string prev_;
};

std::string find_in_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// The process group of the running server, for the watchdog.
std::atomic<pid_t> g_server_pgid{-1};

// `p11-kit server -f` serving one SoftHSM2 token on a unix socket, as a child process
// in a process group of its own.
class P11KitServer {
 public:
  P11KitServer(std::string socket_path, std::string softhsm_conf, std::string token_uri,
               std::string log_path)
      : socket_(std::move(socket_path)), conf_(std::move(softhsm_conf)),
        uri_(std::move(token_uri)), log_(std::move(log_path)) {}
  P11KitServer(const P11KitServer&) = delete;
  P11KitServer& operator=(const P11KitServer&) = delete;
  ~P11KitServer() { kill_hard(); }

  // Starts the server and waits until it accepts connections on the socket. Returns an
  // error description, empty on success.
  std::string start() {
    if (pid_ > 0) return "already running";
    std::string exe = find_in_path("p11-kit");
    if (exe.empty()) return "p11-kit not found in PATH";
    // A socket left by a killed server must not be mistaken for the new one.
    std::error_code ec;
    std::filesystem::remove(socket_, ec);

    // Everything the child needs is built before fork: other threads may be running,
    // so the child only makes async-signal-safe calls until exec.
    std::vector<std::string> args = {"p11-kit", "server", "-f", "--provider", test::kSoftHsmModule,
                                     "-n", socket_, uri_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_store;
    for (char** e = environ; *e; ++e) {
      if (std::strncmp(*e, "SOFTHSM2_CONF=", 14) == 0) continue;
      env_store.emplace_back(*e);
    }
    env_store.push_back("SOFTHSM2_CONF=" + conf_);
    std::vector<char*> envp;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);

    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return std::string("fork: ") + std::strerror(errno);
    if (pid == 0) {
      setpgid(0, 0);
      // Die with this process even if it is killed from outside (CTest timeout).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      int devnull = open("/dev/null", O_RDONLY);
      int log = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (devnull >= 0) dup2(devnull, STDIN_FILENO);
      if (log >= 0) {
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
      }
      // Do not hand this process's descriptors (PKCS#11 client sockets) to the server.
      close_range(3, ~0U, 0);
      execve(exe.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    setpgid(pid, pid);  // also in the parent, so kill(-pid) works whoever runs first
    pid_ = pid;
    g_server_pgid.store(pid);

    auto t0 = Clock::now();
    while (seconds_since(t0) < 15.0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        g_server_pgid.store(-1);
        return "p11-kit server exited early: " + test::read_file(log_);
      }
      if (connectable()) return {};
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill_hard();
    return "p11-kit server did not open " + socket_ + ": " + test::read_file(log_);
  }

  // SIGKILL to the whole group: the server and the p11-kit-remote child serving our
  // connection.
  void kill_hard() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    g_server_pgid.store(-1);
  }

 private:
  bool connectable() const {
    if (!std::filesystem::exists(socket_)) return false;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, socket_.c_str(), sizeof sa.sun_path - 1);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    close(fd);
    return ok;
  }

  std::string socket_, conf_, uri_, log_;
  pid_t pid_ = -1;
};

// Ends the process if the test hangs (a deadlock in the pool is a failure, not a
// wait for the CTest timeout), taking the server with it.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : thread_([this, limit] {
          std::unique_lock lk(mu_);
          if (!cv_.wait_for(lk, limit, [this] { return done_; })) {
            std::fprintf(stderr, "hsm_session_pool_remote_test: hang detected after %lld s\n",
                         static_cast<long long>(limit.count()));
            if (pid_t g = g_server_pgid.load(); g > 0) ::kill(-g, SIGKILL);
            std::_Exit(3);
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard g(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

EvpPkeyPtr public_key_of(const KeyRef& key) {
  const unsigned char* p = key.public_key_der.data();
  return EvpPkeyPtr(d2i_PUBKEY(nullptr, &p, static_cast<long>(key.public_key_der.size())));
}

// Verifies a raw r||s signature over a SHA-256 digest with the key's SPKI.
bool verifies_raw(EVP_PKEY* pub, const Bytes& digest, const Bytes& raw) {
  auto der = ecdsa_raw_to_der(raw);
  if (!der.ok()) return false;
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(pub, nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) return false;
  return EVP_PKEY_verify(ctx.get(), der->data(), der->size(), digest.data(), digest.size()) == 1;
}

// EVP_DigestSign through the bridged key; empty on failure.
Bytes evp_sign(EVP_PKEY* bridged, const Bytes& message) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  Bytes sig;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, bridged) == 1 &&
      EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) == 1) {
    sig.resize(len);
    if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) == 1)
      sig.resize(len);
    else
      sig.clear();
  }
  ERR_clear_error();
  return sig;
}

bool evp_verifies(EVP_PKEY* pub, const Bytes& message, const Bytes& sig) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok = EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pub) == 1 &&
            EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size()) == 1;
  ERR_clear_error();
  return ok;
}

// A self-signed certificate signed through the bridge; null when signing failed.
X509Ptr self_signed(EVP_PKEY* bridged, const std::string& cn) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), bridged);
  bool ok = X509_sign(cert.get(), bridged, EVP_sha256()) > 0;
  ERR_clear_error();
  return ok ? std::move(cert) : nullptr;
}

// kRestarting covers the server's start-up: calls then may fail or succeed.
enum Phase : int { kUp = 0, kDown = 1, kRestarting = 2, kBackUp = 3 };

// What the signing threads saw, by the phase a call started and ended in. Only the
// main thread makes Catch2 assertions; workers just count.
struct Tally {
  std::mutex mu;
  std::map<std::pair<int, int>, long> ok;      // (start, end) -> successful calls
  std::map<std::pair<int, int>, long> failed;  // (start, end) -> failed calls
  std::map<std::string, long> failure_codes;
  std::vector<std::string> odd_failures;  // failures other than hsm.unavailable
  std::string sample_failure;             // what a caller is told during the outage
  long bad_signatures = 0;
  double slowest = 0;
  std::vector<long> ok_after_restart;     // per worker
  std::vector<long> failed_in_outage;     // per worker
  std::vector<long> ok_before_kill;       // per worker
};

void signing_worker(int index, Token& token, const KeyRef& key, EVP_PKEY* pub,
                    const std::atomic<int>& phase, const std::atomic<bool>& stop, Tally& tally) {
  for (long n = 0; !stop.load(); ++n) {
    Bytes digest = sha256("worker " + std::to_string(index) + " message " + std::to_string(n));
    int start = phase.load();
    auto t0 = Clock::now();
    auto sig = token.sign(key, digest);
    double took = seconds_since(t0);
    int end = phase.load();
    bool good = sig.ok() && verifies_raw(pub, digest, *sig);
    std::lock_guard g(tally.mu);
    tally.slowest = std::max(tally.slowest, took);
    if (sig.ok()) {
      ++tally.ok[{start, end}];
      if (!good) ++tally.bad_signatures;
      if (start == kUp) ++tally.ok_before_kill[index];
      if (start == kBackUp) ++tally.ok_after_restart[index];
    } else {
      ++tally.failed[{start, end}];
      ++tally.failure_codes[sig.error().code];
      if (tally.sample_failure.empty())
        tally.sample_failure = sig.error().code + ": " + sig.error().message;
      if (sig.error().code != "hsm.unavailable" && tally.odd_failures.size() < 8)
        tally.odd_failures.push_back(sig.error().code + ": " + sig.error().message);
      if (start == kDown && end == kDown) ++tally.failed_in_outage[index];
    }
  }
}

// Waits until pred holds (checked under the tally lock) or the time runs out.
bool wait_for(Tally& tally, double max_seconds, const std::function<bool()>& pred) {
  auto t0 = Clock::now();
  while (seconds_since(t0) < max_seconds) {
    {
      std::lock_guard g(tally.mu);
      if (pred()) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::lock_guard g(tally.mu);
  return pred();
}

std::string describe(Tally& tally) {
  std::lock_guard g(tally.mu);
  std::ostringstream os;
  for (auto& [k, v] : tally.ok) os << "ok[" << k.first << "->" << k.second << "]=" << v << " ";
  for (auto& [k, v] : tally.failed) os << "failed[" << k.first << "->" << k.second << "]=" << v << " ";
  for (auto& [c, v] : tally.failure_codes) os << c << "=" << v << " ";
  os << "\n  sample failure: " << tally.sample_failure;
  for (auto& m : tally.odd_failures) os << "\n  odd failure: " << m;
  os << "\n  slowest call " << tally.slowest << " s";
  return os.str();
}

// A SoftHSM2 token served by `p11-kit server`, a Token on p11-kit-client.so and one
// P-256 key, both as raw KeyRef and as a bridged EVP_PKEY.
struct RemoteToken {
  test::TempDir dir;
  std::string conf = dir / "softhsm2.conf";
  std::string socket_path = dir / "p11-kit.sock";
  P11KitServer server{socket_path, conf, std::string("pkcs11:token=") + kLabel, dir / "server.log"};
  std::optional<ScopedEnv> address;
  std::shared_ptr<Token> token;
  KeyRef key;
  EvpPkeyPtr pub;
  EvpPkeyPtr bridged;

  void set_up() {
    REQUIRE(access(kClientModule, R_OK) == 0);
    REQUIRE_FALSE(find_in_path("p11-kit").empty());
    std::filesystem::create_directories(dir.path() / "tokens");
    test::write_file(conf, "directories.tokendir = " + (dir / "tokens") +
                               "\nobjectstore.backend = file\nlog.level = ERROR\n");
    {
      // The token is created in-process; from here on only the server opens SoftHSM2.
      ScopedEnv softhsm_conf("SOFTHSM2_CONF", conf);
      auto st = init_token(test::kSoftHsmModule, kLabel, SecureString("5678"), SecureString("1234"));
      REQUIRE(st.ok());
    }
    start_server();
    address.emplace("P11_KIT_SERVER_ADDRESS", "unix:path=" + socket_path);

    TokenConfig cfg;
    cfg.module_path = kClientModule;
    cfg.token_uri = std::string("pkcs11:token=") + kLabel;
    cfg.pin = SecureString("1234");
    cfg.max_sessions = 4;
    cfg.max_attempts = 3;
    auto opened = Token::open(std::move(cfg));
    INFO((opened.ok() ? std::string() : opened.error().code + ": " + opened.error().message));
    REQUIRE(opened.ok());
    token = std::move(opened).value();

    auto generated = token->generate_key_pair(KeyAlgorithm::EcP256, kKeyLabel);
    REQUIRE(generated.ok());
    key = *generated;
    pub = public_key_of(key);
    REQUIRE(pub);
    auto b = make_evp_pkey(std::make_shared<HsmSigner>(token, key));
    REQUIRE(b.ok());
    bridged = std::move(b).value();
  }

  void start_server() {
    auto err = server.start();
    INFO(err);
    REQUIRE(err.empty());
  }

  // Tear down in order: the bridge and token (closing sessions while the server may
  // still be up), then the server; the temp dir removes itself, the environment is
  // restored by ScopedEnv.
  ~RemoteToken() {
    bridged.reset();
    token.reset();
    server.kill_hard();
    address.reset();
  }
};

const Bytes kMessage = {'c', 'h', 'a', 'r', 'g', 'e', ' ', 'm', 'e'};

// Signing through the Token, through EVP_DigestSign and through X509_sign all work
// and verify against the key's public key.
void check_all_paths_sign(RemoteToken& r, const std::string& when) {
  INFO("signing " << when);
  auto sig = r.token->sign(r.key, sha256(kMessage));
  INFO((sig.ok() ? std::string() : sig.error().code + ": " + sig.error().message));
  REQUIRE(sig.ok());
  CHECK(verifies_raw(r.pub.get(), sha256(kMessage), *sig));
  Bytes evp_sig = evp_sign(r.bridged.get(), kMessage);
  REQUIRE_FALSE(evp_sig.empty());
  CHECK(evp_verifies(r.pub.get(), kMessage, evp_sig));
  X509Ptr cert = self_signed(r.bridged.get(), when);
  REQUIRE(cert);
  CHECK(X509_verify(cert.get(), r.pub.get()) == 1);
}

// While the server is down every path fails promptly with a clear error.
void check_all_paths_fail(RemoteToken& r) {
  auto t0 = Clock::now();
  auto sig = r.token->sign(r.key, sha256(kMessage));
  CHECK(seconds_since(t0) < kHangSeconds);
  REQUIRE_FALSE(sig.ok());
  CHECK(sig.error().code == "hsm.unavailable");
  CHECK_FALSE(sig.error().message.empty());

  t0 = Clock::now();
  auto found = r.token->find_key(kKeyLabel);
  CHECK(seconds_since(t0) < kHangSeconds);
  REQUIRE_FALSE(found.ok());
  CHECK(found.error().code == "hsm.unavailable");

  // The EVP bridge fails cleanly: an error return, no crash, no hang.
  t0 = Clock::now();
  CHECK(evp_sign(r.bridged.get(), kMessage).empty());
  CHECK(seconds_since(t0) < kHangSeconds);
  t0 = Clock::now();
  CHECK_FALSE(self_signed(r.bridged.get(), "during outage"));
  CHECK(seconds_since(t0) < kHangSeconds);
}

// After a restart the key is found again by label in the same Token object.
void check_key_found_again(RemoteToken& r) {
  auto found = r.token->find_key(kKeyLabel);
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  const KeyRef& again = **found;
  CHECK(again.id == r.key.id);
  CHECK(again.public_key_der == r.key.public_key_der);
  auto sig = r.token->sign(again, sha256(kMessage));
  REQUIRE(sig.ok());
  CHECK(verifies_raw(r.pub.get(), sha256(kMessage), *sig));
}

}  // namespace

TEST_CASE("two signing threads ride out a kill and restart of p11-kit server",
          "[hsm][remote][integration]") {
  Watchdog watchdog(std::chrono::seconds(90));
  RemoteToken r;
  r.set_up();
  check_all_paths_sign(r, "before the outage");

  constexpr int kWorkers = 2;
  Tally tally;
  tally.ok_after_restart.assign(kWorkers, 0);
  tally.failed_in_outage.assign(kWorkers, 0);
  tally.ok_before_kill.assign(kWorkers, 0);
  std::atomic<int> phase{kUp};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  struct Joiner {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~Joiner() {
      stop.store(true);
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
  } joiner{stop, workers};
  for (int i = 0; i < kWorkers; ++i)
    workers.emplace_back(signing_worker, i, std::ref(*r.token), std::cref(r.key), r.pub.get(),
                         std::cref(phase), std::cref(stop), std::ref(tally));

  // Up: both threads sign.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  bool warmed = wait_for(tally, 20, [&] {
    return tally.ok_before_kill[0] >= 50 && tally.ok_before_kill[1] >= 50;
  });
  INFO(describe(tally));
  REQUIRE(warmed);
  const auto reconnects_before = r.token->reconnects();

  // Down: kill the server and its connection children mid-run.
  r.server.kill_hard();
  phase.store(kDown);
  bool saw_outage = wait_for(tally, 20, [&] {
    return tally.failed_in_outage[0] >= 3 && tally.failed_in_outage[1] >= 3;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  INFO(describe(tally));
  REQUIRE(saw_outage);
  // This thread sees the same clear error while the workers keep trying.
  check_all_paths_fail(r);

  // Restarted: same socket, same Token object, no restart of this process.
  phase.store(kRestarting);
  r.start_server();
  phase.store(kBackUp);
  bool recovered = wait_for(tally, 30, [&] {
    return tally.ok_after_restart[0] >= 50 && tally.ok_after_restart[1] >= 50;
  });
  stop.store(true);
  for (auto& t : workers) t.join();

  const std::string summary = describe(tally);
  std::printf("signing across the outage: %s\nreconnects: %llu\n", summary.c_str(),
              static_cast<unsigned long long>(r.token->reconnects()));
  INFO(summary);
  REQUIRE(recovered);
  {
    std::lock_guard g(tally.mu);
    CHECK(tally.bad_signatures == 0);
    CHECK(tally.odd_failures.empty());  // every failure was hsm.unavailable
    CHECK(tally.slowest < kHangSeconds);
    // Entirely inside the outage no call succeeded, and both threads saw failures.
    CHECK(tally.ok[{kDown, kDown}] == 0);
    CHECK(tally.failed[{kDown, kDown}] >= 6);
    // Once the server accepts connections again, every call succeeds.
    CHECK(tally.failed[{kBackUp, kBackUp}] == 0);
  }
  CHECK(r.token->reconnects() > reconnects_before);
  check_key_found_again(r);
  check_all_paths_sign(r, "after the restart");
}

TEST_CASE("a server killed while the client is idle is noticed on the next call",
          "[hsm][remote][integration]") {
  Watchdog watchdog(std::chrono::seconds(60));
  RemoteToken r;
  r.set_up();
  check_all_paths_sign(r, "before the outage");
  const auto reconnects_before = r.token->reconnects();

  // Nobody is talking to the token when it goes away: the next call writes to a dead
  // connection, which must be an error and not the end of this process.
  r.server.kill_hard();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  check_all_paths_fail(r);
  check_all_paths_fail(r);  // and again, from the "not connected" state

  r.start_server();
  check_all_paths_sign(r, "after the restart");
  CHECK(r.token->reconnects() > reconnects_before);
  check_key_found_again(r);

  SECTION("a blink shorter than the idle time is invisible to the next caller") {
    const auto before = r.token->reconnects();
    r.server.kill_hard();
    r.start_server();
    check_all_paths_sign(r, "after a blink");
    CHECK(r.token->reconnects() > before);
  }
}

namespace {

// Closes every session the process has on the token, behind the Token's back, through
// SoftHSM2's own function list (the one module instance both share in-process). This
// also ends the login, as closing the last session does in PKCS#11.
bool close_all_sessions_underneath(const std::string& token_label) {
  CK_FUNCTION_LIST* raw = p11_kit_module_load(test::kSoftHsmModule, P11_KIT_MODULE_UNMANAGED);
  if (!raw) return false;
  bool closed = false;
  CK_ULONG n = 0;
  if (raw->C_GetSlotList(CK_TRUE, nullptr, &n) == CKR_OK) {
    std::vector<CK_SLOT_ID> slots(n);
    if (raw->C_GetSlotList(CK_TRUE, slots.data(), &n) == CKR_OK) {
      for (CK_ULONG i = 0; i < n; ++i) {
        CK_TOKEN_INFO info;
        if (raw->C_GetTokenInfo(slots[i], &info) != CKR_OK) continue;
        std::string label(reinterpret_cast<const char*>(info.label), sizeof info.label);
        label.erase(label.find_last_not_of(' ') + 1);
        if (label == token_label) closed = raw->C_CloseAllSessions(slots[i]) == CKR_OK;
      }
    }
  }
  p11_kit_module_release(raw);  // not finalised: the Token still uses the module
  return closed;
}

}  // namespace

TEST_CASE("sessions closed underneath the pool are reopened and logged in again",
          "[hsm][session_pool]") {
  Watchdog watchdog(std::chrono::seconds(60));
  test::SoftHsmToken t;
  auto token = t.token();
  auto key = token->generate_key_pair(KeyAlgorithm::EcP256, "underneath");
  REQUIRE(key.ok());
  EvpPkeyPtr pub = public_key_of(*key);

  // Fill the pool with a few sessions, then pull them all away at once.
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      for (int j = 0; j < 20; ++j) (void)token->sign(*key, sha256("warm up"));
    });
  for (auto& th : threads) th.join();
  REQUIRE(token->idle_sessions() >= 1);
  REQUIRE(close_all_sessions_underneath("test"));

  for (int round = 0; round < 3; ++round) {
    auto sig = token->sign(*key, sha256(kMessage));
    INFO("round " << round << ": "
                  << (sig.ok() ? std::string("ok") : sig.error().code + ": " + sig.error().message));
    REQUIRE(sig.ok());
    CHECK(verifies_raw(pub.get(), sha256(kMessage), *sig));
  }
  auto found = token->find_key("underneath");
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->id == key->id);
}
