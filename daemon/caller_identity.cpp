#include "daemon/caller_identity.h"

#include <openssl/bn.h>

#include "core/openssl_ptr.h"
#include "pki/certificate_authority.h"

namespace gridtrust::daemon {
namespace {

Result<Bytes> der_of(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) return reject("internal.openssl", "client certificate does not encode");
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Result<std::string> serial_of(X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (!bn) return reject("internal.openssl", "client certificate serial does not decode");
  Bytes bytes(static_cast<std::size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, bytes.data());
  BN_free(bn);
  return pki::serial_hex(bytes);
}

std::string subject_of(X509* cert) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

std::string attribute_of(X509* cert, int nid) {
  X509_NAME* name = X509_get_subject_name(cert);
  int i = X509_NAME_get_index_by_NID(name, nid, -1);
  if (i < 0) return {};
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace

Result<Caller> identify_caller(X509* peer, store::Store& store) {
  if (!peer) return reject("auth.required", "no client certificate");
  GT_TRY_ASSIGN(std::string serial, serial_of(peer));
  GT_TRY_ASSIGN(Bytes der, der_of(peer));
  GT_TRY_ASSIGN(auto rows, store.find_by_serial(serial));
  const store::CertificateRecord* record = nullptr;
  for (const auto& r : rows)
    if (r.der == der) record = &r;
  if (!record) return reject("auth.unknown_certificate", "client certificate " + serial + " was not issued by this PKI");
  if (record->profile != "admin")
    return reject("auth.not_admin_profile", "client certificate " + serial + " is a '" + record->profile +
                                                "' certificate, not an admin-profile one");
  if (record->status != "valid") return reject("auth.revoked", "client certificate " + serial + " is revoked");
  std::string role = attribute_of(peer, NID_organizationalUnitName);
  if (role != "admin" && role != "operator" && role != "auditor" && role != "aggregator")
    return reject("auth.unknown_role",
                  "client certificate OU '" + role + "' is not admin, operator, auditor or aggregator");
  return Caller{role, subject_of(peer), serial, attribute_of(peer, NID_organizationName)};
}

}  // namespace gridtrust::daemon
