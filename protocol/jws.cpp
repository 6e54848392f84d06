#include "protocol/jws.h"

#include <array>
#include <optional>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>

#include "core/openssl_ptr.h"
#include "protocol/jcs.h"
#include "protocol/json_text.h"

namespace gridtrust::protocol {
namespace json = boost::json;

namespace {

// Bytes per half of r||s: the curve order's size.
std::size_t half_size(JwsAlgorithm a) {
  switch (a) {
    case JwsAlgorithm::ES256: return 32;
    case JwsAlgorithm::ES384: return 48;
    case JwsAlgorithm::ES512: return 66;
    case JwsAlgorithm::EdDSA: return 0;
  }
  return 0;
}

// What base64url_decode accepts (the URL alphabet, no padding, not 1 mod 4 long), with
// one pass and no intermediate copies: a message's signature header is decoded per
// verification.
std::optional<Bytes> decode_base64url(std::string_view text) {
  static constexpr auto kValue = [] {
    std::array<std::int8_t, 256> v{};
    v.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 64; ++i) v[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return v;
  }();
  if (text.size() % 4 == 1) return std::nullopt;
  Bytes out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const int v = kValue[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    bits = (bits << 6 | static_cast<std::uint32_t>(v)) & 0xFFFFFF;
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<std::uint8_t>(bits >> count));
    }
  }
  return out;
}

// BASE64URL(header) "." BASE64URL(payload), in a per-thread buffer: verification
// builds one per message.
std::string_view signing_input(std::string_view header_b64, std::string_view payload) {
  thread_local std::string input;
  input.clear();
  if (input.capacity() > (1u << 20)) input.shrink_to_fit();  // one huge message keeps no huge buffer
  input.reserve(header_b64.size() + 1 + (payload.size() * 4 + 2) / 3);
  input.append(header_b64);
  input.push_back('.');
  append_base64url(payload, input);
  return input;
}

// The low-level SHA-2 calls: EVP_Digest fetches the algorithm under OpenSSL 3.0's
// global lock on every call, which two verifying threads then contend for.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
Bytes digest(JwsAlgorithm a, std::string_view data) {
  Bytes out;
  switch (a) {
    case JwsAlgorithm::ES256: {
      out.resize(SHA256_DIGEST_LENGTH);
      SHA256_CTX c;
      SHA256_Init(&c);
      SHA256_Update(&c, data.data(), data.size());
      SHA256_Final(out.data(), &c);
      break;
    }
    case JwsAlgorithm::ES384: {
      out.resize(SHA384_DIGEST_LENGTH);
      SHA512_CTX c;
      SHA384_Init(&c);
      SHA384_Update(&c, data.data(), data.size());
      SHA384_Final(out.data(), &c);
      break;
    }
    case JwsAlgorithm::ES512: {
      out.resize(SHA512_DIGEST_LENGTH);
      SHA512_CTX c;
      SHA512_Init(&c);
      SHA512_Update(&c, data.data(), data.size());
      SHA512_Final(out.data(), &c);
      break;
    }
    case JwsAlgorithm::EdDSA: break;
  }
  return out;
}
#pragma GCC diagnostic pop

// r||s to the DER ECDSA-Sig-Value OpenSSL verifies: SEQUENCE { INTEGER r, INTEGER s },
// each INTEGER minimal (leading zeros dropped, 0x00 before a high bit).
Result<Bytes> der_signature(const Bytes& raw, std::size_t half) {
  if (raw.size() != 2 * half) return reject("jws.bad_signature", "ECDSA signature has the wrong length");
  Bytes out;
  out.reserve(2 * half + 9);
  out.push_back(0x30);
  out.push_back(0);  // the length, set below
  for (const std::uint8_t* p : {raw.data(), raw.data() + half}) {
    std::size_t n = half;
    while (n > 1 && *p == 0) {
      ++p;
      --n;
    }
    const bool pad = (*p & 0x80) != 0;
    out.push_back(0x02);
    out.push_back(static_cast<std::uint8_t>(n + pad));
    if (pad) out.push_back(0);
    out.insert(out.end(), p, p + n);
  }
  const std::size_t body = out.size() - 2;
  if (body < 0x80) {
    out[1] = static_cast<std::uint8_t>(body);
  } else {  // P-521: up to 2 * 69 bytes
    out[1] = 0x81;
    out.insert(out.begin() + 2, static_cast<std::uint8_t>(body));
  }
  return out;
}

