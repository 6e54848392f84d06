#include "cli/rotation_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

namespace gridtrust::cli {
namespace {

// Layout in SVG user units (px).
constexpr double kMargin = 20;
constexpr double kHeaderH = 112;
constexpr double kFooterH = 40;
constexpr double kPanelW = 580;
constexpr double kPanelH = 370;
constexpr double kPlotLeft = 88, kPlotRight = 28, kPlotTop = 78, kPlotBottom = 56;
constexpr int kSamples = 241;

constexpr const char* kExactColour = "#1f5fbf";
constexpr const char* kFirstOrderColour = "#d9822b";
constexpr const char* kBandColour = "#cdebd3";
constexpr const char* kChosenColour = "#c0392b";
constexpr const char* kConflictColour = "#b03030";

std::string num(double v) {  // coordinates
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// Axis tick labels: 0.1, 1, 20, 500, 1k, 20k, 1M, 5G.
std::string tick_label(double v) {
  char buf[32];
  const char* suffix = "";
  if (v >= 1e9) v /= 1e9, suffix = "G";
  else if (v >= 1e6) v /= 1e6, suffix = "M";
  else if (v >= 1e3) v /= 1e3, suffix = "k";
  std::snprintf(buf, sizeof buf, "%g%s", v, suffix);
  return buf;
}

// One log10 axis mapped onto [p0, p1] (p1 < p0 for the y axis).
struct LogAxis {
  double lo, hi, p0, p1;
  double at(double v) const {
    double t = (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return p0 + t * (p1 - p0);
  }
  bool contains(double v) const { return v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9); }
  // 1-2-5 ticks over at most three decades, decades only beyond.
  std::vector<double> ticks() const {
    std::vector<double> out;
    int d0 = static_cast<int>(std::floor(std::log10(lo) + 1e-9)), d1 = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
    bool fine = d1 - d0 <= 3;
    for (int d = d0; d <= d1; ++d)
      for (double m : {1.0, 2.0, 5.0}) {
        if (!fine && m != 1.0) continue;
        double v = m * std::pow(10.0, d);
        if (contains(v)) out.push_back(v);
      }
    return out;
  }
};

double decade_below(double v) { return std::pow(10.0, std::floor(std::log10(v) + 1e-9)); }
double decade_above(double v) { return std::pow(10.0, std::ceil(std::log10(v) - 1e-9)); }

std::string polyline(const std::vector<std::pair<double, double>>& pts) {
  std::string d;
  for (std::size_t i = 0; i < pts.size(); ++i) d += (i ? " L" : "M") + num(pts[i].first) + " " + num(pts[i].second);
  return d;
}

std::string text(double x, double y, const std::string& body, const std::string& attrs = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + (attrs.empty() ? "" : " " + attrs) + ">" + body +
         "</text>\n";
}

std::string constraint_text(const std::string& name) {
  if (name == "min_interval") return "min interval";
  if (name == "max_interval") return "max interval";
  if (name == "max_compromise_probability") return "max P(compromise)";
  if (name == "max_exposure") return "max exposure";
  return name;
}

std::string panel(const PlannedRole& pr, int index, double ox, double oy) {
  const auto& role = pr.role;
  const auto& plan = pr.plan;
  const double px0 = ox + kPlotLeft, px1 = ox + kPanelW - kPlotRight;
  const double py0 = oy + kPanelH - kPlotBottom, py1 = oy + kPlotTop;

  // x range: whole decades around every marked interval.
  double vmin = std::min({plan.min_days, plan.max_days, plan.first_order_optimum_days});
  double vmax = std::max({plan.min_days, plan.max_days, plan.first_order_optimum_days});
  if (plan.optimum_days) vmin = std::min(vmin, *plan.optimum_days), vmax = std::max(vmax, *plan.optimum_days);
  double xlo = std::clamp(decade_below(vmin), 1e-3, 1.0);
  double xhi = std::clamp(decade_above(vmax * 1.5), xlo * 100, 1e7);
  LogAxis x{xlo, xhi, px0, px1};

  std::vector<double> ts(kSamples), exact(kSamples), first(kSamples);
  double ymin = std::numeric_limits<double>::infinity(), ymax = 0;
  for (int i = 0; i < kSamples; ++i) {
    ts[i] = xlo * std::pow(xhi / xlo, static_cast<double>(i) / (kSamples - 1));
    exact[i] = policy::evaluate(role, ts[i]).cost_per_year;
    first[i] = policy::first_order_cost_per_year(role, ts[i]);
    ymin = std::min(ymin, exact[i]);
    ymax = std::max(ymax, exact[i]);
  }
  // Four decades above the minimum show the trade-off; C/T beyond is clipped.
  double ylo = decade_below(ymin * 0.8);
  double yhi = std::clamp(decade_above(ymax), ylo * 10, ylo * 1e4);
  LogAxis y{ylo, yhi, py0, py1};

  std::string clip = "clip-" + std::to_string(index);
  std::string name = escape(role.name);
  std::string s = "<g class=\"panel\" data-role=\"" + name + "\">\n";
  s += "<clipPath id=\"" + clip + "\"><rect x=\"" + num(px0) + "\" y=\"" + num(py1) + "\" width=\"" +
       num(px1 - px0) + "\" height=\"" + num(py0 - py1) + "\"/></clipPath>\n";

  // Title and one line of result.
  char head[256];
  std::snprintf(head, sizeof head, "%s \xE2\x80\x94 %s, %llu certificate%s, \xCE\xBB = %.3g/yr", name.c_str(),
                policy::storage_name(role.storage), static_cast<unsigned long long>(role.certificates),
                role.certificates == 1 ? "" : "s", plan.lambda_per_day * 365);
  s += text(ox + 12, oy + 22, head, "font-size=\"15\" font-weight=\"bold\"");
  std::string result, costs;
  if (plan.feasible) {
    result = "chosen " + format_days(plan.interval_days) + " days; " +
             (plan.binding == "none" ? std::string("no constraint binds")
                                     : "binding constraint: " + constraint_text(plan.binding));
    costs = "per year: total " + format_amount(plan.at_interval.cost_per_year) + " = overhead " +
            format_amount(plan.at_interval.overhead_per_year) + " + expected loss " +
            format_amount(plan.at_interval.expected_loss_per_year);
  } else {
    result = "infeasible: " + constraint_text(plan.conflict.at(0)) + " \xE2\x89\xA5 " + format_days(plan.min_days) +
             " d vs " + constraint_text(plan.conflict.at(1)) + " \xE2\x89\xA4 " + format_days(plan.max_days) + " d";
    costs = "no whole-day interval satisfies both";
  }
  const std::string colour = plan.feasible ? "" : " fill=\"" + std::string(kConflictColour) + "\"";
  s += text(ox + 12, oy + 42, escape(result), "font-size=\"12\"" + colour);
  s += text(ox + 12, oy + 58, escape(costs), "font-size=\"12\"" + colour);

  // Band (behind everything).
  if (plan.feasible) {
    double b0 = x.at(std::max(plan.min_days, xlo)), b1 = x.at(std::min(plan.max_days, xhi));
    s += "<rect class=\"band\" x=\"" + num(b0) + "\" y=\"" + num(py1) + "\" width=\"" + num(std::max(1.0, b1 - b0)) +
         "\" height=\"" + num(py0 - py1) + "\" fill=\"" + kBandColour + "\"/>\n";
    s += text((b0 + b1) / 2, py1 + 14,
              "feasible " + format_days(plan.min_days) + "\xE2\x80\x93" + format_days(plan.max_days) + " d",
              "font-size=\"11\" text-anchor=\"middle\" fill=\"#2e7d3e\"");
  }

  // Grid and tick labels.
  for (double v : x.ticks()) {
    s += "<line x1=\"" + num(x.at(v)) + "\" y1=\"" + num(py1) + "\" x2=\"" + num(x.at(v)) + "\" y2=\"" + num(py0) +
         "\" stroke=\"#dddddd\" stroke-width=\"1\"/>\n";
    s += text(x.at(v), py0 + 16, tick_label(v), "font-size=\"11\" text-anchor=\"middle\"");
  }
  for (double v : y.ticks()) {
    s += "<line x1=\"" + num(px0) + "\" y1=\"" + num(y.at(v)) + "\" x2=\"" + num(px1) + "\" y2=\"" + num(y.at(v)) +
         "\" stroke=\"#dddddd\" stroke-width=\"1\"/>\n";
    s += text(px0 - 6, y.at(v) + 4, tick_label(v), "font-size=\"11\" text-anchor=\"end\"");
  }
  s += "<rect x=\"" + num(px0) + "\" y=\"" + num(py1) + "\" width=\"" + num(px1 - px0) + "\" height=\"" +
       num(py0 - py1) + "\" fill=\"none\" stroke=\"#888888\"/>\n";
  s += text((px0 + px1) / 2, py0 + 36, "rotation interval T (days, log scale)",
            "font-size=\"12\" text-anchor=\"middle\"");
  double ly = (py0 + py1) / 2;
  s += text(ox + 22, ly, "cost per year (currency units, log)",
            "font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 " + num(ox + 22) + " " + num(ly) + ")\"");

  // Conflicting bounds of an infeasible role.
  if (!plan.feasible) {
    // The upper bound lies left of the lower one: label each on its outer side.
    auto bound = [&](double v, const std::string& label, bool right) {
      if (!x.contains(v)) return;
      s += "<line class=\"conflict\" x1=\"" + num(x.at(v)) + "\" y1=\"" + num(py1) + "\" x2=\"" + num(x.at(v)) +
           "\" y2=\"" + num(py0) + "\" stroke=\"" + kConflictColour + "\" stroke-width=\"2\"/>\n";
      s += text(x.at(v) + (right ? 4 : -4), py1 + 14, escape(label),
                "font-size=\"11\" fill=\"" + std::string(kConflictColour) + "\" text-anchor=\"" +
                    (right ? "start" : "end") + "\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\"");
    };
    bound(plan.min_days, constraint_text(plan.conflict.at(0)) + " \xE2\x89\xA5 " + format_days(plan.min_days) + " d",
          true);
    bound(plan.max_days, constraint_text(plan.conflict.at(1)) + " \xE2\x89\xA4 " + format_days(plan.max_days) + " d",
          false);
  }

  // The two curves.
  std::vector<std::pair<double, double>> pe, pf;
  for (int i = 0; i < kSamples; ++i) {
    // Keep the path finite: clip far outside the plot instead of at +-inf.
    auto yy = [&](double v) { return std::clamp(y.at(std::max(v, 1e-300)), py1 - 2000, py0 + 2000); };
    pe.emplace_back(x.at(ts[i]), yy(exact[i]));
    pf.emplace_back(x.at(ts[i]), yy(first[i]));
  }
  s += "<path class=\"series exact\" data-role=\"" + name + "\" clip-path=\"url(#" + clip + ")\" d=\"" + polyline(pe) +
       "\" fill=\"none\" stroke=\"" + kExactColour + "\" stroke-width=\"2.2\"/>\n";
  s += "<path class=\"series first-order\" data-role=\"" + name + "\" clip-path=\"url(#" + clip + ")\" d=\"" +
       polyline(pf) + "\" fill=\"none\" stroke=\"" + kFirstOrderColour + "\" stroke-width=\"1.4\" stroke-dasharray=\"6 4\"/>\n";

  // Unconstrained optimum.
  if (plan.optimum_days && x.contains(*plan.optimum_days)) {
    double cx = x.at(*plan.optimum_days), cy = y.at(policy::evaluate(role, *plan.optimum_days).cost_per_year);
    s += "<circle class=\"optimum\" cx=\"" + num(cx) + "\" cy=\"" + num(cy) +
         "\" r=\"4.5\" fill=\"white\" stroke=\"#555555\" stroke-width=\"1.5\"/>\n";
    s += text(cx, cy + 18, "T* = " + format_days(*plan.optimum_days) + " d", "font-size=\"11\" text-anchor=\"middle\" fill=\"#555555\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\"");
  } else if (!plan.optimum_days) {
    s += text(px1 - 6, py0 - 8, "T* unbounded (C \xE2\x89\xA5 L/\xCE\xBB) \xE2\x86\x92",
              "font-size=\"11\" text-anchor=\"end\" fill=\"#555555\"");
  }

  // Chosen interval.
  if (plan.feasible) {
    double cx = x.at(plan.interval_days), cy = y.at(plan.at_interval.cost_per_year);
    s += "<circle class=\"chosen\" cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"6\" fill=\"" + kChosenColour +
         "\" stroke=\"white\" stroke-width=\"1.5\"/>\n";
    bool right = cx < (px0 + px1) / 2;
    s += text(cx + (right ? 10 : -10), cy - 10,
              "T = " + format_days(plan.interval_days) + " d, " + format_amount(plan.at_interval.cost_per_year) + "/yr",
              std::string("font-size=\"12\" font-weight=\"bold\" fill=\"") + kChosenColour + "\" text-anchor=\"" +
                  (right ? "start" : "end") + "\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\"");
  }
  s += "</g>\n";
  return s;
}

std::string legend(double x, double y) {
  std::string s = "<g class=\"legend\" font-size=\"12\">\n";
  auto swatch_line = [&](double at, const char* colour, const char* dash, const char* label) {
    s += "<line x1=\"" + num(at) + "\" y1=\"" + num(y) + "\" x2=\"" + num(at + 30) + "\" y2=\"" + num(y) +
         "\" stroke=\"" + colour + "\" stroke-width=\"2.2\"" + (dash ? std::string(" stroke-dasharray=\"") + dash + "\"" : "") +
         "/>\n";
    s += text(at + 36, y + 4, label);
  };
  swatch_line(x, kExactColour, nullptr, "exact J(T)");
  swatch_line(x + 130, kFirstOrderColour, "6 4", "first order C/T + \xCE\xBB" "LT/2");
  s += "<rect x=\"" + num(x + 340) + "\" y=\"" + num(y - 8) + "\" width=\"30\" height=\"16\" fill=\"" + kBandColour + "\"/>\n";
  s += text(x + 376, y + 4, "feasible band");
  s += "<circle cx=\"" + num(x + 490) + "\" cy=\"" + num(y) + "\" r=\"4.5\" fill=\"white\" stroke=\"#555555\" stroke-width=\"1.5\"/>\n";
  s += text(x + 500, y + 4, "unconstrained optimum T*");
  s += "<circle cx=\"" + num(x + 690) + "\" cy=\"" + num(y) + "\" r=\"6\" fill=\"" + kChosenColour + "\"/>\n";
  s += text(x + 700, y + 4, "chosen whole-day interval");
  s += "<line x1=\"" + num(x + 880) + "\" y1=\"" + num(y - 8) + "\" x2=\"" + num(x + 880) + "\" y2=\"" + num(y + 8) +
       "\" stroke=\"" + kConflictColour + "\" stroke-width=\"2\"/>\n";
  s += text(x + 888, y + 4, "conflicting bounds (infeasible)");
  s += "</g>\n";
  return s;
}

}  // namespace

std::string format_days(double days) {
  char buf[32];
  if (std::fabs(days - std::round(days)) < 1e-9) std::snprintf(buf, sizeof buf, "%.0f", days);
  else std::snprintf(buf, sizeof buf, days < 10 ? "%.2f" : "%.1f", days);
  return buf;
}

std::string format_amount(double v) {
  char buf[48];
  if (!(std::fabs(v) >= 100) || std::fabs(v) >= 1e15) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.0f", std::fabs(v));
  std::string digits = buf, out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (v < 0 ? "-" : "") + out;
}

std::string rotation_plot_svg(const std::vector<PlannedRole>& roles) {
  const int cols = roles.size() >= 2 ? 2 : 1;
  const int rows = static_cast<int>((roles.size() + cols - 1) / cols);
  const double width = std::max(2 * kMargin + cols * kPanelW, 1140.0);
  const double height = kHeaderH + rows * kPanelH + kFooterH;
  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" + num(height) +
       "\" viewBox=\"0 0 " + num(width) + " " + num(height) + "\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n";
  s += "<title>gridtrust rotation plan: expected cost per year against the rotation interval</title>\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += text(kMargin, 32, "Rotation plan: expected cost per year against the rotation interval, per role",
            "font-size=\"20\" font-weight=\"bold\"");
  s += text(kMargin, 56,
            "Cost per year = 365 \xC2\xB7 certificates \xC2\xB7 J(T), J(T) = C/T + L\xC2\xB7" "E(T)/T with "
            "E(T) = T \xE2\x88\x92 (1 \xE2\x88\x92 e^(\xE2\x88\x92\xCE\xBBT))/\xCE\xBB the expected days a key is "
            "compromised and usable per interval;",
            "font-size=\"12\"");
  s += text(kMargin, 72,
            "C = overhead per rotation, L = loss per day, \xCE\xBB = compromise rate after the HSM/TPM factor. "
            "Both axes logarithmic; costs in the configured currency unit.",
            "font-size=\"12\"");
  s += legend(kMargin + 10, 96);
  for (std::size_t i = 0; i < roles.size(); ++i) {
    double ox = kMargin + static_cast<double>(i % cols) * kPanelW;
    double oy = kHeaderH + static_cast<double>(i / cols) * kPanelH;
    s += panel(roles[i], static_cast<int>(i), ox, oy);
  }
  s += text(kMargin, height - 16,
            "Made by gridtrust rotation plan from gridtrust.yaml (rotation.roles). Chosen interval: the cheapest whole "
            "day inside the feasible band.",
            "font-size=\"11\" fill=\"#555555\"");
  s += "</svg>\n";
  return s;
}

}  // namespace gridtrust::cli
