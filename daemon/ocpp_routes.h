#pragma once
// /v1/ocpp: OCPP 2.0.1/2.1 certificate management for a CSMS that forwards payloads
// (protocol/ocpp_certificates.h). Roles admin, operator and aggregator; an aggregator
// has CSRs signed for its own organisation (the O of its client certificate) only.
//
//   POST /v1/ocpp/sign-certificate      {["ocppVersion"], "request": SignCertificateRequest}
//        200 {"ocppVersion","action":"CertificateSigned","response": CertificateSignedRequest,
//             "serial","profile"}
//   POST /v1/ocpp/certificate-status    {["ocppVersion"], "request": GetCertificateStatusRequest}
//        200 {"ocppVersion","action":"GetCertificateStatus","response": GetCertificateStatusResponse}
//   GET  /v1/ocpp/install-certificate/{profile}?certificateType=T[&ocppVersion=][&hashAlgorithm=]
//        200 {"ocppVersion","action":"InstallCertificate","request","profile","expectedCertificateHashDataChain"}
//   GET  /v1/ocpp/certificate-hash/{serial}[?ocppVersion=][&hashAlgorithm=]
//        200 {"ocppVersion","action":"DeleteCertificate","request","serial","profile","issuer",
//             "certificateHashData",["expectedCertificateHashDataChain"]}
//   GET  /v1/ocpp/trigger/{requestedMessage}[?ocppVersion=]
//        200 {"ocppVersion","action":"TriggerMessage","request"}
//
// ocppVersion is "2.0.1" (the default) or "2.1". Bodies are read with
// protocol::parse_strict: duplicate member names are refused. An ocpp.* error carries
// its CallError name: {"error":{"code","message","ocpp_error":"FormatViolation"}}.
#include "daemon/router.h"
#include "pki/certificate_authority.h"
#include "pki/ocsp_responder.h"

namespace gridtrust::daemon {

// `ocsp` answers GetCertificateStatus: the status listener's responder, so both say
// the same. Added by the server once its status publisher exists.
void add_ocpp_routes(Router& router, pki::CertificateAuthority& ca, pki::OcspResponder& ocsp);

}  // namespace gridtrust::daemon
