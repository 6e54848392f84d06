#include "dispatch/engine.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

#include <boost/json.hpp>

#include "core/digest.h"
#include "dispatch/charging_profile.h"

namespace gridtrust::dispatch {

namespace json = boost::json;

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::Applied: return "applied";
    case Outcome::Clamped: return "clamped";
    case Outcome::Rejected: return "rejected";
  }
  return "?";
}

namespace {

// verify_command's own sequence step is deferred: the engine checks the sequence
// itself after the station lookup, per entry of a batch, with one durable commit for
// a whole batch (store::Store::accept_sequences).
class DeferredReplay final : public protocol::ReplayGuard {
 public:
  Status accept(const std::string&, const std::string&, std::uint64_t) override { return Ok{}; }
};

std::string pair_key(const std::string& a, const std::string& b) { return a + '\n' + b; }

constexpr double kTolerance = 1e-6;  // W: what counts as "inside" the envelope
constexpr std::size_t kCommandArenaBytes = 4096;  // an emitted SetChargingProfileRequest fits, signed too

// An applied value in whole milliwatts, as the emitted command carries it
// (charging_profile.cpp), kept within [lo, hi]: so the decision, its audit entry, the
// EVSE's recorded state and the command all say the same. Unchanged in the odd case
// of a range narrower than a milliwatt with no whole milliwatt inside.
double milliwatts_within(double w, double lo, double hi) {
  double r = std::round(w * 1000.0) / 1000.0 + 0.0;
  if (r > hi) r = std::floor(hi * 1000.0) / 1000.0 + 0.0;
  if (r < lo) r = std::ceil(lo * 1000.0) / 1000.0 + 0.0;
  return r >= lo && r <= hi ? r : w;
}

json::array range(double lo, double hi) { return json::array{lo, hi}; }

}  // namespace

std::string dispatch_code_for(const std::string& code) {
  static const std::unordered_map<std::string, std::string> map = {
      {"verify.unsigned", "dispatch.unsigned"},
      {"verify.malformed", "dispatch.bad_signature"},
      {"jws.malformed", "dispatch.bad_signature"},
      {"jws.unsupported_alg", "dispatch.bad_signature"},
      {"jws.crit", "dispatch.bad_signature"},
      {"jws.bad_signature", "dispatch.bad_signature"},
      {"jws.alg_mismatch", "dispatch.bad_signature"},
      {"batch.bad_path", "dispatch.bad_signature"},
      {"batch.mixed", "dispatch.bad_signature"},
      {"batch.incomplete", "dispatch.bad_signature"},
      {"verify.unknown_signer", "dispatch.unknown_signer"},
      {"verify.untrusted_chain", "dispatch.untrusted_signer"},
      {"verify.not_dispatch_authority", "dispatch.not_dispatch_authority"},
      {"verify.signer_not_yet_valid", "dispatch.signer_not_valid"},
      {"verify.signer_expired", "dispatch.signer_not_valid"},
      {"verify.signer_revoked", "dispatch.signer_revoked"},
      {"verify.lifetime_too_long", "dispatch.lifetime_too_long"},
      {"verify.not_yet_valid", "dispatch.future_dated"},
      {"verify.expired", "dispatch.expired"},
      {"verify.wrong_station", "dispatch.wrong_station"},
      {"verify.wrong_action", "dispatch.wrong_action"},
      {"verify.replay", "dispatch.replay"},
  };
  auto it = map.find(code);
  if (it != map.end()) return it->second;
  if (code.rfind("json.", 0) == 0) return "dispatch.bad_signature";
  return code;  // store.*, hsm.*, internal.*: not the message's fault
}

std::string organisation_of(const std::string& subject) {
  // X509_NAME_oneline: "/CN=agg-1/O=Fleet"
  std::size_t pos = 0;
  while ((pos = subject.find("/O=", pos)) != std::string::npos) {
    const std::size_t start = pos + 3;
    const std::size_t end = subject.find('/', start);
    return subject.substr(start, end == std::string::npos ? std::string::npos : end - start);
  }
  return {};
}

json::object Decision::to_json() const {
  json::object o{{"outcome", to_string(outcome)}, {"reason", reason}, {"at", at}};
  if (!detail.empty()) o["detail"] = detail;
  if (!station.empty()) o["station"] = station;
  if (evse) o["evse"] = evse;
  if (!ev.empty()) o["ev"] = ev;
  if (!signer.empty()) o["signer"] = signer;
  if (!caller.empty()) o["caller"] = caller;
  if (seq) o["seq"] = seq;
  if (mode) {
    o["mode"] = to_string(*mode);
    o["requested_w"] = range(requested_lo_w, requested_hi_w);
    o["envelope_w"] = range(envelope_min_w, envelope_max_w);
    if (outcome != Outcome::Rejected) o["applied_w"] = range(applied_lo_w, applied_hi_w);
  }
  return o;
}

json::object FleetDecision::to_json() const {
  json::object o{{"outcome", to_string(outcome)}, {"reason", reason},       {"group", group},
                 {"target_w", target_w},         {"delivered_w", delivered_w}, {"shortfall_w", shortfall_w}};
  if (!detail.empty()) o["detail"] = detail;
  if (!signer.empty()) o["signer"] = signer;
  if (!caller.empty()) o["caller"] = caller;
  if (seq) o["seq"] = seq;
  json::array sp;
  for (const auto& d : setpoints)
    sp.push_back(json::object{{"station", d.station}, {"evse", d.evse}, {"ev", d.ev}, {"w", d.applied_lo_w},
                              {"envelope_w", range(d.envelope_min_w, d.envelope_max_w)}});
  o["setpoints"] = std::move(sp);
  return o;
}

// ---- outgoing ----

StoreOutgoingSigner::StoreOutgoingSigner(protocol::CommandSigner signer, store::Store& store, std::int64_t lifetime_s)
    : signer_(std::move(signer)), store_(store), lifetime_s_(lifetime_s),
      fingerprint_(base64url_encode(sha256(signer_.certificate_der))) {}

