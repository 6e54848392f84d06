#pragma once
#include <memory>

#include "hsm/signer.h"
#include "hsm/token.h"

namespace gridtrust::hsm {

class HsmSigner final : public Signer {
 public:
  HsmSigner(std::shared_ptr<Token> token, KeyRef key) : token_(std::move(token)), key_(std::move(key)) {}
  KeyAlgorithm algorithm() const override { return key_.algorithm; }
  const Bytes& public_key_der() const override { return key_.public_key_der; }
  Result<Bytes> sign_raw(const Bytes& input) const override { return token_->sign(key_, input); }
  const KeyRef& key() const { return key_; }

 private:
  std::shared_ptr<Token> token_;
  KeyRef key_;
};

}  // namespace gridtrust::hsm
