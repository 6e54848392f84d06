#include "cli/rotation_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

namespace gridtrust::app {
namespace {

using policy::RotationRole;

constexpr const char* kKnownKeys[] = {
    "storage",      "compromise_rate_per_year",  "hsm_factor",       "tpm_factor",
    "loss_per_day", "overhead_per_rotation",     "certificates",     "max_interval_days",
    "max_compromise_probability", "max_exposure_days_per_year", "rotations_per_day"};

// Reads one role's mapping; the caller's rejection prefix names file and line.
class RoleReader {
 public:
  RoleReader(const YAML::Node& node, std::string name, std::string where)
      : node_(node), name_(std::move(name)), where_(std::move(where)) {}

  Rejection bad(const std::string& key, const std::string& why, const YAML::Node& at) const {
    return reject("policy.bad_parameter", where_ + ":" + std::to_string(at.Mark().line + 1) + ": rotation.roles[" +
                                              name_ + "]" + (key.empty() ? "" : "." + key) + " " + why);
  }

  Status known_keys_only() const {
    for (const auto& kv : node_) {
      std::string key = kv.first.Scalar();
      if (std::find(std::begin(kKnownKeys), std::end(kKnownKeys), key) == std::end(kKnownKeys))
        return bad(key, "is not a rotation parameter (known: storage, compromise_rate_per_year, hsm_factor, "
                        "tpm_factor, loss_per_day, overhead_per_rotation, certificates, max_interval_days, "
                        "max_compromise_probability, max_exposure_days_per_year, rotations_per_day)",
                   kv.first);
    }
    return Ok{};
  }

  // A number as YAML writes it; NaN and infinities pass here and are refused, with the
  // field's name, by policy::validate.
  Result<std::optional<double>> number(const char* key, bool required) const {
    YAML::Node n = node_[key];
    if (!n || n.IsNull()) {
      if (required) return bad(key, "is required", node_);
      return std::optional<double>{};
    }
    if (!n.IsScalar()) return bad(key, "must be a number", n);
    std::string text = n.Scalar();
    if (text == ".nan" || text == ".NaN" || text == ".NAN") return std::optional<double>(std::nan(""));
    bool negative = !text.empty() && text[0] == '-';
    std::string body = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? text.substr(1) : text;
    if (body == ".inf" || body == ".Inf" || body == ".INF")
      return std::optional<double>(negative ? -std::numeric_limits<double>::infinity()
                                            : std::numeric_limits<double>::infinity());
    // from_chars takes no '+' and ignores the locale.
    if (!text.empty() && text[0] == '+') text = body;
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty())
      return bad(key, "must be a number (got '" + n.Scalar() + "')", n);
    return std::optional<double>(v);
  }

  Status read(RotationRole& r) const {
    GT_TRY(known_keys_only());
    YAML::Node storage = node_["storage"];
    if (!storage || storage.IsNull()) return bad("storage", "is required (hsm, software or tpm)", node_);
    auto s = storage.IsScalar() ? policy::parse_storage(storage.Scalar()) : std::nullopt;
    if (!s) return bad("storage", "must be hsm, software or tpm", storage);
    r.storage = *s;
    auto set = [&](const char* key, bool required, double& field) -> Status {
      GT_TRY_ASSIGN(auto v, number(key, required));
      if (v) field = *v;
      return Ok{};
    };
    auto set_optional = [&](const char* key, std::optional<double>& field) -> Status {
      GT_TRY_ASSIGN(field, number(key, false));
      return Ok{};
    };
    GT_TRY(set("compromise_rate_per_year", true, r.compromise_rate_per_year));
    GT_TRY(set("hsm_factor", false, r.hsm_factor));
    GT_TRY(set("tpm_factor", false, r.tpm_factor));
    GT_TRY(set("loss_per_day", true, r.loss_per_day));
    GT_TRY(set("overhead_per_rotation", true, r.overhead_per_rotation));
    GT_TRY(set("max_interval_days", false, r.max_interval_days));
    GT_TRY(set_optional("max_compromise_probability", r.max_compromise_probability));
    GT_TRY(set_optional("max_exposure_days_per_year", r.max_exposure_days_per_year));
    GT_TRY(set_optional("rotations_per_day", r.rotations_per_day));
    if (YAML::Node n = node_["certificates"]; n && !n.IsNull()) {
      std::string text = n.IsScalar() ? n.Scalar() : std::string();
      std::uint64_t v = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size())
        return bad("certificates", "must be a whole number >= 1 (got '" + text + "')", n);
      r.certificates = v;
    }
    if (auto st = policy::validate(r); !st.ok())
      return reject(st.error().code, where_ + ":" + std::to_string(node_.Mark().line + 1) + ": " + st.error().message);
    return Ok{};
  }

