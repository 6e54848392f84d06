#include "daemon/rotation_scheduler.h"

#include <algorithm>
#include <chrono>

#include <boost/asio/post.hpp>

#include "cli/rotation_status.h"
#include "core/digest.h"
#include "daemon/log.h"
#include "hsm/evp_bridge.h"
#include "pki/audit_checkpoint.h"
#include "policy/rotation_model.h"
#include "protocol/ocpp_certificates.h"

namespace gridtrust::daemon {
namespace json = boost::json;

namespace {

constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kHour = 3600;
constexpr const char* kActor = "daemon:scheduler";
constexpr const char* kCheckpointRole = "audit-checkpoint";

// Keys gridtrustd holds and re-keys itself; each is a profile of the same name except
// the checkpoint key, which has no certificate.
const std::vector<std::string>& daemon_roles() {
  static const std::vector<std::string> roles = {"aggregator-signer", "csms-server", "ocsp-signer", kCheckpointRole};
  return roles;
}

// Station certificates whose renewal the daemon triggers, with the OCPP 2.0.1
// MessageTriggerEnumType value that makes the station send a new CSR. Vehicle contract
// certificates are renewed by the vehicle over ISO 15118 (CertificateUpdate); OCPP has
// no trigger for them, so they are not scheduled here.
struct RenewalRole {
  const char* profile;
  const char* requested_message;
};
constexpr RenewalRole kRenewalRoles[] = {
    {"charging-station", "SignChargingStationCertificate"},
    {"secc", "SignV2GCertificate"},
};

std::string str(std::int64_t v) { return std::to_string(v); }

std::string common_name_of(const std::string& subject) {
  std::size_t pos = 0;
  while (pos < subject.size()) {
    std::size_t end = subject.find(',', pos);
    if (end == std::string::npos) end = subject.size();
    std::string part = subject.substr(pos, end - pos);
    while (!part.empty() && part.front() == ' ') part.erase(part.begin());
    if (part.rfind("CN=", 0) == 0) return part.substr(3);
    pos = end + 1;
  }
  return subject;
}

// A stable per-certificate jitter in [0, max_seconds]: the same after a restart.
std::int64_t jitter_for(const std::string& issuer, const std::string& serial, std::int64_t max_seconds) {
  if (max_seconds <= 0) return 0;
  Bytes h = sha256(issuer + "/" + serial);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | h[static_cast<std::size_t>(i)];
  return static_cast<std::int64_t>(v % static_cast<std::uint64_t>(max_seconds + 1));
}

std::string base_label(const std::string& role) { return role; }

// The newest valid certificate of `profile` for which `accept` holds.
Result<std::optional<store::CertificateRecord>> newest(store::Store& st, const std::string& profile,
                                                       const std::function<bool(const store::CertificateRecord&)>& accept) {
  store::CertificateFilter f;
  f.profile = profile;
  f.status = "valid";
  GT_TRY_ASSIGN(auto rows, st.list(f));
  std::optional<store::CertificateRecord> best;
  for (auto& r : rows)
    if (accept(r) && (!best || r.issued_at > best->issued_at || (r.issued_at == best->issued_at && r.not_after > best->not_after)))
      best = r;
  return best;
}

}  // namespace

std::map<std::string, RoleInterval> rotation_intervals(const app::AppConfig& config) {
  std::map<std::string, RoleInterval> out;
  for (const auto& role : config.rotation) {
    auto plan = policy::plan_rotation(role);
    if (!plan.ok()) {
      log_line("rotation: role " + role.name + ": " + plan.error().code + ": " + plan.error().message);
      continue;
    }
    if (!plan->feasible || plan->interval_days <= 0) {
      log_line("rotation: role " + role.name + ": no feasible interval; it is not rotated");
      continue;
    }
    out[role.name] = RoleInterval{plan->interval_days, "risk model (binding: " + plan->binding + ")"};
  }
  for (const auto& [role, days] : config.daemon.scheduler.interval_days) out[role] = RoleInterval{days, "config"};
  return out;
}

RotationScheduler::RotationScheduler(app::PkiContext& pki, std::shared_ptr<const TimeSource> clock, SwitchHook on_switch)
    : pki_(pki), clock_(std::move(clock)), on_switch_(std::move(on_switch)), config_(pki.config.daemon.scheduler),
      intervals_(rotation_intervals(pki.config)) {}

int RotationScheduler::interval_days(const std::string& role) const {
  auto it = intervals_.find(role);
  if (it == intervals_.end()) return 0;
  int interval = it->second.days;
  if (role == kCheckpointRole) return interval;
  auto profiles = pki_.ca->profiles();
  const pki::Profile* p = profiles->find(role);
  if (!p) return interval;
  // The certificate must outlive its successor's start by the overlap.
  if (p->validity_days > config_.overlap_days) return std::min(interval, p->validity_days - config_.overlap_days);
  return std::max(1, std::min(interval, p->validity_days / 2));
}

int RotationScheduler::validity_days(const std::string& role) const {
  int v = interval_days(role) + config_.overlap_days;
  auto profiles = pki_.ca->profiles();
  if (const pki::Profile* p = profiles->find(role)) v = std::min(v, p->validity_days);
  return std::max(1, v);
}

std::optional<store::RotationEntry> RotationScheduler::entry(const std::string& role) {
  auto rows = pki_.store->rotation_entries();
  if (!rows.ok()) return std::nullopt;
  for (auto& r : rows.value())
    if (r.role == role) return r;
  return std::nullopt;
}

Status RotationScheduler::prepare() {
  std::lock_guard g(tick_mu_);
  return prepare_locked();
}

Status RotationScheduler::prepare_locked() {
  const std::int64_t now = to_unix(clock_->now());
  GT_TRY_ASSIGN(auto rows, pki_.store->rotation_entries());
  for (const auto& role : daemon_roles()) {
    int interval = interval_days(role);
    if (interval <= 0) {
      log_line("rotation: no interval for " + role + "; its key is not rotated");
      continue;
    }
    auto existing = std::find_if(rows.begin(), rows.end(), [&](const auto& r) { return r.role == role; });
    if (existing != rows.end()) {
      if (existing->interval_days != interval) {
        // A new interval counts from the last re-key (or the first sight of the key).
        store::RotationEntry e = *existing;
        std::int64_t base = e.next_due - e.interval_days * kDay;
        e.interval_days = interval;
        e.next_due = base + interval * kDay;
        json::object what{{"role", role}, {"interval_days", interval}, {"next_due", e.next_due}};
        GT_TRY(pki_.store->save_rotation(e, store::AuditEvent{kActor, "rotation-interval", role, json::serialize(what)}));
      }
      continue;
    }
    store::RotationEntry e;
    e.role = role;
    e.interval_days = interval;
    std::int64_t since = now;
    if (role == kCheckpointRole) {
      GT_TRY_ASSIGN(hsm::KeyRef key, pki::checkpoint_key(*pki_.token));
      e.key_label = key.label;
      e.key_id = key.id;
    } else {
      const std::string server_label = pki_.config.daemon.server_cert_label;
      GT_TRY_ASSIGN(auto cert, newest(*pki_.store, role, [&](const store::CertificateRecord& r) {
                      if (!r.key_id || !r.key_label) return false;
                      return role != "csms-server" || server_label.empty() || *r.key_label == server_label;
                    }));
      if (!cert) {
        log_line("rotation: no valid " + role + " certificate with a key in the token; nothing to rotate yet");
        continue;
      }
      e.key_label = *cert->key_label;
      e.key_id = *cert->key_id;
      e.issuer = cert->issuer;
      e.serial = cert->serial;
      since = cert->issued_at;
    }
    e.next_due = since + interval * kDay;
    json::object what{{"role", role},         {"key_label", e.key_label}, {"serial", e.serial},
                      {"interval_days", interval}, {"next_due", e.next_due}};
    GT_TRY(pki_.store->save_rotation(e, store::AuditEvent{kActor, "rotation-schedule", role, json::serialize(what)}));
    log_line("rotation: " + role + " key " + e.key_label + " scheduled every " + std::to_string(interval) +
             " days, next at " + to_rfc3339(from_unix(e.next_due)));
  }
  prepared_ = true;
  return Ok{};
}

void RotationScheduler::start(Strand& strand) {
  if (!config_.enabled) {
    log_line("rotation: scheduler disabled (daemon.scheduler.enabled: false)");
    return;
  }
  timer_ = std::make_unique<boost::asio::steady_timer>(strand);
  // The first tick runs at once (catching up after downtime), on the strand.
  boost::asio::post(strand, [this] {
    if (stopped_) return;
    tick();
    arm();
  });
}

void RotationScheduler::arm() {
  timer_->expires_after(std::chrono::milliseconds(config_.tick_ms));
  timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    tick();
    arm();
  });
}

