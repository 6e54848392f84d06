#include "protocol/ocpp_certificates.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <initializer_list>
#include <vector>

#include <openssl/ocsp.h>

#include "pki/certificate_builder.h"
#include "pki/csr.h"
#include "protocol/json_text.h"

namespace gridtrust::protocol::ocpp {
namespace json = boost::json;

namespace {

constexpr const char* kFormat = "ocpp.format_violation";
constexpr const char* kType = "ocpp.type_constraint_violation";
constexpr const char* kOccurrence = "ocpp.occurrence_constraint_violation";
constexpr const char* kProperty = "ocpp.property_constraint_violation";
constexpr const char* kSecurity = "ocpp.security_error";
constexpr const char* kNotSupported = "ocpp.not_supported";

// maxLength bounds of the official schemas; where 2.1 changed one, both are listed.
constexpr std::size_t kMaxCsr = 5500;
constexpr std::size_t kMaxCertificateChain = 10000;
constexpr std::size_t kMaxVendorId = 255;
constexpr std::size_t kMaxHash = 128;
constexpr std::size_t kMaxSerial = 40;
constexpr std::size_t kMaxReasonCode = 20;
constexpr std::size_t kMaxAdditionalInfo = 512;
std::size_t max_responder_url(Version v) { return v == Version::v2_1 ? 2000 : 512; }
std::size_t max_ocsp_result(Version v) { return v == Version::v2_1 ? 18000 : 5500; }
std::size_t max_install_certificate(Version v) { return v == Version::v2_1 ? 10000 : 5500; }

// JSON Schema maxLength counts characters (code points), not bytes; the text is UTF-8
// already checked by the parser.
std::size_t code_points(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

std::string at(const std::string& path, std::string_view name) {
  std::string n(name.substr(0, 64));
  return path.empty() ? n : path + "." + n;
}

const char* json_type(const json::value& v) {
  switch (v.kind()) {
    case json::kind::object: return "an object";
    case json::kind::array: return "an array";
    case json::kind::string: return "a string";
    case json::kind::bool_: return "a boolean";
    case json::kind::null: return "null";
    default: return "a number";
  }
}

Rejection wrong_type(const std::string& path, const char* want, const json::value& got) {
  return reject(kType, "\"" + path + "\" must be " + want + ", not " + json_type(got));
}

// additionalProperties false, then required.
Status check_members(const json::object& o, const std::string& path, const std::string& type,
                     std::initializer_list<std::string_view> known, std::initializer_list<std::string_view> required) {
  for (const auto& m : o)
    if (std::find(known.begin(), known.end(), std::string_view(m.key())) == known.end())
      return reject(kProperty, "additional property \"" + at(path, m.key()) + "\" is not allowed in " + type);
  for (auto r : required)
    if (!o.contains(r)) return reject(kOccurrence, type + " requires \"" + at(path, r) + "\"");
  return Ok{};
}

Result<std::string> string_value(const json::value& v, const std::string& path, std::size_t max) {
  if (!v.is_string()) return wrong_type(path, "a string", v);
  std::string s(v.as_string());
  if (code_points(s) > max)
    return reject(kProperty, "\"" + path + "\" has " + std::to_string(code_points(s)) + " characters; at most " +
                                 std::to_string(max) + " are allowed");
  return s;
}

Result<std::string> enum_value(const json::value& v, const std::string& path, const std::string& type,
                               const std::vector<std::string_view>& values) {
  if (!v.is_string()) return wrong_type(path, "a string", v);
  std::string s(v.as_string());
  if (std::find(values.begin(), values.end(), s) == values.end()) {
    std::string list;
    for (auto e : values) list += (list.empty() ? "" : ", ") + std::string(e);
    return reject(kProperty, "\"" + path + "\" is not a " + type + " (" + list + ")");
  }
  return s;
}

// JSON Schema "integer": a number with a zero fractional part (1.0 counts).
Result<std::int64_t> integer_value(const json::value& v, const std::string& path) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) {
    if (v.as_uint64() > static_cast<std::uint64_t>(INT64_MAX))
      return reject(kProperty, "\"" + path + "\" is beyond the 64-bit integer range");
    return static_cast<std::int64_t>(v.as_uint64());
  }
  if (v.is_double()) {
    double d = v.as_double();
    if (std::trunc(d) != d) return wrong_type(path, "an integer", v);
    if (std::fabs(d) > 9007199254740992.0)  // 2^53: beyond it a double is no exact integer
      return reject(kProperty, "\"" + path + "\" is beyond the exactly representable integers");
    return static_cast<std::int64_t>(d);
  }
  return wrong_type(path, "an integer", v);
}

// CustomDataType: an object with a vendorId; other members are the vendor's (the one
// type the schemas leave open).
Status custom_data(const json::value& v, const std::string& path) {
  if (!v.is_object()) return wrong_type(path, "an object (CustomDataType)", v);
  const json::object& o = v.as_object();
  const json::value* vendor = o.if_contains("vendorId");
  if (!vendor) return reject(kOccurrence, "CustomDataType requires \"" + at(path, "vendorId") + "\"");
  GT_TRY(string_value(*vendor, at(path, "vendorId"), kMaxVendorId));
  return Ok{};
}

Status optional_custom_data(const json::object& o, const std::string& path) {
  if (const json::value* cd = o.if_contains("customData")) return custom_data(*cd, at(path, "customData"));
  return Ok{};
}

const char* hash_algorithm_text(HashAlgorithm a) {
  switch (a) {
    case HashAlgorithm::sha256: return "SHA256";
    case HashAlgorithm::sha384: return "SHA384";
    case HashAlgorithm::sha512: return "SHA512";
  }
  return "SHA256";
}

std::size_t digest_size(HashAlgorithm a) {
  switch (a) {
    case HashAlgorithm::sha256: return 32;
    case HashAlgorithm::sha384: return 48;
    case HashAlgorithm::sha512: return 64;
  }
  return 32;
}

Result<HashAlgorithm> hash_algorithm_value(const json::value& v, const std::string& path) {
  GT_TRY_ASSIGN(std::string s, enum_value(v, path, "HashAlgorithmEnumType", {"SHA256", "SHA384", "SHA512"}));
  return parse_hash_algorithm(s);
}

// issuerNameHash / issuerKeyHash: hexadecimal digests of the algorithm's size.
Result<Bytes> digest_value(const json::value& v, const std::string& path, HashAlgorithm alg) {
  GT_TRY_ASSIGN(std::string s, string_value(v, path, kMaxHash));
  auto bytes = from_hex(s);
  if (!bytes || s.empty()) return reject(kFormat, "\"" + path + "\" is not hexadecimal");
  if (bytes->size() != digest_size(alg))
    return reject(kProperty, "\"" + path + "\" has " + std::to_string(bytes->size()) + " octets; " +
                                 hash_algorithm_text(alg) + " makes " + std::to_string(digest_size(alg)));
  return std::move(*bytes);
}

// serialNumber: hexadecimal, "without the prefix 0x and without leading zeroes"; a
// leading zero is tolerated (it does not change the number).
Result<Bytes> serial_value(const json::value& v, const std::string& path) {
  GT_TRY_ASSIGN(std::string s, string_value(v, path, kMaxSerial));
  auto bytes = from_hex(s.size() % 2 ? "0" + s : s);
  if (!bytes || s.empty()) return reject(kFormat, "\"" + path + "\" is not hexadecimal");
  auto first = std::find_if(bytes->begin(), bytes->end(), [](std::uint8_t b) { return b != 0; });
  return Bytes(first, bytes->end());
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// CertificateHashDataType (additionalProperties false).
Result<CertificateHashData> certificate_hash_value(const json::value& v, const std::string& path) {
  if (!v.is_object()) return wrong_type(path, "an object (CertificateHashDataType)", v);
  const json::object& o = v.as_object();
  GT_TRY(check_members(o, path, "CertificateHashDataType",
                       {"hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber", "customData"},
                       {"hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber"}));
  CertificateHashData out;
  GT_TRY_ASSIGN(out.algorithm, hash_algorithm_value(o.at("hashAlgorithm"), at(path, "hashAlgorithm")));
  GT_TRY_ASSIGN(Bytes name_hash, digest_value(o.at("issuerNameHash"), at(path, "issuerNameHash"), out.algorithm));
  GT_TRY_ASSIGN(Bytes key_hash, digest_value(o.at("issuerKeyHash"), at(path, "issuerKeyHash"), out.algorithm));
  GT_TRY_ASSIGN(Bytes serial, serial_value(o.at("serialNumber"), at(path, "serialNumber")));
  GT_TRY(optional_custom_data(o, path));
  out.issuer_name_hash = to_hex(name_hash);
  out.issuer_key_hash = to_hex(key_hash);
  std::string hex = to_hex(serial);
  auto nz = hex.find_first_not_of('0');
  out.serial_number = nz == std::string::npos ? "0" : hex.substr(nz);
  return out;
}

Result<SigningUse> signing_use(const std::string& s) {
  if (s == "ChargingStationCertificate") return SigningUse::charging_station;
  if (s == "V2GCertificate") return SigningUse::v2g;
  return SigningUse::v2g20;
}

std::vector<std::string_view> signing_uses(Version v) {
  if (v == Version::v2_1) return {"ChargingStationCertificate", "V2GCertificate", "V2G20Certificate"};
  return {"ChargingStationCertificate", "V2GCertificate"};
}

std::vector<std::string> name_values(const X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0; i = X509_NAME_get_index_by_NID(name, nid, i)) {
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0) {
      out.emplace_back();  // undecodable: matches nothing
      continue;
    }
    out.emplace_back(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
  }
  return out;
}

std::string role_of_dc(const std::string& dc) {
  if (dc == "CPO") return "an SECC (charger, DC=CPO)";
  if (dc == "MO") return "a contract (mobility operator, DC=MO)";
  if (dc == "OEM") return "a vehicle (OEM provisioning, DC=OEM)";
  if (dc == "CPS") return "a certificate provisioning service (DC=CPS)";
  if (dc == "V2G") return "a V2G CA (DC=V2G)";
  return "a DC=" + dc;
}

// ISO 15118-2 Annex F: the domainComponent names the role's PKI branch. A subject of
// another role (a contract or vehicle CSR sent as a charging-station one) is a
// security matter, not a formatting one.
Status check_role(const X509_NAME* subject, const pki::Profile& profile, const std::string& use) {
  auto dcs = name_values(subject, NID_domainComponent);
  if (profile.subject.dc) {
    if (dcs.size() == 1 && dcs.front() == *profile.subject.dc) return Ok{};
    if (dcs.empty())
      return reject(kSecurity, "the CSR subject has no DC; " + use + " needs DC=" + *profile.subject.dc);
    return reject(kSecurity, "the CSR subject is that of " + role_of_dc(dcs.front()) + ", not of " + use + " (DC=" +
                                 *profile.subject.dc + ")");
  }
  if (!dcs.empty())
    return reject(kSecurity, "the CSR subject is that of " + role_of_dc(dcs.front()) + ", not of " + use +
                                 " (no DC)");
  return Ok{};
}

Status check_organisation(const X509_NAME* subject, const Requester& who) {
  if (!who.organisation) return Ok{};
  auto os = name_values(subject, NID_organizationName);
  if (os.size() == 1 && os.front() == *who.organisation) return Ok{};
  if (os.empty()) return reject(kSecurity, "the CSR subject has no O; the caller may sign for O=" + *who.organisation);
  return reject(kSecurity, "the CSR subject is of O=" + os.front() + "; the caller may sign for O=" +
                               *who.organisation + " only");
}

// The CSR must be what OCPP names it: one PEM CERTIFICATE REQUEST (RFC 7468 7, the
// legacy label NEW CERTIFICATE REQUEST too). Encoding failures are FormatViolation;
// what the parser finds wrong inside a well-formed request (a key not on its curve)
// keeps its csr.* code.
Result<pki::CertificationRequest> parse_pem_csr(const std::string& csr) {
  auto first = csr.find_first_not_of(" \t\r\n");
  std::string_view text = first == std::string::npos ? std::string_view() : std::string_view(csr).substr(first);
  if (text.rfind("-----BEGIN CERTIFICATE REQUEST-----", 0) != 0 &&
      text.rfind("-----BEGIN NEW CERTIFICATE REQUEST-----", 0) != 0)
    return reject(kFormat, "\"csr\" is not a PEM CERTIFICATE REQUEST");
  auto req = pki::parse_csr(to_bytes(csr));
  if (!req.ok()) {
    const std::string& code = req.error().code;
    if (code == "csr.malformed_pem" || code == "csr.malformed_der" || code == "csr.malformed" ||
        code == "csr.too_large")
      return reject(kFormat, "\"csr\": " + req.error().message + " (" + code + ")");
    return req.error();
  }
  return req;
}

// The root the profile's certificates chain to.
Result<X509Ptr> root_of(pki::CertificateAuthority& ca, const std::string& profile) {
  GT_TRY_ASSIGN(auto chain, ca.chain(profile));
  if (chain.empty()) return reject("issuer.missing", "profile " + profile + " has no issuing chain");
  return pki::certificate_from_der(chain.back());
}

bool same_hash_data(const CertificateHashData& a, const CertificateHashData& b) {
  return a.algorithm == b.algorithm && lower(a.issuer_name_hash) == lower(b.issuer_name_hash) &&
         lower(a.issuer_key_hash) == lower(b.issuer_key_hash) && lower(a.serial_number) == lower(b.serial_number);
}

// ---- DER for the OCSP request ----

void put_length(Bytes& out, std::size_t n) {
  if (n < 0x80) {
    out.push_back(static_cast<std::uint8_t>(n));
  } else if (n < 0x100) {
    out.push_back(0x81);
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    out.push_back(0x82);
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n & 0xff));
  }
}

