#pragma once
// The plain-HTTP status listener: CRLs are signed objects and need no TLS; they are
// served at the URL written into every certificate (pki.crl_base_url).
//
//   GET /crl/{issuer}.crl   DER CRL of that CA (application/pkix-crl, RFC 5280 4.2.1.13)
//   GET /healthz
#include "daemon/router.h"
#include "pki/certificate_authority.h"

namespace gridtrust::daemon {

Router make_status_router(pki::CertificateAuthority& ca);

}  // namespace gridtrust::daemon
