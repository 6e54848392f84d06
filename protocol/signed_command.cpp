#include "protocol/signed_command.h"

#include <algorithm>
#include <array>
#include <limits>

#include "core/digest.h"
#include "protocol/jcs.h"
#include "protocol/jws.h"

namespace gridtrust::protocol {
namespace json = boost::json;

Status check_sign_target(std::string_view action, std::string_view station) {
  if (action.empty() || action.size() > 64) return reject("sign.bad_claims", "action must be 1 to 64 characters");
  if (station.empty() || station.size() > 255) return reject("sign.bad_claims", "station must be 1 to 255 characters");
  return Ok{};
}

namespace {

std::string fingerprint_of(const Bytes& der) { return base64url_encode(sha256(der)); }

Status check_claims(const CommandClaims& c) {
  GT_TRY(check_sign_target(c.action, c.station));
  if (c.seq == 0 || c.seq > (1ULL << 53))
    return reject("sign.bad_claims", "sequence number must be between 1 and 2^53");
  return Ok{};
}

Status check_times(const SignTimes& t) {
  if (t.lifetime_s <= 0) return reject("sign.bad_claims", "lifetime must be positive");
  if (t.issued_at <= 0) return reject("sign.bad_claims", "issue time must be positive");
  return Ok{};
}

// The message as signed: customData removed; refuses another vendor's customData.
Result<json::object> strip_for_signing(json::object message) {
  if (auto it = message.find("customData"); it != message.end()) {
    const json::value& cd = it->value();
    const json::value* vendor = cd.is_object() ? cd.get_object().if_contains("vendorId") : nullptr;
    if (!vendor || !vendor->is_string() || vendor->get_string() != kVendorId)
      return reject("sign.custom_data_in_use",
                    "the message's customData belongs to another vendor; OCPP allows one customData object");
    message.erase(it);
  }
  if (!numbers_exact_in_javascript(message))
    return reject("sign.inexact_number", "the message holds an integer beyond 2^53 that JavaScript verifiers would round");
  return message;
}

json::object base_header(const CommandSigner& s, const SignTimes& t) {
  json::object h;
  h["x5t#S256"] = fingerprint_of(s.certificate_der);
  if (t.include_x5c) {
    json::array x5c;
    for (const Bytes& der : s.chain_der) x5c.push_back(json::string(base64_encode(der)));
    h["x5c"] = std::move(x5c);
  }
  h["iat"] = t.issued_at;
  h["exp"] = t.issued_at + t.lifetime_s;
  return h;
}

// ---- verification helpers ----

// Views into the message, which outlives the envelope.
struct Envelope {
  const json::object* message;  // signed over without its customData
  std::string_view signature;   // customData.signature
  const json::object* batch;    // customData.batch, when the message is a batch entry
};

Result<Envelope> open_envelope(const json::object& message) {
  auto it = message.find("customData");
  if (it == message.end()) return reject("verify.unsigned", "the message has no customData signature");
  if (!it->value().is_object()) return reject("verify.malformed", "customData is not an object");
  const json::value *vendor = nullptr, *sig = nullptr, *b = nullptr;
  for (const auto& m : it->value().get_object()) {  // one pass: a batch has thousands of these
    const std::string_view k = m.key();
    if (k == "vendorId") vendor = &m.value();
    else if (k == "signature") sig = &m.value();
    else if (k == "batch") b = &m.value();
  }
  if (!vendor || !vendor->is_string() || vendor->get_string() != kVendorId)
    return reject("verify.unsigned", "customData is not from vendor org.gridtrust");
  if (!sig || !sig->is_string()) return reject("verify.unsigned", "customData has no signature string");
  Envelope e;
  e.signature = sig->get_string();
  e.batch = nullptr;
  if (b) {
    if (!b->is_object()) return reject("verify.malformed", "customData.batch is not an object");
    e.batch = &b->get_object();
  }
  e.message = &message;
  return e;
}

// `v` is the member `name` of `where`, null when absent.
Result<std::int64_t> int_value(const json::value* v, const char* name, const char* where) {
  if (!v) return reject("verify.malformed", std::string(where) + " has no " + name);
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(v->get_uint64());
  return reject("verify.malformed", std::string(where) + "." + name + " is not an integer");
}

Result<std::int64_t> int_member(const json::object& o, const char* name, const char* where) {
  return int_value(o.if_contains(name), name, where);
}

Result<std::string> string_value(const json::value* v, const char* name, const char* where) {
  if (!v || !v->is_string() || v->get_string().empty())
    return reject("verify.malformed", std::string(where) + " has no " + name + " string");
  return std::string(v->get_string());
}

Result<CommandClaims> claims_of(const json::value* action, const json::value* station, const json::value* seq,
                                const char* where) {
  CommandClaims c;
  GT_TRY_ASSIGN(c.action, string_value(action, "action", where));
  GT_TRY_ASSIGN(c.station, string_value(station, "station", where));
  GT_TRY_ASSIGN(std::int64_t n, int_value(seq, "seq", where));
  if (n <= 0) return reject("verify.malformed", std::string(where) + ".seq must be positive");
  c.seq = static_cast<std::uint64_t>(n);
  return c;
}

Result<CommandClaims> claims_from(const json::object& o, const char* where) {
  return claims_of(o.if_contains("action"), o.if_contains("station"), o.if_contains("seq"), where);
}

Result<std::vector<Bytes>> x5c_of(const json::object& header) {
  std::vector<Bytes> out;
  const json::value* v = header.if_contains("x5c");
  if (!v) return out;
  if (!v->is_array() || v->get_array().empty() || v->get_array().size() > 8)
    return reject("jws.malformed", "x5c must be an array of 1 to 8 certificates");
  for (const auto& e : v->get_array()) {
    auto der = e.is_string() ? base64_decode(e.get_string()) : std::nullopt;
    if (!der || der->empty()) return reject("jws.malformed", "x5c entry is not base64 DER");
    out.push_back(std::move(*der));
  }
  return out;
}

struct Signed {
  DetachedJws jws;
  std::shared_ptr<const SignerCertificate> signer;
  std::int64_t iat = 0, exp = 0;
};

// JWS form and signer lookup, shared by single and batch verification.
Result<Signed> locate_signer(std::string_view signature, SignerResolver& resolver) {
  Signed s;
  GT_TRY_ASSIGN(s.jws, parse_detached(signature));
  const json::value* x5t = s.jws.header.if_contains("x5t#S256");
  if (!x5t || !x5t->is_string() || x5t->get_string().empty())
    return reject("jws.malformed", "JWS header has no x5t#S256");
  GT_TRY_ASSIGN(auto x5c, x5c_of(s.jws.header));
  GT_TRY_ASSIGN(s.signer, resolver.find(std::string(x5t->get_string()), x5c));
  GT_TRY_ASSIGN(s.iat, int_member(s.jws.header, "iat", "JWS header"));
  GT_TRY_ASSIGN(s.exp, int_member(s.jws.header, "exp", "JWS header"));
  return s;
}

Status check_fresh(const Signed& s, const VerifyOptions& o) {
  if (s.exp <= s.iat) return reject("verify.malformed", "JWS exp is not after iat");
  if (s.exp - s.iat > o.max_lifetime_s)
    return reject("verify.lifetime_too_long", "the signature is valid for " + std::to_string(s.exp - s.iat) +
                                                  " s, more than the allowed " + std::to_string(o.max_lifetime_s) + " s");
  if (s.iat > o.now + o.max_clock_skew_s)
    return reject("verify.not_yet_valid", "the signature's issue time is " + std::to_string(s.iat - o.now) +
                                              " s in the future");
  if (o.now >= s.exp)
    return reject("verify.expired", "the signature expired " + std::to_string(o.now - s.exp) + " s ago");
  return Ok{};
}

Status check_target(const CommandClaims& c, const VerifyOptions& o) {
  if (o.station && *o.station != c.station)
    return reject("verify.wrong_station", "the command targets station '" + c.station + "', not '" + *o.station + "'");
  if (o.action && *o.action != c.action)
    return reject("verify.wrong_action", "the command was signed as " + c.action + ", not " + *o.action);
  return Ok{};
}

VerifiedCommand result_of(const Signed& s, CommandClaims claims) {
  VerifiedCommand v;
  v.claims = std::move(claims);
  v.issued_at = s.iat;
  v.expires_at = s.exp;
  v.signer_fingerprint = s.signer->fingerprint;
  v.signer_subject = s.signer->subject;
  return v;
}

struct BatchPosition {
  std::size_t index = 0;
  std::size_t size = 0;
  std::vector<Hash256> path;                     // decoded when asked for
  const json::array* path_entries = nullptr;     // as given
  CommandClaims claims;
};

// base64url character values, -1 for anything else.
constexpr auto kBase64UrlValue = [] {
  std::array<std::int8_t, 256> v{};
  v.fill(-1);
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (int i = 0; i < 64; ++i) v[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return v;
}();

// What base64url_decode accepts as 32 bytes: 43 characters of the URL alphabet (the
// last one's two low bits unused).
constexpr std::size_t kHashText = 43;
bool is_hash_text(std::string_view text) {
  if (text.size() != kHashText) return false;
  int any_bad = 0;
  for (char c : text) any_bad |= kBase64UrlValue[static_cast<unsigned char>(c)];
  return any_bad >= 0;
}

// The same, decoded without allocating.
bool decode_hash(std::string_view text, Hash256& out) {
  if (!is_hash_text(text)) return false;
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  std::uint8_t* o = out.data();
  auto value = [](unsigned char c) { return static_cast<std::uint32_t>(kBase64UrlValue[c]); };
  for (int group = 0; group < 10; ++group, in += 4, o += 3) {  // 40 characters: 30 bytes
    const std::uint32_t v = value(in[0]) << 18 | value(in[1]) << 12 | value(in[2]) << 6 | value(in[3]);
    o[0] = static_cast<std::uint8_t>(v >> 16);
    o[1] = static_cast<std::uint8_t>(v >> 8);
    o[2] = static_cast<std::uint8_t>(v);
  }
  const std::uint32_t v = value(in[0]) << 18 | value(in[1]) << 12 | value(in[2]) << 6;  // 3 characters: 2 bytes
  o[0] = static_cast<std::uint8_t>(v >> 16);
  o[1] = static_cast<std::uint8_t>(v >> 8);
  return true;
}

// `decode_path`: verify_command needs the path as hashes; verify_batch compares it with
// the tree it rebuilds (BatchTree::leads_to_root) once the signature is verified.
Result<BatchPosition> batch_position(const json::object& b, bool decode_path) {
  // One pass over the members (a batch entry has thousands of siblings to check).
  const json::value *index_v = nullptr, *size_v = nullptr, *action = nullptr, *station = nullptr, *seq = nullptr,
                    *path = nullptr;
  for (const auto& m : b) {
    const std::string_view k = m.key();
    if (k == "index") index_v = &m.value();
    else if (k == "size") size_v = &m.value();
    else if (k == "path") path = &m.value();
    else if (k == "action") action = &m.value();
    else if (k == "station") station = &m.value();
    else if (k == "seq") seq = &m.value();
  }
  BatchPosition p;
  GT_TRY_ASSIGN(std::int64_t index, int_value(index_v, "index", "customData.batch"));
  GT_TRY_ASSIGN(std::int64_t size, int_value(size_v, "size", "customData.batch"));
  if (size < 1 || size > (1 << 20) || index < 0 || index >= size)
    return reject("batch.bad_path", "batch index/size out of range");
  p.index = static_cast<std::size_t>(index);
  p.size = static_cast<std::size_t>(size);
  GT_TRY_ASSIGN(p.claims, claims_of(action, station, seq, "customData.batch"));
  if (!path || !path->is_array() || path->get_array().size() > 64)
    return reject("batch.bad_path", "customData.batch.path must be an array of hashes");
  p.path_entries = &path->get_array();
  if (!decode_path) return p;
  p.path.reserve(path->get_array().size());
  for (const auto& e : path->get_array()) {
    Hash256 x;
    if (!e.is_string() || !decode_hash(e.get_string(), x))
      return reject("batch.bad_path", "inclusion path entry is not a base64url SHA-256");
    p.path.push_back(x);
  }
  return p;
}

// A batch's tree rebuilt from all its entries, with the base64url text of every node
// below the root: an entry's inclusion path is compared as text, not decoded.
class BatchTree {
 public:
  explicit BatchTree(const std::vector<Hash256>& leaves) : levels_(merkle_levels(leaves)) {
    texts_.resize(levels_.size() - 1);
    for (std::size_t l = 0; l + 1 < levels_.size(); ++l) {
      texts_[l].reserve(levels_[l].size() * kHashText);
      for (const Hash256& h : levels_[l])
        append_base64url(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()), texts_[l]);
    }
  }
  const Hash256& root() const { return levels_.back().front(); }

  // Leaf `index`'s inclusion path as the entry carries it.
  json::array path_of(std::size_t index) const {
    json::array path;
    path.reserve(levels_.size() - 1);
    for (std::size_t l = 0; l + 1 < levels_.size(); ++l, index /= 2) {
      const std::size_t sibling = index ^ 1;
      if (sibling < levels_[l].size()) path.emplace_back(std::string_view(texts_[l]).substr(sibling * kHashText, kHashText));
    }
    return path;
  }

  // Whether `path` is leaf `index`'s inclusion path, each entry a base64url SHA-256
  // (decoded when its text is not the canonical one, as verify_command would accept).
  bool leads_to_root(const json::array& path, std::size_t index) const {
    std::size_t k = 0;
    for (std::size_t l = 0; l + 1 < levels_.size(); ++l, index /= 2) {
      const std::size_t sibling = index ^ 1;
      if (sibling >= levels_[l].size()) continue;  // carried up without a sibling
      if (k == path.size() || !path[k].is_string()) return false;
      const std::string_view given = path[k++].get_string();
      if (given == std::string_view(texts_[l]).substr(sibling * kHashText, kHashText)) continue;
      Hash256 h;
      if (!decode_hash(given, h) || h != levels_[l][sibling]) return false;
    }
    return k == path.size();
  }

 private:
  std::vector<std::vector<Hash256>> levels_;
  std::vector<std::string> texts_;  // per level below the root, kHashText characters per node
};

// The JCS form of {"action","message","seq","station"} (members already in JCS order)
// built around the message's own canonical form, without copying the message.
Status leaf_text_into(const json::object& message, const CommandClaims& claims, std::string& leaf) {
  leaf += "{\"action\":";
  append_canonical_string(claims.action, leaf);
  leaf += ",\"message\":";
  GT_TRY(canonicalize_without_into(message, "customData", leaf));
  leaf += ",\"seq\":";
  append_canonical_number(static_cast<double>(claims.seq), leaf);
  leaf += ",\"station\":";
  append_canonical_string(claims.station, leaf);
  leaf += "}";
  return Ok{};
}

Result<std::string> leaf_text(const json::object& message, const CommandClaims& claims) {
  std::string leaf;
  GT_TRY(leaf_text_into(message, claims, leaf));
  return leaf;
}

// A per-thread buffer for canonical texts that are hashed or verified and dropped: a
// batch builds one per entry.
std::string& scratch_text() {
  thread_local std::string text;
  text.clear();
  if (text.capacity() > (1u << 20)) text.shrink_to_fit();  // one huge message keeps no huge buffer
  return text;
}

Result<Hash256> leaf_of(const json::object& message, const CommandClaims& claims) {
  std::string& leaf = scratch_text();
  GT_TRY(leaf_text_into(message, claims, leaf));
  return merkle_leaf_hash(leaf);
}

Status check_batch_header(const Signed& s, std::size_t size) {
  GT_TRY_ASSIGN(std::int64_t n, int_member(s.jws.header, "batch", "JWS header"));
  if (n < 1 || static_cast<std::size_t>(n) != size)
    return reject("batch.bad_path", "the entry's batch size differs from the signed one");
  return Ok{};
}

}  // namespace

Result<std::string> signed_payload(const json::object& message) {
  return canonicalize_without(message, "customData");
}

Result<std::string> batch_leaf(const json::object& message, const CommandClaims& claims) {
  return leaf_text(message, claims);
}

Result<json::object> sign_command(json::object message, const CommandSigner& signer, const CommandClaims& claims,
                                  const SignTimes& times) {
  GT_TRY(check_claims(claims));
  GT_TRY(check_times(times));
  GT_TRY_ASSIGN(json::object payload, strip_for_signing(std::move(message)));
  GT_TRY_ASSIGN(std::string canonical, canonicalize(payload));
  json::object header = base_header(signer, times);
  header["action"] = claims.action;
  header["station"] = claims.station;
  header["seq"] = claims.seq;
  GT_TRY_ASSIGN(std::string jws, sign_detached(signer.signer, std::move(header), canonical));
  payload["customData"] = json::object{{"vendorId", kVendorId}, {"signature", std::move(jws)}};
  return payload;
}

Result<std::vector<json::object>> sign_batch(std::vector<BatchItem> items, const CommandSigner& signer,
                                             const SignTimes& times) {
  if (items.empty()) return reject("sign.bad_claims", "a batch needs at least one message");
  if (items.size() > (1u << 20)) return reject("sign.bad_claims", "a batch holds at most 2^20 messages");
  GT_TRY(check_times(times));
  std::vector<json::object> payloads;
  std::vector<Hash256> leaves;
  payloads.reserve(items.size());
  leaves.reserve(items.size());
  for (auto& item : items) {
    GT_TRY(check_claims(item.claims));
    GT_TRY_ASSIGN(json::object payload, strip_for_signing(std::move(item.message)));
    GT_TRY_ASSIGN(Hash256 leaf, leaf_of(payload, item.claims));
    leaves.push_back(leaf);
    payloads.push_back(std::move(payload));
  }
  const BatchTree tree(leaves);
  const Hash256& root = tree.root();
  json::object header = base_header(signer, times);
  header["batch"] = items.size();
  GT_TRY_ASSIGN(std::string jws, sign_detached(signer.signer, std::move(header),
                                               std::string_view(reinterpret_cast<const char*>(root.data()), root.size())));
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    json::object batch{{"index", i},
                       {"size", payloads.size()},
                       {"path", tree.path_of(i)},
                       {"action", items[i].claims.action},
                       {"station", items[i].claims.station},
                       {"seq", items[i].claims.seq}};
    payloads[i]["customData"] = json::object{{"vendorId", kVendorId}, {"signature", jws}, {"batch", std::move(batch)}};
  }
  return payloads;
}

