#pragma once
// Where a PIN comes from: a file (first line) or an environment variable. Never argv.
#include <string>

#include "core/rejection.h"
#include "core/secure_string.h"

namespace gridtrust::hsm {

struct PinSource {
  std::string file;     // path of a file holding the PIN, or empty
  std::string env_var;  // name of an environment variable, or empty
};

Result<SecureString> read_pin(const PinSource& src);

}  // namespace gridtrust::hsm