Bytes tlv(std::uint8_t tag, const Bytes& content) {
  Bytes out{tag};
  put_length(out, content.size());
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// AlgorithmIdentifier of the hash with NULL parameters, as OpenSSL writes CertIDs.
Bytes hash_algorithm_identifier(HashAlgorithm a) {
  std::uint8_t last = a == HashAlgorithm::sha256 ? 1 : a == HashAlgorithm::sha384 ? 2 : 3;
  Bytes oid{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, last};  // 2.16.840.1.101.3.4.2.x
  return tlv(0x30, concat({oid, Bytes{0x05, 0x00}}));
}

const char* response_status_reason(int status) {
  switch (status) {
    case OCSP_RESPONSE_STATUS_MALFORMEDREQUEST: return "MalformedRequest";
    case OCSP_RESPONSE_STATUS_INTERNALERROR: return "InternalError";
    case OCSP_RESPONSE_STATUS_TRYLATER: return "TryLater";
    case OCSP_RESPONSE_STATUS_SIGREQUIRED: return "SigRequired";
    case OCSP_RESPONSE_STATUS_UNAUTHORIZED: return "Unauthorized";
    default: return "InternalError";
  }
}

std::string response_status_info(int status) {
  switch (status) {
    case OCSP_RESPONSE_STATUS_UNAUTHORIZED:
      return "the OCSP responder answered unauthorized: no CA of this PKI has that issuerNameHash and issuerKeyHash";
    case OCSP_RESPONSE_STATUS_TRYLATER: return "the OCSP responder answered tryLater: the HSM is unavailable";
    case OCSP_RESPONSE_STATUS_MALFORMEDREQUEST: return "the OCSP responder answered malformedRequest";
    default: return "the OCSP responder answered " + std::string(OCSP_response_status_str(status));
  }
}

json::object status_info(const char* reason, std::string info) {
  if (info.size() > kMaxAdditionalInfo) info.resize(kMaxAdditionalInfo);
  return json::object{{"reasonCode", std::string(reason).substr(0, kMaxReasonCode)}, {"additionalInfo", info}};
}

// ---- builders ----

std::vector<std::string_view> install_uses(Version v) {
  std::vector<std::string_view> out{"V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate",
                                    "ManufacturerRootCertificate"};
  if (v == Version::v2_1) out.push_back("OEMRootCertificate");
  return out;
}

// Whether a leaf profile with EKU serverAuth (the CSMS server certificate) chains up
// to `root` in the profile set.
bool is_csms_root(const pki::ProfileSet& set, const std::string& root) {
  for (const auto& [name, p] : set.profiles) {
    if (p.is_ca() ||
        std::find(p.extended_key_usage.begin(), p.extended_key_usage.end(), "serverAuth") == p.extended_key_usage.end())
      continue;
    const pki::Profile* at_ = &p;
    for (int depth = 0; at_ && depth < 16; ++depth) {
      if (at_->kind == pki::ProfileKind::Root) {
        if (at_->name == root) return true;
        break;
      }
      at_ = set.find(at_->issuer);
    }
  }
  return false;
}

bool root_fits(const pki::ProfileSet& set, const pki::Profile& root, std::string_view use) {
  const auto& dc = root.subject.dc;
  if (use == "V2GRootCertificate") return dc && *dc == "V2G";
  if (use == "MORootCertificate") return dc && *dc == "MO";
  if (use == "OEMRootCertificate") return dc && *dc == "OEM";
  if (use == "CSMSRootCertificate") return is_csms_root(set, root.name);
  // Firmware signing roots: never one of the ISO 15118 PKIs, whose certificates a
  // station must not accept as firmware signers.
  if (use == "ManufacturerRootCertificate") return !dc;
  return false;
}

// The GetCertificateIdUseEnumType a station lists a root under, in this order of
// preference; empty when it fits none of the version's.
std::string root_use(const pki::ProfileSet& set, const pki::Profile& root, Version v) {
  for (auto use : install_uses(v))
    if (root_fits(set, root, use)) return std::string(use);
  return {};
}

Result<X509Ptr> issuer_certificate(pki::CertificateAuthority& ca, const std::string& issuer_profile) {
  GT_TRY_ASSIGN(auto rec, ca.store().issuer(issuer_profile));
  if (!rec) return reject("issuer.missing", "CA " + issuer_profile + " is not in the store");
  return pki::certificate_from_der(rec->cert_der);
}

json::object answer(Version v, const char* action, json::object request) {
  return json::object{{"ocppVersion", version_text(v)}, {"action", action}, {"request", std::move(request)}};
}

}  // namespace

