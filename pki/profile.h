#pragma once
// A certificate profile: what a role's certificates look like and what a request for
// one must satisfy. Value type, validated when loaded (profile_loader.h).
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hsm/key_algorithm.h"

namespace gridtrust::pki {

enum class ProfileKind { Root, SubCa, Leaf };
enum class CnRule { Any, Emaid, Pcid, SeccId, Hostname };

struct SubjectRules {
  std::optional<std::string> dc;         // required domainComponent; none allowed if unset
  CnRule cn = CnRule::Any;
  std::set<std::string> required;        // short names: CN, O, OU, C, DC
  std::set<std::string> allowed;
  std::set<std::string> ou_values;       // empty: any

  bool operator==(const SubjectRules&) const = default;
};

struct Profile {
  std::string name;
  ProfileKind kind = ProfileKind::Leaf;
  std::string issuer;
  std::vector<hsm::KeyAlgorithm> keys;
  std::string digest;                    // SHA-256 | SHA-384 | SHA-512
  int validity_days = 0;
  std::optional<int> path_len;
  std::vector<std::string> key_usage;
  std::vector<std::string> extended_key_usage;
  SubjectRules subject;
  bool hsm_key = false;
  bool ocsp_nocheck = false;
  bool san_dns_from_cn = false;
  std::string default_subject;

  bool is_ca() const { return kind != ProfileKind::Leaf; }
  bool operator==(const Profile&) const = default;  // what a reload reports as changed
};

struct ProfileSet {
  std::string organisation;
  std::map<std::string, Profile> profiles;

  const Profile* find(const std::string& name) const {
    auto it = profiles.find(name);
    return it == profiles.end() ? nullptr : &it->second;
  }
  // CA profiles, parents before children.
  std::vector<const Profile*> cas_in_order() const;
};

// gridtrust's dispatch-authority EKU (a UUID OID, ITU-T X.667 arc 2.25): a signer
// certificate carrying it may sign dispatch commands.
inline constexpr const char* kDispatchAuthorityOid = "2.25.246562044906794374245508411653687327742";

}  // namespace gridtrust::pki
