// Signed OCPP commands (protocol/signed_command.h) mutated from validly signed ones.
//
// At start: a real PKI (a SoftHSM2 token in a temporary directory, the CA hierarchy,
// an aggregator signer certificate) and seed messages signed by it: two single
// commands (one with x5c) and a batch of three. An input is an edit script over the
// text of one seed (see apply_edits); its first byte picks the seed, and from 0xF0 on
// the rest of the input is the message text itself; its length picks who verifies
// (the CSMS side, the seed's own station, or another station). The edited text goes through
// parse_strict and verify_command (or verify_batch, in place of its seed's entry) with
// the store-backed signer trust.
//
// Invariants: a refusal has a well-formed code; anything that verifies carries
// exactly what was signed (the same signed payload, action, station, sequence and
// signer as its seed), whatever else the edits did; no input verifies as another
// signer's or another station's command, nor at a station it was not signed for.
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "core/digest.h"
#include "core/encoding.h"
#include "core/time.h"
#include "fuzz/fuzz_support.h"
#include "protocol/json_text.h"
#include "protocol/signed_command.h"
#include "protocol/signer_trust.h"
#include "tests/dispatch/dispatch_fixture.h"

using namespace gridtrust;
namespace json = boost::json;

namespace {

struct AcceptAll final : protocol::ReplayGuard {
  Status accept(const std::string&, const std::string&, std::uint64_t) override { return Ok{}; }
};

struct Seed {
  std::string text;
  protocol::CommandClaims claims;
  std::string payload;        // signed_payload of the seed
  std::optional<int> entry;   // its index in the batch, for batch entries
  std::int64_t issued_at = 0, expires_at = 0;
};

struct World {
  test::DispatchPki pki;
  test::SignerIdentity signer = pki.software_signer("agg-fuzz", "Fleet");
  protocol::PkiSignerResolver resolver{*pki.ca};
  std::int64_t now = to_unix(now_seconds());
  std::string fingerprint;
  std::vector<Seed> seeds;
  std::vector<json::object> batch;

  World() {
    auto request = [](double w) {
      json::object period{{"startPeriod", 0}, {"operationMode", "CentralSetpoint"}, {"setpoint", w}};
      json::object schedule{{"id", 1}, {"chargingRateUnit", "W"}, {"duration", 900},
                            {"chargingSchedulePeriod", json::array{period}}};
      json::object profile{{"id", 7}, {"stackLevel", 1}, {"chargingProfilePurpose", "TxDefaultProfile"},
                           {"chargingProfileKind", "Absolute"}, {"chargingSchedule", json::array{schedule}}};
      return json::object{{"evseId", 1}, {"chargingProfile", profile}};
    };
    auto cs = signer.command_signer();
    auto add = [&](const json::object& signed_message, const protocol::CommandClaims& claims, std::optional<int> entry) {
      auto payload = protocol::signed_payload(signed_message);
      if (!payload.ok()) fuzz::fail("seed payload: " + payload.error().message);
      seeds.push_back({json::serialize(signed_message), claims, *payload, entry, now, now + 600});
    };
    protocol::CommandClaims single{"SetChargingProfile", "CS-001", 7};
    auto one = protocol::sign_command(request(5000), cs, single, {now, 600});
    if (!one.ok()) fuzz::fail("seed: " + one.error().message);
    add(*one, single, std::nullopt);
    auto with_chain = cs;
    with_chain.chain_der = {signer.issued.record.der};
    protocol::CommandClaims chained{"SetChargingProfile", "CS-002", 9};
    auto two = protocol::sign_command(request(-3000), with_chain, chained, {now, 600, true});
    if (!two.ok()) fuzz::fail("seed: " + two.error().message);
    add(*two, chained, std::nullopt);
    std::vector<protocol::BatchItem> items;
    for (int i = 0; i < 3; ++i)
      items.push_back({request(1000.0 * (i + 1)), {"SetChargingProfile", "CS-10" + std::to_string(i), 20u + i}});
    auto b = protocol::sign_batch(items, cs, {now, 600});
    if (!b.ok()) fuzz::fail("seed batch: " + b.error().message);
    batch = *b;
    for (int i = 0; i < 3; ++i) add(batch[i], items[i].claims, i);
    // x5t#S256 of the signer's certificate, worked out here rather than taken from the
    // verifier under test.
    fingerprint = base64url_encode(sha256(signer.issued.record.der));
    // Each seed verifies as it is (otherwise the invariants below prove nothing).
    for (const auto& s : seeds) {
      auto v = verify(s, s.text);
      if (!v.ok()) fuzz::fail("seed does not verify: " + v.error().code + ": " + v.error().message, s.text);
      if (v->signer_fingerprint != fingerprint) fuzz::fail("seed verified as " + v->signer_fingerprint, s.text);
    }
  }

