#include "daemon/request.h"

#include <algorithm>
#include <cctype>

namespace gridtrust::daemon {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> Request::query_value(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

Result<std::size_t> Request::limit(std::size_t max) const {
  auto v = query_value("limit");
  if (!v) return std::min<std::size_t>(100, max);
  bool digits = !v->empty() && v->size() <= 9;
  for (char c : *v) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  const std::size_t n = digits ? static_cast<std::size_t>(std::stoul(*v)) : 0;
  if (n < 1 || n > max) return reject("usage.bad_value", "limit must be a whole number from 1 to " + std::to_string(max));
  return n;
}

const std::string& Request::param(const std::string& name) const {
  static const std::string empty;
  auto it = params.find(name);
  return it == params.end() ? empty : it->second;
}

void parse_target(const std::string& target, Request& out) {
  auto q = target.find('?');
  out.path = target.substr(0, q);
  if (q == std::string::npos) return;
  std::string rest = target.substr(q + 1);
  std::size_t start = 0;
  while (start <= rest.size()) {
    auto end = rest.find('&', start);
    if (end == std::string::npos) end = rest.size();
    std::string pair = rest.substr(start, end - start);
    if (!pair.empty()) {
      auto eq = pair.find('=');
      std::string key = percent_decode(pair.substr(0, eq));
      std::string value = eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1));
      out.query[key] = value;
    }
    start = end + 1;
  }
}

Status json_content_type(const Request& req) {
  // "application/json" with optional parameters such as "; charset=utf-8".
  std::string type = req.content_type.substr(0, req.content_type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type != "application/json")
    return reject("request.bad_content_type",
                  "expected Content-Type application/json, got '" + req.content_type + "'");
  return Ok{};
}

Result<boost::json::object> json_object_body(const Request& req) {
  GT_TRY(json_content_type(req));
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(req.body, ec);
  if (ec) return reject("request.bad_json", "request body is not valid JSON: " + ec.message());
  if (!v.is_object()) return reject("request.bad_json", "request body must be a JSON object");
  return std::move(v.as_object());
}

Result<std::string> json_string_member(const boost::json::object& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || !it->value().is_string())
    return reject("request.bad_json", std::string("request body needs a string member \"") + name + "\"");
  return std::string(it->value().as_string());
}

}  // namespace gridtrust::daemon