Result<VerifiedCommand> verify_command(const json::object& message, const VerifyOptions& options,
                                       SignerResolver& resolver, ReplayGuard& replay) {
  GT_TRY_ASSIGN(Envelope env, open_envelope(message));
  GT_TRY_ASSIGN(Signed s, locate_signer(env.signature, resolver));
  CommandClaims claims;
  std::optional<BatchPosition> position;
  if (env.batch) {
    GT_TRY_ASSIGN(position, batch_position(*env.batch, true));  // the path as hashes
    GT_TRY(check_batch_header(s, position->size));
    GT_TRY_ASSIGN(Hash256 leaf, leaf_of(*env.message, position->claims));
    GT_TRY_ASSIGN(Hash256 root, merkle_root_from_path(leaf, position->index, position->size, position->path));
    GT_TRY(verify_detached(s.jws, std::string_view(reinterpret_cast<const char*>(root.data()), root.size()),
                           s.signer->key.get()));
    claims = position->claims;
  } else {
    if (s.jws.header.contains("batch"))
      return reject("batch.bad_path", "a batch signature without the entry's inclusion path");
    std::string& canonical = scratch_text();
    GT_TRY(canonicalize_without_into(*env.message, "customData", canonical));
    GT_TRY(verify_detached(s.jws, canonical, s.signer->key.get()));
    GT_TRY_ASSIGN(claims, claims_from(s.jws.header, "JWS header"));
  }
  GT_TRY(resolver.judge(*s.signer, options.now));
  GT_TRY(check_fresh(s, options));
  GT_TRY(check_target(claims, options));
  GT_TRY(replay.accept(s.signer->fingerprint, claims.station, claims.seq));
  VerifiedCommand v = result_of(s, std::move(claims));
  if (position) {
    v.batch_index = position->index;
    v.batch_size = position->size;
  }
  return v;
}

