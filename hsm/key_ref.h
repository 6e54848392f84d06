#pragma once
#include <string>

#include "core/encoding.h"
#include "hsm/key_algorithm.h"

namespace gridtrust::hsm {

// Names a key pair in the token. The store records label and id; the object handle
// is looked up per token connection because a reconnect may renumber handles.
struct KeyRef {
  std::string label;
  Bytes id;                // CKA_ID
  KeyAlgorithm algorithm;
  Bytes public_key_der;    // SubjectPublicKeyInfo DER
};

// What pkcs11 reports about a private key object (for audits and tests).
struct PrivateKeyInfo {
  std::string label;
  Bytes id;
  bool sensitive;
  bool extractable;
  bool always_sensitive;
  bool never_extractable;
};

}  // namespace gridtrust::hsm
