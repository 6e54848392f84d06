#include "hsm/pin_source.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace gridtrust::hsm {

Result<SecureString> read_pin(const PinSource& src) {
  if (!src.env_var.empty()) {
    if (const char* v = std::getenv(src.env_var.c_str()); v && *v)
      return SecureString(std::string(v));
    if (src.file.empty())
      return reject("hsm.pin_unavailable", "environment variable " + src.env_var + " is not set");
  }
  if (src.file.empty()) return reject("hsm.pin_unavailable", "no PIN file or variable configured");
  std::ifstream in(src.file);
  if (!in) return reject("hsm.pin_unavailable", "cannot read PIN file " + src.file);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' '))
    line.pop_back();
  SecureString pin(std::move(line));
  if (pin.empty()) return reject("hsm.pin_unavailable", "PIN file " + src.file + " is empty");
  return pin;
}

}  // namespace gridtrust::hsm
