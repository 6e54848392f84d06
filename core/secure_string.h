#pragma once
// A string for secrets (PINs): zeroed on destruction and never printed.
#include <string>
#include <utility>

#include <openssl/crypto.h>

namespace gridtrust {

class SecureString {
 public:
  SecureString() = default;
  explicit SecureString(std::string s) : s_(std::move(s)) {}
  SecureString(const SecureString&) = default;
  SecureString& operator=(const SecureString& o) {
    if (this != &o) { wipe(); s_ = o.s_; }
    return *this;
  }
  SecureString(SecureString&& o) noexcept : s_(std::move(o.s_)) { o.wipe(); }
  SecureString& operator=(SecureString&& o) noexcept {
    if (this != &o) { wipe(); s_ = std::move(o.s_); o.wipe(); }
    return *this;
  }
  ~SecureString() { wipe(); }

  const std::string& reveal() const { return s_; }
  bool empty() const { return s_.empty(); }

 private:
  void wipe() {
    if (!s_.empty()) OPENSSL_cleanse(s_.data(), s_.size());
    s_.clear();
  }
  std::string s_;
};

}  // namespace gridtrust