Result<Version> parse_version(std::string_view text) {
  if (text == "2.0.1") return Version::v2_0_1;
  if (text == "2.1") return Version::v2_1;
  return reject("usage.bad_value", "OCPP version must be 2.0.1 or 2.1, not '" + std::string(text.substr(0, 32)) + "'");
}

const char* version_text(Version v) { return v == Version::v2_1 ? "2.1" : "2.0.1"; }

const char* call_error_name(std::string_view code) {
  if (code == kFormat) return "FormatViolation";
  if (code == kType) return "TypeConstraintViolation";
  if (code == kOccurrence) return "OccurrenceConstraintViolation";
  if (code == kProperty) return "PropertyConstraintViolation";
  if (code == kSecurity) return "SecurityError";
  if (code == kNotSupported) return "NotSupported";
  return nullptr;
}

Result<json::value> parse_payload(std::string_view text) {
  auto v = parse_strict(text);
  if (!v.ok()) return reject(kFormat, v.error().message + " (" + v.error().code + ")");
  return v;
}

Result<HashAlgorithm> parse_hash_algorithm(std::string_view text) {
  if (text == "SHA256") return HashAlgorithm::sha256;
  if (text == "SHA384") return HashAlgorithm::sha384;
  if (text == "SHA512") return HashAlgorithm::sha512;
  return reject(kProperty, "hash algorithm must be SHA256, SHA384 or SHA512, not '" +
                               std::string(text.substr(0, 32)) + "'");
}

