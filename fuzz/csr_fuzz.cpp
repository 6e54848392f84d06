// PKCS#10 requests (pki/csr.h), our strict DER walk set against OpenSSL's own decoder:
// any bytes, as DER or as one PEM block.
//
// Invariants: a refusal has a well-formed code; a request with a key type no profile
// takes (RSA, anything but EC and EdDSA) is passed on undecoded, for check_key_allowed
// to refuse; one with an EC or EdDSA key, OpenSSL parses too, with the same subject,
// the same subjectPublicKeyInfo bytes and the same key, and we never accept a proof of
// possession that OpenSSL's X509_REQ_verify refuses (stricter is allowed, looser not).
#include <string>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fuzz/fuzz_support.h"
#include "pki/csr.h"

using namespace gridtrust;

namespace {

X509_REQ* openssl_parse(const Bytes& in) {
  const unsigned char* p = in.data();
  if (X509_REQ* der = d2i_X509_REQ(nullptr, &p, static_cast<long>(in.size()))) return der;
  BIO* bio = BIO_new_mem_buf(in.data(), static_cast<int>(in.size()));
  X509_REQ* pem = bio ? PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  return pem;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(data, data + size);
  auto ours = pki::parse_csr(input);
  if (!ours.ok()) {
    FUZZ_CHECK(fuzz::well_formed_code(ours.error().code), "code '" + ours.error().code + "'");
    FUZZ_CHECK(ours.error().code != "internal.error", ours.error().message);
    return 0;
  }
  FUZZ_CHECK(ours->subject, "accepted without a subject");
  if (ours->key_type == pki::CsrKeyType::Rsa || ours->key_type == pki::CsrKeyType::Other) {
    // Not decoded, and refused for every profile by check_key_allowed.
    FUZZ_CHECK(!ours->key, "an undecoded key type with a key");
    return 0;
  }
  // A key we use (EC, EdDSA): OpenSSL must read the same request, subject and key.
  FUZZ_CHECK(ours->key, "an EC or EdDSA request without its key");
  const unsigned char* k = ours->spki_der.data();
  EVP_PKEY* generic = d2i_PUBKEY(nullptr, &k, static_cast<long>(ours->spki_der.size()));
  FUZZ_CHECK(generic && EVP_PKEY_eq(generic, ours->key.get()) == 1, "OpenSSL reads another key from the same bytes");
  EVP_PKEY_free(generic);
  X509_REQ* theirs = openssl_parse(input);
  FUZZ_CHECK(theirs, "accepted a request OpenSSL cannot parse");
  FUZZ_CHECK(X509_NAME_cmp(ours->subject.get(), X509_REQ_get_subject_name(theirs)) == 0,
             "another subject than OpenSSL reads");
  unsigned char* spki = nullptr;
  const int spki_len = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(theirs), &spki);
  FUZZ_CHECK(spki_len > 0 && Bytes(spki, spki + spki_len) == ours->spki_der, "another public key than OpenSSL reads");
  OPENSSL_free(spki);
  if (pki::verify_csr_signature(*ours).ok()) {
    EVP_PKEY* key = X509_REQ_get0_pubkey(theirs);
    FUZZ_CHECK(key && X509_REQ_verify(theirs, key) == 1, "accepted a proof of possession OpenSSL refuses");
  }
  X509_REQ_free(theirs);
  return 0;
}
