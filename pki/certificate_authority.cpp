#include "pki/certificate_authority.h"

#include <algorithm>

#include <boost/json.hpp>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/openssl_error.h"
#include "core/random.h"
#include "hsm/evp_bridge.h"
#include "hsm/hsm_signer.h"
#include "hsm/sign_failure.h"
#include "pki/csr.h"
#include "pki/revocation_reason.h"
#include "pki/subject.h"

namespace gridtrust::pki {
namespace {

std::string details(std::initializer_list<std::pair<const char*, boost::json::value>> kv) {
  boost::json::object o;
  for (auto& [k, v] : kv) o[k] = v;
  return boost::json::serialize(o);
}

constexpr std::int64_t kBackdateSeconds = 300;  // tolerate modest clock skew at relying parties

}  // namespace

std::string serial_hex(const Bytes& serial) { return to_hex(serial, true); }

std::string Issued::chain_pem() const {
  std::string out;
  for (auto& der : chain_der) out += certificate_pem(der);
  return out;
}

CertificateAuthority::CertificateAuthority(ProfileSet profiles, std::shared_ptr<hsm::Token> token,
                                           std::shared_ptr<store::Store> store, PkiConfig config)
    : profiles_(std::make_shared<const ProfileSet>(std::move(profiles))), token_(std::move(token)),
      store_(std::move(store)), config_(std::move(config)) {}

void CertificateAuthority::replace_profiles(ProfileSet profiles) {
  profiles_.store(std::make_shared<const ProfileSet>(std::move(profiles)));
}

Result<Bytes> CertificateAuthority::next_serial(const std::string& issuer) {
  std::lock_guard g(serials_mu_);
  auto& pool = reserved_[issuer];
  for (int attempt = 0; pool.empty() && attempt < 3; ++attempt) {
    std::vector<Bytes> fresh;
    std::vector<std::string> hex;
    for (std::size_t i = 0; i < std::max<std::size_t>(1, config_.serial_block); ++i) {
      // RFC 5280 4.1.2.2: positive, at most 20 octets. 126 random bits from the CSPRNG;
      // the top bits are fixed so the DER length is constant and the value positive.
      Bytes s = random_bytes(16);
      s[0] = static_cast<std::uint8_t>((s[0] & 0x3f) | 0x40);
      hex.push_back(serial_hex(s));
      fresh.push_back(std::move(s));
    }
    auto st = store_->reserve_serials(issuer, hex);
    if (st.ok()) {
      pool = std::move(fresh);
    } else if (st.error().code != "conflict.serial_collision") {
      return st.error();
    }
  }
  if (pool.empty()) return reject("internal.serial_exhausted", "could not reserve a unique serial");
  Bytes s = std::move(pool.back());
  pool.pop_back();
  return s;
}

Result<CertificateAuthority::IssuerState*> CertificateAuthority::issuer_state(const std::string& profile) {
  std::lock_guard g(issuers_mu_);
  return issuer_state_locked(profile);
}

Result<CertificateAuthority::IssuerState*> CertificateAuthority::issuer_state_locked(const std::string& profile) {
  if (auto it = issuers_.find(profile); it != issuers_.end()) return it->second.get();
  GT_TRY_ASSIGN(auto rec, store_->issuer(profile));
  if (!rec) return reject("issuer.missing", "CA '" + profile + "' has not been created (run gridtrust init)");
  auto state = std::make_unique<IssuerState>();
  state->record = *rec;
  GT_TRY_ASSIGN(state->cert, certificate_from_der(rec->cert_der));
  // (issuer, serial) of this CA's certificate and of every CA above it.
  state->chain_certs.emplace_back(rec->parent, rec->serial);
  if (rec->parent != profile) {
    GT_TRY_ASSIGN(IssuerState * parent, issuer_state_locked(rec->parent));
    state->chain_certs.insert(state->chain_certs.end(), parent->chain_certs.begin(), parent->chain_certs.end());
  }
  GT_TRY_ASSIGN(hsm::KeyRef key, token_->find_key_by_id(rec->key_id));
  auto signer = std::make_shared<hsm::HsmSigner>(token_, key);
  GT_TRY_ASSIGN(state->key, hsm::make_evp_pkey(signer));
  auto* raw = state.get();
  issuers_[profile] = std::move(state);
  return raw;
}

Status CertificateAuthority::check_issuer_usable(const std::string& profile, TimePoint now) {
  // Names, keys and validity of CAs do not change: they come from the cache. Revocation
  // can change under us (another process may revoke), so it is read every time.
  std::vector<std::pair<std::string, std::string>> chain;
  std::string cur = profile;
  for (int depth = 0; depth < 10; ++depth) {
    GT_TRY_ASSIGN(IssuerState * st, issuer_state(cur));
    const auto& rec = st->record;
    if (to_unix(now) > rec.not_after)
      return reject("issuer.expired", "CA '" + cur + "' expired at " + to_rfc3339(from_unix(rec.not_after)));
    if (to_unix(now) < rec.not_before) return reject("issuer.not_yet_valid", "CA '" + cur + "' is not valid yet");
    chain.emplace_back(rec.parent, rec.serial);
    if (rec.parent == cur) {
      GT_TRY_ASSIGN(bool revoked, store_->any_revoked(chain));
      if (revoked) return reject("issuer.revoked", "CA '" + profile + "' or a CA above it has been revoked");
      return Ok{};
    }
    cur = rec.parent;
  }
  return reject("issuer.missing", "issuer chain of '" + profile + "' does not reach a root");
}

Result<std::pair<TimePoint, TimePoint>> CertificateAuthority::validity(const Profile& p, const IssuerState& issuer,
                                                                       const IssueOptions& opt, TimePoint now) {
  int days = p.validity_days;
  if (opt.validity_days) {
    if (*opt.validity_days <= 0) return reject("validity.invalid", "validity must be a positive number of days");
    if (*opt.validity_days > p.validity_days)
      return reject("validity.exceeds_profile", "profile " + p.name + " allows at most " +
                                                    std::to_string(p.validity_days) + " days");
    days = *opt.validity_days;
  }
  auto nb = std::max(now - std::chrono::seconds(kBackdateSeconds), from_unix(issuer.record.not_before));
  auto na = nb + std::chrono::days(days);
  if (na > from_unix(issuer.record.not_after)) {
    // An explicit request past the issuer's life is refused; the default is capped.
    if (opt.validity_days)
      return reject("validity.beyond_issuer", "requested validity ends after the issuer's (" +
                                                  to_rfc3339(from_unix(issuer.record.not_after)) + ")");
    na = from_unix(issuer.record.not_after);
  }
  return std::make_pair(nb, na);
}

Result<std::shared_ptr<const FixedExtensions>> CertificateAuthority::extensions_for(
    IssuerState& issuer, const std::shared_ptr<const Profile>& profile, bool edwards_subject) {
  std::lock_guard g(issuer.extensions_mu);
  CachedExtensions& cached = issuer.extensions[profile->name + (edwards_subject ? "/eddsa" : "")];
  if (cached.profile != profile) {
    GT_TRY_ASSIGN(auto exts, fixed_extensions(*profile, issuer.cert.get(), profile->issuer, config_.endpoints,
                                              edwards_subject));
    cached = CachedExtensions{profile, std::make_shared<const FixedExtensions>(std::move(exts))};
  }
  return cached.extensions;
}

Result<std::shared_ptr<const Profile>> CertificateAuthority::leaf_profile(const std::string& name) {
  std::shared_ptr<const ProfileSet> set = profiles_.load();
  const Profile* p = set->find(name);
  if (!p) return reject("profile.unknown", "no profile named '" + name + "'");
  if (p->is_ca()) return reject("profile.not_leaf", "profile '" + name + "' is a CA; CAs are created by init");
  return std::shared_ptr<const Profile>(std::move(set), p);
}

Result<PendingIssuance> CertificateAuthority::issue_from_csr_async(const std::string& profile_name, const Bytes& csr,
                                                                   const IssueOptions& opt) {
  GT_TRY_ASSIGN(std::shared_ptr<const Profile> profile, leaf_profile(profile_name));
  GT_TRY_ASSIGN(CertificationRequest req, parse_csr(csr));
  GT_TRY(check_key_allowed(req, *profile));
  GT_TRY(verify_csr_signature(req));
  bool edwards = req.key_type == CsrKeyType::Ed25519 || req.key_type == CsrKeyType::Ed448;
  return issue(profile, req.subject.get(), req.spki_der, edwards, std::nullopt, opt);
}

Result<Issued> CertificateAuthority::issue_from_csr(const std::string& profile, const Bytes& csr,
                                                    const IssueOptions& opt) {
  GT_TRY_ASSIGN(PendingIssuance pending, issue_from_csr_async(profile, csr, opt));
  GT_TRY(pending.durable.get());
  return std::move(pending.issued);
}

Result<Issued> CertificateAuthority::issue_with_hsm_key(const std::string& profile_name, const std::string& subject,
                                                        const IssueOptions& opt) {
  GT_TRY_ASSIGN(std::shared_ptr<const Profile> profile, leaf_profile(profile_name));
  if (!profile->hsm_key)
    return reject("profile.no_hsm_key", "profile '" + profile_name + "' keys are held by their subject; send a CSR");
  GT_TRY_ASSIGN(X509NamePtr name, parse_subject(subject));
  // Check everything that can fail before a key is created in the token.
  GT_TRY(check_subject(name.get(), *profile));
  GT_TRY(check_issuer_usable(profile->issuer, config_.now()));
  hsm::KeyAlgorithm alg = profile->keys.front();
  if (opt.key_algorithm) {
    if (std::find(profile->keys.begin(), profile->keys.end(), *opt.key_algorithm) == profile->keys.end()) {
      std::string list;
      for (auto a : profile->keys) list += (list.empty() ? "" : ", ") + std::string(hsm::name_of(a));
      bool ec_vs_ec = !hsm::is_edwards(*opt.key_algorithm) && !hsm::is_edwards(profile->keys.front());
      return reject(ec_vs_ec ? "csr.curve_not_allowed" : "csr.key_type_not_allowed",
                    std::string(hsm::name_of(*opt.key_algorithm)) + " key not allowed for profile " + profile_name +
                        " (allowed: " + list + ")");
    }
    alg = *opt.key_algorithm;
  }
  std::string label = profile_name + "-" + to_hex(random_bytes(6));
  GT_TRY_ASSIGN(hsm::KeyRef key, token_->generate_key_pair(alg, label));
  auto pending = issue(profile, name.get(), key.public_key_der, hsm::is_edwards(key.algorithm), key, opt);
  if (!pending.ok()) {
    (void)token_->destroy_key(key);  // best effort: without a certificate the key has no use
    return pending.error();
  }
  GT_TRY(pending->durable.get());
  return std::move(pending->issued);
}

Result<PendingIssuance> CertificateAuthority::issue(const std::shared_ptr<const Profile>& profile_in_force,
                                                    X509_NAME* subject, const Bytes& spki, bool edwards_subject,
                                                    std::optional<hsm::KeyRef> hsm_key, const IssueOptions& opt,
                                                    const Supersedes* supersedes) {
  const Profile& profile = *profile_in_force;
  GT_TRY(check_subject(subject, profile));
  TimePoint now = config_.now();
  GT_TRY(check_issuer_usable(profile.issuer, now));
  GT_TRY_ASSIGN(IssuerState * issuer, issuer_state(profile.issuer));
  GT_TRY_ASSIGN(auto period, validity(profile, *issuer, opt, now));
  GT_TRY_ASSIGN(Bytes serial, next_serial(profile.issuer));

  CertificateSpec spec{&profile, serial, subject, &spki, period.first, period.second,
                       issuer->cert.get(), profile.issuer, edwards_subject};
  GT_TRY_ASSIGN(auto fixed, extensions_for(*issuer, profile_in_force, edwards_subject));
  GT_TRY_ASSIGN(X509Ptr cert, build_certificate(spec, issuer->key.get(), config_.endpoints, fixed.get()));

  Issued out;
  auto& rec = out.record;
  rec.issuer = profile.issuer;
  rec.serial = serial_hex(serial);
  rec.profile = profile.name;
  rec.subject = subject_text(subject);
  rec.not_before = to_unix(period.first);
  rec.not_after = to_unix(period.second);
  rec.issued_at = to_unix(now);
  rec.der = certificate_der(cert.get());
  if (hsm_key) {
    rec.key_label = hsm_key->label;
    rec.key_id = hsm_key->id;
  }
  out.chain_der.push_back(rec.der);
  GT_TRY_ASSIGN(auto chain, issuer_chain(profile.issuer, false));
  for (auto& c : chain) out.chain_der.push_back(std::move(c));

  boost::json::object what{{"profile", rec.profile.c_str()},
                           {"subject", rec.subject.c_str()},
                           {"not_after", rec.not_after},
                           {"hsm_key", hsm_key ? hsm_key->label.c_str() : ""}};
  std::vector<std::pair<std::string, std::string>> must_be_valid = issuer->chain_certs;
  if (supersedes) {
    what["replaces"] = supersedes->serial;
    // A renewal keeps the key: one racing a keyCompromise revocation of the old
    // certificate must not commit.
    must_be_valid.emplace_back(supersedes->issuer, supersedes->serial);
  }
  store::AuditEvent ev{opt.actor, supersedes ? supersedes->action : "issue", rec.issuer + "/" + rec.serial,
                       boost::json::serialize(what)};
  auto durable = store_->record_issuance_async(rec, std::move(ev), std::move(must_be_valid));
  return PendingIssuance{std::move(out), std::move(durable)};
}

Status CertificateAuthority::create_hierarchy(const std::string& actor) {
  std::shared_ptr<const ProfileSet> profiles = profiles_.load();
  for (const Profile* p : profiles->cas_in_order()) {
    GT_TRY_ASSIGN(auto existing, store_->issuer(p->name));
    if (existing) continue;
    GT_TRY_ASSIGN(X509NamePtr name, parse_subject(p->default_subject));
    GT_TRY(check_subject(name.get(), *p));
    TimePoint now = config_.now();
    IssuerState* parent = nullptr;
    if (p->kind != ProfileKind::Root) {
      GT_TRY(check_issuer_usable(p->issuer, now));
      GT_TRY_ASSIGN(parent, issuer_state(p->issuer));
    }
    GT_TRY_ASSIGN(hsm::KeyRef key, token_->generate_key_pair(p->keys.front(), "ca-" + p->name));
    TimePoint nb = now - std::chrono::seconds(kBackdateSeconds);
    TimePoint na = nb + std::chrono::days(p->validity_days);
    if (parent) {
      nb = std::max(nb, from_unix(parent->record.not_before));
      na = std::min(na, from_unix(parent->record.not_after));
    }
    GT_TRY_ASSIGN(Bytes serial, next_serial(p->issuer));
    EvpPkeyPtr self_key;
    EVP_PKEY* signing_key = parent ? parent->key.get() : nullptr;
    if (!parent) {
      GT_TRY_ASSIGN(self_key, hsm::make_evp_pkey(std::make_shared<hsm::HsmSigner>(token_, key)));
      signing_key = self_key.get();
    }
    CertificateSpec spec{p, serial, name.get(), &key.public_key_der, nb, na, parent ? parent->cert.get() : nullptr, p->issuer,
                         hsm::is_edwards(key.algorithm)};
    GT_TRY_ASSIGN(X509Ptr cert, build_certificate(spec, signing_key, config_.endpoints));

    store::CertificateRecord rec;
    rec.issuer = p->issuer;
    rec.serial = serial_hex(serial);
    rec.profile = p->name;
    rec.subject = subject_text(name.get());
    rec.not_before = to_unix(nb);
    rec.not_after = to_unix(na);
    rec.issued_at = to_unix(now);
    rec.der = certificate_der(cert.get());
    rec.key_label = key.label;
    rec.key_id = key.id;
    store::IssuerRecord iss{p->name, p->issuer, rec.serial, rec.subject, key.label, key.id, rec.der,
                            rec.not_before, rec.not_after};
    store::AuditEvent ev{actor, "create-ca", p->name,
                         details({{"serial", rec.serial.c_str()}, {"subject", rec.subject.c_str()},
                                  {"key_label", key.label.c_str()}, {"not_after", rec.not_after}})};
    GT_TRY(store_->record_issuer(iss, rec, ev));
  }
  return Ok{};
}

Result<std::vector<Bytes>> CertificateAuthority::issuer_chain(const std::string& issuer_profile, bool include_root) {
  std::vector<Bytes> out;
  std::string cur = issuer_profile;
  for (int depth = 0; depth < 10; ++depth) {
    GT_TRY_ASSIGN(IssuerState * st, issuer_state(cur));
    bool root = st->record.parent == cur;
    if (!root || include_root) out.push_back(st->record.cert_der);
    if (root) return out;
    cur = st->record.parent;
  }
  return reject("issuer.missing", "issuer chain does not reach a root");
}

Result<std::vector<Bytes>> CertificateAuthority::chain(const std::string& profile) {
  std::shared_ptr<const ProfileSet> profiles = profiles_.load();
  const Profile* p = profiles->find(profile);
  if (!p) return reject("profile.unknown", "no profile named '" + profile + "'");
  return issuer_chain(p->is_ca() ? p->name : p->issuer, true);
}

Result<store::CertificateRecord> CertificateAuthority::revoke(const std::string& serial_text,
                                                              const std::string& reason_name,
                                                              const std::string& actor) {
  std::string serial = serial_text;
  if (serial.rfind("0x", 0) == 0 || serial.rfind("0X", 0) == 0) serial = serial.substr(2);
  for (auto& c : serial) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (serial.empty() || serial.size() > 40 || !from_hex(serial.size() % 2 ? "0" + serial : serial))
    return reject("usage.bad_serial", "serial must be hexadecimal: '" + serial_text + "'");
  auto reason = revocation_reason_from_name(reason_name);
  if (!reason) return reject("revocation.bad_reason", "unknown RFC 5280 reason '" + reason_name + "'");
  GT_TRY_ASSIGN(auto rows, store_->find_by_serial(serial));
  if (rows.empty()) return reject("notfound.certificate", "no certificate with serial " + serial);
  if (rows.size() > 1) return reject("usage.ambiguous_serial", "serial " + serial + " exists under several issuers");
  const auto& target = rows.front();
  auto now = to_unix(config_.now());
  // keyCompromise or cACompromise of a CA takes everything below it down in the same
  // transaction (DESIGN: revokes downwards); the children get cACompromise.
  std::shared_ptr<const ProfileSet> profiles = profiles_.load();
  const Profile* tp = profiles->find(target.profile);
  std::optional<int> cascade;
  if (tp && tp->is_ca() && (*reason == 1 || *reason == 2)) cascade = 2;
  GT_TRY_ASSIGN(auto revoked,
                store_->revoke(target.issuer, target.serial, *reason, now,
                               store::AuditEvent{actor, "revoke", target.issuer + "/" + target.serial,
                                                 details({{"reason", reason_name.c_str()},
                                                          {"profile", target.profile.c_str()}})},
                               cascade));
  return revoked;
}

Result<std::string> CertificateAuthority::crl_pem(const std::string& issuer_profile, const std::string& actor) {
  std::shared_ptr<const ProfileSet> profiles = profiles_.load();
  const Profile* p = profiles->find(issuer_profile);
  if (!p) return reject("profile.unknown", "no profile named '" + issuer_profile + "'");
  if (!p->is_ca()) return reject("profile.not_ca", "profile '" + issuer_profile + "' does not issue CRLs");
  GT_TRY_ASSIGN(IssuerState * issuer, issuer_state(issuer_profile));
  GT_TRY_ASSIGN(auto snapshot, store_->crl_snapshot(issuer_profile, actor));
  const auto& revoked = snapshot.revoked;
  const std::int64_t number = snapshot.number;
  TimePoint now = config_.now();
  X509CrlPtr crl(X509_CRL_new());
  Asn1TimePtr last(ASN1_TIME_set(nullptr, static_cast<time_t>(to_unix(now))));
  Asn1TimePtr next(ASN1_TIME_set(nullptr, static_cast<time_t>(to_unix(now + std::chrono::hours(config_.crl_validity_hours)))));
  if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer->cert.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 || X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1)
    return reject("internal.openssl", "cannot assemble CRL: " + openssl_errors());
  for (auto& r : revoked) {
    X509RevokedPtr entry(X509_REVOKED_new());
    auto bytes = from_hex(r.serial.size() % 2 ? "0" + r.serial : r.serial);
    BignumPtr bn(BN_bin2bn(bytes->data(), static_cast<int>(bytes->size()), nullptr));
    Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    Asn1TimePtr when(ASN1_TIME_set(nullptr, static_cast<time_t>(r.revoked_at.value_or(to_unix(now)))));
    X509_REVOKED_set_serialNumber(entry.get(), serial.get());
    X509_REVOKED_set_revocationDate(entry.get(), when.get());
    // RFC 5280 5.3.1: reasonCode unspecified SHOULD be absent.
    if (r.reason && *r.reason != 0) {
      std::unique_ptr<ASN1_ENUMERATED, OsslDeleter<ASN1_ENUMERATED_free>> code(ASN1_ENUMERATED_new());
      ASN1_ENUMERATED_set(code.get(), *r.reason);
      X509_REVOKED_add1_ext_i2d(entry.get(), NID_crl_reason, code.get(), 0, 0);
    }
    X509_CRL_add0_revoked(crl.get(), entry.release());
  }
  X509_CRL_sort(crl.get());
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer->cert.get(), nullptr, nullptr, crl.get(), 0);
  X509ExtPtr aki(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  Asn1IntegerPtr crl_number(ASN1_INTEGER_new());
  ASN1_INTEGER_set_int64(crl_number.get(), number);
  if (!aki || X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0, 0) != 1)
    return reject("internal.openssl", "cannot add CRL extensions: " + openssl_errors());
  (void)hsm::take_sign_failure();
  if (X509_CRL_sign(crl.get(), issuer->key.get(), digest_for(p->digest)) <= 0) {
    std::string err = openssl_errors();
    if (auto why = hsm::take_sign_failure(); why && why->code == "hsm.unavailable") return *why;
    return reject("hsm.sign_failed", "signing the CRL failed" + (err.empty() ? "" : ": " + err));
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(bio.get(), crl.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace gridtrust::pki