const char* signing_use_text(SigningUse u) {
  switch (u) {
    case SigningUse::charging_station: return "ChargingStationCertificate";
    case SigningUse::v2g: return "V2GCertificate";
    case SigningUse::v2g20: return "V2G20Certificate";
  }
  return "ChargingStationCertificate";
}

std::string profile_for(std::optional<SigningUse> use) {
  if (use == SigningUse::v2g) return "secc";
  if (use == SigningUse::v2g20) return "secc-20";
  return "charging-station";
}

Result<SignCertificate> parse_sign_certificate_request(Version v, const json::value& payload) {
  if (!payload.is_object()) return reject(kFormat, "SignCertificateRequest is not a JSON object");
  const json::object& o = payload.as_object();
  if (v == Version::v2_1) {
    GT_TRY(check_members(o, "", "SignCertificateRequest",
                         {"csr", "certificateType", "hashRootCertificate", "requestId", "customData"}, {"csr"}));
  } else {
    GT_TRY(check_members(o, "", "SignCertificateRequest (2.0.1)", {"csr", "certificateType", "customData"}, {"csr"}));
  }
  SignCertificate out;
  GT_TRY_ASSIGN(out.csr, string_value(o.at("csr"), "csr", kMaxCsr));
  if (const json::value* t = o.if_contains("certificateType")) {
    GT_TRY_ASSIGN(std::string s, enum_value(*t, "certificateType",
                                            std::string("CertificateSigningUseEnumType of OCPP ") + version_text(v),
                                            signing_uses(v)));
    GT_TRY_ASSIGN(out.certificate_type, signing_use(s));
  }
  if (const json::value* h = o.if_contains("hashRootCertificate")) {
    GT_TRY_ASSIGN(out.hash_root_certificate, certificate_hash_value(*h, "hashRootCertificate"));
  }
  if (const json::value* id = o.if_contains("requestId")) {
    GT_TRY_ASSIGN(out.request_id, integer_value(*id, "requestId"));
  }
  GT_TRY(optional_custom_data(o, ""));
  return out;
}

