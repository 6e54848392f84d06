#pragma once
// The plain-HTTP status listener: CRLs and OCSP responses are signed objects and need
// no TLS; they are served at the URLs written into every certificate
// (pki.crl_base_url, pki.ocsp_url).
//
//   GET  /crl/{issuer}.crl   DER CRL of that CA (application/pkix-crl, RFC 5280 4.2.1.13)
//   POST /ocsp               DER OCSPRequest (application/ocsp-request, RFC 6960 A.1)
//   GET  /ocsp/{base64}      the same, URL-encoded base64 in the path
//   GET  /healthz
#include "daemon/router.h"
#include "daemon/status_publisher.h"

namespace gridtrust::daemon {

Router make_status_router(StatusPublisher& status);

}  // namespace gridtrust::daemon