Result<std::vector<VerifiedCommand>> verify_batch(const std::vector<json::object>& entries,
                                                  const VerifyOptions& options, SignerResolver& resolver,
                                                  ReplayGuard& replay) {
  if (entries.empty()) return reject("batch.bad_path", "an empty batch");
  const std::size_t n = entries.size();
  std::vector<Hash256> leaves(n);
  std::vector<char> seen(n, 0);
  std::vector<CommandClaims> claims(n);
  std::vector<std::size_t> index_of(n);
  std::vector<const json::array*> path_of(n);
  std::string_view signature;
  for (std::size_t i = 0; i < n; ++i) {
    GT_TRY_ASSIGN(Envelope env, open_envelope(entries[i]));
    if (!env.batch) return reject("batch.bad_path", "entry " + std::to_string(i) + " is not a batch entry");
    if (i == 0) signature = env.signature;
    else if (env.signature != signature)
      return reject("batch.mixed", "entry " + std::to_string(i) + " carries another batch's signature");
    GT_TRY_ASSIGN(BatchPosition pos, batch_position(*env.batch, false));
    if (pos.size != n)
      return reject("batch.incomplete", "the batch has " + std::to_string(pos.size) + " entries, " +
                                            std::to_string(n) + " were given");
    if (seen[pos.index]) return reject("batch.mixed", "two entries claim index " + std::to_string(pos.index));
    seen[pos.index] = 1;
    GT_TRY_ASSIGN(leaves[pos.index], leaf_of(*env.message, pos.claims));
    claims[i] = std::move(pos.claims);
    index_of[i] = pos.index;
    path_of[i] = pos.path_entries;
  }
  GT_TRY_ASSIGN(Signed s, locate_signer(signature, resolver));
  GT_TRY(check_batch_header(s, n));
  const BatchTree tree(leaves);
  const Hash256& root = tree.root();
  GT_TRY(verify_detached(s.jws, std::string_view(reinterpret_cast<const char*>(root.data()), root.size()),
                         s.signer->key.get()));
  // Each entry must also verify on its own, as the station it goes to checks it.
  for (std::size_t i = 0; i < n; ++i)
    if (!tree.leads_to_root(*path_of[i], index_of[i]))
      return reject("batch.bad_path", "entry " + std::to_string(i) + "'s inclusion path does not lead to the signed root");
  GT_TRY(resolver.judge(*s.signer, options.now));
  GT_TRY(check_fresh(s, options));
  std::vector<VerifiedCommand> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) GT_TRY(check_target(claims[i], options));
  for (std::size_t i = 0; i < n; ++i) {
    GT_TRY(replay.accept(s.signer->fingerprint, claims[i].station, claims[i].seq));
    VerifiedCommand v = result_of(s, std::move(claims[i]));
    v.batch_index = index_of[i];
    v.batch_size = n;
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace gridtrust::protocol