void RotationScheduler::stop() {
  stopped_ = true;
  if (timer_) boost::asio::post(timer_->get_executor(), [this] { timer_->cancel(); });
}

void RotationScheduler::tick() {
  std::lock_guard g(tick_mu_);
  const std::int64_t now = to_unix(clock_->now());
  auto fail = [&](const char* step, const Rejection& r) {
    failures_.fetch_add(1);
    log_line(std::string("rotation: ") + step + ": " + r.code + ": " + r.message);
  };
  // A start with the HSM or store away schedules the daemon's keys once they answer.
  if (!prepared_)
    if (auto st = prepare_locked(); !st.ok()) fail("schedule of the daemon's keys", st.error());
  if (auto rows = pki_.store->rotation_entries(); rows.ok()) {
    for (auto& e : rows.value())
      if (e.state == "rotating" || e.next_due <= now)
        if (auto st = rotate(e, now); !st.ok()) fail(("re-key of " + e.role).c_str(), st.error());
  } else {
    fail("schedule", rows.error());
  }
  if (auto st = destroy_expired_keys(now); !st.ok()) fail("key destruction", st.error());
  // New station certificates are looked for at most once a (real) second: the query
  // reads every certificate of the station profiles, and a tick may come every few ms.
  auto real_now = std::chrono::steady_clock::now();
  if (real_now - last_discovery_ >= std::chrono::seconds(1)) {
    last_discovery_ = real_now;
    if (auto st = schedule_renewals(); !st.ok()) fail("renewal schedule", st.error());
  }
  if (auto st = enqueue_due_renewals(now); !st.ok()) fail("renewal triggers", st.error());
  processed_through_.store(now);
}

