#pragma once
// A real PKI for dispatch tests: a SoftHSM2 token holding the CA hierarchy, a SQLite
// store, and aggregator signer certificates for keys held in software (fast to sign
// thousands of test messages with) or in the token.
#include <memory>
#include <string>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "dispatch/fleet.h"
#include "hsm/hsm_signer.h"
#include "hsm/signer.h"
#include "pki/certificate_authority.h"
#include "pki/profile_loader.h"
#include "protocol/signed_command.h"
#include "protocol/signer_trust.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

namespace gridtrust::test {

// Two sites: S1 clamps (CS-001 with three EVSEs, the second charge-only, and CS-002),
// S2 rejects and ramps at 100 W/s (CS-101 of aggregator Fleet, CS-201 of Other).
inline const char* const kFleet = R"(
sites:
  - id: S1
    import_limit_w: 30000
    export_limit_w: 20000
    policy: clamp
    stations:
      - id: CS-001
        aggregator: Fleet
        evses:
          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}
          - {id: 2, max_charge_w: 22000, max_discharge_w: 0}
          - {id: 3, max_charge_w: 11000, max_discharge_w: 11000}
      - id: CS-002
        aggregator: Fleet
        evses:
          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}
  - id: S2
    import_limit_w: 50000
    policy: reject
    ramp_w_per_s: 100
    stations:
      - id: CS-101
        aggregator: Fleet
        evses:
          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}
      - id: CS-201
        aggregator: Other
        evses:
          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}
)";

// A 60 kWh EV at 50 % (floor 20 %, ceiling 90 %), 9 kW in, 7 kW out, leaving in 10 h.
inline dispatch::Session ev(const std::string& id, const std::string& station, int evse, std::int64_t now) {
  dispatch::Session s;
  s.ev = id;
  s.station = station;
  s.evse = evse;
  s.battery_wh = 60000;
  s.soc = 0.5;
  s.soc_min = 0.2;
  s.soc_max = 0.9;
  s.max_charge_w = 9000;
  s.max_discharge_w = 7000;
  s.eta_charge = 0.9;
  s.eta_discharge = 0.9;
  s.departure = now + 10 * 3600;
  return s;
}


// ECDSA P-256 in software behind hsm::Signer: digest in, raw r||s out.
class SoftP256Signer final : public hsm::Signer {
 public:
  explicit SoftP256Signer(EvpPkeyPtr key) : key_(std::move(key)) {
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(key_.get(), &der);
    spki_.assign(der, der + len);
    OPENSSL_free(der);
  }
  hsm::KeyAlgorithm algorithm() const override { return hsm::KeyAlgorithm::EcP256; }
  const Bytes& public_key_der() const override { return spki_; }
  Result<Bytes> sign_raw(const Bytes& digest) const override {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
    std::size_t len = 0;
    if (EVP_PKEY_sign_init(ctx.get()) != 1 || EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) != 1)
      return reject("internal.error", "sign init");
    Bytes der(len);
    if (EVP_PKEY_sign(ctx.get(), der.data(), &len, digest.data(), digest.size()) != 1)
      return reject("internal.error", "sign");
    const unsigned char* p = der.data();
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
    Bytes raw(64);
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw.data(), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw.data() + 32, 32);
    ECDSA_SIG_free(sig);
    return raw;
  }

 private:
  EvpPkeyPtr key_;
  Bytes spki_;
};

struct SignerIdentity {
  std::unique_ptr<hsm::Signer> key;
  pki::Issued issued;
  protocol::CommandSigner command_signer() const { return {*key, issued.record.der, {}}; }
};

struct DispatchPki {
  SoftHsmToken hsm;
  TempDir dir;
  std::shared_ptr<store::SqliteStore> store;
  std::unique_ptr<pki::CertificateAuthority> ca;

  DispatchPki() {
    auto profiles = pki::load_profiles(std::string(GRIDTRUST_SOURCE_DIR) + "/config/profiles.yaml");
    if (!profiles.ok()) throw std::runtime_error(profiles.error().message);
    auto st = store::SqliteStore::open(dir / "pki.db");
    if (!st.ok()) throw std::runtime_error(st.error().message);
    store = std::move(st).value();
    pki::PkiConfig cfg;
    cfg.endpoints = {"http://127.0.0.1:8081/crl/", "http://127.0.0.1:8081/ocsp"};
    ca = std::make_unique<pki::CertificateAuthority>(std::move(*profiles), hsm.token(), store, cfg);
    auto h = ca->create_hierarchy("test");
    if (!h.ok()) throw std::runtime_error(h.error().message);
  }

  // An aggregator signer (software key) with subject CN=cn,O=org under `profile`.
  SignerIdentity software_signer(const std::string& cn, const std::string& org,
                                 const std::string& profile = "aggregator-signer") {
    EvpPkeyPtr key = make_key("P-256");
    auto issued = ca->issue_from_csr(profile, make_csr_der(key.get(), "CN=" + cn + ",O=" + org), {});
    if (!issued.ok()) throw std::runtime_error(issued.error().code + ": " + issued.error().message);
    return {std::make_unique<SoftP256Signer>(std::move(key)), std::move(issued).value()};
  }

  // The same, with the key generated in the token.
  SignerIdentity hsm_signer(const std::string& cn, const std::string& org) {
    auto issued = ca->issue_with_hsm_key("aggregator-signer", "CN=" + cn + ",O=" + org, {});
    if (!issued.ok()) throw std::runtime_error(issued.error().code + ": " + issued.error().message);
    auto key = hsm.token()->find_key_by_id(*issued->record.key_id);
    if (!key.ok()) throw std::runtime_error(key.error().message);
    return {std::make_unique<hsm::HsmSigner>(hsm.token(), *key), std::move(issued).value()};
  }
};

}  // namespace gridtrust::test
