// Signed OCPP commands (DESIGN.md "Signed OCPP commands") checked with independent
// implementations: jose (RFC 7515 detached JWS), canonicalize (RFC 8785 JCS),
// @peculiar/x509 (x5c chain) and a Merkle tree (RFC 9162) written here.
//
//  (1) every signature `gridtrust sign` / `sign-batch` makes verifies with jose;
//  (2) a JWS jose makes with the key of a certificate the PKI issued (ES256, ES384,
//      ES512, EdDSA) is accepted by `gridtrust verify` / `verify-batch`;
//  (3) one changed byte of payload, header or signature is rejected with its code,
//      member order does not matter but values do, and replays are refused.
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { describe as describeRun, errorCode, pemToDer, Pki, sha256, splitPem } from './lib/gridtrust.mjs';
import { validateChain, x509 } from './lib/pkix.mjs';
import {
  algFor,
  b64url,
  canonicalize,
  decodeHeader,
  jose,
  joseSign,
  joseSignBatch,
  leafHash,
  merkleRoot,
  reorder,
  splitDetached,
  verifyBatchEntry,
  verifySingle,
  withoutCustomData,
  x5tS256,
} from './lib/signed.mjs';

// OCPP 2.1 SetChargingProfileRequest with a CentralSetpoint (negative = discharge).
function setpoint(evseId, watts, id = 1) {
  return {
    evseId,
    chargingProfile: {
      id,
      stackLevel: 0,
      chargingProfilePurpose: 'TxDefaultProfile',
      chargingProfileKind: 'Dynamic',
      operationMode: 'CentralSetpoint',
      chargingSchedule: [
        {
          id,
          chargingRateUnit: 'W',
          chargingSchedulePeriod: [{ startPeriod: 0, limit: 11000, setpoint: watts, dischargeLimit: -7400 }],
        },
      ],
    },
  };
}

// Members and values that JCS implementations most often disagree on.
const awkward = {
  evseId: 2,
  chargingProfile: {
    id: 42,
    stackLevel: 0,
    chargingProfilePurpose: 'TxDefaultProfile',
    chargingProfileKind: 'Absolute',
    customData: { vendorId: 'com.example.fleet', note: 'Grüße €𝄞 "quoted" \\ \u0001 \u2028 </script>', z: 1, a: 2 },
    chargingSchedule: [
      {
        id: 1,
        chargingRateUnit: 'W',
        startSchedule: '2025-01-01T00:00:00.000Z',
        chargingSchedulePeriod: [
          { startPeriod: 0, limit: 0.1, setpoint: -3000.5, numberPhases: 3 },
          { startPeriod: 900, limit: 1e-7, setpoint: 1e21 },
          { startPeriod: 1800, limit: 123456789012345680000, setpoint: -0 },
          { startPeriod: 2700, limit: 9007199254740991, setpoint: 5e-324 },
        ],
      },
    ],
  },
  '\u20ac': 'euro sign key sorts by UTF-16 code unit',
  '\ud83d\ude00': 'astral key',
  '\u0080': 'C1 key',
};

let pki;
let org;
let signerRoot; // PEM of the aggregator-signer profile's root
let signerChain; // PEMs, issuing CA first, root last
let initHadSigner = false;
const signerByFingerprint = new Map(); // x5t#S256 -> { pem, der }
const software = {}; // keyType -> { cert, keyPem, privateKey, der, chainDer }

function readJson(r) {
  assert.equal(r.code, 0, describeRun(r));
  return JSON.parse(r.stdout);
}

async function learnSigners() {
  const list = readJson(await pki.gt(['list', '--profile', 'aggregator-signer', '--json']));
  for (const rec of list) {
    const r = await pki.gtOk(['show', rec.serial, '--pem']);
    const pem = splitPem(r.stdout)[0];
    const der = pemToDer(pem);
    signerByFingerprint.set(x5tS256(der), { pem, der, record: rec });
  }
  return list;
}