Status RotationScheduler::rotate(store::RotationEntry e, std::int64_t now) {
  if (e.state == "active") {
    // The next key's label is chosen and persisted first: after a crash the next start
    // knows which token object and which certificate belong to this rotation.
    e.state = "rotating";
    e.pending_label = base_label(e.role) + "-g" + std::to_string(e.generation + 1);
    json::object what{{"role", e.role}, {"from", e.key_label}, {"to", e.pending_label}, {"serial", e.serial}};
    GT_TRY(pki_.store->save_rotation(e, store::AuditEvent{kActor, "rotation-start", e.role, json::serialize(what)}));
  }
  return e.role == kCheckpointRole ? rotate_checkpoint_key(std::move(e), now) : rotate_certificate(std::move(e), now);
}

Status RotationScheduler::rotate_certificate(store::RotationEntry e, std::int64_t now) {
  const std::string pending = e.pending_label;
  GT_TRY_ASSIGN(auto fresh, newest(*pki_.store, e.role, [&](const store::CertificateRecord& r) {
                  return r.key_label && *r.key_label == pending;
                }));
  if (!fresh) {
    // A key generated before a crash but never certified has no use: made again.
    GT_TRY_ASSIGN(auto stray, pki_.token->find_key(pending));
    if (stray) GT_TRY(pki_.token->destroy_key(*stray));
    pki::ReplaceOptions opt;
    opt.actor = kActor;
    opt.validity_days = validity_days(e.role);
    opt.key_label = pending;
    auto replaced = pki_.ca->rekey_with_hsm_key(e.serial, opt);
    if (!replaced.ok() && replaced.error().code == "validity.beyond_issuer") {
      opt.validity_days.reset();  // the issuer ends sooner: capped at its notAfter
      replaced = pki_.ca->rekey_with_hsm_key(e.serial, opt);
    }
    if (!replaced.ok()) return replaced.error();
    fresh = replaced->issued.record;
  }
  store::RetiredKey retired;
  retired.role = e.role;
  retired.key_label = e.key_label;
  retired.key_id = e.key_id;
  retired.issuer = e.issuer;
  retired.serial = e.serial;
  retired.retired_at = now;
  retired.destroy_after = now;
  GT_TRY_ASSIGN(auto old_rows, pki_.store->find_by_serial(e.serial));
  for (const auto& r : old_rows)
    if (r.issuer == e.issuer) retired.destroy_after = r.not_after;
  GT_TRY_ASSIGN(auto old_key, pki_.token->find_key(e.key_label));
  if (old_key) retired.public_key_der = old_key->public_key_der;

  store::RotationEntry next = e;
  next.key_label = pending;
  next.key_id = fresh->key_id.value_or(Bytes{});
  next.issuer = fresh->issuer;
  next.serial = fresh->serial;
  return switch_over(e, std::move(next), std::move(retired), now);
}

