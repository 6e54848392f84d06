#pragma once
#include <string>
#include <vector>

#include "core/rejection.h"

namespace gridtrust::cli {

// Each command returns a rejection or Ok; output goes to stdout, the error line to
// stderr (main.cpp), exit code from exit_code_for().
Status run_command(const std::string& command, const std::vector<std::string>& words);
Status cmd_init(const std::vector<std::string>& words);

std::string data_dir_or_default(const std::string& from_args);
std::string usage_text();

}  // namespace gridtrust::cli