// The verification key of a header: the certificate x5t#S256 names, which must be
// x5c[0] when x5c is present.
async function keyFor(header) {
  assert.equal(typeof header['x5t#S256'], 'string', 'header has x5t#S256');
  let pem;
  if (header.x5c) {
    const der = Buffer.from(header.x5c[0], 'base64');
    assert.equal(x5tS256(der), header['x5t#S256'], 'x5t#S256 is the SHA-256 of x5c[0]');
    pem = new X509Certificate(der).toString();
  } else {
    if (!signerByFingerprint.has(header['x5t#S256'])) await learnSigners();
    const s = signerByFingerprint.get(header['x5t#S256']);
    assert.ok(s, `x5t#S256 ${header['x5t#S256']} names an aggregator-signer certificate of the PKI`);
    pem = s.pem;
  }
  return jose.importX509(pem, header.alg);
}

async function sign(message, { action = 'SetChargingProfile', station = 'CS-0001', x5c = false, lifetime } = {}) {
  const file = pki.write('message.json', JSON.stringify(message));
  const args = ['sign', '--action', action, '--station', station];
  if (x5c) args.push('--x5c');
  if (lifetime) args.push('--lifetime', String(lifetime));
  args.push(file);
  const r = await pki.gt(args);
  assert.equal(r.code, 0, `gridtrust sign: ${describeRun(r)}`);
  return JSON.parse(r.stdout);
}

async function signBatch(items, { x5c = false } = {}) {
  const file = pki.write('batch.json', JSON.stringify(items));
  const r = await pki.gt(['sign-batch', ...(x5c ? ['--x5c'] : []), file]);
  assert.equal(r.code, 0, `gridtrust sign-batch: ${describeRun(r)}`);
  return JSON.parse(r.stdout);
}

// `gridtrust verify` of a message given as JSON text or value.
async function gtVerify(message, extra = []) {
  const text = typeof message === 'string' ? message : JSON.stringify(message);
  return pki.gt(['verify', ...extra, pki.write('verify.json', text)]);
}

async function gtVerifyBatch(entries, extra = []) {
  return pki.gt(['verify-batch', ...extra, pki.write('verify-batch.json', JSON.stringify(entries))]);
}

function assertAccepted(r, what) {
  assert.equal(r.code, 0, `${what} should be accepted: ${describeRun(r)}`);
  const report = JSON.parse(r.stdout);
  return report;
}

function assertRejected(r, codes, what) {
  const expected = Array.isArray(codes) ? codes : [codes];
  assert.notEqual(r.code, 0, `${what} should be rejected, was accepted: ${r.stdout}`);
  const code = errorCode(r);
  assert.ok(expected.includes(code), `${what}: expected ${expected.join(' or ')}, got ${code} (${r.stderr.trim()})`);
}

function checkSingleHeader(header, { action, station, lifetime = 300 }) {
  assert.ok(['ES256', 'ES384', 'ES512', 'EdDSA'].includes(header.alg), `alg ${header.alg}`);
  assert.equal(header.b64, undefined, 'standard base64url payload (no b64:false)');
  assert.equal(header.crit, undefined, 'no crit');
  assert.equal(header.action, action);
  assert.equal(header.station, station);
  assert.ok(Number.isSafeInteger(header.seq) && header.seq > 0, `seq ${header.seq}`);
  assert.ok(Number.isSafeInteger(header.iat) && Number.isSafeInteger(header.exp), 'iat/exp are integers');
  assert.equal(header.exp - header.iat, lifetime, 'exp - iat is the lifetime');
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Math.abs(header.iat - now) < 120, `iat ${header.iat} is now (${now})`);
}

