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

Result<ServerIdentity> load_server_identity(app::PkiContext& pki) {
  return load_server_identity(pki, pki.config.daemon.server_cert_label);
}

Result<ServerIdentity> load_server_identity(app::PkiContext& pki, const std::string& label) {
  ServerIdentity id;
  GT_TRY_ASSIGN(store::CertificateRecord record, server_certificate(pki, label));
  GT_TRY_ASSIGN(id.certificate, pki::certificate_from_der(record.der));
  // The chain up to, not including, the root.
  GT_TRY_ASSIGN(auto chain, pki.ca->chain(record.profile));
  for (std::size_t i = 0; i + 1 < chain.size(); ++i) {
    GT_TRY_ASSIGN(X509Ptr ca, pki::certificate_from_der(chain[i]));
    id.chain.push_back(std::move(ca));
  }
  // The private key stays in the token; OpenSSL signs the handshake through the bridge.
  GT_TRY_ASSIGN(auto key, pki.token->find_key(*record.key_label));
  if (!key) return reject("config.invalid", "HSM key '" + *record.key_label + "' is not in the token");
  GT_TRY_ASSIGN(id.key, hsm::make_evp_pkey(std::make_shared<hsm::HsmSigner>(pki.token, *key)));
  return id;
}

Result<std::shared_ptr<ssl::context>> make_api_tls_context(const ServerIdentity& identity, const ClientTrust& trust) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  GT_TRY(openssl_ok(SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION), "SSL_CTX_set_min_proto_version"));

  GT_TRY(openssl_ok(SSL_CTX_use_certificate(native, identity.certificate.get()), "SSL_CTX_use_certificate"));
  for (const auto& ca : identity.chain)
    GT_TRY(openssl_ok(SSL_CTX_add1_chain_cert(native, ca.get()), "SSL_CTX_add1_chain_cert"));
  GT_TRY(openssl_ok(SSL_CTX_use_PrivateKey(native, identity.key.get()), "SSL_CTX_use_PrivateKey"));
  GT_TRY(openssl_ok(SSL_CTX_check_private_key(native), "SSL_CTX_check_private_key"));

  // The store also holds intermediate CAs, so that a client sending only its leaf still
  // chains; without X509_V_FLAG_PARTIAL_CHAIN verification must still end at a
  // self-signed anchor, and those are the CA names the server asks for.
  if (trust.anchors.empty()) return reject("internal.error", "no client trust anchor");
  X509_STORE* store = SSL_CTX_get_cert_store(native);
  for (const Bytes& der : trust.anchors) {
    GT_TRY_ASSIGN(X509Ptr ca, pki::certificate_from_der(der));
    GT_TRY(openssl_ok(X509_STORE_add_cert(store, ca.get()), "X509_STORE_add_cert"));
    if (X509_get_extension_flags(ca.get()) & EXFLAG_SS)
      GT_TRY(openssl_ok(SSL_CTX_add_client_CA(native, ca.get()), "SSL_CTX_add_client_CA"));
  }
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_verify_depth(native, 4);
  return ctx;
}

}  // namespace gridtrust::daemon
