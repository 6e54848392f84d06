#pragma once
// A logged-in token behind a pool of PKCS#11 sessions.
//
// Every operation borrows a session, runs, and returns it. A lost session
// (CKR_SESSION_HANDLE_INVALID/CLOSED) is dropped and the operation retried; a lost
// token or module connection (CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, a dead
// p11-kit remote) triggers one reconnect: finalise, initialise, find the slot by URI,
// log in again. Retries are bounded; when the token stays away the caller gets
// `hsm.unavailable` and may try again later, with no restart of the process.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <vector>

#include "core/rejection.h"
#include "core/secure_string.h"
#include "hsm/key_ref.h"
#include "hsm/module.h"
#include "hsm/token_uri.h"

namespace gridtrust::hsm {

struct TokenConfig {
  std::string module_path;
  std::string token_uri;  // RFC 7512, e.g. pkcs11:token=gridtrust
  SecureString pin;
  std::size_t max_sessions = 8;
  int max_attempts = 3;  // per operation, including reconnects
};

class Token {
 public:
  static Result<std::unique_ptr<Token>> open(TokenConfig cfg);

  Token(const Token&) = delete;  // owns sessions and the login state
  Token& operator=(const Token&) = delete;
  ~Token();

  Result<KeyRef> generate_key_pair(KeyAlgorithm alg, const std::string& label);
  Result<std::optional<KeyRef>> find_key(const std::string& label);
  Result<KeyRef> find_key_by_id(const Bytes& id);
  // ECDSA: input is the digest, output raw r||s. EdDSA: input is the message.
  Result<Bytes> sign(const KeyRef& key, const Bytes& input);
  Status destroy_key(const KeyRef& key);
  Result<std::vector<PrivateKeyInfo>> list_private_keys();

  // Diagnostics for tests and metrics.
  std::uint64_t reconnects() const { return reconnects_.load(); }
  std::size_t idle_sessions() const;

 private:
  explicit Token(TokenConfig cfg, Module module, TokenUri uri);

  // Runs op on a pooled session with the recovery policy above. op returns a CK_RV;
  // `what` names the operation in errors.
  Status run(const char* what, const std::function<CK_RV(CK_SESSION_HANDLE)>& op);
  Status connect_locked();  // with state_mu_ held exclusively
  Status reconnect(std::uint64_t seen_generation);
  Result<CK_SESSION_HANDLE> acquire();
  void release(CK_SESSION_HANDLE s, std::uint64_t generation);
  void close_idle_locked();
  void drop_idle_sessions();  // after a lost session: the pooled ones went with it
  CK_RV login(CK_SESSION_HANDLE s);
  CK_RV private_handle(CK_SESSION_HANDLE s, const Bytes& id, CK_OBJECT_HANDLE* out);

  TokenConfig cfg_;
  Module module_;
  TokenUri uri_;

  // Shared by operations, exclusive while reconnecting.
  mutable std::shared_mutex state_mu_;
  bool connected_ = false;
  CK_SLOT_ID slot_ = 0;
  std::uint64_t generation_ = 0;

  // Held around each operation when the module takes one call at a time
  // (Module::serialize_calls); taken after state_mu_, before idle_mu_/handles_mu_.
  std::mutex call_mu_;

  mutable std::mutex idle_mu_;
  std::vector<CK_SESSION_HANDLE> idle_;
  std::size_t open_sessions_ = 0;

  std::mutex handles_mu_;
  std::map<Bytes, CK_OBJECT_HANDLE> handles_;  // CKA_ID -> private key handle, this generation

  std::atomic<std::uint64_t> reconnects_{0};
};

// Creates a token on a free slot (SoftHSM2's way: C_InitToken on the uninitialised
// slot), then sets the user PIN. Used by `gridtrust init`.
Status init_token(const std::string& module_path, const std::string& label,
                  const SecureString& so_pin, const SecureString& user_pin);

// SubjectPublicKeyInfo DER from a CKA_EC_POINT value.
Result<Bytes> spki_from_ec_point(KeyAlgorithm alg, const Bytes& ec_point_attr);

}  // namespace gridtrust::hsm
