#include "bench/bench_pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "bench/bench_failure.h"

namespace gridtrust::bench {
namespace fs = std::filesystem;

CommandOutput run(const std::string& command_line) {
  CommandOutput r;
  FILE* p = ::popen((command_line + " 2>&1").c_str(), "r");
  if (!p) die("popen: " + command_line);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  if (!f) die("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    die("no free port");
  ::close(fd);
  return ntohs(a.sin_port);
}

bool wait_for_port(int port, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (up) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool wait_for_text(const std::string& path, const std::string& text, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (read_file(path).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

namespace {

// die() exits without unwinding: what is still running or on disk is removed here.
struct Leftovers {
  std::mutex mu;
  std::set<pid_t> groups;
  std::set<std::string> dirs;
};
Leftovers& leftovers() {
  static Leftovers* l = [] {
    auto* created = new Leftovers;
    std::atexit([] {
      auto& self = leftovers();
      std::lock_guard g(self.mu);
      for (pid_t p : self.groups) {
        ::kill(-p, SIGKILL);
        ::waitpid(p, nullptr, 0);
      }
      std::error_code ec;
      for (const auto& d : self.dirs) fs::remove_all(d, ec);
    });
    return created;
  }();
  return *l;
}
void track_group(pid_t p, bool on) {
  std::lock_guard g(leftovers().mu);
  if (on) leftovers().groups.insert(p);
  else leftovers().groups.erase(p);
}
void track_dir(const std::string& d, bool on) {
  std::lock_guard g(leftovers().mu);
  if (on) leftovers().dirs.insert(d);
  else leftovers().dirs.erase(d);
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

// fork + exec of /bin/sh -c, output to a log file, in a process group of its own.
pid_t spawn(const std::string& shell_command, const std::string& log_path) {
  pid_t pid = ::fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    ::setpgid(0, 0);
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl("/bin/sh", "sh", "-c", ("exec " + shell_command).c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  track_group(pid, true);
  return pid;
}

int wait_exit(pid_t pid, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

}  // namespace

BenchPki::BenchPki() {
  char tmpl[] = "/tmp/gridtrust-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) die("mkdtemp");
  dir_ = tmpl;
  track_dir(dir_.string(), true);
  auto r = run(sh_quote(GRIDTRUST_CLI) + " init --data-dir " + sh_quote(data_dir()));
  if (r.exit_code != 0) die("gridtrust init: " + r.out);
  api_port_ = free_port();
  status_port_ = free_port();
  std::string yaml_path = data_dir() + "/gridtrust.yaml";
  std::string yaml = read_file(yaml_path);
  // status_listen, pki.crl_base_url and pki.ocsp_url; api_listen
  replace_all(yaml, "127.0.0.1:8443", "127.0.0.1:" + std::to_string(api_port_));
  replace_all(yaml, "127.0.0.1:8081", "127.0.0.1:" + std::to_string(status_port_));
  write_file(yaml_path, yaml);
}

BenchPki::~BenchPki() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
  track_dir(dir_.string(), false);
}

std::string BenchPki::gt(const std::string& args) const {
  auto r = run(sh_quote(GRIDTRUST_CLI) + " " + args + " --data-dir " + sh_quote(data_dir()));
  if (r.exit_code != 0) die("gridtrust " + args + ": " + r.out);
  return r.out;
}

BenchPki::Client BenchPki::admin_client() const {
  Client c{path("client.pem"), path("client.key")};
  const std::string csr = path("client.csr");
  auto made = run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + sh_quote(c.key) +
                  " -subj '/CN=bench client/O=gridtrust demo/OU=admin' -out " + sh_quote(csr));
  if (made.exit_code != 0) die("openssl req: " + made.out);
  gt("issue --profile admin --csr " + sh_quote(csr) + " --out " + sh_quote(c.cert));
  return c;
}

void BenchPki::set_daemon_option(const std::string& key, const std::string& value) {
  std::string yaml_path = data_dir() + "/gridtrust.yaml";
  std::string yaml = read_file(yaml_path);
  auto at = yaml.find("\ndaemon:\n");
  if (at == std::string::npos) die("gridtrust.yaml has no daemon section");
  yaml.insert(at + 9, "  " + key + ": " + value + "\n");
  write_file(yaml_path, yaml);
}

Daemon::Daemon(const BenchPki& pki) {
  pid_ = spawn(sh_quote(GRIDTRUSTD) + " --config " + sh_quote(pki.data_dir() + "/gridtrust.yaml"),
               pki.path("gridtrustd.log"));
  if (!wait_for_port(pki.status_port(), 15000) || !wait_for_port(pki.api_port(), 5000)) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    track_group(pid_, false);
    pid_ = -1;
    die("gridtrustd did not start: " + read_file(pki.path("gridtrustd.log")));
  }
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    track_group(pid_, false);
  }
}

int Daemon::stop() {
  ::kill(pid_, SIGTERM);
  int status = wait_exit(pid_, 15000);
  if (status >= 0) {
    track_group(pid_, false);
    pid_ = -1;
  }
  return status;
}

ChildProcess::ChildProcess(const std::string& shell_command, const std::string& log_path)
    : pid_(spawn(shell_command, log_path)) {}

ChildProcess::~ChildProcess() {
  ::kill(-pid_, SIGTERM);
  if (wait_exit(pid_, 5000) < 0) {
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  ::kill(-pid_, SIGKILL);  // children of -multi that outlive their parent
  track_group(pid_, false);
}

}  // namespace gridtrust::bench
