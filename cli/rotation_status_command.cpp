// gridtrust rotation status [--json]: what the scheduler will do when. Offline it reads
// the data directory's store (no token needed); with --server it asks gridtrustd,
// which adds its scheduler's own state (processed-through time, intervals).
#include <iostream>

#include "cli/app_config.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/remote_client.h"
#include "cli/rotation_status.h"
#include "store/sqlite_store.h"

namespace gridtrust::cli {
namespace {

Result<std::string> status_data_dir(const Args& a) {
  if (a.positional.size() != 1 || a.positional[0] != "status")
    return reject("usage.unexpected_argument", "usage: gridtrust rotation status [--json] [--data-dir DIR]");
  std::string d = data_dir_or_default(a.value("data-dir").value_or(""));
  if (d.empty()) return reject("usage.missing_option", "--data-dir is required (or set GRIDTRUST_DATA_DIR)");
  return d;
}

void print(const boost::json::object& status, bool as_json) {
  if (as_json) std::cout << boost::json::serialize(status) << "\n";
  else std::cout << app::rotation_status_text(status);
}

}  // namespace

Status cmd_rotation_status(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir"}, {"json"}));
  GT_TRY_ASSIGN(std::string dir, status_data_dir(a));
  GT_TRY_ASSIGN(app::AppConfig config, app::load_app_config(dir));
  GT_TRY_ASSIGN(auto store, store::SqliteStore::open(config.store_path));
  GT_TRY_ASSIGN(auto status, app::rotation_status_json(*store, now_seconds()));
  print(status, a.flag("json"));
  return Ok{};
}

Status remote_rotation_status(const ServerUrl& server, const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir"}, {"json"}));
  GT_TRY_ASSIGN(std::string dir, status_data_dir(a));
  GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
  GT_TRY_ASSIGN(boost::json::value v, client->call("/v1/rotation/status"));
  if (!v.is_object()) return reject("remote.bad_response", "answer is not a JSON object");
  print(v.as_object(), a.flag("json"));
  return Ok{};
}

}  // namespace gridtrust::cli
