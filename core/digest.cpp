#include "core/digest.h"

#include <openssl/evp.h>

namespace gridtrust {

Bytes sha256(const std::uint8_t* data, std::size_t len) {
  Bytes out(32);
  unsigned int n = 0;
  EVP_Digest(data, len, out.data(), &n, EVP_sha256(), nullptr);
  return out;
}

}  // namespace gridtrust
