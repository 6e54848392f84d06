#include "cli/command_signing.h"

#include "core/digest.h"
#include "core/time.h"

namespace gridtrust::app {
namespace json = boost::json;

namespace {

const char* kSignerProfile = "aggregator-signer";

json::object report(const protocol::VerifiedCommand& v) {
  json::object o{{"ok", true},
                 {"action", v.claims.action},
                 {"station", v.claims.station},
                 {"seq", v.claims.seq},
                 {"issued_at", v.issued_at},
                 {"expires_at", v.expires_at},
                 {"signer", v.signer_fingerprint},
                 {"signer_subject", v.signer_subject}};
  if (v.batch_index) {
    o["batch_index"] = *v.batch_index;
    o["batch_size"] = v.batch_size;
  }
  return o;
}

Result<std::string> string_field(const json::object& o, const char* name, std::size_t i) {
  const json::value* v = o.if_contains(name);
  if (!v || !v->is_string())
    return reject("usage.bad_input", "batch item " + std::to_string(i) + " needs a string \"" + name + "\"");
  return std::string(v->get_string());
}

}  // namespace

CommandService::CommandService(pki::CertificateAuthority& ca, std::uint64_t seq_block,
                               std::function<TimePoint()> now)
    : ca_(ca), seq_block_(seq_block == 0 ? 1 : seq_block), now_(std::move(now)), resolver_(ca, kSignerProfile),
      replay_(ca.store()) {}

Status CommandService::use_signer(std::optional<std::string> serial) {
  std::unique_lock swap(swap_mu_);
  std::lock_guard g(mu_);
  stale_ = false;
  store::CertificateFilter f;
  f.profile = kSignerProfile;
  GT_TRY_ASSIGN(auto rows, ca_.store().list(f));
  const std::int64_t now = to_unix(now_());
  const store::CertificateRecord* chosen = nullptr;
  for (const auto& r : rows) {
    if (serial) {
      if (r.serial == *serial) chosen = &r;
      continue;
    }
    if (r.status != "valid" || !r.key_id || now < r.not_before || now >= r.not_after) continue;
    if (!chosen || r.not_before > chosen->not_before || (r.not_before == chosen->not_before && r.issued_at > chosen->issued_at))
      chosen = &r;
  }
  if (serial && !chosen) return reject("notfound.certificate", "no aggregator-signer certificate with serial " + *serial);
  if (!chosen)
    return reject("commands.no_signer", "no valid aggregator-signer certificate with a key in the token; issue one with "
                                        "`gridtrust issue --profile aggregator-signer --subject CN=..,O=.. --generate-key`");
  if (chosen->status != "valid") return reject("commands.signer_not_usable", "the signer certificate is revoked");
  if (!chosen->key_id) return reject("commands.signer_not_usable", "the signer's key is not in the token");
  if (now < chosen->not_before || now >= chosen->not_after)
    return reject("commands.signer_not_usable", "the signer certificate is outside its validity");
  GT_TRY_ASSIGN(hsm::KeyRef key, ca_.token()->find_key_by_id(*chosen->key_id));
  GT_TRY_ASSIGN(auto chain, ca_.chain(kSignerProfile));
  chain_der_.clear();
  chain_der_.push_back(chosen->der);
  for (std::size_t i = 0; i + 1 < chain.size(); ++i) chain_der_.push_back(chain[i]);  // without the root
  signer_ = std::make_unique<hsm::HsmSigner>(ca_.token(), std::move(key));
  signer_der_ = chosen->der;
  fingerprint_ = base64url_encode(sha256(signer_der_));
  blocks_.clear();
  return Ok{};
}

Status CommandService::ensure_signer() {
  {
    std::lock_guard g(mu_);
    if (signer_ && !stale_) return Ok{};
  }
  return use_signer(std::nullopt);
}

Result<std::uint64_t> CommandService::next_seq(const std::string& station) {
  std::lock_guard g(mu_);
  Block& b = blocks_[station];
  if (b.next == b.end) {
    GT_TRY_ASSIGN(std::uint64_t first, ca_.store().reserve_sequences(fingerprint_, station, seq_block_));
    b.next = first;
    b.end = first + seq_block_;
  }
  return b.next++;
}

Status CommandService::reserve_for(const std::vector<std::string>& stations) {
  std::lock_guard g(mu_);
  std::map<std::string, std::uint64_t> need;
  for (const auto& s : stations) ++need[s];
  std::vector<std::string> short_of;
  for (const auto& [station, n] : need) {
    const Block& b = blocks_[station];
    if (b.end - b.next >= n) continue;
    // What is left of the current block is skipped: fresh blocks for all n.
    for (std::uint64_t got = 0; got < n; got += seq_block_) short_of.push_back(station);
  }
  if (short_of.empty()) return Ok{};
  // One durable commit for every station of the batch that ran out; a station's
  // blocks of one commit are contiguous, and what was left of its old block is skipped.
  GT_TRY_ASSIGN(auto firsts, ca_.store().reserve_sequence_blocks(fingerprint_, short_of, seq_block_));
  std::map<std::string, Block> fresh;
  for (std::size_t i = 0; i < short_of.size(); ++i) {
    auto [it, inserted] = fresh.try_emplace(short_of[i], Block{firsts[i], firsts[i] + seq_block_});
    if (!inserted) it->second.end = firsts[i] + seq_block_;
  }
  for (auto& [station, block] : fresh) blocks_[station] = block;
  return Ok{};
}

Result<json::object> CommandService::sign(json::object message, const SignParameters& p) {
  GT_TRY(ensure_signer());
  // Before a number is spent on it. (Every caller has bounded the lifetime already:
  // --lifetime, lifetime_s, dispatch.command_lifetime_s.)
  GT_TRY(protocol::check_sign_target(p.action, p.station));
  std::shared_lock swap(swap_mu_);
  GT_TRY_ASSIGN(std::uint64_t seq, next_seq(p.station));
  protocol::CommandSigner signer{*signer_, signer_der_, chain_der_};
  return protocol::sign_command(std::move(message), signer, {p.action, p.station, seq},
                                {to_unix(now_()), p.lifetime_s, p.include_x5c});
}

Result<json::array> CommandService::sign_batch(const json::array& items, std::int64_t lifetime_s, bool include_x5c) {
  GT_TRY(ensure_signer());
  if (items.empty()) return reject("sign.bad_claims", "a batch needs at least one message");
  std::vector<protocol::BatchItem> batch;
  batch.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_object()) return reject("usage.bad_input", "batch item " + std::to_string(i) + " is not an object");
    const json::object& item = items[i].get_object();
    GT_TRY_ASSIGN(std::string action, string_field(item, "action", i));
    GT_TRY_ASSIGN(std::string station, string_field(item, "station", i));
    const json::value* message = item.if_contains("message");
    if (!message || !message->is_object())
      return reject("usage.bad_input", "batch item " + std::to_string(i) + " needs an object \"message\"");
    batch.push_back({message->get_object(), {std::move(action), std::move(station), 0}});
  }
  GT_TRY_ASSIGN(auto signed_entries, sign_items(std::move(batch), lifetime_s, include_x5c));
  json::array out;
  out.reserve(signed_entries.size());
  for (auto& e : signed_entries) out.push_back(std::move(e));
  return out;
}

