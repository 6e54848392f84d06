#pragma once
// RFC 7512 PKCS#11 URI selecting a token, parsed by p11-kit.
#include <memory>
#include <string>

#include <p11-kit/pkcs11.h>

#include "core/rejection.h"

typedef struct p11_kit_uri P11KitUri;

namespace gridtrust::hsm {

class TokenUri {
 public:
  static Result<TokenUri> parse(const std::string& uri);
  bool matches(const CK_TOKEN_INFO& info) const;
  const std::string& text() const { return text_; }

 private:
  struct Free { void operator()(P11KitUri* u) const; };
  std::shared_ptr<P11KitUri> uri_;
  std::string text_;
};

}  // namespace gridtrust::hsm