Result<std::vector<json::object>> StoreOutgoingSigner::sign(std::vector<protocol::BatchItem> items, std::int64_t now) {
  constexpr std::uint64_t kBlock = 64;
  {
    std::lock_guard g(mu_);
    // Stations whose block cannot number their items: reserved together, durably,
    // before any number is used (a crash skips numbers, never reuses one).
    std::map<std::string, std::uint64_t> need;
    for (const auto& item : items) ++need[item.claims.station];
    std::vector<std::string> short_of;
    for (const auto& [station, n] : need) {
      auto& [next, end] = blocks_[station];
      if (end - next >= n) continue;
      // What is left of the current block is skipped: fresh blocks for all n.
      for (std::uint64_t got = 0; got < n; got += kBlock) short_of.push_back(station);
    }
    if (!short_of.empty()) {
      GT_TRY_ASSIGN(auto firsts, store_.reserve_sequence_blocks(fingerprint_, short_of, kBlock));
      // Each station's blocks come back in ascending order: the last one is where it
      // continues; the numbers of the current block and of the ones in between that
      // are not needed are skipped.
      std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> fresh;  // station -> [first of first, end of last)
      for (std::size_t i = 0; i < short_of.size(); ++i) {
        auto [it, inserted] = fresh.try_emplace(short_of[i], firsts[i], firsts[i] + kBlock);
        if (!inserted) it->second.second = firsts[i] + kBlock;
      }
      for (const auto& [station, range] : fresh) {
        auto& [next, end] = blocks_[station];
        // Consecutive blocks of one commit are contiguous (one row, incremented in turn).
        next = range.first;
        end = range.second;
      }
    }
    for (auto& item : items) {
      auto& [next, end] = blocks_[item.claims.station];
      if (next >= end) return reject("internal.sequence", "no reserved sequence number left for " + item.claims.station);
      item.claims.seq = next++;
    }
  }
  protocol::SignTimes times{now, lifetime_s_, false};
  if (items.size() == 1) {
    GT_TRY_ASSIGN(json::object one, protocol::sign_command(std::move(items[0].message), signer_, items[0].claims, times));
    std::vector<json::object> out;
    out.push_back(std::move(one));
    return out;
  }
  return protocol::sign_batch(std::move(items), signer_, times);
}

// ---- engine ----

Engine::Engine(Fleet fleet, protocol::SignerResolver& resolver, store::Store& store, EngineOptions options,
               OutgoingSigner* outgoing)
    : Engine(std::move(fleet), resolver, &store, std::move(options), outgoing) {}

Engine::Engine(Fleet fleet, protocol::SignerResolver& resolver, store::Store* store, EngineOptions options,
               OutgoingSigner* outgoing)
    : resolver_(resolver), store_(store), options_(std::move(options)), outgoing_(outgoing), fleet_(std::move(fleet)) {
  state_.reserve(fleet_.evses.size());
  // Every EVSE has its state from the start (map nodes do not move), so a site's
  // members are summed through pointers, without a lookup per EVSE.
  for (const auto& [id, st] : fleet_.stations) stations_.emplace(id, &st);
  for (const auto& [key, e] : fleet_.evses) {
    auto [st, fresh] = state_.try_emplace(key);
    const std::string& site = fleet_.stations.at(e.station).site;
    site_evses_[site].push_back(SiteMember{&st->first, &st->second});
    places_.emplace(key, Place{&e, &fleet_.sites.at(site), &st->second, nullptr});
  }
  // (after every site has all its members: the vectors stay where they are from here)
  for (auto& [key, place] : places_) place.members = &site_evses_.at(fleet_.stations.at(place.evse->station).site);
  for (const auto& [key, s] : fleet_.sessions) ev_index_[s.ev] = key;
  if (store_) load_states();
}

void Engine::load_states() {
  auto recorded = store_->dispatch_evse_states();
  if (!recorded.ok())
    throw std::runtime_error("recorded EVSE states unreadable: " + recorded.error().code + ": " +
                             recorded.error().message);
  for (const auto& r : *recorded) {
    state_version_ = std::max(state_version_, r.version);
    auto it = state_.find(r.evse);
    if (it == state_.end()) continue;  // no longer in the registry
    it->second = EvseState{r.lo_w, r.hi_w, r.until, r.last_w, r.last_at, r.version};
  }
}

store::Store::DispatchEvseState Engine::snapshot_locked(const std::string& key, const EvseState& st) const {
  return {key, st.lo_w, st.hi_w, st.until, st.last_w, st.last_at, st.version};
}

void Engine::undo_locked(const std::string& key, std::uint64_t version, const EvseState& before) {
  auto it = state_.find(key);
  if (it != state_.end() && it->second.version == version) it->second = before;
}

void Engine::verify_single(Pending& p, const json::object& message, std::int64_t now) {
  DeferredReplay deferred;
  protocol::VerifyOptions o;
  o.now = now;
  o.max_clock_skew_s = options_.max_clock_skew_s;
  o.max_lifetime_s = options_.max_lifetime_s;
  o.action = kSetChargingProfile;
  p.d.at = now;
  p.message = &message;
  auto v = protocol::verify_command(message, o, resolver_, deferred);
  if (!v.ok()) {
    p.d.reason = dispatch_code_for(v.error().code);
    p.d.detail = v.error().code + ": " + v.error().message;
    p.done = true;
  } else {
    p.d.station = v->claims.station;
    p.d.signer = v->signer_fingerprint;
    p.d.seq = v->claims.seq;
    p.organisation = organisation_of(v->signer_subject);
    p.parsed = parse_setpoint(message, p.d.station, options_.default_duration_s);
  }
}

Decision Engine::submit(const json::object& message, std::int64_t now, const std::string& caller) {
  Pending p;
  verify_single(p, message, now);
  p.d.caller = caller;
  std::vector<Pending*> ps{&p};
  finish(ps, now);
  return std::move(p.d);
}

std::vector<Decision> Engine::submit_many(const std::vector<json::object>& messages, std::int64_t now,
                                          const std::vector<std::string>& callers) {
  std::vector<Verified> one;
  one.push_back(verify(messages, now, callers));
  return std::move(decide(std::move(one)).front());
}

Engine::Verified Engine::verify(const std::vector<json::object>& messages, std::int64_t now,
                                const std::vector<std::string>& callers) {
  Verified v;
  v.now_ = now;
  v.pending_.resize(messages.size());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    verify_single(v.pending_[i], messages[i], now);
    if (i < callers.size()) v.pending_[i].d.caller = callers[i];
  }
  return v;
}

std::vector<std::vector<Decision>> Engine::decide(std::vector<Verified> groups) {
  std::vector<std::vector<Decision>> out;
  if (groups.empty()) return out;
  const std::int64_t now = groups.front().now_;
  std::vector<Pending*> ps;
  for (auto& g : groups) {
    if (g.now_ != now) throw std::invalid_argument("Engine::decide: verified groups of different times");
    for (auto& p : g.pending_) ps.push_back(&p);
  }
  finish(ps, now, "dispatch.setpoints");
  out.reserve(groups.size());
  for (auto& g : groups) {
    auto& ds = out.emplace_back();
    ds.reserve(g.pending_.size());
    for (auto& p : g.pending_) ds.push_back(std::move(p.d));
  }
  return out;
}

std::vector<Decision> Engine::submit_batch(const std::vector<json::object>& entries, std::int64_t now,
                                           const std::string& caller) {
  DeferredReplay deferred;
  protocol::VerifyOptions o;
  o.now = now;
  o.max_clock_skew_s = options_.max_clock_skew_s;
  o.max_lifetime_s = options_.max_lifetime_s;
  o.action = kSetChargingProfile;
  std::vector<Pending> pending(entries.size());
  auto v = protocol::verify_batch(entries, o, resolver_, deferred);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Pending& p = pending[i];
    p.d.at = now;
    p.d.caller = caller;
    p.message = &entries[i];
    if (!v.ok()) {
      p.d.reason = dispatch_code_for(v.error().code);
      p.d.detail = v.error().code + ": " + v.error().message;
      p.done = true;
      continue;
    }
    const auto& vc = (*v)[i];
    p.d.station = vc.claims.station;
    p.d.signer = vc.signer_fingerprint;
    p.d.seq = vc.claims.seq;
    p.organisation = organisation_of(vc.signer_subject);
    p.parsed = parse_setpoint(entries[i], p.d.station, options_.default_duration_s);
  }
  std::vector<Pending*> ps;
  ps.reserve(pending.size());
  for (auto& p : pending) ps.push_back(&p);
  finish(ps, now);
  std::vector<Decision> out;
  out.reserve(pending.size());
  for (auto& p : pending) out.push_back(std::move(p.d));
  return out;
}

