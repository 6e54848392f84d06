#pragma once
// The API listener's TLS configuration: TLS 1.2 or 1.3, the daemon's csms-server
// certificate with its key in the HSM (through the EVP bridge, the same signing path
// as certificates and CRLs), and client certificates required and verified against
// this PKI's V2G root.
#include <memory>

#include <boost/asio/ssl/context.hpp>

#include "cli/pki_context.h"

namespace gridtrust::daemon {

Result<std::unique_ptr<boost::asio::ssl::context>> make_api_tls_context(app::PkiContext& pki);

}  // namespace gridtrust::daemon
