// gridtrust: the admin CLI. Offline mode works directly on a data directory; with
// --server URL (or GRIDTRUST_SERVER) the same commands go to gridtrustd's API.
#include <sys/prctl.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/remote_client.h"

int main(int argc, char** argv) {
  // No core dumps with PINs or session state in them; new files private by default.
  prctl(PR_SET_DUMPABLE, 0);
  umask(077);
  std::vector<std::string> words(argv + 1, argv + argc);
  gridtrust::Status st = gridtrust::Ok{};

  // The one global option: it comes before the command.
  std::optional<std::string> server;
  if (const char* env = std::getenv("GRIDTRUST_SERVER"); env && *env) server = env;
  if (!words.empty() && words[0] == "--server") {
    if (words.size() < 2) st = gridtrust::reject("usage.missing_value", "--server needs a URL https://HOST:PORT");
    else server = words[1];
    words.erase(words.begin(), words.begin() + std::min<std::size_t>(2, words.size()));
  } else if (!words.empty() && words[0].rfind("--server=", 0) == 0) {
    server = words[0].substr(9);
    words.erase(words.begin());
  }

  if (st.ok() && (words.empty() || words[0] == "--help" || words[0] == "-h" || words[0] == "help")) {
    std::cout << gridtrust::cli::usage_text();
    return words.empty() ? 2 : 0;
  }
  if (st.ok()) {
    std::string command = words[0];
    words.erase(words.begin());
    try {
      st = server ? gridtrust::cli::run_remote_command(*server, command, words)
                  : gridtrust::cli::run_command(command, words);
    } catch (const std::exception& e) {
      st = gridtrust::reject("internal.error", e.what());
    }
  }
  std::cout.flush();
  if (!st.ok()) {
    std::string msg = st.error().message;
    for (auto& c : msg)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "error: %s: %s\n", st.error().code.c_str(), msg.c_str());
    return gridtrust::exit_code_for(st.error().code);
  }
  return 0;
}
