#pragma once
// /v1/commands: signed OCPP commands through the daemon (docs/signed-commands.md).
//   POST /v1/commands/sign          {"action","station","message",["x5c"],["lifetime_s"]} -> {"message"}
//   POST /v1/commands/sign-batch    {"items":[{"action","station","message"}],["x5c"],["lifetime_s"]} -> {"messages"}
//   POST /v1/commands/verify        {"message",["station"],["action"]} -> the verification report
//   POST /v1/commands/verify-batch  {"messages":[...],["station"],["action"]} -> {"reports":[...]}
// Signed messages are written in their JCS form (members sorted, ECMAScript numbers).
#include "daemon/router.h"
#include "pki/certificate_authority.h"

namespace gridtrust::daemon {

void add_command_routes(Router& router, pki::CertificateAuthority& ca);

}  // namespace gridtrust::daemon
