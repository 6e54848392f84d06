#pragma once
// The offline issuance measurement of issuance_bench, shared with the API benchmark so
// that both compare against the same code path: CSRs made in software (not timed),
// then `count` certificates issued through CertificateAuthority::issue_from_csr_async
// by `threads` workers, each keeping a window of durable commits in flight.
#include <cstddef>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "pki/certificate_authority.h"

namespace gridtrust::bench {

// A fresh P-256 key and its DER PKCS#10 for "CN=station-<i>,O=Bench CPO".
Bytes make_station_csr(int i);
// The same request as PEM, as a client would send it over the API.
std::string csr_pem(const Bytes& der);

// Certificates/s for csrs[from, from + count) of `profile`.
double issuance_rate(pki::CertificateAuthority& ca, const std::vector<Bytes>& csrs, std::size_t from, int threads,
                     int count, const std::string& profile = "charging-station");

}  // namespace gridtrust::bench
