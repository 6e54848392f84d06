#include "hsm/token.h"

#include <cstring>
#include <thread>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "core/openssl_ptr.h"
#include "core/random.h"

namespace gridtrust::hsm {
namespace {

bool session_lost(CK_RV rv) { return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED; }

// Errors after which the module connection or the login state must be rebuilt.
bool token_lost(CK_RV rv) {
  return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_ERROR ||
         rv == CKR_CRYPTOKI_NOT_INITIALIZED || rv == CKR_USER_NOT_LOGGED_IN ||
         rv == CKR_GENERAL_ERROR || rv == CKR_SLOT_ID_INVALID || rv == CKR_TOKEN_NOT_RECOGNIZED;
}

CK_ATTRIBUTE attr(CK_ATTRIBUTE_TYPE t, void* p, CK_ULONG n) { return CK_ATTRIBUTE{t, p, n}; }

// Reads one variable-length attribute.
CK_RV get_bytes(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                CK_ATTRIBUTE_TYPE t, Bytes* out) {
  CK_ATTRIBUTE a = attr(t, nullptr, 0);
  CK_RV rv = fn->C_GetAttributeValue(s, o, &a, 1);
  if (rv != CKR_OK) return rv;
  if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION) return CKR_ATTRIBUTE_TYPE_INVALID;
  out->resize(a.ulValueLen);
  a.pValue = out->data();
  return fn->C_GetAttributeValue(s, o, &a, 1);
}

CK_RV find_objects(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s, CK_ATTRIBUTE* tmpl, CK_ULONG n,
                   std::vector<CK_OBJECT_HANDLE>* out) {
  CK_RV rv = fn->C_FindObjectsInit(s, tmpl, n);
  if (rv != CKR_OK) return rv;
  CK_OBJECT_HANDLE buf[64];
  CK_ULONG count = 0;
  do {
    rv = fn->C_FindObjects(s, buf, 64, &count);
    if (rv != CKR_OK) break;
    out->insert(out->end(), buf, buf + count);
  } while (count == 64);
  CK_RV frv = fn->C_FindObjectsFinal(s);
  return rv != CKR_OK ? rv : frv;
}

std::optional<KeyAlgorithm> algorithm_from_params(const Bytes& params) {
  for (auto a : {KeyAlgorithm::EcP256, KeyAlgorithm::EcP384, KeyAlgorithm::EcP521,
                 KeyAlgorithm::Ed25519, KeyAlgorithm::Ed448})
    if (ec_params_der(a) == params) return a;
  // SoftHSM2 also accepts the printable-string curve names for Edwards curves.
  std::string s(params.begin(), params.end());
  if (s.find("edwards25519") != std::string::npos) return KeyAlgorithm::Ed25519;
  if (s.find("edwards448") != std::string::npos) return KeyAlgorithm::Ed448;
  return std::nullopt;
}

std::string label_of(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o) {
  Bytes b;
  if (get_bytes(fn, s, o, CKA_LABEL, &b) != CKR_OK) return {};
  return std::string(b.begin(), b.end());
}

}  // namespace

Result<Bytes> spki_from_ec_point(KeyAlgorithm alg, const Bytes& ec_point) {
  // CKA_EC_POINT is a DER OCTET STRING holding the point (PKCS#11 v2.40 2.3.3).
  Bytes point = ec_point;
  const unsigned char* p = ec_point.data();
  if (Asn1OctetPtr os(d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(ec_point.size())));
      os && p == ec_point.data() + ec_point.size()) {
    point.assign(os->data, os->data + os->length);
  }
  EvpPkeyPtr pkey;
  if (is_edwards(alg)) {
    int type = alg == KeyAlgorithm::Ed25519 ? EVP_PKEY_ED25519 : EVP_PKEY_ED448;
    pkey.reset(EVP_PKEY_new_raw_public_key(type, nullptr, point.data(), point.size()));
  } else {
    std::unique_ptr<OSSL_PARAM_BLD, OsslDeleter<OSSL_PARAM_BLD_free>> bld(OSSL_PARAM_BLD_new());
    OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, openssl_name(alg), 0);
    OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
    std::unique_ptr<OSSL_PARAM, OsslDeleter<OSSL_PARAM_free>> params(OSSL_PARAM_BLD_to_param(bld.get()));
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* raw = nullptr;
    if (ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) == 1)
      pkey.reset(raw);
  }
  if (!pkey) return reject("hsm.bad_public_key", "token returned an unusable public key");
  int len = i2d_PUBKEY(pkey.get(), nullptr);
  Bytes der(len);
  unsigned char* w = der.data();
  i2d_PUBKEY(pkey.get(), &w);
  return der;
}