void Engine::finish(std::vector<Pending*>& ps, std::int64_t now, const char* many_action) {
  {
    std::lock_guard g(mu_);
    for (Pending* p : ps)
      if (!p->done && !stations_.count(p->d.station)) {
        p->d.reason = "dispatch.unknown_station";
        p->d.detail = "station " + p->d.station + " is not in the fleet registry";
        p->done = true;
      }
  }
  const char* action = ps.size() == 1 ? "dispatch.setpoint" : many_action;
  std::vector<const Decision*> ds;
  ds.reserve(ps.size());
  for (Pending* p : ps) ds.push_back(&p->d);
  std::vector<Pending*> applied;
  Status recorded = Ok{};
  bool accepted_alone = false;  // the sequence numbers were committed before the decisions
  std::optional<Turn> turn;  // of the attempt that was recorded
  if (store_) {
    // One durable commit for the group: its sequence numbers (checked against those
    // known accepted, then by the store), the EVSE states it set and its audit entry.
    // The group is decided counting on the groups before it that are still being
    // written; the store writes in the order of deciding and refuses every later record
    // of the chain once one fails, and settle() then undoes them all. So no command
    // leaves before its group and every group decided before it are durable.
    constexpr int kAttempts = 3;
    for (int attempt = 1;; ++attempt) {
      std::vector<store::Store::SequenceClaim> claims;
      applied.clear();
      // Decided again (undone for another group's failure, or after its numbers were
      // accepted alone): alone, with nothing in flight before it and nothing decided
      // after it until it is settled, so no other group's failure can undo it again.
      std::unique_lock<std::mutex> alone(order_mu_, std::defer_lock);
      if (attempt > 1) alone.lock();
      Submitted sub = decide_and_submit(ps, now, action, ds, !accepted_alone, applied, claims, alone.owns_lock());
      // The position's turn is passed on every way out of this attempt (an exception
      // too), unless the attempt is recorded and its turn handed on to emit.
      Turn attempt_turn(*this, sub.position);
      recorded = wait_recorded(sub);
      const bool undone = settle(sub.position, recorded);
      if (alone.owns_lock()) alone.unlock();
      if (recorded.ok() && !undone) {
        std::lock_guard g(seq_mu_);
        for (const auto& c : claims) {
          auto& last = accepted_seq_[pair_key(c.signer, c.station)];
          last = std::max(last, c.seq);
        }
        turn.emplace(std::move(attempt_turn));
        break;
      }
      attempt_turn.pass();  // nothing of this attempt leaves: later groups need not wait for it
      applied.clear();
      if (!recorded.ok() && recorded.error().code == "conflict.sequence" && !accepted_alone) {
        // Another process accepted one of these numbers first: each is now accepted on
        // its own before the group is decided again.
        check_sequences(ps);
        accepted_alone = true;
        continue;
      }
      if (recorded.ok()) {
        // Cannot happen with a store that breaks the chain on every failure (store.h):
        // recorded, yet undone for an earlier group's failure. Not decided again.
        recorded = reject("internal.error", "recorded after an earlier group failed; restart to take up its state");
        break;
      }
      // Undone for an earlier group's failure: decided again, on what is recorded.
      if (recorded.error().code == "store.chain_broken" && attempt < kAttempts) continue;
      break;
    }
  } else {
    std::lock_guard order(order_mu_);
    check_sequences(ps);  // in memory only
    std::vector<Pending*> decided;
    std::lock_guard g(mu_);
    (void)decide_group_locked(ps, now, decided, applied);
  }
  {
    std::lock_guard g(mu_);
    if (!recorded.ok()) {
      // Not recorded, not sent (every decision of the group was undone): the caller
      // learns why, and whether the same message may come again.
      for (Pending* p : ps)
        if (!p->done) {
          p->d.reason = recorded.error().code;
          p->d.detail = std::string("not recorded, nothing applied") +
                        (accepted_alone ? " (its sequence number was accepted: sign a new message): "
                                        : " (the same message may be submitted again): ") +
                        recorded.error().message;
        }
      applied.clear();
    }
    for (Pending* p : ps) log_locked(p->d);
  }
  if (!recorded.ok() && options_.audit && store_) {
    // The group's own entry went with the failed commit; this one says so, if it can.
    json::object details{{"code", recorded.error().code}, {"message", recorded.error().message},
                         {"decisions", ps.size()}};
    (void)store_->append_audit_async(store::AuditEvent{
        options_.actor, "dispatch.not_recorded",
        ps.size() == 1 ? ps[0]->d.station : "batch/" + std::to_string(ps.size()), json::serialize(details)});
  }
  if (!turn) turn.emplace(*this, std::nullopt);  // without a store: no numbers to keep in order
  if (recorded.ok()) emit(applied, now, *turn);
}

void Engine::pass_turn(std::uint64_t position) {
  std::lock_guard g(turn_mu_);
  turn_passed_.insert(position);
  advance_turn_locked();
}

void Engine::advance_turn_locked() {
  while (!turn_passed_.empty() && *turn_passed_.begin() == turn_next_) {
    turn_passed_.erase(turn_passed_.begin());
    ++turn_next_;
  }
  // Under the lock: the waiter's condition variable lives only as long as it waits.
  if (auto it = turn_waiters_.find(turn_next_); it != turn_waiters_.end()) it->second->notify_one();
}

