#pragma once
// OCPP 2.0.1 and 2.1 certificate management (Part 2, use cases A02/A03, M01-M06),
// taking and returning OCPP payloads verbatim, so that a CSMS can forward what a
// charging station sent and forward back what gridtrust answers.
//
// Incoming payloads are checked against the official JSON schemas of the version
// (additionalProperties false on every type except CustomDataType) before anything
// else happens; a refusal is one of the OCPP CallError codes below, so the CSMS can
// answer the station with the matching CALLERROR. Nothing is stored for a refused
// payload.
//
// Codes (docs/error-codes.md, "OCPP certificate management"), each naming one
// CallError:
//   ocpp.format_violation              FormatViolation: not JSON, not an object,
//                                      duplicate member names, bad UTF-8, bad PEM or hex
//   ocpp.type_constraint_violation     TypeConstraintViolation: a member of the wrong JSON type
//   ocpp.occurrence_constraint_violation OccurrenceConstraintViolation: a required member missing
//   ocpp.property_constraint_violation PropertyConstraintViolation: a value outside its enum,
//                                      a string over its maxLength, an additional property
//   ocpp.security_error                SecurityError: a CSR of another role or organisation
//   ocpp.not_supported                 NotSupported: a valid value gridtrust does not serve
//                                      (a hashRootCertificate of another PKI, a
//                                      non-certificate TriggerMessage)
// Issuance codes (csr.*, subject.*, profile.*, issuer.*, hsm.*, store.*) pass through.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/rejection.h"
#include "core/time.h"
#include "pki/certificate_authority.h"
#include "pki/ocsp_responder.h"
#include "protocol/certificate_hash.h"

