#pragma once
// Shared test helpers: temp directories, running commands, SoftHSM2 tokens made per
// test, CSRs made with OpenSSL in-process.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/openssl_ptr.h"
#include "hsm/token.h"

namespace gridtrust::test {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;

  // "exit N", stdout and stderr, for INFO() when a check on the result fails.
  std::string describe() const;
};

// The same, as a free function (found by argument-dependent lookup).
inline std::string describe(const CommandResult& r) { return r.describe(); }
// The CLI's error contract is one line `error: <code>: <message>` on stderr: <code>,
// or "" when stderr does not start that way.
std::string error_code_of(const CommandResult& r);
inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Runs a shell command line; captures stdout and stderr.
CommandResult run(const std::string& command_line);
// Quotes a word for /bin/sh.
std::string sh_quote(const std::string& s);
// The CLI binary under test.
std::string cli();

void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

// A SoftHSM2 token of its own in a temp dir; SOFTHSM2_CONF points at it while alive.
class SoftHsmToken {
 public:
  // open=false: the token exists but this process has not logged in to it.
  explicit SoftHsmToken(bool open = true);
  ~SoftHsmToken();
  std::shared_ptr<hsm::Token> token() const { return token_; }
  std::string conf_path() const { return dir_ / "softhsm2.conf"; }
  std::string pin() const { return "1234"; }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  std::string previous_conf_;
  std::shared_ptr<hsm::Token> token_;
};

inline constexpr const char* kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";

// Key pairs and CSRs made in software (what a charger or vehicle would send).
EvpPkeyPtr make_key(const std::string& type);  // "P-256", "P-384", "P-521", "Ed25519", "Ed448", "RSA", "secp256k1"
std::string make_csr_pem(EVP_PKEY* key, const std::string& subject);  // subject as "CN=..,O=..,DC=.."
Bytes make_csr_der(EVP_PKEY* key, const std::string& subject);

// Every "CERTIFICATE" PEM block of a text, in order, each ending in a newline.
std::vector<std::string> split_pem_certs(const std::string& text);
// One PEM certificate, or null if it does not parse.
X509Ptr parse_cert(const std::string& pem);

// `gridtrust init` into a fresh temp directory.
class InitializedPki {
 public:
  InitializedPki();
  std::string data_dir() const { return dir_ / "pki"; }
  const TempDir& dir() const { return dir_; }
  // Runs `gridtrust <args> --data-dir <dir>`.
  CommandResult gt(const std::string& args) const;

 private:
  TempDir dir_;
};

}  // namespace gridtrust::test
