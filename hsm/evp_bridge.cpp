#include "hsm/evp_bridge.h"

#include <mutex>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/x509.h>

#include "core/openssl_error.h"
#include "hsm/sign_failure.h"

namespace gridtrust::hsm {
namespace {

using SignerHolder = std::shared_ptr<const Signer>;

void free_holder(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<SignerHolder*>(ptr);
}

// A copied EC_KEY (EC_KEY_copy, EVP_PKEY_dup) gets a holder of its own: OpenSSL copies
// the raw pointer, and two keys freeing one holder would be a double free.
int dup_holder(CRYPTO_EX_DATA*, const CRYPTO_EX_DATA*, void** from_d, int, long, void*) {
  auto* src = *static_cast<SignerHolder**>(static_cast<void*>(from_d));
  if (src) *from_d = new SignerHolder(*src);
  return 1;
}

int holder_index() {
  static const int idx = EC_KEY_get_ex_new_index(0, nullptr, nullptr, dup_holder, free_holder);
  return idx;
}

ECDSA_SIG* bridge_sign_sig(const unsigned char* dgst, int dlen, const BIGNUM*, const BIGNUM*,
                           EC_KEY* eckey) {
  auto* holder = static_cast<SignerHolder*>(EC_KEY_get_ex_data(eckey, holder_index()));
  if (!holder || !*holder) return nullptr;
  auto raw = (*holder)->sign_raw(Bytes(dgst, dgst + dlen));
  if (!raw.ok()) note_sign_failure(raw.error());
  if (!raw.ok() || raw->empty() || raw->size() % 2) return nullptr;
  std::size_t half = raw->size() / 2;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(raw->data(), static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(raw->data() + half, static_cast<int>(half), nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
    ECDSA_SIG_free(sig);
    BN_free(r);
    BN_free(s);
    return nullptr;
  }
  return sig;
}

int bridge_sign(int, const unsigned char* dgst, int dlen, unsigned char* out, unsigned int* outlen,
                const BIGNUM* kinv, const BIGNUM* r, EC_KEY* eckey) {
  EcdsaSigPtr sig(bridge_sign_sig(dgst, dlen, kinv, r, eckey));
  if (!sig) return 0;
  unsigned char* p = out;
  int n = i2d_ECDSA_SIG(sig.get(), &p);
  if (n <= 0) return 0;
  *outlen = static_cast<unsigned int>(n);
  return 1;
}

const EC_KEY_METHOD* bridge_method() {
  static EC_KEY_METHOD* meth = [] {
    EC_KEY_METHOD* m = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    int (*setup)(EC_KEY*, BN_CTX*, BIGNUM**, BIGNUM**) = nullptr;
    EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), nullptr, &setup, nullptr);
    EC_KEY_METHOD_set_sign(m, bridge_sign, setup, bridge_sign_sig);
    return m;
  }();
  return meth;
}

}  // namespace

Result<EvpPkeyPtr> public_evp_pkey(const Signer& signer) {
  const Bytes& der = signer.public_key_der();
  const unsigned char* p = der.data();
  EvpPkeyPtr pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!pub) return reject("hsm.bad_public_key", "cannot parse public key: " + openssl_errors());
  return pub;
}

Result<EvpPkeyPtr> make_evp_pkey(std::shared_ptr<const Signer> signer) {
  if (is_edwards(signer->algorithm()))
    return reject("hsm.bridge_unsupported",
                  "EdDSA keys sign through hsm::Signer directly, not through an EVP_PKEY");
  GT_TRY_ASSIGN(EvpPkeyPtr pub, public_evp_pkey(*signer));
  std::unique_ptr<EC_KEY, OsslDeleter<EC_KEY_free>> src(EVP_PKEY_get1_EC_KEY(pub.get()));
  if (!src) return reject("hsm.bad_public_key", "public key is not an EC key");
  std::unique_ptr<EC_KEY, OsslDeleter<EC_KEY_free>> key(EC_KEY_new());
  if (!key || EC_KEY_set_method(key.get(), bridge_method()) != 1 ||
      EC_KEY_set_group(key.get(), EC_KEY_get0_group(src.get())) != 1 ||
      EC_KEY_set_public_key(key.get(), EC_KEY_get0_public_key(src.get())) != 1)
    return reject("internal.openssl", "cannot build bridged EC key: " + openssl_errors());
  auto* holder = new SignerHolder(std::move(signer));
  if (EC_KEY_set_ex_data(key.get(), holder_index(), holder) != 1) {
    delete holder;
    return reject("internal.openssl", "cannot attach signer to EC key");
  }
  EvpPkeyPtr pkey(EVP_PKEY_new());
  if (!pkey || EVP_PKEY_assign_EC_KEY(pkey.get(), key.get()) != 1)
    return reject("internal.openssl", "cannot wrap bridged EC key");
  key.release();  // now owned by pkey
  return pkey;
}

Result<Bytes> ecdsa_raw_to_der(const Bytes& raw) {
  if (raw.empty() || raw.size() % 2) return reject("hsm.bad_signature", "odd raw ECDSA signature");
  std::size_t half = raw.size() / 2;
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw.data(), static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + half, static_cast<int>(half), nullptr);
  ECDSA_SIG_set0(sig.get(), r, s);
  int n = i2d_ECDSA_SIG(sig.get(), nullptr);
  Bytes der(n);
  unsigned char* p = der.data();
  i2d_ECDSA_SIG(sig.get(), &p);
  return der;
}

Result<Bytes> ecdsa_der_to_raw(const Bytes& der, std::size_t half) {
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig || p != der.data() + der.size()) return reject("hsm.bad_signature", "not a DER ECDSA signature");
  Bytes raw(half * 2);
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw.data(), static_cast<int>(half)) < 0 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw.data() + half, static_cast<int>(half)) < 0)
    return reject("hsm.bad_signature", "ECDSA signature component too large");
  return raw;
}

namespace {
thread_local std::optional<Rejection> t_sign_failure;
}  // namespace

std::optional<Rejection> take_sign_failure() {
  std::optional<Rejection> out;
  out.swap(t_sign_failure);
  return out;
}

void note_sign_failure(Rejection why) { t_sign_failure = std::move(why); }

}  // namespace gridtrust::hsm
