// Signed OCPP commands as an independent verifier and signer sees them: jose for the
// JWS, canonicalize (RFC 8785) for the payload, node:crypto for the Merkle tree.
import canonicalize from 'canonicalize';
import * as jose from 'jose';
import { sha256 } from './gridtrust.mjs';

export const VENDOR = 'org.gridtrust';

export function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

// The message as signed: a shallow copy without top-level customData.
export function withoutCustomData(message) {
  const { customData, ...rest } = message;
  return rest;
}

export function splitDetached(compact) {
  const parts = compact.split('.');
  if (parts.length !== 3 || parts[1] !== '') throw new Error(`not a detached compact JWS: ${compact.slice(0, 40)}...`);
  return { protected: parts[0], signature: parts[2] };
}

export function decodeHeader(protectedB64) {
  return JSON.parse(Buffer.from(protectedB64, 'base64url').toString('utf8'));
}

export function algFor(keyType) {
  return { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', Ed25519: 'EdDSA' }[keyType];
}

// ---- RFC 9162 Merkle tree ----

export function leafHash(entryMessage, claims) {
  const leaf = canonicalize({
    action: claims.action,
    message: withoutCustomData(entryMessage),
    seq: claims.seq,
    station: claims.station,
  });
  return sha256(Buffer.concat([Buffer.from([0]), Buffer.from(leaf, 'utf8')]));
}

export function nodeHash(l, r) {
  return sha256(Buffer.concat([Buffer.from([1]), l, r]));
}

function largestPowerOfTwoBelow(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// MTH(D[n]) of RFC 9162 2.1.1 over leaf hashes.
export function merkleRoot(leaves) {
  if (leaves.length === 1) return leaves[0];
  const k = largestPowerOfTwoBelow(leaves.length);
  return nodeHash(merkleRoot(leaves.slice(0, k)), merkleRoot(leaves.slice(k)));
}

// PATH(m, D[n]) of RFC 9162 2.1.3.1.
export function merklePath(leaves, m) {
  if (leaves.length === 1) return [];
  const k = largestPowerOfTwoBelow(leaves.length);
  if (m < k) return [...merklePath(leaves.slice(0, k), m), merkleRoot(leaves.slice(k))];
  return [...merklePath(leaves.slice(k), m - k), merkleRoot(leaves.slice(0, k))];
}

// RFC 9162 2.1.3.2: the root an inclusion path leads to.
export function rootFromPath(leaf, index, size, path) {
  if (index >= size) throw new Error('leaf index out of range');
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) throw new Error('inclusion path too long');
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1) === 0) {
        while ((fn & 1) === 0 && fn !== 0) {
          fn >>>= 1;
          sn >>>= 1;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>>= 1;
    sn >>>= 1;
  }
  if (sn !== 0) throw new Error('inclusion path too short');
  return r;
}

// ---- verification (of what gridtrust signed) ----

// Verifies a single signed message; `keyFor(header)` returns the verification key.
// Returns { header, payload }.
export async function verifySingle(message, keyFor) {
  const cd = message.customData;
  if (!cd || cd.vendorId !== VENDOR || typeof cd.signature !== 'string') throw new Error('no org.gridtrust customData');
  if (cd.batch !== undefined) throw new Error('a batch entry where a single message was expected');
  const { protected: h, signature } = splitDetached(cd.signature);
  const header = decodeHeader(h);
  const payload = canonicalize(withoutCustomData(message));
  const key = await keyFor(header);
  const r = await jose.flattenedVerify({ protected: h, payload: b64url(Buffer.from(payload, 'utf8')), signature }, key, {
    algorithms: ['ES256', 'ES384', 'ES512', 'EdDSA'],
  });
  return { header: r.protectedHeader, payload };
}

// Verifies one batch entry against its own inclusion path; returns { header, root }.
export async function verifyBatchEntry(entry, keyFor) {
  const cd = entry.customData;
  if (!cd || cd.vendorId !== VENDOR || typeof cd.signature !== 'string' || !cd.batch) throw new Error('not a batch entry');
  const b = cd.batch;
  const leaf = leafHash(entry, b);
  const path = b.path.map((p) => Buffer.from(p, 'base64url'));
  const root = rootFromPath(leaf, b.index, b.size, path);
  const { protected: h, signature } = splitDetached(cd.signature);
  const header = decodeHeader(h);
  const key = await keyFor(header);
  const r = await jose.flattenedVerify({ protected: h, payload: b64url(root), signature }, key, {
    algorithms: ['ES256', 'ES384', 'ES512', 'EdDSA'],
  });
  return { header: r.protectedHeader, root, leaf };
}

// ---- signing (as a third-party aggregator would) ----

export function x5tS256(certDer) {
  return b64url(sha256(certDer));
}

export async function joseSign(message, { privateKey, alg, certDer, x5c, action, station, seq, iat, lifetime = 300 }) {
  const payload = Buffer.from(canonicalize(withoutCustomData(message)), 'utf8');
  const now = iat ?? Math.floor(Date.now() / 1000);
  const header = { alg, 'x5t#S256': x5tS256(certDer), iat: now, exp: now + lifetime, action, station, seq };
  if (x5c) header.x5c = x5c.map((d) => Buffer.from(d).toString('base64'));
  const jws = await new jose.FlattenedSign(payload).setProtectedHeader(header).sign(privateKey);
  return { ...withoutCustomData(message), customData: { vendorId: VENDOR, signature: `${jws.protected}..${jws.signature}` } };
}

// A batch signed by jose: [{action, station, seq, message}] -> entries.
export async function joseSignBatch(items, { privateKey, alg, certDer, lifetime = 300 }) {
  const leaves = items.map((it) => leafHash(it.message, it));
  const root = merkleRoot(leaves);
  const now = Math.floor(Date.now() / 1000);
  const header = { alg, 'x5t#S256': x5tS256(certDer), iat: now, exp: now + lifetime, batch: items.length };
  const jws = await new jose.FlattenedSign(root).setProtectedHeader(header).sign(privateKey);
  const signature = `${jws.protected}..${jws.signature}`;
  return items.map((it, i) => ({
    ...withoutCustomData(it.message),
    customData: {
      vendorId: VENDOR,
      signature,
      batch: {
        index: i,
        size: items.length,
        path: merklePath(leaves, i).map(b64url),
        action: it.action,
        station: it.station,
        seq: it.seq,
      },
    },
  }));
}

// The same JSON value with every object's members in reverse order (customData first
// at the top), as a sender with another serialiser might send it.
export function reorder(value) {
  if (Array.isArray(value)) return value.map(reorder);
  if (value && typeof value === 'object') {
    const out = {};
    for (const k of Object.keys(value).reverse()) out[k] = reorder(value[k]);
    return out;
  }
  return value;
}

export { canonicalize, jose };