Status RotationScheduler::rotate_checkpoint_key(store::RotationEntry e, std::int64_t now) {
  // Resumable: a key made before a crash under the pending label is the new key.
  GT_TRY_ASSIGN(hsm::KeyRef fresh, pki::checkpoint_key(*pki_.token, e.pending_label));
  store::RetiredKey retired;
  retired.role = e.role;
  retired.key_label = e.key_label;
  retired.key_id = e.key_id;
  retired.retired_at = now;
  // No certificate: the old key stays for the overlap, then goes.
  retired.destroy_after = now + config_.overlap_days * kDay;
  GT_TRY_ASSIGN(auto old_key, pki_.token->find_key(e.key_label));
  if (old_key) {
    retired.public_key_der = old_key->public_key_der;
    // The new key vouches for the old one's public key, so that the checkpoints the
    // old key signed stay verifiable once it is destroyed (pki/audit_checkpoint.h).
    std::string message = pki::checkpoint_key_succession_message(old_key->id, old_key->public_key_der);
    GT_TRY_ASSIGN(Bytes raw, pki_.token->sign(fresh, sha256(message)));
    GT_TRY_ASSIGN(retired.endorsement, hsm::ecdsa_raw_to_der(raw));
    retired.successor_key_id = fresh.id;
  }
  store::RotationEntry next = e;
  next.key_label = fresh.label;
  next.key_id = fresh.id;
  return switch_over(e, std::move(next), std::move(retired), now);
}

Status RotationScheduler::switch_over(const store::RotationEntry& old, store::RotationEntry next,
                                      store::RetiredKey retired, std::int64_t now) {
  next.generation = old.generation + 1;
  next.interval_days = interval_days(old.role);
  next.last_rotated_at = now;
  next.next_due = now + next.interval_days * kDay;
  next.state = "active";
  next.pending_label.clear();
  next.rotations = old.rotations + 1;
  json::object what{{"role", old.role},
                    {"old_key", old.key_label},
                    {"new_key", next.key_label},
                    {"old_serial", old.serial},
                    {"new_serial", next.serial},
                    {"old_key_destroyed_after", retired.destroy_after},
                    {"next_due", next.next_due}};
  GT_TRY(pki_.store->switch_rotation(next, std::move(retired),
                                     store::AuditEvent{kActor, "rotation-switch", old.role, json::serialize(what)}));
  log_line("rotation: " + old.role + " re-keyed: " + old.key_label + " -> " + next.key_label +
           (next.serial.empty() ? std::string() : " (certificate " + next.serial + ")") + ", next at " +
           to_rfc3339(from_unix(next.next_due)));
  if (on_switch_) on_switch_(next);
  return Ok{};
}

