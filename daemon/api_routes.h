#pragma once
// The JSON API served on the mTLS listener (DESIGN.md "Daemon").
//
//   GET  /healthz                              any verified client certificate
//   GET  /metrics                              any verified client certificate (Prometheus text;
//                                              added by the server, which owns the counters)
//   POST /v1/certificates                      admin, operator   {"profile","csr"}
//   GET  /v1/certificates?profile=&status=     admin, operator, auditor
//   GET  /v1/certificates/{serial}             admin, operator, auditor
//   POST /v1/certificates/{serial}/renew       admin, operator   [{"revoke_old"}]
//   POST /v1/certificates/{serial}/rekey       admin, operator   {"csr"} or {"hsm":true}, [{"revoke_old"}]
//   POST /v1/certificates/{serial}/revoke      admin             {"reason"}
//   GET  /v1/chain/{profile}                   admin, operator, auditor
//   GET  /v1/crl/{issuer}                      admin, operator, auditor
#include <functional>

#include "cli/command_signing.h"
#include "daemon/router.h"
#include "pki/certificate_authority.h"

namespace gridtrust::daemon {

// Called after a revocation through the API has committed (cascaded children included
// in the store, not in the record), on the request's thread.
using RevocationHook = std::function<void(const store::CertificateRecord&)>;

// `commands`: the service behind /v1/commands (the daemon's clock and signer);
// one of its own when null.
Router make_api_router(pki::CertificateAuthority& ca, RevocationHook on_revoked = {},
                       std::shared_ptr<app::CommandService> commands = nullptr);

}  // namespace gridtrust::daemon
