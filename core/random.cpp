#include "core/random.h"

#include <stdexcept>

#include <openssl/rand.h>

namespace gridtrust {

Bytes random_bytes(std::size_t n) {
  Bytes out(n);
  if (n && RAND_bytes(out.data(), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return out;
}

}  // namespace gridtrust