Result<std::vector<json::object>> Engine::sign_in_turn(Turn& turn, std::vector<protocol::BatchItem> items,
                                                       std::int64_t now) {
  const std::optional<std::uint64_t> position = turn.position();
  if (!position) return outgoing_->sign(std::move(items), now);
  SignRequest mine;
  mine.items = &items;
  mine.now = now;
  std::unique_lock lk(turn_mu_);
  try {
    sign_queue_[*position] = &mine;
    turn_waiters_[*position] = &mine.cv;
  } catch (...) {
    sign_queue_.erase(*position);
    turn_waiters_.erase(*position);
    throw;  // the turn still holds its position: passed on the way out
  }
  (void)turn.take();  // from here on, passed below or by the group that signs for this one
  mine.cv.wait(lk, [&] { return mine.result.has_value() || turn_next_ == *position; });
  turn_waiters_.erase(*position);
  if (mine.result) return std::move(*mine.result);  // signed by the group ahead of it, its turn passed
  // Its turn: it signs for itself and for the groups queued right behind it with the
  // same time, skipping positions already passed (groups with nothing to send). Whatever
  // goes wrong, every group it took gets an answer and the turn goes on past them.
  sign_queue_.erase(*position);
  std::vector<SignRequest*> group;
  std::vector<std::size_t> sizes;
  std::size_t total = items.size();
  std::uint64_t end = *position + 1;  // [position, end): this signer's positions
  Result<std::vector<json::object>> signed_all = reject("internal.error", "the commands were not signed");
  try {
    group.reserve(8);
    sizes.reserve(8);
    sizes.push_back(items.size());  // (before group: a group's size is there once it is)
    group.push_back(&mine);
    for (;;) {
      if (auto passed = turn_passed_.find(end); passed != turn_passed_.end()) {
        turn_passed_.erase(passed);
        ++end;
        continue;
      }
      auto queued = sign_queue_.find(end);
      if (queued == sign_queue_.end() || queued->second->now != now ||
          total + queued->second->items->size() > options_.max_shared_signature)
        break;
      sizes.push_back(queued->second->items->size());
      group.push_back(queued->second);  // (taken from the queue only once it is in the group)
      total += queued->second->items->size();
      sign_queue_.erase(queued);
      ++end;
    }
    lk.unlock();
    std::vector<protocol::BatchItem> all;
    if (group.size() > 1) {
      all.reserve(total);
      for (SignRequest* r : group)
        for (auto& item : *r->items) all.push_back(std::move(item));
    } else {
      all = std::move(items);
    }
    signed_all = outgoing_->sign(std::move(all), now);
    if (signed_all.ok() && signed_all->size() != total)
      signed_all = reject("internal.error", "the signer returned " + std::to_string(signed_all->size()) +
                                                " commands for " + std::to_string(total));
  } catch (const std::exception& e) {
    signed_all = reject("internal.error", std::string("signing the commands failed: ") + e.what());
  } catch (...) {
    signed_all = reject("internal.error", "signing the commands failed");
  }
  if (!lk.owns_lock()) lk.lock();
  // Each group it took gets its share (or the error); then the turn goes on past them.
  std::size_t from = sizes.empty() ? 0 : sizes[0];
  for (std::size_t g = 1; g < group.size(); ++g) {
    try {
      if (!signed_all.ok()) {
        group[g]->result.emplace(signed_all.error());
      } else {
        std::vector<json::object> share;
        share.reserve(sizes[g]);
        for (std::size_t i = 0; i < sizes[g]; ++i) share.push_back(std::move((*signed_all)[from + i]));
        group[g]->result.emplace(std::move(share));
      }
    } catch (...) {
      group[g]->result.emplace(Rejection{"internal.error", "the signed commands could not be handed over"});
    }
    from += sizes[g];
    group[g]->cv.notify_one();
  }
  turn_next_ = end;
  advance_turn_locked();
  lk.unlock();
  if (signed_all.ok() && group.size() > 1) signed_all->resize(sizes[0]);
  return signed_all;
}

void Engine::replay_check(std::vector<Pending*>& ps) {
  std::lock_guard g(seq_mu_);
  for (Pending* p : ps) {
    if (p->done) continue;
    // Beyond what the store keeps: refused here, on its own, so that it never fails a
    // group's record (and with it the write chain of every group behind it).
    if (p->d.seq > store::kMaxSequence) {
      p->d.reason = "usage.bad_value";
      p->d.detail = "sequence " + std::to_string(p->d.seq) + " is above 2^62";
      p->done = true;
      continue;
    }
    auto it = accepted_seq_.find(pair_key(p->d.signer, p->d.station));
    if (it != accepted_seq_.end() && p->d.seq <= it->second) {
      p->d.reason = "dispatch.replay";
      p->d.detail = "sequence " + std::to_string(p->d.seq) + " is not above " + std::to_string(it->second);
      p->done = true;
    }
  }
}

Engine::Submitted Engine::decide_and_submit(std::vector<Pending*>& ps, std::int64_t now, const char* action,
                                            const std::vector<const Decision*>& ds, bool with_claims,
                                            std::vector<Pending*>& applied,
                                            std::vector<store::Store::SequenceClaim>& claims, bool alone) {
  std::unique_lock<std::mutex> order(order_mu_, std::defer_lock);
  if (!alone) order.lock();  // (alone: the caller holds it until the group is settled)
  if (with_claims) replay_check(ps);  // (otherwise they were accepted on their own, by this group)
  Submitted out;
  std::vector<store::Store::DispatchEvseState> states;
  std::optional<store::AuditEvent> audit;
  std::shared_ptr<store::Store::WriteChain> chain;
  {
    // Decided, described and put in flight at once: from here on, a failure of an
    // earlier group may undo it (settle), which changes its decisions.
    std::unique_lock g(mu_);
    if (alone) wait_until_settled_locked(g);
    std::vector<Pending*> decided;
    states = decide_group_locked(ps, now, decided, applied);
    if (with_claims)
      for (Pending* p : decided)
        if (p->claimed) claims.push_back({p->d.signer, p->d.station, p->d.seq});
    audit = audit_event(ds, action);
    out.position = next_position_;
    chain = chain_;
    inflight_.emplace(out.position, InFlight{std::move(decided), chain, false});
    ++next_position_;  // taken only once in flight: every position taken is settled and passed
  }
  out.chain = chain;
  try {
    out.recorded = store_->record_dispatch(claims, std::move(states), std::move(audit), chain, out.position);
  } catch (const std::exception& e) {
    // Not handed to the store: a failed record like any other (none after it yet, as
    // order_mu_ is held), so settle() undoes it and nothing stays in flight.
    out.recorded = failed_record(out, std::string("the store did not take the record: ") + e.what());
  } catch (...) {
    out.recorded = failed_record(out, "the store did not take the record");
  }
  return out;
}

std::future<Status> Engine::failed_record(const Submitted& sub, const std::string& why) {
  sub.chain->fail_from(sub.position);
  std::promise<Status> p;
  p.set_value(reject("store.write_failed", why));
  return p.get_future();
}

Status Engine::wait_recorded(Submitted& sub) {
  try {
    return sub.recorded.get();
  } catch (const std::exception& e) {
    // The answer is lost (a broken promise; SqliteStore always answers): whether it was
    // written is unknown, so it counts as not written and nothing of it is sent; the
    // records of the chain not yet written are refused. Later ones the store wrote
    // before this was known come back recorded-but-undone (internal.error in finish).
    sub.chain->fail_from(sub.position);
    return reject("store.write_failed", std::string("the store's answer was lost: ") + e.what());
  } catch (...) {
    sub.chain->fail_from(sub.position);
    return reject("store.write_failed", "the store's answer was lost");
  }
}

