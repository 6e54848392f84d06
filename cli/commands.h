#pragma once
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "cli/args.h"
#include "core/encoding.h"
#include "core/rejection.h"

namespace gridtrust::cli {

// Each command returns a rejection or Ok; output goes to stdout, the error line to
// stderr (main.cpp), exit code from exit_code_for().
Status run_command(const std::string& command, const std::vector<std::string>& words);
Status cmd_init(const std::vector<std::string>& words);
// sign_commands.cpp
Status cmd_sign(const std::vector<std::string>& words);
Status cmd_sign_batch(const std::vector<std::string>& words);
Status cmd_verify(const std::vector<std::string>& words);
Status cmd_verify_batch(const std::vector<std::string>& words);
// ocpp_commands.cpp: gridtrust ocpp SUBCOMMAND (OCPP certificate management)
Status cmd_ocpp(const std::vector<std::string>& words);
// dispatch_commands.cpp: gridtrust dispatch SUBCOMMAND (the dispatch engine)
Status cmd_dispatch(const std::vector<std::string>& words);
// fleet_commands.cpp: gridtrust fleet simulate (dispatch/simulation.h)
Status cmd_fleet(const std::vector<std::string>& words);
// rotation_status_command.cpp: gridtrust rotation status [--json]
Status cmd_rotation_status(const std::vector<std::string>& words);
// rotation_commands.cpp: gridtrust rotation plan (the rotation risk model per role)
Status cmd_rotation(const std::vector<std::string>& words);

std::string data_dir_or_default(const std::string& from_args);
std::string usage_text();

// Input and output steps shared by offline and remote commands (remote_client.cpp),
// so both refuse and write the same way.
Status check_readable(const std::string& path);
Result<Bytes> read_file(const std::string& path, std::size_t limit);
Status check_output_path(const std::optional<std::string>& path);
Status no_positionals(const Args& a, const char* command);
Result<std::string> normalise_serial(const std::string& text);
Status write_output(const std::optional<std::string>& path, const std::string& text);
// renew / rekey: the chain PEM (or, with --json, the whole answer) to --out or stdout,
// then, if revoking the replaced certificate failed, that failure as the command's error.
Status write_replacement(const Args& a, const boost::json::object& answer);

}  // namespace gridtrust::cli
