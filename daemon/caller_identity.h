#pragma once
// From a client certificate that passed TLS verification to a Caller.
//
// TLS verification proves the certificate chains to this PKI's root; it does not say
// which profile it was issued under, nor whether it was revoked since. A charging
// station certificate may carry any OU, so the role is taken only from a certificate
// the store records under the `admin` profile and still holds as valid.
#include <openssl/x509.h>

#include "core/rejection.h"
#include "daemon/request.h"
#include "store/store.h"

namespace gridtrust::daemon {

Result<Caller> identify_caller(X509* peer, store::Store& store);

}  // namespace gridtrust::daemon
