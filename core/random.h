#pragma once
#include "core/encoding.h"

namespace gridtrust {

// CSPRNG bytes (OpenSSL RAND_bytes); throws only if the RNG itself fails.
Bytes random_bytes(std::size_t n);

}  // namespace gridtrust
