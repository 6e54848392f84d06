#pragma once
// The JSON API served on the mTLS listener (DESIGN.md "Daemon").
//
//   GET  /healthz                              any verified client certificate
//   POST /v1/certificates                      admin, operator   {"profile","csr"}
//   GET  /v1/certificates?profile=&status=     admin, operator, auditor
//   GET  /v1/certificates/{serial}             admin, operator, auditor
//   POST /v1/certificates/{serial}/revoke      admin             {"reason"}
//   GET  /v1/chain/{profile}                   admin, operator, auditor
//   GET  /v1/crl/{issuer}                      admin, operator, auditor
#include "daemon/router.h"
#include "pki/certificate_authority.h"

namespace gridtrust::daemon {

Router make_api_router(pki::CertificateAuthority& ca);

}  // namespace gridtrust::daemon