Token::Token(TokenConfig cfg, Module module, TokenUri uri)
    : cfg_(std::move(cfg)), module_(std::move(module)), uri_(std::move(uri)) {}

Token::~Token() {
  SigpipeGuard no_sigpipe;
  std::unique_lock lk(state_mu_);
  close_idle_locked();
}

Result<std::unique_ptr<Token>> Token::open(TokenConfig cfg) {
  GT_TRY_ASSIGN(TokenUri uri, TokenUri::parse(cfg.token_uri));
  GT_TRY_ASSIGN(Module module, Module::load(cfg.module_path));
  std::unique_ptr<Token> t(new Token(std::move(cfg), std::move(module), std::move(uri)));
  SigpipeGuard no_sigpipe;
  std::unique_lock lk(t->state_mu_);
  GT_TRY(t->connect_locked());
  return t;
}

void Token::close_idle_locked() {
  auto* fn = module_.fn();
  if (!fn) return;
  std::lock_guard g(idle_mu_);
  for (auto s : idle_) fn->C_CloseSession(s);
  idle_.clear();
  open_sessions_ = 0;
}

Status Token::connect_locked() {
  auto* fn = module_.fn();
  CK_ULONG n = 0;
  CK_RV rv = fn->C_GetSlotList(CK_TRUE, nullptr, &n);
  if (rv != CKR_OK) return rv_rejection("C_GetSlotList", rv);
  std::vector<CK_SLOT_ID> slots(n);
  rv = fn->C_GetSlotList(CK_TRUE, slots.data(), &n);
  if (rv != CKR_OK) return rv_rejection("C_GetSlotList", rv);
  slots.resize(n);
  std::optional<CK_SLOT_ID> found;
  for (auto slot : slots) {
    CK_TOKEN_INFO info;
    if (fn->C_GetTokenInfo(slot, &info) == CKR_OK && uri_.matches(info)) {
      found = slot;
      break;
    }
  }
  if (!found) return reject("hsm.token_not_found", "no token matches " + uri_.text());
  CK_SESSION_HANDLE s;
  rv = fn->C_OpenSession(*found, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &s);
  if (rv != CKR_OK) return rv_rejection("C_OpenSession", rv);
  rv = login(s);
  if (rv != CKR_OK) {
    fn->C_CloseSession(s);
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID)
      return reject("hsm.login_failed", "C_Login refused the PIN: " + rv_name(rv));
    return rv_rejection("C_Login", rv);
  }
  slot_ = *found;
  {
    // This session stays in the pool; the login lasts while any session is open.
    std::lock_guard g(idle_mu_);
    idle_.push_back(s);
    open_sessions_ = 1;
  }
  {
    std::lock_guard g(handles_mu_);
    handles_.clear();
  }
  ++generation_;
  connected_ = true;
  return Ok{};
}

CK_RV Token::login(CK_SESSION_HANDLE s) {
  const std::string& pin = cfg_.pin.reveal();
  CK_RV rv = module_.fn()->C_Login(
      s, CKU_USER, reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.data())), pin.size());
  return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

void Token::drop_idle_sessions() {
  std::vector<CK_SESSION_HANDLE> dropped;
  {
    std::lock_guard g(idle_mu_);
    dropped.swap(idle_);
    open_sessions_ -= dropped.size();
  }
  // Most are gone already; closing the odd survivor keeps it from leaking.
  for (auto s : dropped) module_.fn()->C_CloseSession(s);
}

Status Token::reconnect(std::uint64_t seen) {
  std::unique_lock lk(state_mu_);
  if (connected_ && generation_ != seen) return Ok{};  // another thread already did it
  connected_ = false;
  close_idle_locked();
  GT_TRY(module_.reinitialize());
  GT_TRY(connect_locked());
  reconnects_.fetch_add(1);
  return Ok{};
}

