#pragma once
// Which client certificates pass the API's TLS handshake: those chaining to the CAs
// above the `admin` profile (always), and to the CA certificates of the PEM files in
// daemon.client_ca_files. Passing the handshake makes a caller a verified peer; its
// role still comes only from a stored admin-profile certificate (caller_identity.h).
//
// Loaded at start and again on SIGHUP, before anything is swapped: a file that does not
// load refuses the reload.
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/rejection.h"
#include "pki/certificate_authority.h"

namespace gridtrust::daemon {

struct ClientTrust {
  // DER, no duplicates: the admin profile's issuer up to its root, then the files' CAs.
  // Without X509_V_FLAG_PARTIAL_CHAIN a client chain must still end at a self-signed one.
  std::vector<Bytes> anchors;

  bool operator==(const ClientTrust&) const = default;
};

// `profiles`: the set the daemon will run with (on SIGHUP, the one not yet in force).
Result<ClientTrust> load_client_trust(pki::CertificateAuthority& ca, const pki::ProfileSet& profiles,
                                      const std::vector<std::string>& ca_files);

}  // namespace gridtrust::daemon
