#pragma once
// Command-line words: positionals and --options. Options that take a value are
// declared per command so a typo is an error, not a silently ignored flag.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/rejection.h"

namespace gridtrust::cli {

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
  std::set<std::string> flags;

  std::optional<std::string> value(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  bool flag(const std::string& name) const { return flags.count(name) > 0; }
  Result<std::string> required(const std::string& name) const;
};

Result<Args> parse_args(const std::vector<std::string>& words, const std::set<std::string>& value_options,
                        const std::set<std::string>& flag_options);

}  // namespace gridtrust::cli