Result<CK_SESSION_HANDLE> Token::acquire() {
  {
    std::lock_guard g(idle_mu_);
    if (!idle_.empty()) {
      auto s = idle_.back();
      idle_.pop_back();
      return s;
    }
    ++open_sessions_;
  }
  CK_SESSION_HANDLE s;
  CK_RV rv = module_.fn()->C_OpenSession(slot_, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                         nullptr, &s);
  // A new session shares the token's login, unless every session was closed meanwhile
  // (CKR_SESSION_HANDLE_INVALID for the pooled ones): then log in again, as connect did.
  if (rv == CKR_OK) {
    CK_SESSION_INFO info;
    CK_RV lrv = module_.fn()->C_GetSessionInfo(s, &info);
    if (lrv == CKR_OK && info.state != CKS_RW_USER_FUNCTIONS && info.state != CKS_RO_USER_FUNCTIONS)
      lrv = login(s);
    if (lrv != CKR_OK) {
      module_.fn()->C_CloseSession(s);
      rv = lrv;
    }
  }
  if (rv != CKR_OK) {
    std::lock_guard g(idle_mu_);
    --open_sessions_;
    return Rejection{rv_name(rv), "C_OpenSession"};
  }
  return s;
}

void Token::release(CK_SESSION_HANDLE s, std::uint64_t generation) {
  std::lock_guard g(idle_mu_);
  if (generation == generation_ && idle_.size() < cfg_.max_sessions) {
    idle_.push_back(s);
    return;
  }
  --open_sessions_;
  if (generation == generation_) module_.fn()->C_CloseSession(s);
}

std::size_t Token::idle_sessions() const {
  std::lock_guard g(idle_mu_);
  return idle_.size();
}

Status Token::run(const char* what, const std::function<CK_RV(CK_SESSION_HANDLE)>& op) {
  SigpipeGuard no_sigpipe;  // a dropped remote connection must surface as an error
  std::string last = "not connected";
  for (int attempt = 0; attempt < cfg_.max_attempts; ++attempt) {
    std::uint64_t gen;
    {
      std::shared_lock lk(state_mu_);
      gen = generation_;
      if (connected_) {
        std::unique_lock<std::mutex> one_call;
        if (module_.serialize_calls()) one_call = std::unique_lock(call_mu_);
        auto s = acquire();
        if (!s.ok()) {
          last = s.error().code;  // C_OpenSession failed: rebuild the connection below
        } else {
          CK_RV rv = op(*s);
          if (rv == CKR_OK) {
            release(*s, gen);
            return Ok{};
          }
          last = rv_name(rv);
          if (session_lost(rv)) {
            {
              std::lock_guard g(idle_mu_);
              --open_sessions_;
            }
            // Sessions are rarely lost one at a time (C_CloseAllSessions, a token
            // reset): drop the pool so the next attempt opens, and logs in, afresh
            // instead of spending the attempts on more dead handles.
            drop_idle_sessions();
            continue;
          }
          if (!token_lost(rv)) {
            release(*s, gen);
            return rv_rejection(what, rv);
          }
          std::lock_guard g(idle_mu_);
          --open_sessions_;
        }
      }
    }
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
    auto st = reconnect(gen);
    if (!st.ok()) last = st.error().message;
  }
  return reject("hsm.unavailable", std::string(what) + ": token unavailable (" + last + ")");
}

CK_RV Token::private_handle(CK_SESSION_HANDLE s, const Bytes& id, CK_OBJECT_HANDLE* out) {
  {
    std::lock_guard g(handles_mu_);
    if (auto it = handles_.find(id); it != handles_.end()) {
      *out = it->second;
      return CKR_OK;
    }
  }
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE tmpl[] = {attr(CKA_CLASS, &cls, sizeof cls),
                         attr(CKA_ID, const_cast<std::uint8_t*>(id.data()), id.size())};
  std::vector<CK_OBJECT_HANDLE> found;
  CK_RV rv = find_objects(module_.fn(), s, tmpl, 2, &found);
  if (rv != CKR_OK) return rv;
  if (found.empty()) return CKR_KEY_HANDLE_INVALID;
  std::lock_guard g(handles_mu_);
  handles_[id] = found.front();
  *out = found.front();
  return CKR_OK;
}

