// Integration: `gridtrust rotation plan` through the real CLI on a data directory that
// holds only a gridtrust.yaml (the command needs no token and no store): the table,
// --json checked field by field against the model, --svg checked for well-formed XML
// with one series per role, an infeasible role, and invalid parameters refused with the
// field named. Also: the rotation section that `gridtrust init` writes loads back as
// the defaults.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "cli/app_config.h"
#include "policy/rotation_model.h"
#include "tests/support/test_support.h"

namespace gt = gridtrust;
namespace fs = std::filesystem;
namespace json = boost::json;
using gt::test::CommandResult;
using gt::test::TempDir;
using gt::test::read_file;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::write_file;

namespace {

constexpr const char* kBaseYaml =
    "hsm:\n"
    "  module: /usr/lib/softhsm/libsofthsm2.so\n"
    "  token_uri: \"pkcs11:token=gridtrust\"\n"
    "pki:\n"
    "  profiles: profiles.yaml\n";

// A data directory with gridtrust.yaml = the base plus `rotation` (YAML text).
struct DataDir {
  TempDir tmp;
  explicit DataDir(const std::string& rotation = "") { write_file(tmp / "gridtrust.yaml", kBaseYaml + rotation); }
  CommandResult gt(const std::string& args) const {
    return run(sh_quote(gt::test::cli()) + " rotation " + args + " --data-dir " + sh_quote(tmp.str()));
  }
};

// A role mapping under rotation.roles with the four required fields and `extra` lines.
std::string role_yaml(const std::string& name, const std::string& extra = "") {
  return "rotation:\n  roles:\n    " + name +
         ":\n      storage: tpm\n      compromise_rate_per_year: 0.05\n      loss_per_day: 50\n"
         "      overhead_per_rotation: 10\n" +
         extra;
}

const std::set<std::string> kDefaultRoles = {"aggregator-signer", "csms-server", "ocsp-signer", "audit-checkpoint",
                                              "charging-station",  "secc",        "vehicle-contract", "sub-ca"};

bool has_python3() { return run("command -v python3").exit_code == 0; }

// Parses the SVG with a strict XML parser (python3's xml.etree, else xmllint) and lists
// "<class> <data-role>" for every path of class "series ...". Empty optional: not XML.
std::optional<std::multiset<std::string>> svg_series(const std::string& path) {
  CommandResult r;
  if (has_python3()) {
    const std::string script =
        "import sys, xml.etree.ElementTree as ET\n"
        "ns = '{http://www.w3.org/2000/svg}'\n"
        "root = ET.parse(sys.argv[1]).getroot()\n"
        "assert root.tag == ns + 'svg', root.tag\n"
        "for p in root.iter(ns + 'path'):\n"
        "    c = p.get('class', '').split()\n"
        "    if c[:1] == ['series']:\n"
        "        print(c[1], p.get('data-role'))\n";
    r = run("python3 -c " + sh_quote(script) + " " + sh_quote(path));
  } else {
    REQUIRE(fs::exists("/usr/bin/xmllint"));
    r = run("/usr/bin/xmllint --noout " + sh_quote(path) + " && /usr/bin/xmllint --xpath " +
            sh_quote("//*[local-name()='path'][starts-with(@class,'series ')]") + " " + sh_quote(path) +
            " | sed -E 's/.*class=\"series ([a-z-]+)\" data-role=\"([^\"]+)\".*/\\1 \\2/'");
  }
  INFO(r.describe());
  if (r.exit_code != 0) return std::nullopt;
  std::multiset<std::string> out;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) out.insert(line);
  return out;
}

const json::object* role_of(const json::value& doc, const std::string& name) {
  for (const auto& r : doc.at("roles").as_array())
    if (r.at("role").as_string() == name) return &r.as_object();
  return nullptr;
}

}  // namespace