 private:
  YAML::Node node_;
  std::string name_;
  std::string where_;
};

// Shortest text that reads back as the same double; independent of the locale.
std::string number_text(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("0");
}

}  // namespace

Result<std::vector<policy::RotationRole>> load_rotation_section(const YAML::Node& section, const std::string& file) {
  std::vector<RotationRole> roles = policy::default_rotation_roles();
  if (!section || section.IsNull()) return roles;
  auto bad = [&](const YAML::Node& at, const std::string& what) {
    return reject("policy.bad_parameter", file + ":" + std::to_string(at.Mark().line + 1) + ": " + what);
  };
  if (!section.IsMap()) return bad(section, "rotation must be a mapping with a 'roles' mapping");
  for (const auto& kv : section)
    if (kv.first.Scalar() != "roles")
      return bad(kv.first, "rotation." + kv.first.Scalar() + " is not a rotation setting (only 'roles')");
  YAML::Node list = section["roles"];
  if (!list || list.IsNull()) return roles;
  if (!list.IsMap()) return bad(list, "rotation.roles must map role names to their parameters");
  std::set<std::string> seen;
  std::size_t defaults = roles.size();
  for (const auto& kv : list) {
    std::string name = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    if (!seen.insert(name).second) return bad(kv.first, "rotation.roles[" + name + "] is configured twice");
    if (!kv.second.IsMap()) return bad(kv.second, "rotation.roles[" + name + "] must be a mapping of parameters");
    RotationRole r;
    r.name = name;
    GT_TRY(RoleReader(kv.second, name, file).read(r));
    auto it = std::find_if(roles.begin(), roles.begin() + static_cast<std::ptrdiff_t>(defaults),
                           [&](const RotationRole& d) { return d.name == name; });
    if (it != roles.begin() + static_cast<std::ptrdiff_t>(defaults)) *it = std::move(r);
    else roles.push_back(std::move(r));
  }
  return roles;
}

std::string rotation_config_yaml() {
  std::string out =
      "# Rotation risk model: `gridtrust rotation plan` and gridtrustd's scheduler choose each role's\n"
      "# rotation interval from these (DESIGN.md \"Rotation risk model\"). Costs in one currency unit.\n"
      "#   storage                     hsm | software | tpm\n"
      "#   compromise_rate_per_year    compromises a year of a software-held key (lambda)\n"
      "#   hsm_factor, tpm_factor      a key in an HSM / a TPM is compromised this much less often\n"
      "#                               (defaults 100 and 10)\n"
      "#   loss_per_day                loss per day a compromised key stays usable\n"
      "#   overhead_per_rotation       cost of rotating one certificate\n"
      "#   certificates                certificates (keys) of the role, default 1\n"
      "# constraints:\n"
      "#   max_interval_days           default 365\n"
      "#   max_compromise_probability  of one key within one interval, in (0, 1); optional\n"
      "#   max_exposure_days_per_year  expected days a year a key is compromised and usable; optional\n"
      "#   rotations_per_day           rotations a day the operator absorbs: a round then takes at\n"
      "#                               least certificates / rotations_per_day days; optional\n"
      "# A role listed here replaces the built-in default of that name as a whole; roles left out\n"
      "# keep their defaults. The values below are those defaults (policy/rotation_model.cpp).\n"
      "rotation:\n"
      "  roles:\n";
  for (const auto& r : policy::default_rotation_roles()) {
    out += "    " + r.name + ":\n";
    auto line = [&](const char* key, const std::string& value) { out += std::string("      ") + key + ": " + value + "\n"; };
    line("storage", policy::storage_name(r.storage));
    line("compromise_rate_per_year", number_text(r.compromise_rate_per_year));
    if (r.storage == policy::KeyStorage::hsm) line("hsm_factor", number_text(r.hsm_factor));
    if (r.storage == policy::KeyStorage::tpm) line("tpm_factor", number_text(r.tpm_factor));
    line("loss_per_day", number_text(r.loss_per_day));
    line("overhead_per_rotation", number_text(r.overhead_per_rotation));
    line("certificates", std::to_string(r.certificates));
    line("max_interval_days", number_text(r.max_interval_days));
    if (r.max_compromise_probability) line("max_compromise_probability", number_text(*r.max_compromise_probability));
    if (r.max_exposure_days_per_year) line("max_exposure_days_per_year", number_text(*r.max_exposure_days_per_year));
    if (r.rotations_per_day) line("rotations_per_day", number_text(*r.rotations_per_day));
  }
  return out;
}

}  // namespace gridtrust::app