Result<CertificateSigned> sign_certificate(pki::CertificateAuthority& ca, Version v, const json::value& payload,
                                           const Requester& who) {
  GT_TRY_ASSIGN(SignCertificate req, parse_sign_certificate_request(v, payload));
  const std::string profile_name = profile_for(req.certificate_type);
  const std::string use = req.certificate_type ? signing_use_text(*req.certificate_type) : "a certificate without certificateType";
  auto profiles = ca.profiles();
  const pki::Profile* profile = profiles->find(profile_name);
  if (!profile) return reject("profile.unknown", "no profile " + profile_name + " for " + use);

  GT_TRY_ASSIGN(pki::CertificationRequest csr, parse_pem_csr(req.csr));
  GT_TRY(pki::verify_csr_signature(csr));
  GT_TRY(check_role(csr.subject.get(), *profile, use));
  GT_TRY(check_organisation(csr.subject.get(), who));
  if (req.hash_root_certificate) {
    GT_TRY_ASSIGN(X509Ptr root, root_of(ca, profile_name));
    GT_TRY_ASSIGN(CertificateHashData ours, certificate_hash_data(root.get(), root.get(),
                                                                  req.hash_root_certificate->algorithm));
    if (!same_hash_data(ours, *req.hash_root_certificate))
      return reject(kNotSupported, "hashRootCertificate names a root this PKI does not issue " + use + " under");
  }

  pki::IssueOptions opt;
  opt.actor = who.actor;
  GT_TRY_ASSIGN(pki::Issued issued, ca.issue_from_csr(profile_name, to_bytes(req.csr), opt));
  std::string chain = issued.chain_pem();
  if (code_points(chain) > kMaxCertificateChain)
    return reject("internal.error", "certificate " + issued.record.serial + " was issued, but its chain of " +
                                        std::to_string(chain.size()) + " characters exceeds certificateChain's " +
                                        std::to_string(kMaxCertificateChain));
  CertificateSigned out;
  out.payload["certificateChain"] = std::move(chain);
  if (req.certificate_type) out.payload["certificateType"] = signing_use_text(*req.certificate_type);
  if (req.request_id) out.payload["requestId"] = *req.request_id;
  out.record = std::move(issued.record);
  return out;
}