bool Engine::settle(std::uint64_t position, const Status& recorded) {
  std::lock_guard g(mu_);
  auto it = inflight_.find(position);
  // Out of flight however this ends: a group left in flight would hold up fleet targets
  // and every retry for good.
  struct Leave {
    Engine& engine;
    std::map<std::uint64_t, InFlight>::iterator it;
    ~Leave() {
      engine.inflight_.erase(it);
      engine.settled_cv_.notify_all();
    }
  } leave{*this, it};
  if (!recorded.ok() && !it->second.reverted) {
    // Every record of this chain from its first failure on was refused (the store
    // writes them in order): all undone now, newest first, before anything else is
    // decided on them; what is decided next goes in a fresh chain.
    const auto chain = it->second.chain;
    const std::uint64_t from = std::min(chain->failed_from.load(), position);
    for (auto r = inflight_.rbegin(); r != inflight_.rend() && r->first >= from; ++r)
      if (r->second.chain == chain && !r->second.reverted) {
        undo_group_locked(r->second.decided);
        r->second.reverted = true;
      }
    if (chain_ == chain) chain_ = std::make_shared<store::Store::WriteChain>();
  }
  return it->second.reverted;
}

void Engine::wait_until_settled_locked(std::unique_lock<std::mutex>& lk) {
  settled_cv_.wait(lk, [&] { return inflight_.empty(); });
}

std::vector<store::Store::DispatchEvseState> Engine::decide_group_locked(std::vector<Pending*>& ps, std::int64_t now,
                                                                         std::vector<Pending*>& decided,
                                                                         std::vector<Pending*>& applied) {
  std::vector<store::Store::DispatchEvseState> states;
  for (Pending* p : ps) {
    if (p->done) continue;
    decide_locked(*p, now);
    decided.push_back(p);
    if (p->d.applied()) {
      applied.push_back(p);
      if (store_) states.push_back(snapshot_locked(p->key, state_.at(p->key)));
    }
  }
  return states;
}

void Engine::undo_group_locked(const std::vector<Pending*>& decided) {
  // Newest first, so an EVSE (or a signer and station) met twice gets its first `before`.
  for (auto it = decided.rbegin(); it != decided.rend(); ++it) {
    Pending& p = **it;
    if (!p.key.empty()) undo_locked(p.key, p.version, p.before);
    if (p.claimed) {
      auto seq = applied_seq_.find(pair_key(p.d.signer, p.d.station));
      if (seq != applied_seq_.end() && seq->second == p.d.seq) seq->second = p.applied_seq_before;
    }
    // Back to what verification left.
    Decision& d = p.d;
    d.outcome = Outcome::Rejected;
    d.reason.clear();
    d.detail.clear();
    d.evse = 0;
    d.ev.clear();
    d.mode.reset();
    d.requested_lo_w = d.requested_hi_w = d.applied_lo_w = d.applied_hi_w = 0;
    d.envelope_min_w = d.envelope_max_w = d.need_w = 0;
    p.setpoint.reset();
    p.key.clear();
    p.claimed = false;
  }
}

void Engine::check_sequences(std::vector<Pending*>& ps) {
  replay_check(ps);
  std::vector<store::Store::SequenceClaim> claims;
  std::vector<Pending*> who;
  for (Pending* p : ps) {
    if (p->done) continue;
    claims.push_back({p->d.signer, p->d.station, p->d.seq});
    who.push_back(p);
  }
  if (claims.empty()) return;
  Result<std::vector<bool>> r = std::vector<bool>(claims.size(), true);  // in memory only, without a store
  if (store_) r = store_->accept_sequences(claims);                    // durable before anything is emitted
  std::lock_guard g(seq_mu_);
  for (std::size_t i = 0; i < who.size(); ++i) {
    Pending* p = who[i];
    if (!r.ok()) {
      p->d.reason = r.error().code;
      p->d.detail = r.error().message;
      p->done = true;
    } else if (!(*r)[i]) {
      p->d.reason = "dispatch.replay";
      p->d.detail = "sequence " + std::to_string(p->d.seq) + " is not above the last accepted one";
      p->done = true;
    } else {
      auto& last = accepted_seq_[pair_key(p->d.signer, p->d.station)];
      last = std::max(last, p->d.seq);
    }
  }
}

const Session* Engine::session_locked(const std::string& key) const {
  auto s = fleet_.sessions.find(key);
  return s == fleet_.sessions.end() ? nullptr : &s->second;
}

EnvelopeInput Engine::envelope_input_locked(const Place& place, const Session* session, std::int64_t now,
                                            double duration_s, bool ramp) const {
  EnvelopeInput in;
  in.evse = place.evse;
  in.site = place.site;
  in.session = session;
  const EvseState* own = place.state;
  for (const SiteMember& other : *place.members) {
    if (other.state == own || other.state->until <= now) continue;
    in.others_max_w += other.state->hi_w;
    in.others_min_w += other.state->lo_w;
  }
  in.last_w = own->last_w;
  in.last_at = own->last_at;
  in.apply_ramp = ramp;
  in.now = now;
  in.duration_s = duration_s;
  return in;
}

void Engine::decide_locked(Pending& p, std::int64_t now) {
  Decision& d = p.d;
  auto fail = [&](std::string code, std::string why) {
    d.reason = std::move(code);
    d.detail = std::move(why);
    d.outcome = Outcome::Rejected;
  };
  const Station& station = *stations_.at(d.station);
  // A message reordered behind a later one that another thread applied first.
  auto& applied_seq = applied_seq_[pair_key(d.signer, d.station)];
  if (d.seq <= applied_seq) return fail("dispatch.replay", "a later sequence number was applied first");
  p.applied_seq_before = applied_seq;
  p.claimed = true;
  applied_seq = d.seq;
  if (p.organisation.empty() || p.organisation != station.aggregator)
    return fail("dispatch.wrong_aggregator",
                "station " + d.station + " belongs to " + station.aggregator + ", the signer to '" + p.organisation + "'");
  if (!p.parsed) p.parsed = parse_setpoint(*p.message, d.station, options_.default_duration_s);
  Result<Setpoint>& sp = *p.parsed;
  if (!sp.ok()) return fail(sp.error().code, sp.error().message);
  d.evse = sp->evse;
  d.mode = sp->mode;
  d.requested_lo_w = sp->lo_w;
  d.requested_hi_w = sp->hi_w;
  const std::string key = evse_key(d.station, sp->evse);
  auto found = places_.find(key);
  if (found == places_.end())
    return fail("dispatch.unknown_evse", "station " + d.station + " has no EVSE " + std::to_string(sp->evse));
  const Place& place = found->second;
  const Session* session = session_locked(key);
  if (session) d.ev = session->ev;
  // The ramp rate binds setpoints the engine sets directly; Idle (stop) is always
  // allowed, and an ExternalSetpoint range is ramped by the station itself.
  const bool ramp = sp->mode == OperationMode::CentralSetpoint;
  const Envelope env = compute_envelope(envelope_input_locked(place, session, now, sp->duration_s, ramp));
  d.envelope_min_w = env.min_w;
  d.envelope_max_w = env.max_w;
  const bool over = sp->hi_w > env.max_w + kTolerance;
  const bool under = sp->lo_w < env.min_w - kTolerance;
  if (!over && !under) {
    d.outcome = Outcome::Applied;
    d.reason = kApplied;
    d.applied_lo_w = sp->lo_w;
    d.applied_hi_w = sp->hi_w;
  } else {
    const char* why = over ? env.max_reason : env.min_reason;
    if (place.site->policy == EnforcementPolicy::Reject)
      return fail(why, std::string("outside the envelope [") + std::to_string(env.min_w) + ", " +
                           std::to_string(env.max_w) + "] W; site policy is reject");
    d.outcome = Outcome::Clamped;
    d.reason = why;
    d.applied_lo_w = std::clamp(sp->lo_w, env.min_w, env.max_w);
    d.applied_hi_w = std::clamp(sp->hi_w, env.min_w, env.max_w);
  }
  d.applied_lo_w = milliwatts_within(d.applied_lo_w, env.min_w - kTolerance, env.max_w + kTolerance);
  d.applied_hi_w = milliwatts_within(d.applied_hi_w, env.min_w - kTolerance, env.max_w + kTolerance);
  EvseState& st = *place.state;
  p.before = st;
  st.lo_w = d.applied_lo_w;
  st.hi_w = d.applied_hi_w;
  st.until = now + static_cast<std::int64_t>(std::ceil(sp->duration_s));
  if (sp->mode != OperationMode::ExternalSetpoint) {
    st.last_w = d.applied_lo_w;
    st.last_at = now;
  }
  st.version = p.version = ++state_version_;
  p.key = key;
  p.setpoint = *sp;  // (parsed stays whole: an undone group is decided again)
}