describe('signed OCPP commands: gridtrust <-> jose/canonicalize', () => {
  before(async () => {
    pki = await Pki.create('gridtrust-interop-sign-');
    org = await pki.organisation();
    signerChain = await pki.chain('aggregator-signer');
    signerRoot = signerChain[signerChain.length - 1];
    const signers = await learnSigners();
    initHadSigner = signers.some((s) => s.hsm_key_label && s.status === 'valid');
    if (!initHadSigner) {
      // Go on with the rest: an HSM-held signer as an operator would issue one.
      await pki.gtOk(['issue', '--profile', 'aggregator-signer', '--subject', `CN=aggregator signer,O=${org}`, '--generate-key']);
      await learnSigners();
    }
    // Software keys of every curve, each with an aggregator-signer certificate.
    for (const keyType of ['P-256', 'P-384', 'P-521', 'Ed25519']) {
      const c = await pki.issueSoftware('aggregator-signer', `/CN=node signer ${keyType}/O=${org}`, keyType);
      const der = pemToDer(c.certPem);
      software[keyType] = {
        ...c,
        der,
        chainDer: splitPem(c.chainPem).map(pemToDer),
        alg: algFor(keyType),
        privateKey: createPrivateKey(c.keyPem),
      };
    }
  });

  after(async () => {
    await pki?.cleanup();
  });

  test('init made an HSM-held P-256 aggregator-signer', async () => {
    assert.ok(initHadSigner, 'gridtrust init should create an aggregator-signer with its key in the token');
    const hsm = [...signerByFingerprint.values()].filter((s) => s.record.hsm_key_label);
    const cert = new x509.X509Certificate(hsm[0].pem);
    assert.equal(cert.publicKey.algorithm.name, 'ECDSA');
    assert.equal(cert.publicKey.algorithm.namedCurve, 'P-256');
  });

  test('(1) jose + canonicalize verify `gridtrust sign`', async () => {
    const message = setpoint(1, -3000);
    const signed = await sign(message, { action: 'SetChargingProfile', station: 'CS-0001' });
    // The OCPP payload comes back unchanged, plus customData.
    assert.deepEqual(withoutCustomData(signed), message);
    assert.deepEqual(Object.keys(signed.customData).sort(), ['signature', 'vendorId']);
    const { header } = await verifySingle(signed, keyFor);
    checkSingleHeader(header, { action: 'SetChargingProfile', station: 'CS-0001' });
    assert.equal(header.alg, 'ES256');
    assert.equal(header.x5c, undefined, 'no x5c unless asked');
    // The header is itself in JCS form (same header -> same bytes).
    const { protected: h } = splitDetached(signed.customData.signature);
    assert.equal(Buffer.from(h, 'base64url').toString('utf8'), canonicalize(decodeHeader(h)));
    // And gridtrust accepts its own signature.
    const report = assertAccepted(await gtVerify(signed, ['--station', 'CS-0001', '--action', 'SetChargingProfile']), 'own signature');
    assert.equal(report.ok, true);
    assert.equal(report.seq, header.seq);
    assert.equal(report.signer, header['x5t#S256']);
  });

  // gridtrust signs with whatever key type the signer certificate has: an operator may
  // make the aggregator signer P-384, P-521 or Ed25519 (`issue --generate-key --key-type`).
  for (const keyType of ['P-384', 'P-521', 'Ed25519']) {
    test(`(1) jose verifies \`gridtrust sign\` and \`sign-batch\` with an HSM-held ${keyType} signer (${algFor(keyType)})`, async () => {
      const issued = readJson(await pki.gt(['issue', '--profile', 'aggregator-signer', '--subject',
        `CN=hsm signer ${keyType},O=${org}`, '--generate-key', '--key-type', keyType, '--json']));
      assert.ok(issued.hsm_key_label, 'the key was made in the token');
      const cert = new x509.X509Certificate(issued.chain_pem);
      if (keyType === 'Ed25519') assert.equal(cert.publicKey.algorithm.name, 'Ed25519');
      else assert.equal(cert.publicKey.algorithm.namedCurve, keyType);
      await learnSigners();
      const station = `CS-KT-${keyType}`;
      const file = pki.write(`message-${keyType}.json`, JSON.stringify(setpoint(1, 4200)));
      const one = await pki.gtOk(['sign', '--signer', issued.serial, '--action', 'SetChargingProfile', '--station', station, file]);
      const signed = JSON.parse(one.stdout);
      const { header } = await verifySingle(signed, keyFor);
      assert.equal(header.alg, algFor(keyType));
      checkSingleHeader(header, { action: 'SetChargingProfile', station });
      assertAccepted(await gtVerify(signed, ['--station', station, '--action', 'SetChargingProfile']), `own ${keyType} signature`);

      const items = [1, 2, 3].map((i) => ({ action: 'SetChargingProfile', station, message: setpoint(i, 1000 * i) }));
      const batchFile = pki.write(`batch-${keyType}.json`, JSON.stringify(items));
      const entries = JSON.parse((await pki.gtOk(['sign-batch', '--signer', issued.serial, batchFile])).stdout);
      assert.equal(entries.length, items.length);
      for (const entry of entries) {
        const { header: h } = await verifyBatchEntry(entry, keyFor);
        assert.equal(h.alg, algFor(keyType));
      }
      assertAccepted(await gtVerifyBatch(entries), `own ${keyType} batch`);
    });
  }

  test('(1) --x5c: x5t#S256 is the leaf, the chain validates to the aggregator-signer root', async () => {
    const signed = await sign(setpoint(2, 5000), { station: 'CS-0002', x5c: true, lifetime: 120 });
    const { header } = await verifySingle(signed, keyFor);
    checkSingleHeader(header, { action: 'SetChargingProfile', station: 'CS-0002', lifetime: 120 });
    assert.ok(Array.isArray(header.x5c) && header.x5c.length >= 1, 'x5c present');
    for (const c of header.x5c) assert.match(c, /^[A-Za-z0-9+/]+={0,2}$/, 'x5c entries are standard base64');
    const ders = header.x5c.map((c) => Buffer.from(c, 'base64'));
    assert.equal(b64url(sha256(ders[0])), header['x5t#S256']);
    const chain = await validateChain(ders[0], ders.slice(1), signerRoot);
    const leaf = chain[0];
    assert.ok(leaf.getExtension(x509.ExtendedKeyUsageExtension), 'the signer certificate carries an EKU (dispatch authority)');
    assert.ok(signerByFingerprint.has(header['x5t#S256']) || (await learnSigners(), signerByFingerprint.has(header['x5t#S256'])));
  });

  test('(1) --signer SERIAL picks the HSM-held signer; a software-key certificate cannot sign', async () => {
    // `issue --generate-key` makes the profile's first key type (P-256); gridtrust-side
    // signing with other curves would need an HSM key of that curve.
    const r = await pki.gt(['issue', '--profile', 'aggregator-signer', '--subject', `CN=second signer,O=${org}`, '--generate-key', '--json']);
    assert.equal(r.code, 0, describeRun(r));
    const rec = JSON.parse(r.stdout);
    const second = splitPem(rec.chain_pem)[0];
    const file = pki.write('message.json', JSON.stringify(setpoint(1, 1)));
    const signed = readJson(await pki.gt(['sign', '--action', 'SetChargingProfile', '--station', 'CS-SIGNER', '--signer', rec.serial, file]));
    const { header } = await verifySingle(signed, keyFor);
    assert.equal(header['x5t#S256'], x5tS256(pemToDer(second)), 'signed by the certificate --signer named');
    assertAccepted(await gtVerify(signed), '--signer signature');
    const soft = await pki.gt(['sign', '--action', 'SetChargingProfile', '--station', 'CS-SIGNER', '--signer', software['P-384'].serial, file]);
    assertRejected(soft, ['commands.signer_not_usable'], '--signer of a certificate whose key is not in the token');
  });

  test('(1) jose + Merkle path verify every entry of `gridtrust sign-batch` (sizes 1, 2, 3, 5, 8)', async () => {
    for (const n of [1, 2, 3, 5, 8]) {
      const items = Array.from({ length: n }, (_, i) => ({
        action: i % 2 ? 'SetChargingProfile' : 'RequestStartTransaction',
        station: `CS-B${n}-${i % 3}`,
        message: i % 2 ? setpoint(i + 1, 1000 * i - 2500, i + 1) : { idToken: { idToken: `tok-${i}`, type: 'Central' }, remoteStartId: i + 1 },
      }));
      const entries = await signBatch(items, { x5c: n === 5 });
      assert.equal(entries.length, n);
      const leaves = [];
      let root = null;
      for (let i = 0; i < n; i++) {
        const e = entries[i];
        const b = e.customData.batch;
        assert.deepEqual(withoutCustomData(e), items[i].message, 'entry is the message plus customData');
        assert.equal(b.index, i);
        assert.equal(b.size, n);
        assert.equal(b.action, items[i].action);
        assert.equal(b.station, items[i].station);
        assert.ok(Number.isSafeInteger(b.seq) && b.seq > 0);
        assert.ok(b.path.every((p) => /^[A-Za-z0-9_-]{43}$/.test(p)), 'path entries are b64url SHA-256');
        const v = await verifyBatchEntry(e, keyFor);
        assert.equal(v.header.batch, n);
        for (const k of ['action', 'station', 'seq']) assert.equal(v.header[k], undefined, `batch header has no ${k}`);
        if (n === 5) {
          const ders = v.header.x5c.map((c) => Buffer.from(c, 'base64'));
          await validateChain(ders[0], ders.slice(1), signerRoot);
        }
        if (root) assert.ok(root.equals(v.root), 'every entry leads to the same root');
        root = v.root;
        leaves.push(leafHash(e, b));
      }
      assert.ok(merkleRoot(leaves).equals(root), `RFC 9162 MTH over all ${n} leaves is the signed root`);
      const r = assertAccepted(await gtVerifyBatch(entries), `verify-batch of ${n}`);
      assert.equal(r.length, n);
      assert.ok(r.every((x) => x.ok === true));
    }
  });

  test('(1) a single batch entry verifies alone with `gridtrust verify`', async () => {
    const items = [0, 1, 2].map((i) => ({ action: 'SetChargingProfile', station: `CS-S${i}`, message: setpoint(1, 100 * i) }));
    const entries = await signBatch(items);
    const report = assertAccepted(await gtVerify(entries[1], ['--station', 'CS-S1']), 'batch entry 1');
    assert.equal(report.batch_index, 1);
    assert.equal(report.batch_size, 3);
    // A changed path hash leads to another root.
    const bad = structuredClone(entries[2]);
    const p = Buffer.from(bad.customData.batch.path[0], 'base64url');
    p[0] ^= 1;
    bad.customData.batch.path[0] = b64url(p);
    assertRejected(await gtVerify(bad), ['jws.bad_signature', 'batch.bad_path'], 'changed inclusion path');
    // A changed entry message: the rebuilt tree has another root.
    const changed = structuredClone(entries);
    changed[0].chargingProfile.chargingSchedule[0].chargingSchedulePeriod[0].setpoint += 1;
    assertRejected(await gtVerifyBatch(changed), ['jws.bad_signature'], 'batch with one changed entry');
  });

  for (const keyType of ['P-256', 'P-384', 'P-521', 'Ed25519']) {
    test(`(2) gridtrust verify accepts a jose ${algFor(keyType)} JWS made with a PKI-issued ${keyType} key`, async () => {
      const s = software[keyType];
      const station = `CS-J-${keyType}`;
      const message = setpoint(1, -7000);
      const signed = await joseSign(message, {
        privateKey: s.privateKey,
        alg: s.alg,
        certDer: s.der,
        action: 'SetChargingProfile',
        station,
        seq: 1,
      });
      const report = assertAccepted(await gtVerify(signed, ['--station', station, '--action', 'SetChargingProfile']), `jose ${s.alg}`);
      assert.equal(report.signer, x5tS256(s.der));
      assert.equal(report.seq, 1);
      // With x5c (signer first, then its CAs without the root).
      const withX5c = await joseSign(message, {
        privateKey: s.privateKey,
        alg: s.alg,
        certDer: s.der,
        x5c: s.chainDer,
        action: 'SetChargingProfile',
        station,
        seq: 2,
      });
      assertAccepted(await gtVerify(withX5c), `jose ${s.alg} with x5c`);
      // One flipped signature bit.
      const tampered = await joseSign(message, { privateKey: s.privateKey, alg: s.alg, certDer: s.der, action: 'SetChargingProfile', station, seq: 3 });
      const { protected: h, signature } = splitDetached(tampered.customData.signature);
      const sig = Buffer.from(signature, 'base64url');
      sig[Math.floor(sig.length / 4)] ^= 0x10;
      tampered.customData.signature = `${h}..${b64url(sig)}`;
      assertRejected(await gtVerify(tampered), 'jws.bad_signature', `jose ${s.alg} with a flipped signature bit`);
    });
  }

  test('(2) gridtrust verify-batch accepts a batch jose signed (ES384, Merkle tree built in JS)', async () => {
    const s = software['P-384'];
    const items = [0, 1, 2, 3, 4, 5, 6].map((i) => ({ action: 'SetChargingProfile', station: `CS-JB-${i}`, seq: 10 + i, message: setpoint(1, 500 * i) }));
    const entries = await joseSignBatch(items, { privateKey: s.privateKey, alg: s.alg, certDer: s.der });
    const r = assertAccepted(await gtVerifyBatch(entries), 'jose batch of 7');
    assert.equal(r.length, 7);
    // And each entry of a second jose batch on its own.
    const items2 = [0, 1, 2].map((i) => ({ action: 'SetChargingProfile', station: `CS-JB-${i}`, seq: 20 + i, message: setpoint(2, 10 * i) }));
    const entries2 = await joseSignBatch(items2, { privateKey: s.privateKey, alg: s.alg, certDer: s.der });
    for (const e of entries2) assertAccepted(await gtVerify(e), `jose batch entry ${e.customData.batch.index}`);
  });

  test('(1)+(2) JCS edge cases: unicode, key order by UTF-16, ECMAScript numbers, nested customData', async () => {
    const signed = await sign(awkward, { station: 'CS-JCS' });
    await verifySingle(signed, keyFor);
    assertAccepted(await gtVerify(signed), 'own signature over awkward JSON');
    const s = software['Ed25519'];
    const joseSigned = await joseSign(awkward, { privateKey: s.privateKey, alg: s.alg, certDer: s.der, action: 'SetChargingProfile', station: 'CS-JCS', seq: 1 });
    assertAccepted(await gtVerify(joseSigned), 'jose EdDSA signature over awkward JSON');
  });

  test('(3) one changed byte of payload, header or signature is rejected; order does not matter, values do', async () => {
    const station = 'CS-T1';
    const signed = await sign(setpoint(1, -4200), { station });
    const { protected: h, signature } = splitDetached(signed.customData.signature);
    const headerText = Buffer.from(h, 'base64url').toString('utf8');

    // Payload: one digit of the setpoint.
    const payload = structuredClone(signed);
    payload.chargingProfile.chargingSchedule[0].chargingSchedulePeriod[0].setpoint = -4201;
    assertRejected(await gtVerify(payload), 'jws.bad_signature', 'changed payload value');
    // Payload, at the byte level of the file: "evseId":1 -> "evseId":2.
    const text = JSON.stringify(signed);
    assert.ok(text.includes('"evseId":1'));
    assertRejected(await gtVerify(text.replace('"evseId":1', '"evseId":2')), 'jws.bad_signature', 'changed payload byte');

    // Header: one byte inside a value (the claims are signed).
    const i = headerText.indexOf('SetChargingProfile');
    assert.ok(i > 0);
    const changedHeader = headerText.slice(0, i) + 'T' + headerText.slice(i + 1);
    const h2 = b64url(Buffer.from(changedHeader, 'utf8'));
    const m2 = structuredClone(signed);
    m2.customData.signature = `${h2}..${signature}`;
    assertRejected(await gtVerify(m2), ['jws.bad_signature'], 'changed header value byte');
    // Header: one byte of JSON structure.
    const h3 = b64url(Buffer.from('[' + headerText.slice(1), 'utf8'));
    const m3 = structuredClone(signed);
    m3.customData.signature = `${h3}..${signature}`;
    assertRejected(await gtVerify(m3), ['jws.malformed'], 'header that is not a JSON object');
    // Header: one base64url character replaced by a character outside the alphabet.
    const m4 = structuredClone(signed);
    m4.customData.signature = `${h.slice(0, 10)}*${h.slice(11)}..${signature}`;
    assertRejected(await gtVerify(m4), ['jws.malformed'], 'header with a non-base64url character');
    // Header: the same claims, re-serialised in another member order (other bytes).
    const m5 = structuredClone(signed);
    m5.customData.signature = `${b64url(Buffer.from(JSON.stringify(reorder(JSON.parse(headerText)))))}..${signature}`;
    assertRejected(await gtVerify(m5), ['jws.bad_signature'], 'header re-serialised');

    // Signature: one bit.
    const sig = Buffer.from(signature, 'base64url');
    sig[sig.length - 5] ^= 0x01;
    const m6 = structuredClone(signed);
    m6.customData.signature = `${h}..${b64url(sig)}`;
    assertRejected(await gtVerify(m6), 'jws.bad_signature', 'flipped signature bit');
    // Signature: truncated by one byte.
    const m7 = structuredClone(signed);
    m7.customData.signature = `${h}..${b64url(sig.subarray(0, sig.length - 1))}`;
    assertRejected(await gtVerify(m7), ['jws.bad_signature', 'jws.malformed'], 'truncated signature');

    // Member order changed AND a value changed.
    const both = reorder(structuredClone(signed));
    both.evseId = 3;
    assertRejected(await gtVerify(both), 'jws.bad_signature', 'reordered and changed');

    // Member order changed only, pretty-printed: the canonical form is the same.
    const reordered = JSON.stringify(reorder(signed), null, 2);
    assert.notEqual(reordered, JSON.stringify(signed));
    await verifySingle(JSON.parse(reordered), keyFor);
    const r = assertAccepted(await gtVerify(reordered, ['--station', station]), 'reordered members');
    assert.equal(r.seq, decodeHeader(h).seq);

    // Nothing above consumed the sequence number except the accepted one: replay now.
    assertRejected(await gtVerify(signed), 'verify.replay', 'the same message again');
  });

  test('(3) replays: the same file twice, and an older sequence number after a newer one', async () => {
    const station = 'CS-R1';
    const first = await sign(setpoint(1, 1000), { station });
    const second = await sign(setpoint(1, 2000), { station });
    const s1 = decodeHeader(splitDetached(first.customData.signature).protected).seq;
    const s2 = decodeHeader(splitDetached(second.customData.signature).protected).seq;
    assert.ok(s2 > s1, `sequence numbers increase per station (${s1}, ${s2})`);
    const file = pki.write('replay.json', JSON.stringify(second));
    assertAccepted(await pki.gt(['verify', file]), 'first verify');
    assertRejected(await pki.gt(['verify', file]), 'verify.replay', 'second verify of the same file');
    assertRejected(await gtVerify(first), 'verify.replay', 'older sequence number after a newer one');
    // Batches share the per-(signer, station) counter.
    const entries = await signBatch([{ action: 'SetChargingProfile', station, message: setpoint(1, 3000) }]);
    assertAccepted(await gtVerifyBatch(entries), 'batch after singles');
    assertRejected(await gtVerifyBatch(entries), 'verify.replay', 'the same batch again');
    // jose-made: seq 5 accepted, then seq 5 and 4 refused.
    const s = software['P-521'];
    const mk = (seq) => joseSign(setpoint(1, seq), { privateKey: s.privateKey, alg: s.alg, certDer: s.der, action: 'SetChargingProfile', station, seq });
    assertAccepted(await gtVerify(await mk(5)), 'jose seq 5');
    assertRejected(await gtVerify(await mk(5)), 'verify.replay', 'jose seq 5 again (new signature)');
    assertRejected(await gtVerify(await mk(4)), 'verify.replay', 'jose seq 4 after 5');
    assertAccepted(await gtVerify(await mk(6)), 'jose seq 6');
  });

  test('(3) target and freshness claims are enforced', async () => {
    const s = software['P-256'];
    const base = { privateKey: s.privateKey, alg: s.alg, certDer: s.der, action: 'SetChargingProfile', station: 'CS-F1' };
    assertRejected(await gtVerify(await joseSign(setpoint(1, 1), { ...base, seq: 1 }), ['--station', 'CS-OTHER']), 'verify.wrong_station', 'other station');
    assertRejected(await gtVerify(await joseSign(setpoint(1, 1), { ...base, seq: 2 }), ['--action', 'Reset']), 'verify.wrong_action', 'other action');
    const old = Math.floor(Date.now() / 1000) - 1000;
    assertRejected(await gtVerify(await joseSign(setpoint(1, 1), { ...base, seq: 3, iat: old })), 'verify.expired', 'expired');
    assertRejected(await gtVerify(await joseSign(setpoint(1, 1), { ...base, seq: 4, lifetime: 86400 })), 'verify.lifetime_too_long', 'too long');
    // A certificate outside the aggregator-signer profile is no signer.
    const client = await pki.adminClient('operator');
    const unsigned = await joseSign(setpoint(1, 1), { ...base, privateKey: createPrivateKey(client.keyPem), certDer: pemToDer(client.certPem), seq: 5 });
    assertRejected(await gtVerify(unsigned), ['verify.unknown_signer'], 'admin certificate as signer');
  });
});
