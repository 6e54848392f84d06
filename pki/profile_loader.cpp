#include "pki/profile_loader.h"

#include <functional>

#include <yaml-cpp/yaml.h>

namespace gridtrust::pki {
namespace {

const std::set<std::string> kKeyUsages = {"digitalSignature", "nonRepudiation", "keyEncipherment",
                                          "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign"};
const std::set<std::string> kEkus = {"serverAuth", "clientAuth", "OCSPSigning", "dispatchAuthority"};
const std::set<std::string> kAttributes = {"CN", "O", "OU", "C", "DC", "L", "ST"};

struct ConfigError {
  std::string message;
};

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& n, const std::string& field, const std::string& why) const {
    std::string where = file_;
    if (n.IsDefined() && n.Mark().line >= 0) where += ":" + std::to_string(n.Mark().line + 1);
    throw ConfigError{where + ": " + field + ": " + why};
  }

  std::string str(const YAML::Node& parent, const std::string& key, const std::string& field) const {
    auto n = parent[key];
    if (!n || !n.IsScalar()) fail(parent, field, "required string is missing");
    return n.as<std::string>();
  }

  int positive_int(const YAML::Node& parent, const std::string& key, const std::string& field) const {
    auto n = parent[key];
    if (!n || !n.IsScalar()) fail(parent, field, "required number is missing");
    int v;
    try {
      v = n.as<int>();
    } catch (const YAML::Exception&) {
      fail(n, field, "not an integer");
    }
    if (v <= 0) fail(n, field, "must be positive");
    return v;
  }

  std::vector<std::string> list(const YAML::Node& parent, const std::string& key, const std::string& field,
                                const std::set<std::string>& allowed, bool required) const {
    std::vector<std::string> out;
    auto n = parent[key];
    if (!n) {
      if (required) fail(parent, field, "required list is missing");
      return out;
    }
    if (!n.IsSequence()) fail(n, field, "must be a list");
    for (const auto& item : n) {
      if (!item.IsScalar()) fail(item, field, "list items must be strings");
      auto v = item.as<std::string>();
      if (!allowed.empty() && !allowed.count(v)) fail(item, field, "unknown value '" + v + "'");
      out.push_back(v);
    }
    return out;
  }

 private:
  std::string file_;
};