Result<OcspRequestData> parse_get_certificate_status_request(Version v, const json::value& payload) {
  if (!payload.is_object()) return reject(kFormat, "GetCertificateStatusRequest is not a JSON object");
  const json::object& o = payload.as_object();
  GT_TRY(check_members(o, "", "GetCertificateStatusRequest", {"ocspRequestData", "customData"}, {"ocspRequestData"}));
  const json::value& d = o.at("ocspRequestData");
  const std::string path = "ocspRequestData";
  if (!d.is_object()) return wrong_type(path, "an object (OCSPRequestDataType)", d);
  const json::object& r = d.as_object();
  GT_TRY(check_members(r, path, "OCSPRequestDataType",
                       {"hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber", "responderURL", "customData"},
                       {"hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber", "responderURL"}));
  OcspRequestData out;
  GT_TRY_ASSIGN(out.algorithm, hash_algorithm_value(r.at("hashAlgorithm"), at(path, "hashAlgorithm")));
  GT_TRY_ASSIGN(out.issuer_name_hash, digest_value(r.at("issuerNameHash"), at(path, "issuerNameHash"), out.algorithm));
  GT_TRY_ASSIGN(out.issuer_key_hash, digest_value(r.at("issuerKeyHash"), at(path, "issuerKeyHash"), out.algorithm));
  GT_TRY_ASSIGN(out.serial, serial_value(r.at("serialNumber"), at(path, "serialNumber")));
  GT_TRY_ASSIGN(out.responder_url, string_value(r.at("responderURL"), at(path, "responderURL"), max_responder_url(v)));
  GT_TRY(optional_custom_data(r, path));
  GT_TRY(optional_custom_data(o, ""));
  return out;
}

