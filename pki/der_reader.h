#pragma once
// A strict DER reader for the few structures gridtrust walks itself (PKCS#10 requests
// on the issuance hot path): definite, minimally encoded lengths only; every read is
// bounds-checked. OpenSSL still decodes names and keys; this only finds their bytes.
#include <cstdint>
#include <optional>

#include "core/encoding.h"

namespace gridtrust::pki {

struct DerElement {
  std::uint8_t tag = 0;
  const std::uint8_t* whole = nullptr;  // tag, length and content
  std::size_t whole_len = 0;
  const std::uint8_t* content = nullptr;
  std::size_t content_len = 0;

  Bytes bytes() const { return Bytes(whole, whole + whole_len); }
};

class DerReader {
 public:
  DerReader(const std::uint8_t* data, std::size_t len) : p_(data), end_(data + len) {}
  explicit DerReader(const DerElement& e) : DerReader(e.content, e.content_len) {}

  // The next element if it has this tag; nullopt (and the reader unusable) otherwise.
  std::optional<DerElement> next(std::uint8_t expected_tag);
  bool at_end() const { return p_ == end_; }
  std::optional<std::uint8_t> peek_tag() const { return p_ < end_ ? std::optional<std::uint8_t>(*p_) : std::nullopt; }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

namespace der {
inline constexpr std::uint8_t kInteger = 0x02, kBitString = 0x03, kOid = 0x06, kSequence = 0x30,
                                kContext0Constructed = 0xa0;
}

}  // namespace gridtrust::pki
