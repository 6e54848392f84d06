#pragma once
#include <string>

namespace gridtrust {

// Drains the OpenSSL error queue into one line (empty if the queue was empty).
std::string openssl_errors();

}  // namespace gridtrust