Bytes ocsp_request_der(const OcspRequestData& data) {
  // INTEGER: minimal two's complement of a positive number.
  Bytes serial = data.serial.empty() ? Bytes{0x00} : data.serial;
  if (serial.front() & 0x80) serial.insert(serial.begin(), 0x00);
  // RFC 6960 4.1.1: CertID ::= SEQUENCE { hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber }
  Bytes cert_id = tlv(0x30, concat({hash_algorithm_identifier(data.algorithm), tlv(0x04, data.issuer_name_hash),
                                    tlv(0x04, data.issuer_key_hash), tlv(0x02, serial)}));
  Bytes request = tlv(0x30, cert_id);               // Request ::= SEQUENCE { reqCert }
  Bytes request_list = tlv(0x30, request);          // SEQUENCE OF Request
  Bytes tbs_request = tlv(0x30, request_list);      // TBSRequest, version v1 by default
  return tlv(0x30, tbs_request);                    // OCSPRequest, unsigned
}

Result<json::object> certificate_status(pki::OcspResponder& responder, Version v, const json::value& payload,
                                        TimePoint now) {
  GT_TRY_ASSIGN(OcspRequestData data, parse_get_certificate_status_request(v, payload));
  Bytes der = responder.respond(ocsp_request_der(data), now);
  const unsigned char* p = der.data();
  std::unique_ptr<OCSP_RESPONSE, OsslDeleter<OCSP_RESPONSE_free>> response(
      d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())));
  if (!response) return reject("internal.openssl", "the OCSP responder's answer does not decode");
  int status = OCSP_response_status(response.get());
  if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL)
    return json::object{{"status", "Failed"},
                        {"statusInfo", status_info(response_status_reason(status), response_status_info(status))}};
  std::string result = base64_encode(der);
  if (result.size() > max_ocsp_result(v))
    return json::object{{"status", "Failed"},
                        {"statusInfo", status_info("ResponseTooLarge", "the OCSP response of " +
                                                                           std::to_string(result.size()) +
                                                                           " base64 characters exceeds ocspResult's " +
                                                                           std::to_string(max_ocsp_result(v)))}};
  return json::object{{"status", "Accepted"}, {"ocspResult", std::move(result)}};
}

Result<json::object> install_certificate(pki::CertificateAuthority& ca, Version v, const std::string& profile,
                                         const std::string& certificate_type, HashAlgorithm alg) {
  GT_TRY(enum_value(json::value(json::string(certificate_type)), "certificateType",
                    std::string("InstallCertificateUseEnumType of OCPP ") + version_text(v), install_uses(v)));
  auto profiles = ca.profiles();
  const pki::Profile* p = profiles->find(profile);
  if (!p) return reject("profile.unknown", "no profile " + profile);
  if (p->kind != pki::ProfileKind::Root)
    return reject("profile.not_root", "profile " + profile + " is not a root CA; InstallCertificate installs roots");
  if (!root_fits(*profiles, *p, certificate_type))
    return reject("profile.root_type_mismatch", "the root " + profile + " is not a " + certificate_type +
                                                    (p->subject.dc ? " (it is the DC=" + *p->subject.dc + " root)" : ""));
  GT_TRY_ASSIGN(X509Ptr root, issuer_certificate(ca, profile));
  std::string pem = pki::certificate_pem(root.get());
  if (code_points(pem) > max_install_certificate(v))
    return reject(kProperty, "the certificate of " + profile + " exceeds InstallCertificateRequest's " +
                                 std::to_string(max_install_certificate(v)) + " characters");
  GT_TRY_ASSIGN(CertificateHashData hash, certificate_hash_data(root.get(), root.get(), alg));
  json::object out = answer(v, "InstallCertificate",
                            json::object{{"certificateType", certificate_type}, {"certificate", std::move(pem)}});
  out["profile"] = profile;
  out["expectedCertificateHashDataChain"] =
      json::object{{"certificateType", certificate_type}, {"certificateHashData", hash.to_json()}};
  return out;
}

