// OCPP 2.0.1 / 2.1 certificate management payloads (protocol/ocpp_certificates.h), as
// a CSMS forwards them from a charging station. The first byte picks the version
// (bit 0: 2.1) and the message (bit 1: GetCertificateStatusRequest, otherwise
// SignCertificateRequest); the rest is the payload text.
//
// Invariants: a refusal is an ocpp.* code that names an OCPP CallError; an accepted
// SignCertificateRequest carries the CSR text as sent, and a 2.0.1 one no 2.1 fields; an
// accepted GetCertificateStatusRequest becomes an OCSPRequest that OpenSSL parses back
// to one CertID with the same hash algorithm, issuer hashes and serial number.
#include <string>

#include <openssl/ocsp.h>

#include "fuzz/fuzz_support.h"
#include "protocol/ocpp_certificates.h"

using namespace gridtrust;
namespace ocpp = gridtrust::protocol::ocpp;

namespace {

void check_refusal(const Rejection& r) {
  FUZZ_CHECK(r.code.rfind("ocpp.", 0) == 0 && ocpp::call_error_name(r.code) != nullptr, "code '" + r.code + "'");
  FUZZ_CHECK(!r.message.empty(), r.code);
}

const EVP_MD* md_of(protocol::HashAlgorithm a) {
  switch (a) {
    case protocol::HashAlgorithm::sha256: return EVP_sha256();
    case protocol::HashAlgorithm::sha384: return EVP_sha384();
    case protocol::HashAlgorithm::sha512: return EVP_sha512();
  }
  return nullptr;
}

Bytes bytes_of(const ASN1_OCTET_STRING* s) {
  return s ? Bytes(ASN1_STRING_get0_data(s), ASN1_STRING_get0_data(s) + ASN1_STRING_length(s)) : Bytes{};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const ocpp::Version v = data[0] & 1 ? ocpp::Version::v2_1 : ocpp::Version::v2_0_1;
  const bool status = data[0] & 2;
  auto payload = ocpp::parse_payload(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  if (!payload.ok()) {
    check_refusal(payload.error());
    return 0;
  }
  if (!status) {
    auto req = ocpp::parse_sign_certificate_request(v, *payload);
    if (!req.ok()) {
      check_refusal(req.error());
      return 0;
    }
    // The schema has no minLength for csr: an empty one passes here and is refused as
    // no PEM request by sign_certificate. What passes is what was sent, unchanged.
    const auto* csr = payload->is_object() ? payload->as_object().if_contains("csr") : nullptr;
    FUZZ_CHECK(csr && csr->is_string() && csr->get_string() == req->csr, "the CSR is not the one sent");
    if (v == ocpp::Version::v2_0_1)
      FUZZ_CHECK(!req->request_id && !req->hash_root_certificate, "2.1 fields accepted in 2.0.1");
    return 0;
  }
  auto req = ocpp::parse_get_certificate_status_request(v, *payload);
  if (!req.ok()) {
    check_refusal(req.error());
    return 0;
  }
  const Bytes der = ocpp::ocsp_request_der(*req);
  const unsigned char* p = der.data();
  OCSP_REQUEST* parsed = d2i_OCSP_REQUEST(nullptr, &p, static_cast<long>(der.size()));
  FUZZ_CHECK(parsed && p == der.data() + der.size(), "the OCSPRequest does not parse back");
  FUZZ_CHECK(OCSP_request_onereq_count(parsed) == 1, "not one CertID");
  OCSP_CERTID* id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(parsed, 0));
  ASN1_OCTET_STRING *name_hash = nullptr, *key_hash = nullptr;
  ASN1_OBJECT* md = nullptr;
  ASN1_INTEGER* serial = nullptr;
  FUZZ_CHECK(OCSP_id_get0_info(&name_hash, &md, &key_hash, &serial, id) == 1, "CertID fields");
  FUZZ_CHECK(OBJ_obj2nid(md) == EVP_MD_get_type(md_of(req->algorithm)), "another hash algorithm");
  FUZZ_CHECK(bytes_of(name_hash) == req->issuer_name_hash && bytes_of(key_hash) == req->issuer_key_hash,
             "other issuer hashes");
  BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
  Bytes serial_bytes(static_cast<std::size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, serial_bytes.data());
  FUZZ_CHECK(!BN_is_negative(bn) && serial_bytes == req->serial, "another serial number");
  BN_free(bn);
  OCSP_REQUEST_free(parsed);
  return 0;
}