TEST_CASE("the rotation section gridtrust init writes loads back as the defaults") {
  TempDir tmp;
  write_file(tmp / "gridtrust.yaml", gt::app::default_config_yaml("/usr/lib/softhsm/libsofthsm2.so"));
  auto c = gt::app::load_app_config(tmp.str());
  INFO((c.ok() ? std::string() : c.error().message));
  REQUIRE(c.ok());
  auto defaults = gt::policy::default_rotation_roles();
  REQUIRE(c->rotation.size() == defaults.size());
  for (std::size_t i = 0; i < defaults.size(); ++i) {
    const auto &a = c->rotation[i], &b = defaults[i];
    INFO(b.name);
    CHECK(a.name == b.name);
    CHECK(a.storage == b.storage);
    CHECK(a.compromise_rate_per_year == b.compromise_rate_per_year);
    CHECK(a.hsm_factor == b.hsm_factor);
    CHECK(a.tpm_factor == b.tpm_factor);
    CHECK(a.loss_per_day == b.loss_per_day);
    CHECK(a.overhead_per_rotation == b.overhead_per_rotation);
    CHECK(a.certificates == b.certificates);
    CHECK(a.max_interval_days == b.max_interval_days);
    CHECK(a.max_compromise_probability == b.max_compromise_probability);
    CHECK(a.max_exposure_days_per_year == b.max_exposure_days_per_year);
    CHECK(a.rotations_per_day == b.rotations_per_day);
  }
  // Without the section: the defaults too.
  write_file(tmp / "gridtrust.yaml", kBaseYaml);
  auto bare = gt::app::load_app_config(tmp.str());
  REQUIRE(bare.ok());
  CHECK(bare->rotation.size() == defaults.size());
}

TEST_CASE("a configured role replaces the default of its name; a new role is added") {
  TempDir tmp;
  write_file(tmp / "gridtrust.yaml", std::string(kBaseYaml) + role_yaml("secc", "      certificates: 40\n") +
                                         "    depot-gateway:\n      storage: software\n"
                                         "      compromise_rate_per_year: 1\n      loss_per_day: 10\n"
                                         "      overhead_per_rotation: 1\n");
  auto c = gt::app::load_app_config(tmp.str());
  INFO((c.ok() ? std::string() : c.error().message));
  REQUIRE(c.ok());
  REQUIRE(c->rotation.size() == 9);
  const auto& secc = c->rotation[5];
  CHECK(secc.name == "secc");
  CHECK(secc.certificates == 40);
  CHECK_FALSE(secc.rotations_per_day);  // replaced as a whole, not merged
  CHECK(secc.max_interval_days == 365);
  CHECK(c->rotation.back().name == "depot-gateway");
  CHECK(c->rotation.back().storage == gt::policy::KeyStorage::software);
}

TEST_CASE("rotation plan prints one row per role with the chosen interval and binding constraint") {
  DataDir d;
  auto r = d.gt("plan");
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  for (const auto& name : kDefaultRoles) CHECK(r.out.find("\n" + name + " ") != std::string::npos);
  for (const char* column : {"role", "storage", "lambda/yr", "T* exact", "T* 1st order", "band (days)", "chosen",
                             "binding", "overhead/yr", "loss/yr", "total/yr", "P(compromise)", "exposure d/yr"})
    CHECK(r.out.find(column) != std::string::npos);
  auto line_of = [&](const std::string& name) {
    auto at = r.out.find("\n" + name + " ");
    return r.out.substr(at + 1, r.out.find('\n', at + 1) - at - 1);
  };
  CHECK(line_of("aggregator-signer").find(" 180  max_interval ") != std::string::npos);
  CHECK(line_of("charging-station").find(" 50  min_interval ") != std::string::npos);
  CHECK(line_of("vehicle-contract").find(" 40  max_exposure ") != std::string::npos);
  CHECK(r.err.empty());
}

TEST_CASE("rotation plan --json carries the plan of every role as the model computes it") {
  DataDir d;
  auto r = d.gt("plan --json");
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json::value doc = json::parse(r.out);
  CHECK(doc.at("feasible").as_bool());
  REQUIRE(doc.at("roles").as_array().size() == kDefaultRoles.size());
  for (const auto& role : gt::policy::default_rotation_roles()) {
    INFO(role.name);
    const json::object* o = role_of(doc, role.name);
    REQUIRE(o);
    auto plan = gt::policy::plan_rotation(role);
    REQUIRE(plan.ok());
    CHECK(o->at("storage").as_string() == gt::policy::storage_name(role.storage));
    CHECK(o->at("feasible").as_bool());
    CHECK(o->at("interval_days").to_number<double>() == plan->interval_days);
    CHECK(o->at("binding").as_string() == plan->binding);
    CHECK(o->at("lambda_per_day").to_number<double>() == Approx(plan->lambda_per_day));
    CHECK(o->at("lambda_per_year").to_number<double>() == Approx(plan->lambda_per_day * 365));
    REQUIRE(plan->optimum_days);
    CHECK(o->at("optimum_days").to_number<double>() == Approx(*plan->optimum_days));
    CHECK(o->at("first_order_optimum_days").to_number<double>() == Approx(plan->first_order_optimum_days));
    CHECK(o->at("min_days").to_number<double>() == Approx(plan->min_days));
    CHECK(o->at("max_days").to_number<double>() == Approx(plan->max_days));
    CHECK(o->at("conflict").as_array().empty());
    const auto& b = o->at("at_interval").as_object();
    double overhead = b.at("overhead_per_year").to_number<double>();
    double loss = b.at("expected_loss_per_year").to_number<double>();
    CHECK(overhead == Approx(plan->at_interval.overhead_per_year));
    CHECK(loss == Approx(plan->at_interval.expected_loss_per_year));
    CHECK(b.at("cost_per_year").to_number<double>() == Approx(overhead + loss));
    CHECK(b.at("p_compromise").to_number<double>() == Approx(plan->at_interval.p_compromise));
    CHECK(b.at("exposure_days_per_year").to_number<double>() == Approx(plan->at_interval.exposure_days_per_year));
    CHECK(o->at("parameters").at("certificates").to_number<double>() == static_cast<double>(role.certificates));
  }
  const json::object* agg = role_of(doc, "aggregator-signer");
  CHECK(agg->at("interval_days").to_number<double>() == 180);
  CHECK(agg->at("binding").as_string() == "max_interval");
}