Result<json::object> certificate_hash(pki::CertificateAuthority& ca, Version v, const std::string& serial_text,
                                      HashAlgorithm alg) {
  std::string serial = serial_text;
  if (serial.rfind("0x", 0) == 0 || serial.rfind("0X", 0) == 0) serial = serial.substr(2);
  for (auto& c : serial) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (serial.empty() || serial.size() > 40 || !from_hex(serial.size() % 2 ? "0" + serial : serial))
    return reject("usage.bad_serial", "serial must be hexadecimal: '" + serial_text.substr(0, 64) + "'");
  GT_TRY_ASSIGN(auto rows, ca.store().find_by_serial(serial));
  if (rows.empty()) return reject("notfound.certificate", "no certificate with serial " + serial);
  if (rows.size() > 1) return reject("usage.ambiguous_serial", "serial " + serial + " exists under more than one issuer");
  const store::CertificateRecord& rec = rows.front();
  GT_TRY_ASSIGN(X509Ptr cert, pki::certificate_from_der(rec.der));
  GT_TRY_ASSIGN(X509Ptr issuer, issuer_certificate(ca, rec.issuer));
  GT_TRY_ASSIGN(CertificateHashData hash, certificate_hash_data(cert.get(), issuer.get(), alg));

  json::object out = answer(v, "DeleteCertificate", json::object{{"certificateHashData", hash.to_json()}});
  out["serial"] = rec.serial;
  out["profile"] = rec.profile;
  out["issuer"] = rec.issuer;
  out["certificateHashData"] = hash.to_json();

  auto profiles = ca.profiles();
  const pki::Profile* p = profiles->find(rec.profile);
  if (p && p->kind == pki::ProfileKind::Root) {
    if (std::string use = root_use(*profiles, *p, v); !use.empty())
      out["expectedCertificateHashDataChain"] =
          json::object{{"certificateType", use}, {"certificateHashData", hash.to_json()}};
  } else if (p && !p->is_ca() && p->subject.dc && *p->subject.dc == "CPO") {
    // OCPP M03: a V2GCertificateChain is reported as the SECC certificate with the
    // Sub-CAs above it (not the root) as its children.
    GT_TRY_ASSIGN(auto chain, ca.issuer_chain(rec.issuer, true));
    json::array children;
    for (std::size_t i = 0; i + 1 < chain.size() && children.size() < 4; ++i) {
      GT_TRY_ASSIGN(X509Ptr child, pki::certificate_from_der(chain[i]));
      GT_TRY_ASSIGN(X509Ptr parent, pki::certificate_from_der(chain[i + 1]));
      GT_TRY_ASSIGN(CertificateHashData h, certificate_hash_data(child.get(), parent.get(), alg));
      children.push_back(h.to_json());
    }
    json::object entry{{"certificateType", "V2GCertificateChain"}, {"certificateHashData", hash.to_json()}};
    if (!children.empty()) entry["childCertificateHashData"] = std::move(children);
    out["expectedCertificateHashDataChain"] = std::move(entry);
  }
  return out;
}

Result<json::object> trigger_message(Version v, const std::string& requested_message) {
  std::vector<std::string_view> certificate_triggers{"SignChargingStationCertificate", "SignV2GCertificate",
                                                     "SignCombinedCertificate"};
  std::vector<std::string_view> all{"BootNotification",        "LogStatusNotification", "FirmwareStatusNotification",
                                    "Heartbeat",               "MeterValues",           "SignChargingStationCertificate",
                                    "SignV2GCertificate",      "StatusNotification",    "TransactionEvent",
                                    "SignCombinedCertificate", "PublishFirmwareStatusNotification"};
  if (v == Version::v2_1) {
    certificate_triggers.push_back("SignV2G20Certificate");
    all.push_back("SignV2G20Certificate");
    all.push_back("CustomTrigger");
  }
  GT_TRY(enum_value(json::value(json::string(requested_message)), "requestedMessage",
                    std::string("MessageTriggerEnumType of OCPP ") + version_text(v), all));
  if (std::find(certificate_triggers.begin(), certificate_triggers.end(), requested_message) ==
      certificate_triggers.end())
    return reject(kNotSupported, "gridtrust builds certificate triggers only, not " + requested_message);
  return answer(v, "TriggerMessage", json::object{{"requestedMessage", requested_message}});
}

}  // namespace gridtrust::protocol::ocpp
