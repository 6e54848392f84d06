#include "daemon/tls_context.h"

#include <openssl/ssl.h>

#include "core/openssl_error.h"
#include "hsm/evp_bridge.h"
#include "hsm/hsm_signer.h"
#include "pki/certificate_builder.h"

namespace gridtrust::daemon {
namespace ssl = boost::asio::ssl;

namespace {

// The newest valid csms-server certificate whose key is the configured HSM key.
Result<store::CertificateRecord> server_certificate(app::PkiContext& pki, const std::string& label) {
  if (label.empty())
    return reject("config.invalid", "daemon.server_cert_label is empty (gridtrust init writes it)");
  store::CertificateFilter f;
  f.status = "valid";
  GT_TRY_ASSIGN(auto rows, pki.store->list(f));
  const store::CertificateRecord* best = nullptr;
  for (const auto& r : rows)
    if (r.key_label == label && (!best || r.issued_at > best->issued_at)) best = &r;
  if (!best) return reject("config.invalid", "no valid certificate for daemon.server_cert_label '" + label + "'");
  return *best;
}

Status openssl_ok(int rc, const char* what) {
  if (rc == 1) return Ok{};
  return reject("internal.openssl", std::string(what) + " failed: " + openssl_errors());
}

}  // namespace

Result<std::unique_ptr<ssl::context>> make_api_tls_context(app::PkiContext& pki) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  GT_TRY(openssl_ok(SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION), "SSL_CTX_set_min_proto_version"));

  // Our certificate and the chain up to, not including, the root.
  GT_TRY_ASSIGN(store::CertificateRecord record, server_certificate(pki, pki.config.daemon.server_cert_label));
  GT_TRY_ASSIGN(X509Ptr leaf, pki::certificate_from_der(record.der));
  GT_TRY(openssl_ok(SSL_CTX_use_certificate(native, leaf.get()), "SSL_CTX_use_certificate"));
  GT_TRY_ASSIGN(auto chain, pki.ca->chain(record.profile));
  for (std::size_t i = 0; i + 1 < chain.size(); ++i) {
    GT_TRY_ASSIGN(X509Ptr ca, pki::certificate_from_der(chain[i]));
    GT_TRY(openssl_ok(SSL_CTX_add1_chain_cert(native, ca.get()), "SSL_CTX_add1_chain_cert"));
  }

  // The private key stays in the token; OpenSSL signs the handshake through the bridge.
  GT_TRY_ASSIGN(auto key, pki.token->find_key(*record.key_label));
  if (!key) return reject("config.invalid", "HSM key '" + *record.key_label + "' is not in the token");
  GT_TRY_ASSIGN(EvpPkeyPtr pkey, hsm::make_evp_pkey(std::make_shared<hsm::HsmSigner>(pki.token, *key)));
  GT_TRY(openssl_ok(SSL_CTX_use_PrivateKey(native, pkey.get()), "SSL_CTX_use_PrivateKey"));
  GT_TRY(openssl_ok(SSL_CTX_check_private_key(native), "SSL_CTX_check_private_key"));

  // Clients: an admin-profile certificate chaining to our V2G root. The store also
  // holds the sub-CAs so that a client sending only its leaf still chains; without
  // X509_V_FLAG_PARTIAL_CHAIN verification must still end at the self-signed root.
  GT_TRY_ASSIGN(auto admin_chain, pki.ca->chain("admin"));
  if (admin_chain.empty()) return reject("internal.error", "admin profile has no issuing chain");
  X509_STORE* trust = SSL_CTX_get_cert_store(native);
  for (const Bytes& der : admin_chain) {
    GT_TRY_ASSIGN(X509Ptr ca, pki::certificate_from_der(der));
    GT_TRY(openssl_ok(X509_STORE_add_cert(trust, ca.get()), "X509_STORE_add_cert"));
  }
  GT_TRY_ASSIGN(X509Ptr root, pki::certificate_from_der(admin_chain.back()));
  GT_TRY(openssl_ok(SSL_CTX_add_client_CA(native, root.get()), "SSL_CTX_add_client_CA"));
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_verify_depth(native, 4);
  return ctx;
}

}  // namespace gridtrust::daemon