// Per thread, the verifying context of the last few keys: EVP_PKEY_CTX_new_from_pkey
// and EVP_PKEY_verify_init look the algorithm up under OpenSSL 3.0's global locks,
// which cost more than the rest of a JWS check. Each slot holds a reference to its
// key, so no other key can appear at a cached address.
struct CachedVerifier {
  EvpPkeyPtr key;
  EvpPkeyCtxPtr ctx;  // ECDSA only; EdDSA is one-shot through EVP_DigestVerify
  JwsAlgorithm algorithm = JwsAlgorithm::ES256;
};

Result<CachedVerifier*> verifier_for(EVP_PKEY* key) {
  thread_local std::array<CachedVerifier, 4> slots;
  thread_local std::size_t next = 0;
  for (auto& s : slots)
    if (s.key.get() == key) return &s;
  GT_TRY_ASSIGN(JwsAlgorithm alg, jws_algorithm_for(key));
  EvpPkeyCtxPtr ctx;
  if (alg != JwsAlgorithm::EdDSA) {
    ctx.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) {
      ERR_clear_error();
      return reject("internal.openssl", "cannot set up ECDSA verification");
    }
  }
  if (EVP_PKEY_up_ref(key) != 1) return reject("internal.openssl", "cannot hold the verifying key");
  CachedVerifier& s = slots[next];
  next = (next + 1) % slots.size();
  s.key.reset(key);
  s.ctx = std::move(ctx);
  s.algorithm = alg;
  return &s;
}

}  // namespace

// The same text as base64url_encode, without its intermediate copies.
void append_base64url(std::string_view data, std::string& out) {
  static constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t n = data.size();
  const std::size_t at = out.size();
  out.resize(at + (n * 4 + 2) / 3);
  char* o = out.data() + at;
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    const std::uint32_t v = std::uint32_t(p[i]) << 16 | std::uint32_t(p[i + 1]) << 8 | p[i + 2];
    *o++ = kB64Url[v >> 18 & 63];
    *o++ = kB64Url[v >> 12 & 63];
    *o++ = kB64Url[v >> 6 & 63];
    *o++ = kB64Url[v & 63];
  }
  if (i + 1 == n) {
    const std::uint32_t v = std::uint32_t(p[i]) << 16;
    *o++ = kB64Url[v >> 18 & 63];
    *o++ = kB64Url[v >> 12 & 63];
  } else if (i + 2 == n) {
    const std::uint32_t v = std::uint32_t(p[i]) << 16 | std::uint32_t(p[i + 1]) << 8;
    *o++ = kB64Url[v >> 18 & 63];
    *o++ = kB64Url[v >> 12 & 63];
    *o++ = kB64Url[v >> 6 & 63];
  }
}

std::string_view name_of(JwsAlgorithm a) {
  switch (a) {
    case JwsAlgorithm::ES256: return "ES256";
    case JwsAlgorithm::ES384: return "ES384";
    case JwsAlgorithm::ES512: return "ES512";
    case JwsAlgorithm::EdDSA: return "EdDSA";
  }
  return "";
}

Result<JwsAlgorithm> jws_algorithm_for(hsm::KeyAlgorithm key) {
  switch (key) {
    case hsm::KeyAlgorithm::EcP256: return JwsAlgorithm::ES256;
    case hsm::KeyAlgorithm::EcP384: return JwsAlgorithm::ES384;
    case hsm::KeyAlgorithm::EcP521: return JwsAlgorithm::ES512;
    case hsm::KeyAlgorithm::Ed25519:
    case hsm::KeyAlgorithm::Ed448: return JwsAlgorithm::EdDSA;
  }
  return reject("jws.unsupported_key", "no JWS algorithm for this key");
}

Result<JwsAlgorithm> jws_algorithm_for(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448: return JwsAlgorithm::EdDSA;
    case EVP_PKEY_EC: {
      char group[64] = {};
      std::size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) break;
      std::string_view g(group, len);
      if (g == "prime256v1" || g == "P-256") return JwsAlgorithm::ES256;
      if (g == "secp384r1" || g == "P-384") return JwsAlgorithm::ES384;
      if (g == "secp521r1" || g == "P-521") return JwsAlgorithm::ES512;
      break;
    }
    default: break;
  }
  return reject("jws.unsupported_key", "the signer's key is not P-256, P-384, P-521, Ed25519 or Ed448");
}