Profile read_profile(const Reader& r, const std::string& name, const YAML::Node& n) {
  const std::string f = "profiles." + name + ".";
  if (!n.IsMap()) r.fail(n, "profiles." + name, "must be a mapping");
  Profile p;
  p.name = name;
  auto kind = r.str(n, "kind", f + "kind");
  if (kind == "root") p.kind = ProfileKind::Root;
  else if (kind == "sub-ca") p.kind = ProfileKind::SubCa;
  else if (kind == "leaf") p.kind = ProfileKind::Leaf;
  else r.fail(n["kind"], f + "kind", "must be root, sub-ca or leaf");
  p.issuer = r.str(n, "issuer", f + "issuer");
  if (p.kind == ProfileKind::Root && p.issuer != name) r.fail(n["issuer"], f + "issuer", "a root issues itself");
  for (const auto& k : r.list(n, "keys", f + "keys", {}, true)) {
    auto alg = hsm::key_algorithm_from_name(k);
    if (!alg) r.fail(n["keys"], f + "keys", "unknown key algorithm '" + k + "'");
    p.keys.push_back(*alg);
  }
  if (p.keys.empty()) r.fail(n["keys"], f + "keys", "at least one key algorithm");
  p.digest = r.str(n, "digest", f + "digest");
  if (p.digest != "SHA-256" && p.digest != "SHA-384" && p.digest != "SHA-512")
    r.fail(n["digest"], f + "digest", "must be SHA-256, SHA-384 or SHA-512");
  p.validity_days = r.positive_int(n, "validity_days", f + "validity_days");
  if (n["path_len"]) {
    if (!p.is_ca()) r.fail(n["path_len"], f + "path_len", "only CAs have a path length");
    try {
      p.path_len = n["path_len"].as<int>();
    } catch (const YAML::Exception&) {
      r.fail(n["path_len"], f + "path_len", "not an integer");
    }
    if (*p.path_len < 0) r.fail(n["path_len"], f + "path_len", "must not be negative");
  }
  p.key_usage = r.list(n, "key_usage", f + "key_usage", kKeyUsages, true);
  p.extended_key_usage = r.list(n, "extended_key_usage", f + "extended_key_usage", kEkus, false);
  auto s = n["subject"];
  if (!s || !s.IsMap()) r.fail(n, f + "subject", "required mapping is missing");
  if (s["dc"]) p.subject.dc = s["dc"].as<std::string>();
  auto cn = s["cn"] ? s["cn"].as<std::string>() : "any";
  if (cn == "any") p.subject.cn = CnRule::Any;
  else if (cn == "emaid") p.subject.cn = CnRule::Emaid;
  else if (cn == "pcid") p.subject.cn = CnRule::Pcid;
  else if (cn == "secc-id") p.subject.cn = CnRule::SeccId;
  else if (cn == "hostname") p.subject.cn = CnRule::Hostname;
  else r.fail(s["cn"], f + "subject.cn", "must be any, emaid, pcid, secc-id or hostname");
  for (auto& a : r.list(s, "require", f + "subject.require", kAttributes, false)) p.subject.required.insert(a);
  for (auto& a : r.list(s, "allow", f + "subject.allow", kAttributes, true)) p.subject.allowed.insert(a);
  for (auto& a : r.list(s, "ou_values", f + "subject.ou_values", {}, false)) p.subject.ou_values.insert(a);
  for (auto& a : p.subject.required)
    if (!p.subject.allowed.count(a)) r.fail(s, f + "subject.require", a + " is required but not allowed");
  if (p.subject.dc && !p.subject.allowed.count("DC")) r.fail(s, f + "subject.dc", "DC is required but not allowed");
  p.hsm_key = n["hsm_key"] && n["hsm_key"].as<bool>();
  p.ocsp_nocheck = n["ocsp_nocheck"] && n["ocsp_nocheck"].as<bool>();
  p.san_dns_from_cn = n["san_dns_from_cn"] && n["san_dns_from_cn"].as<bool>();
  if (p.is_ca()) {
    p.default_subject = r.str(n, "default_subject", f + "default_subject");
    bool sign = false;
    for (auto& u : p.key_usage) sign |= u == "keyCertSign";
    if (!sign) r.fail(n["key_usage"], f + "key_usage", "a CA needs keyCertSign");
  }
  return p;
}

}  // namespace

std::vector<const Profile*> ProfileSet::cas_in_order() const {
  std::vector<const Profile*> out;
  std::set<std::string> done;
  std::function<void(const Profile&)> visit = [&](const Profile& p) {
    if (done.count(p.name)) return;
    if (p.kind != ProfileKind::Root) visit(profiles.at(p.issuer));
    done.insert(p.name);
    out.push_back(&p);
  };
  for (auto& [name, p] : profiles)
    if (p.is_ca()) visit(p);
  return out;
}

Result<ProfileSet> load_profiles(const std::string& path) {
  Reader r(path);
  try {
    YAML::Node root = YAML::LoadFile(path);
    ProfileSet set;
    if (!root.IsMap()) r.fail(root, "(top)", "must be a mapping");
    set.organisation = root["organisation"] ? root["organisation"].as<std::string>() : "gridtrust";
    auto profiles = root["profiles"];
    if (!profiles || !profiles.IsMap()) r.fail(root, "profiles", "required mapping is missing");
    for (const auto& kv : profiles) {
      auto name = kv.first.as<std::string>();
      set.profiles.emplace(name, read_profile(r, name, kv.second));
    }
    for (auto& [name, p] : set.profiles) {
      auto* issuer = set.find(p.issuer);
      if (!issuer) r.fail(profiles[name]["issuer"], "profiles." + name + ".issuer", "no profile '" + p.issuer + "'");
      if (!issuer->is_ca()) r.fail(profiles[name]["issuer"], "profiles." + name + ".issuer", "'" + p.issuer + "' is not a CA");
    }
    // Cycles among sub-CAs would make the hierarchy unbuildable.
    for (auto& [name, p] : set.profiles) {
      const Profile* cur = &p;
      for (int depth = 0; cur->kind != ProfileKind::Root; ++depth) {
        if (depth > 8) r.fail(profiles[name], "profiles." + name + ".issuer", "issuer chain does not reach a root");
        cur = set.find(cur->issuer);
      }
    }
    return set;
  } catch (const ConfigError& e) {
    return reject("config.invalid", e.message);
  } catch (const YAML::Exception& e) {
    return reject("config.invalid", path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace gridtrust::pki