Result<KeyRef> Token::generate_key_pair(KeyAlgorithm alg, const std::string& label) {
  KeyRef ref{label, random_bytes(16), alg, {}};
  Bytes params = ec_params_der(alg);
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_KEY_TYPE kt = is_edwards(alg) ? CKK_EC_EDWARDS : CKK_EC;
  CK_MECHANISM mech{is_edwards(alg) ? CKM_EC_EDWARDS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  auto* lbl = const_cast<char*>(label.data());
  CK_ATTRIBUTE pub[] = {
      attr(CKA_TOKEN, &yes, 1), attr(CKA_PRIVATE, &no, 1), attr(CKA_VERIFY, &yes, 1),
      attr(CKA_KEY_TYPE, &kt, sizeof kt), attr(CKA_EC_PARAMS, params.data(), params.size()),
      attr(CKA_LABEL, lbl, label.size()), attr(CKA_ID, ref.id.data(), ref.id.size())};
  // Private keys never leave the token: sensitive, not extractable.
  CK_ATTRIBUTE priv[] = {
      attr(CKA_TOKEN, &yes, 1), attr(CKA_PRIVATE, &yes, 1), attr(CKA_SENSITIVE, &yes, 1),
      attr(CKA_EXTRACTABLE, &no, 1), attr(CKA_SIGN, &yes, 1), attr(CKA_DERIVE, &no, 1),
      attr(CKA_DECRYPT, &no, 1), attr(CKA_UNWRAP, &no, 1),
      attr(CKA_KEY_TYPE, &kt, sizeof kt), attr(CKA_LABEL, lbl, label.size()),
      attr(CKA_ID, ref.id.data(), ref.id.size())};
  Bytes point;
  auto st = run("C_GenerateKeyPair", [&](CK_SESSION_HANDLE s) {
    // A retry after a lost connection must not make a second pair under the same
    // CKA_ID: if the first attempt got as far as the token, use what it made.
    CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE find[] = {attr(CKA_CLASS, &pub_class, sizeof pub_class), attr(CKA_ID, ref.id.data(), ref.id.size())};
    std::vector<CK_OBJECT_HANDLE> existing;
    CK_RV rv = find_objects(module_.fn(), s, find, 2, &existing);
    if (rv != CKR_OK) return rv;
    CK_OBJECT_HANDLE hpub, hpriv;
    if (!existing.empty()) {
      hpub = existing.front();
    } else {
      rv = module_.fn()->C_GenerateKeyPair(s, &mech, pub, std::size(pub), priv, std::size(priv), &hpub, &hpriv);
      if (rv != CKR_OK) return rv;
    }
    return get_bytes(module_.fn(), s, hpub, CKA_EC_POINT, &point);
  });
  if (!st.ok()) return st.error();
  GT_TRY_ASSIGN(ref.public_key_der, spki_from_ec_point(alg, point));
  return ref;
}

Result<std::optional<KeyRef>> Token::find_key(const std::string& label) {
  CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
  CK_ATTRIBUTE tmpl[] = {attr(CKA_CLASS, &cls, sizeof cls),
                         attr(CKA_LABEL, const_cast<char*>(label.data()), label.size())};
  std::optional<KeyRef> result;
  Bytes id, params, point;
  bool have = false;
  auto st = run("find key", [&](CK_SESSION_HANDLE s) {
    have = false;  // a retried attempt starts afresh
    std::vector<CK_OBJECT_HANDLE> found;
    CK_RV rv = find_objects(module_.fn(), s, tmpl, 2, &found);
    if (rv != CKR_OK || found.empty()) return rv;
    have = true;
    if ((rv = get_bytes(module_.fn(), s, found.front(), CKA_ID, &id)) != CKR_OK) return rv;
    if ((rv = get_bytes(module_.fn(), s, found.front(), CKA_EC_PARAMS, &params)) != CKR_OK) return rv;
    return get_bytes(module_.fn(), s, found.front(), CKA_EC_POINT, &point);
  });
  if (!st.ok()) return st.error();
  if (!have) return result;
  auto alg = algorithm_from_params(params);
  if (!alg) return reject("hsm.unsupported_key", "key '" + label + "' has an unsupported curve");
  GT_TRY_ASSIGN(Bytes spki, spki_from_ec_point(*alg, point));
  result = KeyRef{label, id, *alg, std::move(spki)};
  return result;
}

Result<KeyRef> Token::find_key_by_id(const Bytes& id) {
  CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
  CK_ATTRIBUTE tmpl[] = {attr(CKA_CLASS, &cls, sizeof cls),
                         attr(CKA_ID, const_cast<std::uint8_t*>(id.data()), id.size())};
  Bytes params, point;
  std::string label;
  bool have = false;
  auto st = run("find key", [&](CK_SESSION_HANDLE s) {
    have = false;
    std::vector<CK_OBJECT_HANDLE> found;
    CK_RV rv = find_objects(module_.fn(), s, tmpl, 2, &found);
    if (rv != CKR_OK || found.empty()) return rv;
    have = true;
    label = label_of(module_.fn(), s, found.front());
    if ((rv = get_bytes(module_.fn(), s, found.front(), CKA_EC_PARAMS, &params)) != CKR_OK) return rv;
    return get_bytes(module_.fn(), s, found.front(), CKA_EC_POINT, &point);
  });
  if (!st.ok()) return st.error();
  if (!have) return reject("hsm.key_not_found", "no key with id " + to_hex(id) + " in the token");
  auto alg = algorithm_from_params(params);
  if (!alg) return reject("hsm.unsupported_key", "key " + to_hex(id) + " has an unsupported curve");
  GT_TRY_ASSIGN(Bytes spki, spki_from_ec_point(*alg, point));
  return KeyRef{label, id, *alg, std::move(spki)};
}

Result<Bytes> Token::sign(const KeyRef& key, const Bytes& input) {
  Bytes sig(raw_signature_size(key.algorithm));
  CK_MECHANISM mech{is_edwards(key.algorithm) ? CKM_EDDSA : CKM_ECDSA, nullptr, 0};
  auto st = run("C_Sign", [&](CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE h;
    CK_RV rv = private_handle(s, key.id, &h);
    if (rv != CKR_OK) return rv;
    rv = module_.fn()->C_SignInit(s, &mech, h);
    if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) {
      // Stale cached handle (key recreated): look it up once more.
      {
        std::lock_guard g(handles_mu_);
        handles_.erase(key.id);
      }
      if ((rv = private_handle(s, key.id, &h)) != CKR_OK) return rv;
      rv = module_.fn()->C_SignInit(s, &mech, h);
    }
    if (rv != CKR_OK) return rv;
    CK_ULONG len = sig.size();
    rv = module_.fn()->C_Sign(s, const_cast<std::uint8_t*>(input.data()), input.size(), sig.data(), &len);
    if (rv == CKR_OK) sig.resize(len);
    return rv;
  });
  if (!st.ok()) {
    if (st.error().message.find("CKR_KEY_HANDLE_INVALID") != std::string::npos)
      return reject("hsm.key_not_found", "key '" + key.label + "' is not in the token");
    return st.error();
  }
  return sig;
}

