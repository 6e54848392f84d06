#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gridtrust {

using Bytes = std::vector<std::uint8_t>;

std::string to_hex(const std::uint8_t* data, std::size_t len, bool upper = false);
inline std::string to_hex(const Bytes& b, bool upper = false) { return to_hex(b.data(), b.size(), upper); }
std::optional<Bytes> from_hex(std::string_view hex);

std::string base64_encode(const Bytes& b);
std::optional<Bytes> base64_decode(std::string_view s);
std::string base64url_encode(const Bytes& b);
std::optional<Bytes> base64url_decode(std::string_view s);

inline Bytes to_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

}  // namespace gridtrust
