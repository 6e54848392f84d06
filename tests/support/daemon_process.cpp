#include "tests/support/daemon_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

namespace gridtrust::test {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

ClientCert admin_profile_client(const InitializedPki& pki, const TempDir& work, const std::string& role) {
  ClientCert c{work / (role + ".pem"), work / (role + ".key")};
  std::string csr = work / (role + ".csr");
  auto r = run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + sh_quote(c.key) +
               " -subj " + sh_quote("/CN=" + role + " client/O=gridtrust demo/OU=" + role) + " -out " + sh_quote(csr));
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto i = pki.gt("issue --profile admin --csr " + sh_quote(csr) + " --out " + sh_quote(c.cert));
  INFO(i.describe());
  REQUIRE(i.exit_code == 0);
  return c;
}

DaemonProcess::DaemonProcess(const InitializedPki& pki, const TempDir& work, std::string binary)
    : binary_(std::move(binary)), yaml_path_(pki.data_dir() + "/gridtrust.yaml"), log_(work / "gridtrustd.log") {
  api_port_ = free_port();
  status_port_ = free_port();
  std::string yaml = read_file(yaml_path_);
  REQUIRE(yaml.find("api_listen: 127.0.0.1:8443") != std::string::npos);
  REQUIRE(yaml.find("ocsp_url: http://127.0.0.1:8081/ocsp") != std::string::npos);
  // status_listen, pki.crl_base_url and pki.ocsp_url
  replace_all(yaml, "127.0.0.1:8443", "127.0.0.1:" + std::to_string(api_port_));
  replace_all(yaml, "127.0.0.1:8081", "127.0.0.1:" + std::to_string(status_port_));
  write_file(yaml_path_, yaml);
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string DaemonProcess::log() const { return read_file(log_); }

void DaemonProcess::set_env(std::string name, std::string value) {
  REQUIRE(pid_ < 0);
  env_.emplace_back(std::move(name), std::move(value));
}

void DaemonProcess::start() {
  REQUIRE(pid_ < 0);
  pid_ = ::fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    ::dup2(fd, 1);
    for (const auto& [name, value] : env_) ::setenv(name.c_str(), value.c_str(), 1);
    ::execl(binary_.c_str(), binary_.c_str(), "--config", yaml_path_.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    int wstatus = 0;
    if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL("gridtrustd exited during start-up: " << log());
    }
    if (run("curl -sf " + sh_quote(status() + "/healthz")).exit_code == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("gridtrustd not ready after 10 s: " << log());
}

int DaemonProcess::terminate() {
  send_signal(SIGTERM);
  return wait_for_exit();
}

void DaemonProcess::send_signal(int sig) {
  REQUIRE(pid_ > 0);
  REQUIRE(::kill(pid_, sig) == 0);
}

int DaemonProcess::wait_for_exit() {
  REQUIRE(pid_ > 0);
  for (int i = 0; i < 300; ++i) {
    int wstatus = 0;
    if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

HttpResult curl(const std::string& args) {
  auto r = run("curl -sS -w '\\n%{http_code}' " + args);
  HttpResult h;
  h.curl_exit = r.exit_code;
  h.err = r.err;
  auto nl = r.out.rfind('\n');
  if (nl != std::string::npos) {
    h.body = r.out.substr(0, nl);
    h.status = std::atoi(r.out.substr(nl + 1).c_str());
  }
  return h;
}

std::string HttpResult::error_code() const {
  auto v = boost::json::parse(body);
  return std::string(v.as_object().at("error").as_object().at("code").as_string());
}

std::string client_args(const std::string& root, const ClientCert& c) {
  return "--cacert " + sh_quote(root) + " --cert " + sh_quote(c.cert) + " --key " + sh_quote(c.key) + " ";
}

std::string json_post(const TempDir& work, const std::string& name, const std::string& body) {
  std::string file = work / (name + ".json");
  write_file(file, body);
  return "-X POST -H 'Content-Type: application/json' --data-binary @" + sh_quote(file) + " ";
}

}  // namespace gridtrust::test
