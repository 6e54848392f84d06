#include "daemon/status_routes.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/openssl_ptr.h"

namespace gridtrust::daemon {
namespace {

Result<std::string> pem_crl_to_der(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509CrlPtr crl(bio ? PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!crl) return reject("internal.openssl", "CRL PEM does not parse");
  unsigned char* der = nullptr;
  int len = i2d_X509_CRL(crl.get(), &der);
  if (len <= 0) return reject("internal.openssl", "CRL does not encode");
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace

Router make_status_router(pki::CertificateAuthority& ca) {
  Router r;
  r.add("GET", "/healthz", Access::anyone,
        [](const Request&) { return json_reply(boost::json::object{{"status", "ok"}}); });
  r.add("GET", "/crl/{issuer}.crl", Access::anyone, [&ca](const Request& req) {
    auto pem = ca.crl_pem(req.param("issuer"), "daemon:status");
    if (!pem.ok()) return error_reply(pem.error());
    auto der = pem_crl_to_der(pem.value());
    if (!der.ok()) return error_reply(der.error());
    return Reply{200, "application/pkix-crl", std::move(der.value())};
  });
  return r;
}

}  // namespace gridtrust::daemon
