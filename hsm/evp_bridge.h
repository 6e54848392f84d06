#pragma once
// Makes a Signer usable wherever OpenSSL wants an EVP_PKEY (X509_sign, X509_CRL_sign,
// OCSP_basic_sign, SSL_CTX_use_PrivateKey).
//
// EC keys become "foreign" EC_KEYs whose EC_KEY_METHOD sign callbacks call the Signer;
// OpenSSL 3.0 routes foreign keys through its legacy path, so the private scalar never
// needs to exist in this process. The raw r||s from CKM_ECDSA is DER-encoded here, as
// X.509 and OCSP require.
#include <memory>

#include "core/openssl_ptr.h"
#include "core/rejection.h"
#include "hsm/signer.h"

namespace gridtrust::hsm {

Result<EvpPkeyPtr> make_evp_pkey(std::shared_ptr<const Signer> signer);

// Public key of any Signer as an EVP_PKEY (for verification and SKI computation).
Result<EvpPkeyPtr> public_evp_pkey(const Signer& signer);

// Raw r||s (each half `half` bytes) to DER ECDSA-Sig-Value and back.
Result<Bytes> ecdsa_raw_to_der(const Bytes& raw);
Result<Bytes> ecdsa_der_to_raw(const Bytes& der, std::size_t half);

}  // namespace gridtrust::hsm
