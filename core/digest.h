#pragma once
#include "core/encoding.h"

namespace gridtrust {

Bytes sha256(const std::uint8_t* data, std::size_t len);
inline Bytes sha256(const Bytes& b) { return sha256(b.data(), b.size()); }
inline Bytes sha256(std::string_view s) {
  return sha256(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

}  // namespace gridtrust