Status Token::destroy_key(const KeyRef& key) {
  auto st = run("C_DestroyObject", [&](CK_SESSION_HANDLE s) {
    CK_ATTRIBUTE tmpl[] = {attr(CKA_ID, const_cast<std::uint8_t*>(key.id.data()), key.id.size())};
    std::vector<CK_OBJECT_HANDLE> found;
    CK_RV rv = find_objects(module_.fn(), s, tmpl, 1, &found);
    if (rv != CKR_OK) return rv;
    for (auto h : found)
      if ((rv = module_.fn()->C_DestroyObject(s, h)) != CKR_OK) return rv;
    return CKR_OK;
  });
  std::lock_guard g(handles_mu_);
  handles_.erase(key.id);
  return st;
}

Result<std::vector<PrivateKeyInfo>> Token::list_private_keys() {
  std::vector<PrivateKeyInfo> out;
  auto st = run("list keys", [&](CK_SESSION_HANDLE s) {
    out.clear();
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {attr(CKA_CLASS, &cls, sizeof cls)};
    std::vector<CK_OBJECT_HANDLE> found;
    CK_RV rv = find_objects(module_.fn(), s, tmpl, 1, &found);
    if (rv != CKR_OK) return rv;
    for (auto h : found) {
      CK_BBOOL sens = 0, extr = 1, asens = 0, nextr = 0;
      CK_ATTRIBUTE a[] = {attr(CKA_SENSITIVE, &sens, 1), attr(CKA_EXTRACTABLE, &extr, 1),
                          attr(CKA_ALWAYS_SENSITIVE, &asens, 1), attr(CKA_NEVER_EXTRACTABLE, &nextr, 1)};
      if ((rv = module_.fn()->C_GetAttributeValue(s, h, a, 4)) != CKR_OK) return rv;
      PrivateKeyInfo info{label_of(module_.fn(), s, h), {}, sens == CK_TRUE, extr == CK_TRUE,
                          asens == CK_TRUE, nextr == CK_TRUE};
      get_bytes(module_.fn(), s, h, CKA_ID, &info.id);
      out.push_back(std::move(info));
    }
    return CKR_OK;
  });
  if (!st.ok()) return st.error();
  return out;
}

}  // namespace gridtrust::hsm
