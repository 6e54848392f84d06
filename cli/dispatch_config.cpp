#include "cli/dispatch_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <optional>
#include <type_traits>

namespace gridtrust::app {
namespace fs = std::filesystem;

const char* to_string(DispatchOutput o) { return o == DispatchOutput::Outbox ? "outbox" : "return"; }

namespace {

constexpr const char* kKnown[] = {"enabled",        "registry",  "max_lifetime_s", "max_clock_skew_s",
                                  "default_duration_s", "command_lifetime_s", "output", "split",
                                  "max_batch",      "decision_log"};

class SectionReader {
 public:
  SectionReader(const YAML::Node& n, std::string file) : n_(n), file_(std::move(file)) {}

  Rejection bad(const std::string& key, const std::string& why, const YAML::Node& at) const {
    return reject("config.invalid",
                  file_ + ":" + std::to_string(at.Mark().line + 1) + ": dispatch." + key + ": " + why);
  }

  Result<std::optional<std::string>> scalar(const char* key) const {
    YAML::Node v = n_[key];
    if (!v || v.IsNull()) return std::optional<std::string>();
    if (!v.IsScalar()) return bad(key, "must be a single value", v);
    return std::optional<std::string>(v.Scalar());
  }

  Status integer(const char* key, long long lo, long long hi, auto& field) const {
    GT_TRY_ASSIGN(auto text, scalar(key));
    if (!text) return Ok{};
    long long v = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc() || end != text->data() + text->size() || v < lo || v > hi)
      return bad(key, "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                          " (got '" + *text + "')",
                 n_[key]);
    field = static_cast<std::remove_reference_t<decltype(field)>>(v);
    return Ok{};
  }

  Status number(const char* key, double lo, double hi, double& field) const {
    GT_TRY_ASSIGN(auto text, scalar(key));
    if (!text) return Ok{};
    double v = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc() || end != text->data() + text->size() || !std::isfinite(v) || v < lo || v > hi)
      return bad(key, "must be a number from " + std::to_string(static_cast<long long>(lo)) + " to " +
                          std::to_string(static_cast<long long>(hi)) + " (got '" + *text + "')",
                 n_[key]);
    field = v;
    return Ok{};
  }

 private:
  const YAML::Node& n_;
  std::string file_;
};

}  // namespace

Result<DispatchConfig> load_dispatch_section(const YAML::Node& n, const std::string& file, const std::string& data_dir) {
  DispatchConfig c;
  c.registry = (fs::path(data_dir) / "fleet.yaml").string();
  if (!n || n.IsNull()) return c;
  if (!n.IsMap())
    return reject("config.invalid", file + ":" + std::to_string(n.Mark().line + 1) + ": dispatch: must be a mapping");
  SectionReader r(n, file);
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown))
      return r.bad(key, "unknown setting (known: enabled, registry, max_lifetime_s, max_clock_skew_s, "
                        "default_duration_s, command_lifetime_s, output, split, max_batch, decision_log)",
                   kv.first);
  }
  GT_TRY_ASSIGN(auto enabled, r.scalar("enabled"));
  if (enabled) {
    if (*enabled == "true") c.enabled = true;
    else if (*enabled == "false") c.enabled = false;
    else return r.bad("enabled", "must be true or false (got '" + *enabled + "')", n["enabled"]);
  }
  GT_TRY_ASSIGN(auto registry, r.scalar("registry"));
  if (registry) {
    if (registry->empty()) return r.bad("registry", "must name a YAML or JSON file", n["registry"]);
    fs::path p = *registry;
    c.registry = p.is_absolute() ? p.string() : (fs::path(data_dir) / p).string();
  }
  GT_TRY(r.integer("max_lifetime_s", 1, 86400, c.max_lifetime_s));
  GT_TRY(r.integer("max_clock_skew_s", 0, 3600, c.max_clock_skew_s));
  GT_TRY(r.number("default_duration_s", 1, 86400, c.default_duration_s));
  GT_TRY(r.integer("command_lifetime_s", 1, 86400, c.command_lifetime_s));
  GT_TRY(r.integer("max_batch", 1, 100000, c.max_batch));
  GT_TRY(r.integer("decision_log", 0, 10000000, c.decision_log));
  GT_TRY_ASSIGN(auto output, r.scalar("output"));
  if (output) {
    if (*output == "return") c.output = DispatchOutput::Return;
    else if (*output == "outbox") c.output = DispatchOutput::Outbox;
    else return r.bad("output", "must be return or outbox (got '" + *output + "')", n["output"]);
  }
  GT_TRY_ASSIGN(auto split, r.scalar("split"));
  if (split && !dispatch::split_policy_from(*split, c.split))
    return r.bad("split", "must be proportional or least-degradation (got '" + *split + "')", n["split"]);
  return c;
}

std::string dispatch_config_yaml() {
  const DispatchConfig d;
  return "dispatch:                          # the dispatch engine (docs/dispatch.md); a restart applies changes\n"
         "  enabled: false\n"
         "  registry: fleet.yaml               # sites, stations, EVSEs, sessions (YAML or JSON)\n"
         "  max_lifetime_s: " + std::to_string(d.max_lifetime_s) + "               # exp - iat of an accepted setpoint at most\n"
         "  max_clock_skew_s: " + std::to_string(d.max_clock_skew_s) + "               # iat may be this far in the future\n"
         "  default_duration_s: 900            # how long a setpoint holds when its schedule has no duration\n"
         "  command_lifetime_s: " + std::to_string(d.command_lifetime_s) + "            # exp - iat of the commands gridtrustd signs\n"
         "  output: return                     # return (in the API answer) | outbox (GET /v1/outbox too)\n"
         "  split: proportional                # fleet targets: proportional | least-degradation\n"
         "  max_batch: " + std::to_string(d.max_batch) + "                    # entries per submitted batch\n"
         "  decision_log: " + std::to_string(d.decision_log) + "                # decisions kept in memory for the API\n";
}

}  // namespace gridtrust::app