namespace gridtrust::protocol::ocpp {

enum class Version { v2_0_1, v2_1 };

// "2.0.1" | "2.1"; usage.bad_value otherwise.
Result<Version> parse_version(std::string_view text);
const char* version_text(Version v);

// The OCPP CallError name ("FormatViolation") of an ocpp.* code; null for any other code.
const char* call_error_name(std::string_view code);

// OCPP JSON text (protocol::parse_strict): its refusals become ocpp.format_violation.
Result<boost::json::value> parse_payload(std::string_view text);

// Who asks for a signature. Admin and operator callers (and the offline CLI) sign for
// any organisation; an aggregator only for its own, the O of its client certificate.
struct Requester {
  std::string actor;                        // for the audit entry
  std::optional<std::string> organisation;  // set: every CSR subject O must equal it
};

// CertificateSigningUseEnumType, and the profile each is issued under
// (config/profiles.yaml).
enum class SigningUse { charging_station, v2g, v2g20 };
const char* signing_use_text(SigningUse u);
// Omitted certificateType (a certificate for both the OCPP and the ISO 15118
// connection) is issued as a charging-station certificate.
std::string profile_for(std::optional<SigningUse> use);

// A SignCertificateRequest that passed its schema.
struct SignCertificate {
  std::string csr;                                // PEM, as sent
  std::optional<SigningUse> certificate_type;
  std::optional<std::int64_t> request_id;         // 2.1
  std::optional<CertificateHashData> hash_root_certificate;  // 2.1
};
Result<SignCertificate> parse_sign_certificate_request(Version v, const boost::json::value& payload);

struct CertificateSigned {
  boost::json::object payload;     // CertificateSignedRequest
  store::CertificateRecord record; // what was issued
};

// SignCertificateRequest -> CertificateSignedRequest. In order: the schema; the CSR as
// one PEM CERTIFICATE REQUEST (ocpp.format_violation); proof of possession
// (csr.bad_signature); the role: the subject's domainComponent must be that of the
// profile (ISO 15118-2 Annex F; ocpp.security_error); the organisation
// (ocpp.security_error); hashRootCertificate naming the root the profile chains to
// (ocpp.not_supported); then issuance, whose codes pass through. certificateChain is
// the leaf and its Sub-CAs, leaf first, without the root; certificateType and
// (2.1) requestId are echoed when the request had them.
Result<CertificateSigned> sign_certificate(pki::CertificateAuthority& ca, Version v,
                                           const boost::json::value& payload, const Requester& who);

// OCSPRequestDataType that passed its schema, hashes decoded.
struct OcspRequestData {
  HashAlgorithm algorithm = HashAlgorithm::sha256;
  Bytes issuer_name_hash;
  Bytes issuer_key_hash;
  Bytes serial;  // unsigned big-endian octets, no leading zero octets (empty: zero)
  std::string responder_url;
};
Result<OcspRequestData> parse_get_certificate_status_request(Version v, const boost::json::value& payload);

// The DER OCSPRequest (RFC 6960 4.1.1) of one CertID made of those fields, no nonce.
Bytes ocsp_request_der(const OcspRequestData& data);

// GetCertificateStatusRequest -> GetCertificateStatusResponse, answered by `responder`
// (the daemon's own, so the answer is that of its OCSP listener). A successful OCSP
// response (good, revoked or unknown) is {"status":"Accepted","ocspResult":base64 DER};
// any other responseStatus is {"status":"Failed","statusInfo":{"reasonCode":
// "Unauthorized"|"TryLater"|"InternalError"|"MalformedRequest"|"SigRequired",...}}.
// responderURL is checked as a string only: the CertID names the CA that answers.
Result<boost::json::object> certificate_status(pki::OcspResponder& responder, Version v,
                                               const boost::json::value& payload, TimePoint now);

// ---- builders: what a CSMS sends to a station, and what the station will then report ----
//
// Each answer is {"ocppVersion", "action", "request": <payload>, ...}.

// InstallCertificateRequest for the certificate of the root CA profile `profile`.
// certificateType (InstallCertificateUseEnumType) must fit the root:
// V2GRootCertificate / MORootCertificate / OEMRootCertificate (2.1) a root of DC V2G /
// MO / OEM, CSMSRootCertificate a root above a serverAuth leaf profile,
// ManufacturerRootCertificate a root outside the ISO 15118 PKIs (no DC).
// Adds "expectedCertificateHashDataChain": the CertificateHashDataChainType entry the
// station reports in GetInstalledCertificateIdsResponse once it installed it.
// Codes: ocpp.property_constraint_violation (certificateType not in the version's
// enum), profile.unknown, profile.not_root, profile.root_type_mismatch, issuer.missing.
Result<boost::json::object> install_certificate(pki::CertificateAuthority& ca, Version v, const std::string& profile,
                                                const std::string& certificate_type,
                                                HashAlgorithm alg = HashAlgorithm::sha256);

// DeleteCertificateRequest {certificateHashData} for the stored certificate `serial`
// (hexadecimal, optional 0x), plus "serial", "profile", "issuer", and, when a station
// would list it in GetInstalledCertificateIdsResponse, "expectedCertificateHashDataChain":
// a root by its type; a SECC leaf (DC=CPO) as V2GCertificateChain with its Sub-CAs as
// childCertificateHashData. Codes: usage.bad_serial, notfound.certificate,
// usage.ambiguous_serial, issuer.missing.
Result<boost::json::object> certificate_hash(pki::CertificateAuthority& ca, Version v, const std::string& serial,
                                             HashAlgorithm alg = HashAlgorithm::sha256);

// TriggerMessageRequest {requestedMessage} for the certificate triggers:
// SignChargingStationCertificate, SignV2GCertificate, SignCombinedCertificate, and in
// 2.1 SignV2G20Certificate. Codes: ocpp.property_constraint_violation (not in the
// version's MessageTriggerEnumType), ocpp.not_supported (a trigger of another kind).
Result<boost::json::object> trigger_message(Version v, const std::string& requested_message);

// "SHA256" | "SHA384" | "SHA512"; ocpp.property_constraint_violation otherwise.
Result<HashAlgorithm> parse_hash_algorithm(std::string_view text);

}  // namespace gridtrust::protocol::ocpp
