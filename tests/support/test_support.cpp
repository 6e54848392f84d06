#include "tests/support/test_support.h"

#include <dlfcn.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "pki/subject.h"

namespace gridtrust::test {
namespace fs = std::filesystem;

namespace {
// Keep SoftHSM2 mapped until exit so LeakSanitizer can name it: SoftHSM 2.6 leaks a
// little per EdDSA C_SignInit, which tests/lsan.supp suppresses by module name; once
// p11-kit has unloaded the module the frames are anonymous and cannot be matched.
const bool softhsm_pinned = dlopen("/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_NODELETE) != nullptr;
}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/gridtrust-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string cli() { return GRIDTRUST_CLI; }

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string CommandResult::describe() const {
  return "exit " + std::to_string(exit_code) + "\nstdout: " + out + "\nstderr: " + err;
}

std::string error_code_of(const CommandResult& r) {
  if (r.err.rfind("error: ", 0) != 0) return "";
  auto end = r.err.find(':', 7);
  return r.err.substr(7, end - 7);
}

CommandResult run(const std::string& command_line) {
  TempDir io;
  std::string out = io / "out", err = io / "err";
  std::string full = "( " + command_line + " ) >" + sh_quote(out) + " 2>" + sh_quote(err) + " </dev/null";
  int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

SoftHsmToken::SoftHsmToken(bool open) {
  fs::create_directories(dir_.path() / "tokens");
  write_file(conf_path(), "directories.tokendir = " + (dir_ / "tokens") +
                              "\nobjectstore.backend = file\nlog.level = ERROR\n");
  if (const char* prev = std::getenv("SOFTHSM2_CONF")) previous_conf_ = prev;
  setenv("SOFTHSM2_CONF", conf_path().c_str(), 1);
  auto st = hsm::init_token(kSoftHsmModule, "test", SecureString("5678"), SecureString(pin()));
  if (!st.ok()) throw std::runtime_error("init_token: " + st.error().message);
  if (!open) return;
  hsm::TokenConfig cfg;
  cfg.module_path = kSoftHsmModule;
  cfg.token_uri = "pkcs11:token=test";
  cfg.pin = SecureString(pin());
  auto t = hsm::Token::open(std::move(cfg));
  if (!t.ok()) throw std::runtime_error("Token::open: " + t.error().message);
  token_ = std::move(t).value();
}

SoftHsmToken::~SoftHsmToken() {
  token_.reset();
  if (previous_conf_.empty()) unsetenv("SOFTHSM2_CONF");
  else setenv("SOFTHSM2_CONF", previous_conf_.c_str(), 1);
}

EvpPkeyPtr make_key(const std::string& type) {
  EVP_PKEY* key = nullptr;
  if (type == "P-256") key = EVP_EC_gen("prime256v1");
  else if (type == "P-384") key = EVP_EC_gen("secp384r1");
  else if (type == "P-521") key = EVP_EC_gen("secp521r1");
  else if (type == "secp256k1") key = EVP_EC_gen("secp256k1");
  else if (type == "Ed25519") key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  else if (type == "Ed448") key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448");
  else if (type == "RSA") key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  if (!key) throw std::runtime_error("cannot make key " + type);
  return EvpPkeyPtr(key);
}

namespace {
X509ReqPtr build_req(EVP_PKEY* key, const std::string& subject) {
  X509ReqPtr req(X509_REQ_new());
  auto name = pki::parse_subject(subject);
  if (!name.ok()) throw std::runtime_error("bad test subject: " + name.error().message);
  X509_REQ_set_version(req.get(), 0);
  X509_REQ_set_subject_name(req.get(), name->get());
  X509_REQ_set_pubkey(req.get(), key);
  int base = EVP_PKEY_get_base_id(key);
  const EVP_MD* md = (base == EVP_PKEY_ED25519 || base == EVP_PKEY_ED448) ? nullptr : EVP_sha256();
  if (X509_REQ_sign(req.get(), key, md) <= 0) throw std::runtime_error("X509_REQ_sign failed");
  return req;
}
}  // namespace

std::string make_csr_pem(EVP_PKEY* key, const std::string& subject) {
  auto req = build_req(key, subject);
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Bytes make_csr_der(EVP_PKEY* key, const std::string& subject) {
  auto req = build_req(key, subject);
  int n = i2d_X509_REQ(req.get(), nullptr);
  Bytes der(n);
  unsigned char* p = der.data();
  i2d_X509_REQ(req.get(), &p);
  return der;
}

std::vector<std::string> split_pem_certs(const std::string& text) {
  static const std::string begin = "-----BEGIN CERTIFICATE-----";
  static const std::string end = "-----END CERTIFICATE-----";
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = text.find(begin, pos)) != std::string::npos) {
    auto stop = text.find(end, pos);
    if (stop == std::string::npos) break;
    stop += end.size();
    out.push_back(text.substr(pos, stop - pos) + "\n");
    pos = stop;
  }
  return out;
}

X509Ptr parse_cert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return cert;
}

InitializedPki::InitializedPki() {
  auto r = run(sh_quote(cli()) + " init --data-dir " + sh_quote(data_dir()));
  if (r.exit_code != 0) throw std::runtime_error("gridtrust init failed: " + r.err);
}

CommandResult InitializedPki::gt(const std::string& args) const {
  return run(sh_quote(cli()) + " " + args + " --data-dir " + sh_quote(data_dir()));
}

}  // namespace gridtrust::test