void Engine::emit(std::vector<Pending*>& applied, std::int64_t now, Turn& turn) {
  if (applied.empty() || !options_.emit_commands) return;
  std::vector<protocol::BatchItem> items;
  items.reserve(applied.size());
  for (Pending* p : applied) {
    // Each command in an arena of its own: one allocation instead of one per value, and
    // nothing freed value by value (Boost.JSON skips that for a monotonic resource).
    json::object cmd = applied_request(*p->message, *p->setpoint, p->d.applied_lo_w, p->d.applied_hi_w,
                                       p->d.envelope_min_w, p->d.envelope_max_w,
                                       json::make_shared_resource<json::monotonic_resource>(kCommandArenaBytes));
    items.push_back({std::move(cmd), {kSetChargingProfile, p->d.station, 0}});
  }
  if (!outgoing_) {
    for (std::size_t i = 0; i < applied.size(); ++i) applied[i]->d.command = std::move(items[i].message);
    return;
  }
  auto signed_items = sign_in_turn(turn, std::move(items), now);
  for (std::size_t i = 0; i < applied.size(); ++i) {
    if (signed_items.ok()) applied[i]->d.command = std::move((*signed_items)[i]);
    else applied[i]->d.detail = "applied, but the command could not be signed: " + signed_items.error().code;
  }
  if (!signed_items.ok())
    audit_unsigned(applied.size() == 1 ? evse_key(applied[0]->d.station, applied[0]->d.evse)
                                       : "batch/" + std::to_string(applied.size()),
                   signed_items.error());
}

void Engine::audit_unsigned(const std::string& subject, const Rejection& why) {
  // The decision's entry is already durable; this one says its command never left.
  if (!options_.audit || !store_) return;
  json::object details{{"code", why.code}, {"message", why.message}};
  (void)store_->append_audit_async(
      store::AuditEvent{options_.actor, "dispatch.command_unsigned", subject, json::serialize(details)});
}

std::optional<store::AuditEvent> Engine::audit_event(const std::vector<const Decision*>& ds, const char* action) const {
  std::optional<store::AuditEvent> e;
  if (options_.audit && !ds.empty()) {
    e.emplace();
    e->actor = options_.actor;
    e->action = action;
    if (ds.size() == 1) {
      e->subject = ds[0]->evse ? evse_key(ds[0]->station, ds[0]->evse) : ds[0]->station;
      ds[0]->append_json(e->details);
    } else {
      e->subject = "batch/" + std::to_string(ds.size());
      e->details = "{\"decisions\":[";
      e->details.reserve(ds.size() * 320);
      for (std::size_t i = 0; i < ds.size(); ++i) {
        if (i) e->details += ',';
        ds[i]->append_json(e->details);
      }
      e->details += "]}";
    }
  }
  return e;
}

void Engine::log_locked(const Decision& d) {
  if (options_.decision_log_size == 0) return;
  log_.push_back(d);
  log_.back().command.reset();
  while (log_.size() > options_.decision_log_size) log_.pop_front();
}

// ---- fleet targets ----

FleetDecision Engine::submit_target(const json::object& message, std::int64_t now, const std::string& caller) {
  FleetDecision fd;
  fd.caller = caller;
  DeferredReplay deferred;
  protocol::VerifyOptions o;
  o.now = now;
  o.max_clock_skew_s = options_.max_clock_skew_s;
  o.max_lifetime_s = options_.max_lifetime_s;
  o.action = kFleetTargetAction;
  auto fail = [&](std::string code, std::string why) {
    fd.outcome = Outcome::Rejected;
    fd.reason = std::move(code);
    fd.detail = std::move(why);
    Decision d;
    d.at = now;
    d.station = fd.group.empty() ? "fleet" : fleet_target_station(fd.group);
    d.reason = fd.reason;
    d.detail = fd.detail;
    d.signer = fd.signer;
    d.caller = fd.caller;
    d.seq = fd.seq;
    {
      std::lock_guard g(mu_);
      log_locked(d);
    }
    if (store_)
      if (auto e = audit_event({&d}, "dispatch.target")) (void)store_->append_audit_async(std::move(*e));
    return fd;
  };
  auto v = protocol::verify_command(message, o, resolver_, deferred);
  if (!v.ok()) return fail(dispatch_code_for(v.error().code), v.error().code + ": " + v.error().message);
  fd.signer = v->signer_fingerprint;
  fd.seq = v->claims.seq;
  auto t = parse_fleet_target(message, options_.default_duration_s);
  if (!t.ok()) return fail(t.error().code, t.error().message);
  fd.group = t->group;
  if (v->claims.station != fleet_target_station(t->group))
    return fail("dispatch.bad_target", "signed for " + v->claims.station + ", not for group " + t->group);
  const std::string org = organisation_of(v->signer_subject);
  std::optional<Rejection> problem;
  {
    std::lock_guard g(mu_);
    for (const auto& s : t->stations)
      if (!problem && !fleet_.stations.count(s))
        problem = reject("dispatch.unknown_station", "station " + s + " is not in the fleet registry");
  }
  if (problem) return fail(problem->code, problem->message);
  Pending p;
  p.d.signer = fd.signer;
  p.d.station = v->claims.station;
  p.d.seq = fd.seq;
  std::vector<Pending*> ps{&p};
  check_sequences(ps);
  if (p.done) return fail(p.d.reason, p.d.detail);
  {
    std::lock_guard g(mu_);
    auto& applied_seq = applied_seq_[pair_key(fd.signer, p.d.station)];
    if (fd.seq <= applied_seq) problem = reject("dispatch.replay", "a later sequence number was applied first");
    else applied_seq = fd.seq;
    for (const auto& s : t->stations)
      if (!problem && (org.empty() || fleet_.stations.at(s).aggregator != org))
        problem = reject("dispatch.wrong_aggregator", "station " + s + " does not belong to '" + org + "'");
  }
  if (problem) return fail(problem->code, problem->message);
  FleetDecision out = apply_target(*t, now, fd.signer, fd.seq, fd.caller);
  return out;
}

