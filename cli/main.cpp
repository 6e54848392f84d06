// gridtrust: the admin CLI. Offline mode works directly on a data directory.
#include <sys/prctl.h>
#include <sys/stat.h>

#include <cstdio>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  // No core dumps with PINs or session state in them; new files private by default.
  prctl(PR_SET_DUMPABLE, 0);
  umask(077);
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty() || words[0] == "--help" || words[0] == "-h" || words[0] == "help") {
    std::cout << gridtrust::cli::usage_text();
    return words.empty() ? 2 : 0;
  }
  std::string command = words[0];
  words.erase(words.begin());
  gridtrust::Status st = gridtrust::Ok{};
  try {
    st = gridtrust::cli::run_command(command, words);
  } catch (const std::exception& e) {
    st = gridtrust::reject("internal.error", e.what());
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