  // `as_station`: verified as that station would (VerifyOptions::station), or as the
  // CSMS side (none).
  Result<protocol::VerifiedCommand> verify(const Seed& seed, const std::string& text,
                                           std::optional<std::string> as_station = std::nullopt) {
    auto parsed = protocol::parse_strict(text);
    if (!parsed.ok()) return parsed.error();
    if (!parsed->is_object()) return reject("verify.malformed", "not an object");
    protocol::VerifyOptions o;
    o.now = now;
    o.action = "SetChargingProfile";
    o.station = std::move(as_station);
    AcceptAll replay;
    if (!seed.entry) return protocol::verify_command(parsed->as_object(), o, resolver, replay);
    auto entries = batch;
    entries[*seed.entry] = parsed->as_object();
    auto all = protocol::verify_batch(entries, o, resolver, replay);
    if (!all.ok()) return all.error();
    return (*all)[*seed.entry];
  }
};

World& world() {
  static World w;
  return w;
}

const char* const kDictionary[] = {"\"", "\\", "{}", "[]", ",", ":", "null", "0", "-0", "1e309", "\"none\"",
                                   "\"HS256\"", "\"ES384\"", "\"alg\"", "\"kid\"", "\"x5c\"", "\"x5t#S256\"",
                                   "\"seq\"", "\"sta\"", "\"act\"", "\"iat\"", "\"exp\"", "\"crit\"", "\"b64\"",
                                   "\"signature\"", "\"protected\"", "\"customData\"", "\"vendorId\"", "\"batch\"",
                                   "\"path\"", "\"index\"", "\"size\"", "AAAA", "=", "."};

// Edits, each: op (byte % 4), position (2 bytes, little-endian, modulo the length + 1),
// count (byte % 16), then for ops 0-1 that many bytes. 0: overwrite, 1: insert,
// 2: delete, 3: insert the dictionary word given by the count.
std::string apply_edits(std::string text, const std::uint8_t* p, const std::uint8_t* end) {
  while (end - p >= 4) {
    const int op = p[0] % 4;
    const std::size_t at = (p[1] | (static_cast<std::size_t>(p[2]) << 8)) % (text.size() + 1);
    const std::size_t n = p[3] % 16;
    p += 4;
    if (op == 0 || op == 1) {
      const std::size_t k = std::min<std::size_t>(n, static_cast<std::size_t>(end - p));
      const std::string bytes(reinterpret_cast<const char*>(p), k);
      p += k;
      if (op == 0) text.replace(at, std::min(k, text.size() - at), bytes);
      else text.insert(at, bytes);
    } else if (op == 2) {
      text.erase(at, n);
    } else {
      text.insert(at, kDictionary[n % std::size(kDictionary)]);
    }
  }
  return text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  World& w = world();
  const Seed& seed = w.seeds[data[0] % w.seeds.size()];
  const std::string text = data[0] >= 0xF0 ? std::string(reinterpret_cast<const char*>(data + 1), size - 1)
                                           : apply_edits(seed.text, data + 1, data + size);
  // Verified as the CSMS would, as the seed's own station would, or as another
  // station (which must never accept it), by the input's length.
  std::optional<std::string> as_station;
  if (size % 3 == 1) as_station = seed.claims.station;
  if (size % 3 == 2) as_station = "CS-999";
  auto v = w.verify(seed, text, as_station);
  if (as_station == "CS-999") FUZZ_CHECK(!v.ok(), "another station's command verified at CS-999");
  if (!v.ok()) {
    FUZZ_CHECK(fuzz::well_formed_code(v.error().code), "refusal code '" + v.error().code + "'");
    FUZZ_CHECK(v.error().code != "internal.error", v.error().message);
    return 0;
  }
  // Verified: it must say exactly what a seed said (its own seed; for raw text, any
  // seed of the same kind, since a raw copy of another seed is still genuine).
  auto parsed = protocol::parse_strict(text);
  FUZZ_CHECK(parsed.ok() && parsed->is_object(), "verified, yet not an object");
  auto payload = protocol::signed_payload(parsed->as_object());
  FUZZ_CHECK(payload.ok(), "verified, yet no signed payload");
  const Seed* match = nullptr;
  for (const Seed& s : w.seeds)
    if ((&s == &seed || (data[0] >= 0xF0 && s.entry == seed.entry)) && s.payload == *payload) match = &s;
  FUZZ_CHECK(match, "verified with a payload nobody signed: " + *payload);
  FUZZ_CHECK(v->claims.action == match->claims.action, "verified with another action: " + v->claims.action);
  FUZZ_CHECK(v->claims.station == match->claims.station, "verified for another station: " + v->claims.station);
  FUZZ_CHECK(v->claims.seq == match->claims.seq, "verified with another sequence: " + std::to_string(v->claims.seq));
  FUZZ_CHECK(v->issued_at == match->issued_at && v->expires_at == match->expires_at, "verified with other times");
  FUZZ_CHECK(v->signer_fingerprint == w.fingerprint, "verified as another signer: " + v->signer_fingerprint);
  if (match->entry) {
    FUZZ_CHECK(v->batch_index && *v->batch_index == static_cast<std::size_t>(*match->entry) && v->batch_size == 3,
               "verified at another place in its batch");
  } else {
    FUZZ_CHECK(!v->batch_index && v->batch_size == 1, "a single command verified as a batch entry");
  }
  return 0;
}
