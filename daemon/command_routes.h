#pragma once
// /v1/commands: signed OCPP commands through the daemon (docs/signed-commands.md).
//   POST /v1/commands/sign          {"action","station","message",["x5c"],["lifetime_s"]} -> {"message"}
//   POST /v1/commands/sign-batch    {"items":[{"action","station","message"}],["x5c"],["lifetime_s"]} -> {"messages"}
//   POST /v1/commands/verify        {"message",["station"],["action"]} -> the verification report
//   POST /v1/commands/verify-batch  {"messages":[...],["station"],["action"]} -> {"reports":[...]}
// Signed messages are written in their JCS form (members sorted, ECMAScript numbers).
#include <memory>

#include "cli/command_signing.h"
#include "daemon/router.h"
#include "pki/certificate_authority.h"

namespace gridtrust::daemon {

// The service the routes use, with the daemon's sequence block size.
std::shared_ptr<app::CommandService> make_command_service(pki::CertificateAuthority& ca,
                                                          std::function<TimePoint()> now = now_seconds);

// `service`: the daemon's (its clock; the scheduler tells it when the signer was
// re-keyed); one of its own when null.
void add_command_routes(Router& router, pki::CertificateAuthority& ca,
                        std::shared_ptr<app::CommandService> service = nullptr);

}  // namespace gridtrust::daemon
