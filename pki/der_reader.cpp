#include "pki/der_reader.h"

namespace gridtrust::pki {

std::optional<DerElement> DerReader::next(std::uint8_t expected_tag) {
  const std::uint8_t* start = p_;
  if (end_ - p_ < 2 || *p_ != expected_tag) return std::nullopt;
  ++p_;
  std::size_t len = *p_++;
  if (len & 0x80) {
    std::size_t octets = len & 0x7f;
    // X.690 10.1: definite form, minimal octets; 4 octets is far beyond any CSR.
    if (octets == 0 || octets > 4 || static_cast<std::size_t>(end_ - p_) < octets || *p_ == 0) {
      p_ = end_ = start;
      return std::nullopt;
    }
    len = 0;
    for (std::size_t i = 0; i < octets; ++i) len = len << 8 | *p_++;
    if (len < 0x80) {
      p_ = end_ = start;
      return std::nullopt;
    }
  }
  if (static_cast<std::size_t>(end_ - p_) < len) {
    p_ = end_ = start;
    return std::nullopt;
  }
  DerElement e{expected_tag, start, static_cast<std::size_t>(p_ + len - start), p_, len};
  p_ += len;
  return e;
}

}  // namespace gridtrust::pki
