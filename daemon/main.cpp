// gridtrustd --config DIR/gridtrust.yaml | --data-dir DIR
#include <sys/prctl.h>

#include <filesystem>
#include <iostream>
#include <string>

#include "cli/pki_context.h"
#include "core/allocator.h"
#include "daemon/daemon_clock.h"
#include "daemon/log.h"
#include "daemon/server.h"

namespace {

int usage() {
  std::cerr << "usage: gridtrustd --config DIR/gridtrust.yaml | --data-dir DIR\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gridtrust;
  tune_allocator();  // first, before any thread allocates
  // The process holds a logged-in token session and the PIN it read: no core dumps,
  // no ptrace by other processes of the same user.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  std::string data_dir;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--config" || arg == "--data-dir") && i + 1 < argc) {
      std::string value = argv[++i];
      // gridtrust.yaml resolves relative paths against its own directory.
      data_dir = arg == "--config" ? std::filesystem::absolute(value).parent_path().string() : value;
    } else {
      return usage();
    }
  }
  if (data_dir.empty()) {
    const char* env = std::getenv("GRIDTRUST_DATA_DIR");
    if (!env || !*env) return usage();
    data_dir = env;
  }

  // Serials are reserved durably in blocks: one reservation commit per certificate
  // would put a second fsync on every issuance's path. A block unused at exit is only
  // a set of serials never issued.
  // The clock first: the CA, OCSP and the scheduler all read it (daemon_clock.h).
  auto config = app::load_app_config(data_dir);
  if (!config.ok()) {
    std::cerr << "gridtrustd: error: " << config.error().code << ": " << config.error().message << "\n";
    return exit_code_for(config.error().code);
  }
  auto clock = daemon::make_daemon_clock(config->daemon.scheduler);
  if (!clock.ok()) {
    std::cerr << "gridtrustd: error: " << clock.error().code << ": " << clock.error().message << "\n";
    return exit_code_for(clock.error().code);
  }
  auto pki = app::open_pki(data_dir, 64, now_function(clock.value()));
  if (!pki.ok()) {
    std::cerr << "gridtrustd: error: " << pki.error().code << ": " << pki.error().message << "\n";
    return exit_code_for(pki.error().code);
  }
  daemon::Server server(*pki.value(), 2, clock.value());
  if (auto started = server.start(); !started.ok()) {
    std::cerr << "gridtrustd: error: " << started.error().code << ": " << started.error().message << "\n";
    return exit_code_for(started.error().code);
  }
  server.run();
  return 0;
}
