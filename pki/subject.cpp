#include "pki/subject.h"

#include <map>

#include <openssl/objects.h>

#include "policy/name_rules.h"

namespace gridtrust::pki {
namespace {

const std::map<std::string, int>& attribute_nids() {
  static const std::map<std::string, int> m = {{"CN", NID_commonName},          {"O", NID_organizationName},
                                               {"OU", NID_organizationalUnitName}, {"C", NID_countryName},
                                               {"DC", NID_domainComponent},     {"L", NID_localityName},
                                               {"ST", NID_stateOrProvinceName}};
  return m;
}

std::string short_name(int nid) {
  for (auto& [name, n] : attribute_nids())
    if (n == nid) return name;
  const char* sn = OBJ_nid2sn(nid);
  return sn ? sn : "unknown";
}

// X.520 upper bounds (RFC 5280 Appendix A).
std::size_t max_length(const std::string& attr) {
  if (attr == "C") return 2;
  if (attr == "CN" || attr == "O" || attr == "OU") return 64;
  return 128;
}

}  // namespace

Result<X509NamePtr> parse_subject(const std::string& text) {
  if (text.empty()) return reject("subject.empty", "subject is empty");
  if (text.size() > 1024) return reject("subject.too_long", "subject text is longer than 1024 characters");
  X509NamePtr name(X509_NAME_new());
  std::size_t i = 0;
  while (i < text.size()) {
    std::string type, value;
    bool in_value = false;
    for (; i < text.size(); ++i) {
      char c = text[i];
      if (c == '\\' && i + 1 < text.size()) {
        (in_value ? value : type) += text[++i];
      } else if (c == '=' && !in_value) {
        in_value = true;
      } else if (c == ',') {
        ++i;
        break;
      } else {
        (in_value ? value : type) += c;
      }
    }
    while (!type.empty() && type.front() == ' ') type.erase(type.begin());
    while (!type.empty() && type.back() == ' ') type.pop_back();
    if (!in_value || type.empty())
      return reject("subject.malformed", "expected TYPE=value in subject '" + text + "'");
    auto it = attribute_nids().find(type);
    if (it == attribute_nids().end())
      return reject("subject.attribute_not_allowed", "unsupported subject attribute '" + type + "'");
    if (value.empty()) return reject("subject.malformed", "empty value for " + type);
    int type_flag = it->second == NID_countryName ? MBSTRING_ASC : MBSTRING_UTF8;
    if (X509_NAME_add_entry_by_NID(name.get(), it->second, type_flag,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1)
      return reject("subject.malformed", "invalid value for " + type);
  }
  return name;
}

std::string subject_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string common_name(const X509_NAME* name) {
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

Status check_subject(const X509_NAME* name, const Profile& profile) {
  const SubjectRules& rules = profile.subject;
  std::map<std::string, std::vector<std::string>> values;
  int count = X509_NAME_entry_count(name);
  if (count == 0) return reject("subject.empty", "subject is empty");
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    std::string attr = short_name(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)));
    if (!rules.allowed.count(attr))
      return reject("subject.attribute_not_allowed",
                    "profile " + profile.name + " does not allow subject attribute " + attr);
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (n < 0) return reject("subject.bad_encoding", attr + " is not a valid string");
    std::string v(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
    if (v.empty()) return reject("subject.malformed", attr + " is empty");
    if (v.find('\0') != std::string::npos) return reject("subject.bad_encoding", attr + " contains a NUL byte");
    if (v.size() > max_length(attr))
      return reject("subject.too_long", attr + " is longer than " + std::to_string(max_length(attr)));
    values[attr].push_back(std::move(v));
  }
  for (auto& [attr, vs] : values)
    if (attr != "DC" && attr != "OU" && vs.size() > 1)
      return reject("subject.duplicate_attribute", "subject has more than one " + attr);
  for (auto& req : rules.required)
    if (!values.count(req))
      return reject(req == "DC" ? "subject.dc_missing" : "subject.missing_attribute",
                    "profile " + profile.name + " requires subject attribute " + req);
  if (rules.dc) {
    // ISO 15118-2 Annex F: the role's domainComponent identifies its PKI branch.
    auto& dcs = values["DC"];
    if (dcs.size() != 1 || dcs.front() != *rules.dc)
      return reject("subject.dc_mismatch", "profile " + profile.name + " requires DC=" + *rules.dc);
  }
  if (!rules.ou_values.empty())
    for (auto& ou : values["OU"])
      if (!rules.ou_values.count(ou))
        return reject("subject.ou_not_allowed", "OU '" + ou + "' is not allowed for profile " + profile.name);
  const std::string cn = values.count("CN") ? values["CN"].front() : "";
  switch (rules.cn) {
    case CnRule::Any: break;
    case CnRule::Emaid:
      if (!policy::is_valid_emaid(cn)) return reject("subject.bad_emaid", "CN '" + cn + "' is not a valid eMAID");
      break;
    case CnRule::Pcid:
      if (!policy::is_valid_pcid(cn)) return reject("subject.bad_pcid", "CN '" + cn + "' is not a valid PCID");
      break;
    case CnRule::SeccId:
      if (!policy::is_valid_secc_id(cn))
        return reject("subject.bad_secc_id", "CN '" + cn + "' is not a valid SECC (EVSE) ID");
      break;
    case CnRule::Hostname:
      if (!policy::is_valid_hostname(cn))
        return reject("subject.bad_hostname", "CN '" + cn + "' is not a valid host name");
      break;
  }
  return Ok{};
}

}  // namespace gridtrust::pki