Result<std::vector<json::object>> CommandService::sign_items(std::vector<protocol::BatchItem> items,
                                                             std::int64_t lifetime_s, bool include_x5c) {
  GT_TRY(ensure_signer());
  if (items.empty()) return reject("sign.bad_claims", "a batch needs at least one message");
  // Checked before sequence numbers are reserved for them.
  for (const auto& item : items) GT_TRY(protocol::check_sign_target(item.claims.action, item.claims.station));
  std::shared_lock swap(swap_mu_);
  std::vector<std::string> stations;
  stations.reserve(items.size());
  for (const auto& item : items) stations.push_back(item.claims.station);
  GT_TRY(reserve_for(stations));
  for (auto& item : items) {
    GT_TRY_ASSIGN(item.claims.seq, next_seq(item.claims.station));
  }
  protocol::CommandSigner signer{*signer_, signer_der_, chain_der_};
  return protocol::sign_batch(std::move(items), signer, {to_unix(now_()), lifetime_s, include_x5c});
}

protocol::VerifyOptions CommandService::options(const VerifyParameters& p) const {
  protocol::VerifyOptions o;
  o.now = to_unix(now_());
  o.station = p.station;
  o.action = p.action;
  o.max_lifetime_s = p.max_lifetime_s;
  o.max_clock_skew_s = p.max_clock_skew_s;
  return o;
}

Result<json::object> CommandService::verify(const json::object& message, const VerifyParameters& p) {
  GT_TRY_ASSIGN(protocol::VerifiedCommand v, protocol::verify_command(message, options(p), resolver_, replay_));
  return report(v);
}

Result<json::array> CommandService::verify_batch(const json::array& messages, const VerifyParameters& p) {
  std::vector<json::object> entries;
  entries.reserve(messages.size());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].is_object()) return reject("verify.malformed", "batch entry " + std::to_string(i) + " is not an object");
    entries.push_back(messages[i].get_object());
  }
  GT_TRY_ASSIGN(auto verified, protocol::verify_batch(entries, options(p), resolver_, replay_));
  json::array out;
  for (const auto& v : verified) out.push_back(report(v));
  return out;
}

}  // namespace gridtrust::app
