#include "hsm/token_uri.h"

#include <p11-kit/uri.h>

namespace gridtrust::hsm {

void TokenUri::Free::operator()(P11KitUri* u) const { p11_kit_uri_free(u); }

Result<TokenUri> TokenUri::parse(const std::string& text) {
  if (text.rfind("pkcs11:", 0) != 0)
    return reject("hsm.bad_uri", "token URI must start with 'pkcs11:' (RFC 7512): " + text);
  P11KitUri* raw = p11_kit_uri_new();
  int rc = p11_kit_uri_parse(text.c_str(), P11_KIT_URI_FOR_TOKEN, raw);
  if (rc != P11_KIT_URI_OK) {
    p11_kit_uri_free(raw);
    return reject("hsm.bad_uri", std::string("invalid PKCS#11 URI: ") + p11_kit_uri_message(rc));
  }
  TokenUri u;
  u.uri_ = std::shared_ptr<P11KitUri>(raw, Free{});
  u.text_ = text;
  return u;
}

bool TokenUri::matches(const CK_TOKEN_INFO& info) const {
  return p11_kit_uri_match_token_info(uri_.get(), const_cast<CK_TOKEN_INFO*>(&info)) == 1;
}

}  // namespace gridtrust::hsm
