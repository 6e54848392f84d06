#pragma once
// gridtrustd under test: a child process on free loopback ports, and curl as an
// independent HTTP client with `admin`-profile client certificates.
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/support/test_support.h"

namespace gridtrust::test {

// A loopback port nobody listens on right now (the kernel picks it).
int free_port();

void replace_all(std::string& s, const std::string& from, const std::string& to);

// A client key and an `admin`-profile certificate for it (OU = role), issued by the
// CLI from an openssl CSR.
struct ClientCert {
  std::string cert;  // chain PEM: leaf, Sub-CA 2, Sub-CA 1
  std::string key;
};
ClientCert admin_profile_client(const InitializedPki& pki, const TempDir& work, const std::string& role);

// The daemon of an initialised data directory. The constructor moves the API and the
// status listener (and with the latter the CRL and OCSP URLs that certificates issued
// from now on carry) to free ports; start() runs it. SIGKILLed if still running at
// destruction.
class DaemonProcess {
 public:
  DaemonProcess(const InitializedPki& pki, const TempDir& work, std::string binary);
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;
  ~DaemonProcess();

  // An environment variable for the daemon alone (e.g. NOTIFY_SOCKET); before start().
  void set_env(std::string name, std::string value);
  // Forks, execs and waits until /healthz answers (fails the test otherwise).
  void start();
  // SIGTERM, then the exit status (-1 when it did not exit within 15 s).
  int terminate();
  // kill(2) on the running daemon (fails the test if that fails).
  void send_signal(int sig);
  // The exit status once it exits (128 + signal when killed), -1 when it did not
  // exit within 15 s.
  int wait_for_exit();

  std::string api() const { return "https://localhost:" + std::to_string(api_port_); }
  std::string status() const { return "http://127.0.0.1:" + std::to_string(status_port_); }
  std::string log() const;
  // The data directory's gridtrust.yaml, with the ports already moved.
  const std::string& config_path() const { return yaml_path_; }

 private:
  std::string binary_;
  std::string yaml_path_;
  std::string log_;
  std::vector<std::pair<std::string, std::string>> env_;
  int api_port_ = 0;
  int status_port_ = 0;
  pid_t pid_ = -1;
};

struct HttpResult {
  int curl_exit = -1;
  int status = 0;
  std::string body;
  std::string err;

  // The "code" of a JSON error body {"error":{"code","message"}}.
  std::string error_code() const;
};

// curl -sS with the HTTP status appended by -w and split off here.
HttpResult curl(const std::string& args);
// --cacert/--cert/--key for an mTLS call to the API.
std::string client_args(const std::string& root, const ClientCert& c);
// -X POST of a JSON body (written to a file under work).
std::string json_post(const TempDir& work, const std::string& name, const std::string& body);

}  // namespace gridtrust::test
