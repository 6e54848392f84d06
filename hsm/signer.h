#pragma once
// The one signing primitive. The HSM implements it; tests may implement it with a
// software key. Everything that signs (certificates, CRLs, later OCSP, JWS, TLS)
// reaches a Signer through the same path.
#include "core/encoding.h"
#include "core/rejection.h"
#include "hsm/key_algorithm.h"

namespace gridtrust::hsm {

class Signer {
 public:
  virtual ~Signer() = default;
  virtual KeyAlgorithm algorithm() const = 0;
  virtual const Bytes& public_key_der() const = 0;  // SubjectPublicKeyInfo
  // ECDSA: `input` is the digest and the result is raw r||s (CKM_ECDSA).
  // EdDSA: `input` is the whole message (EdDSA is one-shot, CKM_EDDSA).
  virtual Result<Bytes> sign_raw(const Bytes& input) const = 0;
};

}  // namespace gridtrust::hsm
