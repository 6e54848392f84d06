#pragma once
// The API listener's TLS configuration: TLS 1.2 or 1.3, the daemon's csms-server
// certificate with its key in the HSM (through the EVP bridge, the same signing path
// as certificates and CRLs), and client certificates required and verified against
// the client trust anchors (client_trust.h).
//
// A context is immutable once built. SIGHUP builds a new one around the same server
// identity for the new anchors; connections accepted before keep the one they
// started with (each session holds a shared_ptr to it).
#include <memory>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "cli/pki_context.h"
#include "core/openssl_ptr.h"
#include "daemon/client_trust.h"

namespace gridtrust::daemon {

// Who the daemon is on the API listener; loaded once at start.
struct ServerIdentity {
  X509Ptr certificate;         // the newest valid one for daemon.server_cert_label
  std::vector<X509Ptr> chain;  // its issuing CAs, root excluded
  EvpPkeyPtr key;              // the HSM key, bridged
};

Result<ServerIdentity> load_server_identity(app::PkiContext& pki);
// The same for the key with `label` (the scheduler's current csms-server key).
Result<ServerIdentity> load_server_identity(app::PkiContext& pki, const std::string& label);

Result<std::shared_ptr<boost::asio::ssl::context>> make_api_tls_context(const ServerIdentity& identity,
                                                                        const ClientTrust& trust);

}  // namespace gridtrust::daemon
