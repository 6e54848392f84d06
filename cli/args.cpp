#include "cli/args.h"

namespace gridtrust::cli {

Result<std::string> Args::required(const std::string& name) const {
  auto v = value(name);
  if (!v) return reject("usage.missing_option", "--" + name + " is required");
  return *v;
}

Result<Args> parse_args(const std::vector<std::string>& words, const std::set<std::string>& value_options,
                        const std::set<std::string>& flag_options) {
  Args a;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w.rfind("--", 0) != 0 || w == "--") {
      a.positional.push_back(w);
      continue;
    }
    std::string name = w.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (value_options.count(name)) {
      if (inline_value) {
        a.values[name] = *inline_value;
      } else {
        if (i + 1 >= words.size()) return reject("usage.missing_value", "--" + name + " needs a value");
        a.values[name] = words[++i];
      }
    } else if (flag_options.count(name) && !inline_value) {
      a.flags.insert(name);
    } else {
      return reject("usage.unknown_option", "unknown option --" + name);
    }
  }
  return a;
}

}  // namespace gridtrust::cli
