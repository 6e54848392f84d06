#pragma once
// One line per event on stderr (journald adds the timestamp under systemd). Never
// pass a PIN or key material here.
#include <string_view>

namespace gridtrust::daemon {

void log_line(std::string_view text);

}  // namespace gridtrust::daemon
