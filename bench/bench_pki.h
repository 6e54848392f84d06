#pragma once
// What the daemon benchmarks stand on: a `gridtrust init` data directory in a temp
// dir, shell commands, and gridtrustd as a child process on free loopback ports.
#include <sys/types.h>

#include <filesystem>
#include <string>

namespace gridtrust::bench {

struct CommandOutput {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};
CommandOutput run(const std::string& command_line);
std::string sh_quote(const std::string& s);
void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);
// A loopback port nobody listens on right now (the kernel picks it).
int free_port();

// `gridtrust init` into <tmp>/pki, listeners moved to free ports; the temp dir goes
// with it.
class BenchPki {
 public:
  BenchPki();
  BenchPki(const BenchPki&) = delete;  // removes its directory on destruction
  BenchPki& operator=(const BenchPki&) = delete;
  ~BenchPki();

  std::string data_dir() const { return (dir_ / "pki").string(); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  int api_port() const { return api_port_; }
  int status_port() const { return status_port_; }
  // Runs `gridtrust <args> --data-dir <dir>`; dies on failure.
  std::string gt(const std::string& args) const;
  // Adds `key: value` to the daemon section of gridtrust.yaml.
  void set_daemon_option(const std::string& key, const std::string& value);
  // An admin-profile client identity for the mTLS API (OU=admin, O=gridtrust demo; a
  // software P-256 key made by openssl): <tmp>/client.pem and <tmp>/client.key.
  struct Client {
    std::string cert, key;
  };
  Client admin_client() const;

 private:
  std::filesystem::path dir_;
  int api_port_ = 0;
  int status_port_ = 0;
};

// gridtrustd on a BenchPki; its log goes to <tmp>/gridtrustd.log. SIGKILLed if still
// running at destruction.
class Daemon {
 public:
  explicit Daemon(const BenchPki& pki);
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon();
  // SIGTERM and the exit status.
  int stop();

 private:
  pid_t pid_ = -1;
};

// A child process (another responder); SIGTERMed at destruction.
class ChildProcess {
 public:
  ChildProcess(const std::string& shell_command, const std::string& log_path);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

 private:
  pid_t pid_ = -1;
};

// Waits until something accepts TCP connections on 127.0.0.1:port (probes with a
// connection that sends nothing).
bool wait_for_port(int port, int timeout_ms);
// Waits until a file contains `text`.
bool wait_for_text(const std::string& path, const std::string& text, int timeout_ms);

}  // namespace gridtrust::bench