Status RotationScheduler::destroy_expired_keys(std::int64_t now) {
  GT_TRY_ASSIGN(auto retired, pki_.store->retired_keys());
  bool any = false;
  for (const auto& r : retired) any = any || (!r.destroyed_at && r.destroy_after <= now);
  if (!any) return Ok{};
  GT_TRY_ASSIGN(auto current, pki_.store->rotation_entries());
  for (const auto& r : retired) {
    if (r.destroyed_at || r.destroy_after > now) continue;
    bool in_use = false;
    for (const auto& c : current) in_use = in_use || c.key_id == r.key_id;
    if (in_use) continue;  // never the key a role uses now
    // By CKA_ID, private and public object alike; nothing left is not an error (a crash
    // after C_DestroyObject and before the store recorded it).
    GT_TRY(pki_.token->destroy_key(hsm::KeyRef{r.key_label, r.key_id, hsm::KeyAlgorithm::EcP256, {}}));
    json::object what{{"role", r.role},
                      {"key_label", r.key_label},
                      {"key_id", to_hex(r.key_id)},
                      {"serial", r.serial},
                      {"certificate_not_after", r.destroy_after}};
    GT_TRY(pki_.store->mark_key_destroyed(r.id, now,
                                          store::AuditEvent{kActor, "key-destroy", r.role + "/" + r.key_label,
                                                            json::serialize(what)}));
    log_line("rotation: destroyed retired " + r.role + " key " + r.key_label + " in the token");
  }
  return Ok{};
}

Status RotationScheduler::schedule_renewals() {
  std::vector<std::string> profiles;
  for (const auto& role : kRenewalRoles)
    if (intervals_.count(role.profile)) profiles.push_back(role.profile);
  if (profiles.empty()) return Ok{};
  GT_TRY_ASSIGN(auto certs, pki_.store->unscheduled_certificates(profiles));
  if (certs.empty()) return Ok{};
  std::vector<store::RenewalEntry> entries;
  entries.reserve(certs.size());
  for (const auto& c : certs) {
    std::int64_t span = static_cast<std::int64_t>(intervals_.at(c.profile).days) * kDay;
    std::int64_t max_jitter = std::min(static_cast<std::int64_t>(config_.jitter_fraction * static_cast<double>(span)),
                                       static_cast<std::int64_t>(config_.jitter_max_days) * kDay);
    std::int64_t due = c.issued_at + span - jitter_for(c.issuer, c.serial, max_jitter);
    entries.push_back(store::RenewalEntry{c.issuer, c.serial, c.profile, c.subject, due, "scheduled"});
  }
  return pki_.store->schedule_renewals(std::move(entries));
}

Status RotationScheduler::enqueue_due_renewals(std::int64_t now) {
  // The budget is per clock hour and counted from the outbox itself, so a restart
  // within the hour (or a catch-up after downtime) cannot exceed it.
  {
    GT_TRY_ASSIGN(auto first, pki_.store->renewals(std::string("scheduled"), 1));
    if (first.empty() || first.front().due > now) return Ok{};  // nothing due: the common case
  }
  const std::int64_t hour = now - (now % kHour);
  GT_TRY_ASSIGN(std::int64_t used, pki_.store->outbox_enqueued_between(hour, hour + kHour));
  std::int64_t budget = config_.renewal_rate_per_hour - used;
  if (budget <= 0) return Ok{};
  GT_TRY_ASSIGN(std::int64_t pending, pki_.store->outbox_pending_count());
  budget = std::min(budget, static_cast<std::int64_t>(config_.outbox_max_pending) - pending);
  if (budget <= 0) return Ok{};
  GT_TRY_ASSIGN(auto due, pki_.store->renewals(std::string("scheduled"), static_cast<std::size_t>(budget)));
  std::vector<store::OutboxEntry> entries;
  for (const auto& r : due) {
    if (r.due > now) break;  // ordered by due
    const RenewalRole* role = nullptr;
    for (const auto& candidate : kRenewalRoles)
      if (r.profile == candidate.profile) role = &candidate;
    if (!role) continue;
    GT_TRY_ASSIGN(json::object message,
                  protocol::ocpp::trigger_message(protocol::ocpp::Version::v2_0_1, role->requested_message));
    // The TriggerMessageRequest payload itself; the outbox entry names the action.
    json::object payload = message.contains("request") ? message.at("request").as_object() : message;
    store::OutboxEntry o;
    o.id = "renew:" + r.issuer + ":" + r.serial;
    o.station = common_name_of(r.subject);
    o.profile = r.profile;
    o.serial = r.serial;
    o.action = "TriggerMessage";
    o.payload = json::serialize(payload);
    o.due = r.due;
    o.enqueued_at = now;
    entries.push_back(std::move(o));
  }
  if (entries.empty()) return Ok{};
  std::size_t n = entries.size();
  GT_TRY(pki_.store->enqueue_renewals(std::move(entries), kActor));
  renewals_queued_.fetch_add(n);
  return Ok{};
}