FleetDecision Engine::apply_target(const FleetTarget& t, std::int64_t now, const std::string& signer, std::uint64_t seq,
                                  const std::string& caller) {
  FleetDecision fd;
  fd.group = t.group;
  fd.signer = signer;
  fd.caller = caller;
  fd.seq = seq;
  fd.target_w = t.target_w;
  // Decided on what is recorded (no group in flight) and recorded before any other group
  // is decided.
  std::lock_guard order(order_mu_);
  std::vector<std::string> keys;
  std::vector<AllocationUnit> units;
  std::vector<SiteCapacity> caps;
  std::vector<EvseState> befores;
  std::vector<std::uint64_t> versions;
  std::vector<store::Store::DispatchEvseState> states;
  Decision summary;
  {
    std::unique_lock lk(mu_);
    wait_until_settled_locked(lk);
    std::unordered_map<std::string, std::size_t> site_index;
    std::vector<std::string> stations = t.stations;
    std::sort(stations.begin(), stations.end());
    stations.erase(std::unique(stations.begin(), stations.end()), stations.end());
    for (const auto& s : stations) {
      auto st = fleet_.stations.find(s);
      if (st == fleet_.stations.end()) {
        fd.reason = "dispatch.unknown_station";
        fd.detail = "station " + s + " is not in the fleet registry";
        return fd;
      }
      auto first = fleet_.sessions.lower_bound(s + "#");
      for (auto it = first; it != fleet_.sessions.end() && it->second.station == s; ++it) keys.push_back(it->first);
    }
    std::unordered_map<std::string, char> in_set;
    for (const auto& k : keys) in_set.emplace(k, 1);
    units.reserve(keys.size());
    std::vector<std::pair<double, double>> others;  // per site: the EVSEs outside the target
    for (const auto& k : keys) {
      const Session& s = fleet_.sessions.at(k);
      const std::string& site_id = fleet_.stations.at(s.station).site;
      auto [si, fresh] = site_index.emplace(site_id, caps.size());
      if (fresh) {
        const Site& site = fleet_.sites.at(site_id);
        double omax = 0, omin = 0;
        for (const SiteMember& other : site_evses_.at(site_id)) {
          if (other.state->until <= now || in_set.count(*other.key)) continue;
          omax += other.state->hi_w;
          omin += other.state->lo_w;
        }
        caps.push_back({site.import_limit_w - omax, -site.export_limit_w - omin});
        others.emplace_back(omax, omin);
      }
      EnvelopeInput in;
      in.evse = &fleet_.evses.at(k);
      in.session = &s;
      in.site = &fleet_.sites.at(site_id);
      in.others_max_w = others[si->second].first;
      in.others_min_w = others[si->second].second;
      auto mine = state_.find(k);
      if (mine != state_.end()) {
        in.last_w = mine->second.last_w;
        in.last_at = mine->second.last_at;
      }
      in.now = now;
      in.duration_s = t.duration_s;
      const Envelope env = compute_envelope(in);
      AllocationUnit u;
      u.min_w = env.min_w;
      u.max_w = env.max_w;
      u.floor_w = env.need_w;
      u.cost_up = s.alpha_per_kwh * s.eta_charge;
      u.cost_down = s.alpha_per_kwh / s.eta_discharge;
      u.site = si->second;
      units.push_back(u);
    }
    const Allocation a = allocate(t.target_w, units, caps, options_.split);
    fd.delivered_w = a.delivered_w;
    fd.shortfall_w = a.shortfall_w;
    fd.setpoints.reserve(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      EvseState& st = state_[keys[i]];
      befores.push_back(st);
      st.lo_w = st.hi_w = a.w[i];
      st.until = now + static_cast<std::int64_t>(std::ceil(t.duration_s));
      st.last_w = a.w[i];
      st.last_at = now;
      st.version = ++state_version_;
      versions.push_back(st.version);
      if (store_) states.push_back(snapshot_locked(keys[i], st));
      const Session& s = fleet_.sessions.at(keys[i]);
      Decision d;
      d.outcome = Outcome::Applied;
      d.reason = kApplied;
      d.station = s.station;
      d.evse = s.evse;
      d.ev = s.ev;
      d.signer = signer;
      d.seq = seq;
      d.mode = OperationMode::CentralSetpoint;
      d.requested_lo_w = d.requested_hi_w = d.applied_lo_w = d.applied_hi_w = a.w[i];
      d.envelope_min_w = units[i].min_w;
      d.envelope_max_w = units[i].max_w;
      d.need_w = units[i].floor_w;
      d.at = now;
      fd.setpoints.push_back(std::move(d));
    }
    fd.outcome = fd.shortfall_w == 0 ? Outcome::Applied : Outcome::Clamped;
    fd.reason = fd.shortfall_w == 0 ? kApplied : "dispatch.shortfall";
    summary.outcome = fd.outcome;
    summary.reason = fd.reason;
    summary.station = fleet_target_station(t.group);
    summary.signer = signer;
    summary.caller = caller;
    summary.seq = seq;
    summary.requested_lo_w = summary.requested_hi_w = t.target_w;
    summary.applied_lo_w = summary.applied_hi_w = fd.delivered_w;
    summary.at = now;
  }
  // The allocation and its audit entry are durable before any command leaves; its
  // commands leave after those of every group decided before it.
  Turn turn(*this, next_position_++);
  Status recorded = Ok{};
  if (store_) {
    std::optional<store::AuditEvent> e;
    if (options_.audit)
      e = store::AuditEvent{options_.actor, "dispatch.target", fleet_target_station(t.group), json::serialize(fd.to_json())};
    if (!states.empty() || e) {
      // A store that throws, or whose answer is lost, has not recorded it as far as
      // anyone can tell: undone below like a failed commit (its sequence number was
      // accepted before the allocation and stays spent).
      try {
        recorded = store_->record_dispatch({}, std::move(states), std::move(e)).get();
      } catch (const std::exception& ex) {
        recorded = reject("store.write_failed", std::string("the target's record got no answer: ") + ex.what());
      } catch (...) {
        recorded = reject("store.write_failed", "the target's record got no answer");
      }
    }
  }
  {
    std::lock_guard g(mu_);
    if (!recorded.ok()) {
      // Not recorded, not sent: the EVSEs keep what they had.
      for (std::size_t i = keys.size(); i-- > 0;) undo_locked(keys[i], versions[i], befores[i]);
      fd.detail = "allocated (" + fd.reason + "), but it could not be recorded: " + recorded.error().message;
      fd.outcome = summary.outcome = Outcome::Rejected;
      fd.reason = summary.reason = recorded.error().code;
      fd.delivered_w = 0;
      fd.shortfall_w = t.target_w;
      fd.setpoints.clear();
      summary.detail = fd.detail;
    }
    log_locked(summary);
  }
  if (options_.emit_commands && !fd.setpoints.empty()) {
    std::vector<protocol::BatchItem> items;
    items.reserve(fd.setpoints.size());
    for (const auto& d : fd.setpoints)
      items.push_back({setpoint_request(d.evse, d.applied_lo_w, t.duration_s, now, options_.emitted_profile_id),
                       {kSetChargingProfile, d.station, 0}});
    if (outgoing_) {
      auto signed_items = sign_in_turn(turn, std::move(items), now);
      if (signed_items.ok())
        for (std::size_t i = 0; i < fd.setpoints.size(); ++i) fd.setpoints[i].command = std::move((*signed_items)[i]);
      else {
        fd.detail = "applied, but the commands could not be signed: " + signed_items.error().code;
        audit_unsigned(fleet_target_station(t.group), signed_items.error());
      }
    } else {
      for (std::size_t i = 0; i < fd.setpoints.size(); ++i) fd.setpoints[i].command = std::move(items[i].message);
    }
  }
  return fd;
}