Result<std::string> sign_detached(const hsm::Signer& signer, json::object header, std::string_view payload) {
  GT_TRY_ASSIGN(JwsAlgorithm alg, jws_algorithm_for(signer.algorithm()));
  header["alg"] = name_of(alg);
  GT_TRY_ASSIGN(std::string header_json, canonicalize(header));
  std::string header_b64;
  append_base64url(header_json, header_b64);
  std::string_view input = signing_input(header_b64, payload);
  // EdDSA signs the message itself, ECDSA its digest.
  Bytes to_sign = alg == JwsAlgorithm::EdDSA ? to_bytes(input) : digest(alg, input);
  GT_TRY_ASSIGN(Bytes sig, signer.sign_raw(to_sign));
  std::string out = std::move(header_b64);
  out += "..";
  append_base64url(std::string_view(reinterpret_cast<const char*>(sig.data()), sig.size()), out);
  return out;
}

Result<DetachedJws> parse_detached(std::string_view compact) {
  auto first = compact.find('.');
  if (first == std::string_view::npos || first == 0 || compact.size() < first + 3 || compact[first + 1] != '.')
    return reject("jws.malformed", "signature is not a detached compact JWS (<header>..<signature>)");
  std::string_view header_b64 = compact.substr(0, first);
  std::string_view sig_b64 = compact.substr(first + 2);
  if (sig_b64.find('.') != std::string_view::npos)
    return reject("jws.malformed", "signature is not a detached compact JWS (<header>..<signature>)");
  auto header_bytes = decode_base64url(header_b64);
  auto sig = decode_base64url(sig_b64);
  if (!header_bytes || !sig || sig->empty())
    return reject("jws.malformed", "JWS header or signature is not base64url");
  std::string_view header_text(reinterpret_cast<const char*>(header_bytes->data()), header_bytes->size());
  auto parsed = parse_strict(header_text, JsonLimits{16 * 1024, 8});
  if (!parsed.ok()) return reject("jws.malformed", "JWS header: " + parsed.error().message);
  if (!parsed->is_object()) return reject("jws.malformed", "JWS header is not a JSON object");
  DetachedJws out;
  out.header_b64 = std::string(header_b64);
  out.header = std::move(parsed->as_object());
  out.signature = std::move(*sig);
  if (out.header.contains("crit")) return reject("jws.crit", "JWS header lists critical extensions gridtrust does not implement");
  auto alg = out.header.find("alg");
  if (alg == out.header.end() || !alg->value().is_string())
    return reject("jws.unsupported_alg", "JWS header has no alg");
  std::string_view a = alg->value().get_string();
  if (a == "ES256") out.algorithm = JwsAlgorithm::ES256;
  else if (a == "ES384") out.algorithm = JwsAlgorithm::ES384;
  else if (a == "ES512") out.algorithm = JwsAlgorithm::ES512;
  else if (a == "EdDSA") out.algorithm = JwsAlgorithm::EdDSA;
  else return reject("jws.unsupported_alg", "JWS alg '" + std::string(a) + "' is not ES256, ES384, ES512 or EdDSA");
  return out;
}

Status verify_detached(const DetachedJws& jws, std::string_view payload, EVP_PKEY* key) {
  GT_TRY_ASSIGN(CachedVerifier * verifier, verifier_for(key));
  if (verifier->algorithm != jws.algorithm)
    return reject("jws.alg_mismatch", "JWS alg " + std::string(name_of(jws.algorithm)) + " does not fit the signer's key (" +
                                          std::string(name_of(verifier->algorithm)) + ")");
  std::string_view input = signing_input(jws.header_b64, payload);
  if (jws.algorithm == JwsAlgorithm::EdDSA) {
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, key, nullptr) != 1)
      return reject("internal.openssl", "cannot set up EdDSA verification");
    if (EVP_DigestVerify(ctx.get(), jws.signature.data(), jws.signature.size(),
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
      ERR_clear_error();
      return reject("jws.bad_signature", "JWS signature does not verify");
    }
    return Ok{};
  }
  GT_TRY_ASSIGN(Bytes der, der_signature(jws.signature, half_size(jws.algorithm)));
  Bytes md = digest(jws.algorithm, input);
  if (EVP_PKEY_verify(verifier->ctx.get(), der.data(), der.size(), md.data(), md.size()) != 1) {
    ERR_clear_error();
    return reject("jws.bad_signature", "JWS signature does not verify");
  }
  return Ok{};
}

}  // namespace gridtrust::protocol