Result<json::object> RotationScheduler::status_json() {
  GT_TRY_ASSIGN(json::object out, app::rotation_status_json(*pki_.store, clock_->now()));
  json::object intervals;
  for (const auto& [role, iv] : intervals_)
    intervals[role] = json::object{{"days", iv.days}, {"source", iv.source}};
  json::object s{{"enabled", config_.enabled},
                 {"simulated_clock", clock_->simulated()},
                 {"tick_ms", config_.tick_ms},
                 {"overlap_days", config_.overlap_days},
                 {"renewal_rate_per_hour", config_.renewal_rate_per_hour},
                 {"intervals", std::move(intervals)}};
  if (std::int64_t p = processed_through(); p > 0) {
    s["processed_through_at"] = p;
    s["processed_through"] = to_rfc3339(from_unix(p));
  }
  out["scheduler"] = std::move(s);
  return out;
}

std::string RotationScheduler::metrics_text() {
  std::string out;
  out += "# HELP gridtrust_key_rotations_total Re-keys of the daemon's own keys by the scheduler.\n";
  out += "# TYPE gridtrust_key_rotations_total counter\n";
  if (auto rows = pki_.store->rotation_entries(); rows.ok())
    for (const auto& r : rows.value())
      out += "gridtrust_key_rotations_total{role=\"" + r.role + "\"} " + str(r.rotations) + "\n";
  std::int64_t destroyed = 0, waiting = 0;
  if (auto retired = pki_.store->retired_keys(); retired.ok())
    for (const auto& r : retired.value()) (r.destroyed_at ? destroyed : waiting) += 1;
  out += "# HELP gridtrust_retired_keys_destroyed_total Retired keys destroyed in the token.\n";
  out += "# TYPE gridtrust_retired_keys_destroyed_total counter\n";
  out += "gridtrust_retired_keys_destroyed_total " + str(destroyed) + "\n";
  out += "# HELP gridtrust_retired_keys_pending Retired keys kept until their certificate expires.\n";
  out += "# TYPE gridtrust_retired_keys_pending gauge\n";
  out += "gridtrust_retired_keys_pending " + str(waiting) + "\n";
  out += "# HELP gridtrust_outbox_depth Renewal triggers not yet acknowledged by the aggregator.\n";
  out += "# TYPE gridtrust_outbox_depth gauge\n";
  if (auto depth = pki_.store->outbox_pending_count(); depth.ok()) out += "gridtrust_outbox_depth " + str(depth.value()) + "\n";
  out += "# HELP gridtrust_renewal_triggers_queued_total Renewal triggers queued since start.\n";
  out += "# TYPE gridtrust_renewal_triggers_queued_total counter\n";
  out += "gridtrust_renewal_triggers_queued_total " + std::to_string(renewals_queued_.load()) + "\n";
  out += "# HELP gridtrust_scheduler_failures_total Scheduler steps that failed (retried at the next tick).\n";
  out += "# TYPE gridtrust_scheduler_failures_total counter\n";
  out += "gridtrust_scheduler_failures_total " + std::to_string(failures_.load()) + "\n";
  return out;
}

}  // namespace gridtrust::daemon