TEST_CASE("rotation plan --svg writes a well-formed SVG with the exact and first-order series of each role") {
  DataDir d;
  std::string svg = d.tmp / "plan.svg";
  auto r = d.gt("plan --svg " + sh_quote(svg));
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  REQUIRE(fs::exists(svg));
  auto series = svg_series(svg);
  REQUIRE(series);
  std::multiset<std::string> expected;
  for (const auto& name : kDefaultRoles) {
    expected.insert("exact " + name);
    expected.insert("first-order " + name);
  }
  CHECK(*series == expected);
  std::string text = read_file(svg);
  for (const char* label : {"rotation interval T (days, log scale)", "cost per year (currency units, log)",
                            "exact J(T)", "feasible band", "chosen whole-day interval", "<title>"})
    CHECK(text.find(label) != std::string::npos);
  CHECK(text.find("T = 180 d") != std::string::npos);  // the aggregator signer's chosen point
  // No temp file is left beside it.
  int files = 0;
  for (const auto& e : fs::directory_iterator(d.tmp.path())) files += e.path().filename().string()[0] == '.';
  CHECK(files == 0);
}

TEST_CASE("an infeasible role is reported after the whole plan, naming the conflicting pair") {
  // 1000 certificates at 5 a day need 200 days; the role allows at most 180.
  DataDir d(role_yaml("secc", "      certificates: 1000\n      rotations_per_day: 5\n      max_interval_days: 180\n"));
  auto r = d.gt("plan");
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.err.rfind("error: rotation.infeasible: ", 0) == 0);
  CHECK(r.err.find("secc: min_interval vs max_interval") != std::string::npos);
  CHECK(r.out.find("infeasible: min_interval vs max_interval") != std::string::npos);
  CHECK(r.out.find("\nsub-ca ") != std::string::npos);  // the other roles are still printed

  std::string svg = d.tmp / "plan.svg";
  auto j = d.gt("plan --json --svg " + sh_quote(svg));
  INFO(j.describe());
  CHECK(j.exit_code == 3);
  json::value doc = json::parse(j.out);
  CHECK_FALSE(doc.at("feasible").as_bool());
  const json::object* secc = role_of(doc, "secc");
  REQUIRE(secc);
  CHECK_FALSE(secc->at("feasible").as_bool());
  CHECK(secc->at("conflict") == json::value(json::array{"min_interval", "max_interval"}));
  CHECK(secc->at("interval_days").is_null());
  CHECK(secc->at("min_days").to_number<double>() == 200);
  CHECK(role_of(doc, "aggregator-signer")->at("feasible").as_bool());
  auto series = svg_series(svg);
  REQUIRE(series);
  CHECK(series->count("exact secc") == 1);
  CHECK(read_file(svg).find("infeasible: min interval") != std::string::npos);

  // A probability limit can be the upper side of the conflict.
  DataDir p(role_yaml("secc", "      certificates: 1000\n      rotations_per_day: 5\n"
                              "      max_compromise_probability: 0.001\n"));
  auto q = p.gt("plan");
  CHECK(q.exit_code == 3);
  CHECK(q.err.find("secc: min_interval vs max_compromise_probability") != std::string::npos);
}

