#include "core/rejection.h"

namespace gridtrust {
namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

// Categories: usage/input (the request is wrong), not found, conflict (state forbids
// it), HSM unavailable (retry later), internal.
int exit_code_for(const std::string& code) {
  if (starts_with(code, "usage.")) return 2;
  // The HSM or, in the CLI's remote mode, gridtrustd is down: retry later.
  if (code == "hsm.unavailable" || code == "remote.unavailable") return 6;
  if (starts_with(code, "notfound.") || code.ends_with(".not_found")) return 4;
  if (starts_with(code, "conflict.") || starts_with(code, "issuer.") ||
      starts_with(code, "init.")) return 5;
  if (starts_with(code, "internal.") || starts_with(code, "store.") ||
      starts_with(code, "hsm.")) return 1;
  return 3;
}

int http_status_for(const std::string& code) {
  if (code == "hsm.unavailable") return 503;
  if (starts_with(code, "notfound.") || code.ends_with(".not_found")) return 404;
  if (starts_with(code, "conflict.") || starts_with(code, "issuer.")) return 409;
  if (starts_with(code, "auth.forbidden")) return 403;
  if (code == "request.too_large") return 413;
  if (code == "request.bad_content_type") return 415;
  if (starts_with(code, "auth.")) return 401;
  if (starts_with(code, "internal.") || starts_with(code, "store.") ||
      starts_with(code, "hsm.")) return 500;
  return 400;
}

}  // namespace gridtrust