// ---- registry ----

Status Engine::start_session(Session s) {
  std::lock_guard order(order_mu_);  // not between a stop's record and its change
  std::lock_guard g(mu_);
  GT_TRY(validate_session(fleet_, s, "session " + s.ev));
  auto known = ev_index_.find(s.ev);
  if (known != ev_index_.end() && known->second != evse_key(s.station, s.evse))
    return reject("dispatch.duplicate_id", "EV " + s.ev + " is plugged in at " + known->second);
  const std::string key = evse_key(s.station, s.evse);
  // Another vehicle on that EVSE was unplugged meanwhile: it has no session any more.
  if (auto there = fleet_.sessions.find(key); there != fleet_.sessions.end() && there->second.ev != s.ev)
    ev_index_.erase(there->second.ev);
  ev_index_[s.ev] = key;
  fleet_.sessions[key] = std::move(s);
  return Ok{};
}

Status Engine::stop_session(const std::string& ev) {
  std::lock_guard order(order_mu_);
  std::string key;
  bool was_told = false;
  {
    std::lock_guard g(mu_);
    auto it = ev_index_.find(ev);
    if (it == ev_index_.end()) return reject("dispatch.unknown_ev", "no session for EV " + ev);
    key = it->second;
    const EvseState& st = state_[key];
    was_told = st.until != 0 || st.last_w;
  }
  // Recorded first, so that a restart does not count the setpoint of a vehicle that has
  // left; if that fails, nothing changes and the stop may be tried again.
  const std::uint64_t version = state_version_ + 1;  // only this function and the deciders (order_mu_) count up
  if (store_ && was_told) {
    store::Store::DispatchEvseState cleared;
    cleared.evse = key;
    cleared.version = version;
    GT_TRY(store_->record_dispatch({}, {std::move(cleared)}, std::nullopt).get());
  }
  std::lock_guard g(mu_);
  forget_session_locked(ev);
  EvseState& st = state_[key];
  st = EvseState{};  // nothing plugged in: the EVSE is told nothing any more
  st.version = state_version_ = version;
  return Ok{};
}

void Engine::forget_session_locked(const std::string& ev) {
  auto it = ev_index_.find(ev);
  if (it == ev_index_.end()) return;
  fleet_.sessions.erase(it->second);
  ev_index_.erase(it);
}

Status Engine::forget_session(const std::string& ev) {
  std::lock_guard g(mu_);
  if (!ev_index_.count(ev)) return reject("dispatch.unknown_ev", "no session for EV " + ev);
  forget_session_locked(ev);
  return Ok{};
}

Status Engine::update_soc(const std::string& ev, double soc, std::int64_t) {
  if (!(soc >= 0 && soc <= 1)) return reject("dispatch.bad_registry", "soc must be within 0..1");
  std::lock_guard g(mu_);
  auto it = ev_index_.find(ev);
  if (it == ev_index_.end()) return reject("dispatch.unknown_ev", "no session for EV " + ev);
  fleet_.sessions.at(it->second).soc = soc;
  return Ok{};
}

std::optional<Session> Engine::session_of(const std::string& ev) const {
  std::lock_guard g(mu_);
  auto it = ev_index_.find(ev);
  if (it == ev_index_.end()) return std::nullopt;
  return fleet_.sessions.at(it->second);
}

Result<Envelope> Engine::envelope_of(const std::string& station, int evse, std::int64_t now, double duration_s) {
  std::lock_guard g(mu_);
  if (!fleet_.stations.count(station)) return reject("dispatch.unknown_station", "no station " + station);
  const std::string key = evse_key(station, evse);
  auto place = places_.find(key);
  if (place == places_.end()) return reject("dispatch.unknown_evse", "no EVSE " + key);
  return compute_envelope(envelope_input_locked(place->second, session_locked(key), now, duration_s, true));
}

Result<std::vector<EvseStatus>> Engine::station_status(const std::string& station, std::int64_t now) {
  std::lock_guard g(mu_);
  if (!fleet_.stations.count(station)) return reject("dispatch.unknown_station", "no station " + station);
  std::vector<EvseStatus> out;
  for (auto it = fleet_.evses.lower_bound(station + "#"); it != fleet_.evses.end() && it->second.station == station;
       ++it) {
    EvseStatus s;
    s.station = station;
    s.evse = it->second.id;
    auto ses = fleet_.sessions.find(it->first);
    if (ses != fleet_.sessions.end()) s.session = ses->second;
    auto st = state_.find(it->first);
    if (st != state_.end() && st->second.until > now) {
      s.lo_w = st->second.lo_w;
      s.hi_w = st->second.hi_w;
      s.until = st->second.until;
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<SiteStatus> Engine::site_status(const std::string& site, std::int64_t now) {
  std::vector<std::string> stations;
  SiteStatus out;
  {
    std::lock_guard g(mu_);
    auto it = fleet_.sites.find(site);
    if (it == fleet_.sites.end()) return reject("dispatch.unknown_site", "no site " + site);
    out.site = it->second;
    for (const auto& [id, st] : fleet_.stations)
      if (st.site == site) stations.push_back(id);
  }
  for (const auto& s : stations) {
    GT_TRY_ASSIGN(auto evses, station_status(s, now));
    for (auto& e : evses) {
      out.committed_max_w += e.hi_w;
      out.committed_min_w += e.lo_w;
      out.evses.push_back(std::move(e));
    }
  }
  return out;
}

std::size_t Engine::groups_waiting_to_sign() const {
  std::lock_guard g(turn_mu_);
  return sign_queue_.size();
}

std::vector<Decision> Engine::decisions(std::size_t max) const {
  std::lock_guard g(mu_);
  const std::size_t n = std::min(max, log_.size());
  return std::vector<Decision>(log_.end() - static_cast<std::ptrdiff_t>(n), log_.end());
}

Fleet Engine::fleet() const {
  std::lock_guard g(mu_);
  return fleet_;
}

}  // namespace gridtrust::dispatch
