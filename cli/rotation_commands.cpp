// gridtrust rotation plan [--json] [--svg FILE]: the rotation risk model
// (policy/rotation_model.h) for every role configured under rotation.roles in
// gridtrust.yaml (or the defaults), as a table, as JSON, and as a plot. It needs only
// the configuration: no token, no store. (`rotation status` is
// cli/rotation_status_command.cpp.)
#include <cstdio>
#include <iostream>

#include <boost/json.hpp>

#include "cli/app_config.h"
#include "cli/commands.h"
#include "cli/rotation_plot.h"
#include "protocol/jcs.h"

namespace gridtrust::cli {
namespace json = boost::json;

namespace {

json::value optional_number(const std::optional<double>& v) { return v ? json::value(*v) : json::value(nullptr); }

json::object plan_json(const PlannedRole& pr) {
  const auto& r = pr.role;
  const auto& p = pr.plan;
  json::object parameters{
      {"compromise_rate_per_year", r.compromise_rate_per_year},
      {"hsm_factor", r.hsm_factor},
      {"tpm_factor", r.tpm_factor},
      {"loss_per_day", r.loss_per_day},
      {"overhead_per_rotation", r.overhead_per_rotation},
      {"certificates", r.certificates},
      {"max_interval_days", r.max_interval_days},
      {"max_compromise_probability", optional_number(r.max_compromise_probability)},
      {"max_exposure_days_per_year", optional_number(r.max_exposure_days_per_year)},
      {"rotations_per_day", optional_number(r.rotations_per_day)},
  };
  json::object o{
      {"role", p.role},
      {"storage", policy::storage_name(r.storage)},
      {"parameters", std::move(parameters)},
      {"lambda_per_day", p.lambda_per_day},
      {"lambda_per_year", p.lambda_per_day * 365},
      {"optimum_days", optional_number(p.optimum_days)},
      {"first_order_optimum_days", p.first_order_optimum_days},
      {"min_days", p.min_days},
      {"max_days", p.max_days},
      {"max_days_by", p.max_days_by},
      {"feasible", p.feasible},
  };
  json::array conflict;
  for (const auto& c : p.conflict) conflict.emplace_back(c);
  o["conflict"] = std::move(conflict);
  if (p.feasible) {
    o["interval_days"] = p.interval_days;
    o["binding"] = p.binding;
    o["at_interval"] = json::object{
        {"interval_days", p.at_interval.interval_days},
        {"overhead_per_year", p.at_interval.overhead_per_year},
        {"expected_loss_per_year", p.at_interval.expected_loss_per_year},
        {"cost_per_year", p.at_interval.cost_per_year},
        {"p_compromise", p.at_interval.p_compromise},
        {"exposure_days_per_year", p.at_interval.exposure_days_per_year},
    };
  } else {
    o["interval_days"] = nullptr;
    o["binding"] = nullptr;
    o["at_interval"] = nullptr;
  }
  return o;
}

std::string cell(const char* format, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string table(const std::vector<PlannedRole>& plans) {
  struct Column {
    const char* title;
    bool left;
  };
  const std::vector<Column> columns = {
      {"role", true},          {"storage", true},     {"lambda/yr", false}, {"T* exact", false},
      {"T* 1st order", false}, {"band (days)", true}, {"chosen", false},    {"binding", true},
      {"overhead/yr", false},  {"loss/yr", false},    {"total/yr", false},  {"P(compromise)", false},
      {"exposure d/yr", false}};
  std::vector<std::vector<std::string>> rows;
  for (const auto& pr : plans) {
    const auto& p = pr.plan;
    std::vector<std::string> row = {
        p.role,
        policy::storage_name(pr.role.storage),
        cell("%.3g", p.lambda_per_day * 365),
        p.optimum_days ? format_days(*p.optimum_days) : "unbounded",
        format_days(p.first_order_optimum_days),
        "[" + format_days(p.min_days) + ", " + format_days(p.max_days) + "]",
    };
    if (p.feasible) {
      const auto& b = p.at_interval;
      for (auto& c : {std::to_string(p.interval_days), p.binding, format_amount(b.overhead_per_year),
                      format_amount(b.expected_loss_per_year), format_amount(b.cost_per_year),
                      cell("%.3g", b.p_compromise), cell("%.3g", b.exposure_days_per_year)})
        row.push_back(c);
    } else {
      row.push_back("-");
      row.push_back("infeasible: " + p.conflict.at(0) + " vs " + p.conflict.at(1));
      for (int i = 0; i < 5; ++i) row.push_back("-");
    }
    rows.push_back(std::move(row));
  }
  std::vector<std::size_t> width(columns.size());
  for (std::size_t c = 0; c < columns.size(); ++c) {
    width[c] = std::string(columns[c].title).size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      std::string pad(width[c] - cells[c].size(), ' ');
      out += (c ? "  " : "") + (columns[c].left ? cells[c] + (c + 1 < cells.size() ? pad : "") : pad + cells[c]);
    }
    return out + "\n";
  };
  std::vector<std::string> titles;
  for (const auto& c : columns) titles.push_back(c.title);
  std::string out = line(titles);
  for (const auto& row : rows) out += line(row);
  out +=
      "lambda: compromises a year after the storage factor; T*: unconstrained optimum of the exact J(T), "
      "1st order sqrt(2C/(lambda L));\n"
      "band: whole days allowed by the constraints; costs a year for all certificates of the role; "
      "P(compromise): one key within one interval;\n"
      "exposure: expected days a year one key is compromised and still usable.\n";
  return out;
}

Status cmd_rotation_plan(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "svg"}, {"json"}));
  GT_TRY(no_positionals(a, "rotation plan"));
  std::string dir = data_dir_or_default(a.value("data-dir").value_or(""));
  if (dir.empty()) return reject("usage.missing_option", "--data-dir is required (or set GRIDTRUST_DATA_DIR)");
  GT_TRY(check_output_path(a.value("svg")));
  GT_TRY_ASSIGN(auto config, app::load_app_config(dir));

  std::vector<PlannedRole> plans;
  std::string infeasible;
  for (const auto& role : config.rotation) {
    GT_TRY_ASSIGN(auto plan, policy::plan_rotation(role));
    if (!plan.feasible)
      infeasible += (infeasible.empty() ? "" : "; ") + role.name + ": " + plan.conflict.at(0) + " vs " + plan.conflict.at(1);
    plans.push_back({role, std::move(plan)});
  }

  if (a.flag("json")) {
    json::array roles;
    for (const auto& pr : plans) roles.push_back(plan_json(pr));
    json::object doc{{"roles", std::move(roles)}, {"feasible", infeasible.empty()}};
    GT_TRY_ASSIGN(std::string text, protocol::canonicalize(doc));
    GT_TRY(write_output(std::nullopt, text + "\n"));
  } else {
    GT_TRY(write_output(std::nullopt, table(plans)));
  }
  if (auto svg = a.value("svg")) GT_TRY(write_output(*svg, rotation_plot_svg(plans)));
  if (!infeasible.empty())
    return reject("rotation.infeasible", "no whole-day interval satisfies the constraints of " + infeasible);
  return Ok{};
}

}  // namespace

// run_command sends `rotation status` to cmd_rotation_status first.
Status cmd_rotation(const std::vector<std::string>& words) {
  if (words.empty() || words.front() != "plan")
    return reject("usage.unknown_command", "rotation takes the subcommand 'plan' or 'status'" +
                                               (words.empty() ? std::string() : ", not '" + words.front() + "'"));
  return cmd_rotation_plan(std::vector<std::string>(words.begin() + 1, words.end()));
}

}  // namespace gridtrust::cli