TEST_CASE("invalid rotation parameters are refused with policy.bad_parameter naming the field") {
  struct Case {
    std::string yaml, field;
  };
  const std::string base = "rotation:\n  roles:\n    secc:\n";
  const std::vector<Case> cases = {
      {base + "      storage: tpm\n      compromise_rate_per_year: 0.05\n      loss_per_day: 0\n"
              "      overhead_per_rotation: 10\n",
       "rotation.roles[secc].loss_per_day must be > 0"},
      {base + "      storage: tpm\n      compromise_rate_per_year: -1\n      loss_per_day: 50\n"
              "      overhead_per_rotation: 10\n",
       "rotation.roles[secc].compromise_rate_per_year must be > 0"},
      {base + "      storage: tpm\n      compromise_rate_per_year: .nan\n      loss_per_day: 50\n"
              "      overhead_per_rotation: 10\n",
       "rotation.roles[secc].compromise_rate_per_year must be a finite number"},
      {base + "      storage: tpm\n      compromise_rate_per_year: 0.05\n      loss_per_day: 50\n",
       "rotation.roles[secc].overhead_per_rotation is required"},
      {base + "      compromise_rate_per_year: 0.05\n      loss_per_day: 50\n      overhead_per_rotation: 10\n",
       "rotation.roles[secc].storage is required"},
      {role_yaml("secc").replace(role_yaml("secc").find("tpm"), 3, "disk"), "rotation.roles[secc].storage must be"},
      {role_yaml("secc", "      tpm_factor: 0\n"), "rotation.roles[secc].tpm_factor must be > 0"},
      {role_yaml("secc", "      hsm_factor: .inf\n"), "rotation.roles[secc].hsm_factor must be a finite number"},
      {role_yaml("secc", "      certificates: 0\n"), "rotation.roles[secc].certificates must be at least 1"},
      {role_yaml("secc", "      certificates: -3\n"), "rotation.roles[secc].certificates must be a whole number"},
      {role_yaml("secc", "      max_interval_days: 0\n"), "rotation.roles[secc].max_interval_days must be > 0"},
      {role_yaml("secc", "      max_compromise_probability: 1.5\n"),
       "rotation.roles[secc].max_compromise_probability must be in (0, 1)"},
      {role_yaml("secc", "      max_exposure_days_per_year: -2\n"),
       "rotation.roles[secc].max_exposure_days_per_year must be > 0"},
      {role_yaml("secc", "      rotations_per_day: 0\n"), "rotation.roles[secc].rotations_per_day must be > 0"},
      {role_yaml("secc", "      rotations_per_day: lots\n"), "rotation.roles[secc].rotations_per_day must be a number"},
      {role_yaml("secc", "      loss_per_year: 3\n"), "rotation.roles[secc].loss_per_year is not a rotation parameter"},
      {"rotation:\n  role:\n    secc: {}\n", "rotation.role is not a rotation setting"},
  };
  for (const auto& c : cases) {
    TempDir tmp;
    write_file(tmp / "gridtrust.yaml", kBaseYaml + c.yaml);
    auto loaded = gt::app::load_app_config(tmp.str());
    INFO(c.yaml);
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.error().code == "policy.bad_parameter");
    CHECK(loaded.error().message.find(c.field) != std::string::npos);
    CHECK(loaded.error().message.find("gridtrust.yaml:") != std::string::npos);  // file and line
  }
  // Through the CLI: exit 3, one error line.
  DataDir d(role_yaml("secc", "      max_compromise_probability: 0\n"));
  auto r = d.gt("plan --json");
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.err.rfind("error: policy.bad_parameter: ", 0) == 0);
  CHECK(r.err.find("rotation.roles[secc].max_compromise_probability must be in (0, 1)") != std::string::npos);
  CHECK(r.out.empty());
}

TEST_CASE("rotation usage errors") {
  DataDir d;
  CHECK(d.gt("").exit_code == 2);
  auto unknown = d.gt("forecast");
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("usage.unknown_command") != std::string::npos);
  auto no_value = run(sh_quote(gt::test::cli()) + " rotation plan --data-dir " + sh_quote(d.tmp.str()) + " --svg");
  CHECK(no_value.exit_code == 2);
  CHECK(no_value.err.find("usage.missing_value") != std::string::npos);
  CHECK(d.gt("plan extra").exit_code == 2);
  auto unwritable = d.gt("plan --svg " + sh_quote(d.tmp / "missing-dir/plan.svg"));
  CHECK(unwritable.exit_code == 2);
  CHECK(unwritable.err.find("usage.unwritable_file") != std::string::npos);
  CHECK(unwritable.out.empty());  // refused before anything is printed
}
