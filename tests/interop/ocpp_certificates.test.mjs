// OCPP certificate management end to end with ocpp-rpc in strict mode (every call and
// response is validated against the official OCPP JSON schemas bundled in ocpp-rpc):
//
//   charging station (RPCClient) --SignCertificate--> CSMS (RPCServer)
//   CSMS --POST /v1/ocpp/sign-certificate (mTLS)--> gridtrustd
//   CSMS --CertificateSigned--> station: checks the chain with @peculiar/x509 and
//        computes certificateHashData itself, compared with gridtrust's
//   station --GetCertificateStatus--> CSMS --POST /v1/ocpp/certificate-status--> gridtrustd
//        ocspResult: base64 DER that `openssl ocsp -respin` parses and verifies.
import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { RPCClient, RPCServer } from 'ocpp-rpc';

import { describe as describeRun, errorCode, openssl, pemToDer, Pki, splitPem } from './lib/gridtrust.mjs';
import { ocpp21LookupBroken, strictModeValidators } from './lib/ocpp_validators.mjs';
import { certificateHashData, sameHashData, validateChain, x509 } from './lib/pkix.mjs';

const VERSIONS = [
  { protocol: 'ocpp2.0.1', ocppVersion: '2.0.1' },
  { protocol: 'ocpp2.1', ocppVersion: '2.1' },
];

let pki;
let org;
let client; // admin-profile client certificate with a software key
let apiCa; // the root that gridtrustd's TLS certificate chains to
let csChain; // `gridtrust chain --profile charging-station`: issuing CA first, root last
let csRoot;

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

// A CSMS that forwards certificate management to gridtrustd.
async function startCsms(v) {
  const server = new RPCServer({ protocols: [v.protocol], strictMode: true, strictModeValidators: strictModeValidators() });
  const state = { failures: [], forwarded: [], signed: [], errors: [] };
  server.on('client', (cs) => {
    cs.on('strictValidationFailure', (e) => state.failures.push({ side: 'csms', identity: cs.identity, error: String(e.error ?? e), ...e }));
    cs.handle('SignCertificate', async ({ params }) => {
      const res = await pki.api(client, apiCa, 'POST', '/v1/ocpp/sign-certificate', { ocppVersion: v.ocppVersion, request: params });
      state.forwarded.push({ path: 'sign-certificate', status: res.status, body: res.text });
      if (res.status !== 200 || !res.json?.response) {
        state.errors.push(`sign-certificate: HTTP ${res.status} ${res.text}`);
        return { status: 'Rejected', statusInfo: { reasonCode: 'CAError', additionalInfo: String(res.json?.error?.code ?? res.status).slice(0, 50) } };
      }
      // Answer first, then deliver the certificate (as a CSMS does).
      setImmediate(async () => {
        try {
          const answer = await cs.call('CertificateSigned', res.json.response);
          state.signed.push(answer);
        } catch (e) {
          state.errors.push(`CertificateSigned: ${e.message}`);
          state.signedError?.(e);
        }
      });
      return { status: 'Accepted' };
    });
    cs.handle('GetCertificateStatus', async ({ params }) => {
      const res = await pki.api(client, apiCa, 'POST', '/v1/ocpp/certificate-status', { ocppVersion: v.ocppVersion, request: params });
      state.forwarded.push({ path: 'certificate-status', status: res.status, body: res.text });
      if (res.status !== 200 || !res.json?.response) {
        state.errors.push(`certificate-status: HTTP ${res.status} ${res.text}`);
        return { status: 'Failed', statusInfo: { reasonCode: 'CAError' } };
      }
      return res.json.response; // strict mode: must be a valid GetCertificateStatusResponse
    });
  });
  const http = await server.listen(0, '127.0.0.1');
  return { server, state, port: http.address().port };
}

// A charging station with an openssl key; resolves `delivered` on CertificateSigned.
async function startStation(v, port, identity) {
  const key = pki.file(`${identity}.key`);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', key]);
  const csrFile = pki.file(`${identity}.csr`);
  await openssl(['req', '-new', '-key', key, '-subj', `/CN=${identity}/O=${org}`, '-out', csrFile]);
  const station = new RPCClient({
    endpoint: `ws://127.0.0.1:${port}`,
    identity,
    protocols: [v.protocol],
    strictMode: true,
    strictModeValidators: strictModeValidators(),
    reconnect: false,
  });
  const failures = [];
  station.on('strictValidationFailure', (e) => failures.push({ side: 'station', error: String(e.error ?? e), ...e }));
  let deliver;
  const delivered = new Promise((resolve) => {
    deliver = resolve;
  });
  station.handle('CertificateSigned', async ({ params }) => {
    deliver(params);
    return { status: 'Accepted' };
  });
  await station.connect();
  return {
    station,
    identity,
    failures,
    delivered,
    keyFile: key,
    csr: fs.readFileSync(csrFile, 'utf8'),
    spki: createPublicKey(fs.readFileSync(key, 'utf8')).export({ type: 'spki', format: 'der' }),
  };
}

// gridtrust's certificateHashData of a serial: the CLI, then the API; null if neither
// exists (yet). Returns { cli, api } with the parsed objects or the reason.
async function gridtrustHashData(serial) {
  const out = {};
  const r = await pki.gt(['ocpp', 'certificate-hash', serial]);
  if (r.code === 0) {
    try {
      const o = JSON.parse(r.stdout);
      out.cli = o.certificateHashData ?? o;
    } catch {
      out.cli = Object.fromEntries(
        r.stdout
          .split('\n')
          .map((l) => /^\s*(\w+)\s*[:=]\s*(\S+)\s*$/.exec(l))
          .filter(Boolean)
          .map((m) => [m[1], m[2]]),
      );
    }
  } else {
    out.cliProblem = `${errorCode(r) ?? 'exit ' + r.code}: ${r.stderr.trim()}`;
  }
  const res = await pki.api(client, apiCa, 'GET', `/v1/ocpp/certificate-hash/${serial}`);
  if (res.status === 200 && res.json) out.api = res.json.certificateHashData ?? res.json;
  else out.apiProblem = `HTTP ${res.status} ${res.text.slice(0, 200)}`;
  return out;
}

describe('OCPP certificate management through ocpp-rpc (strict) and gridtrustd', () => {
  before(async () => {
    pki = await Pki.create('gridtrust-interop-ocpp-');
    org = await pki.organisation();
    client = await pki.adminClient('admin');
    const serverChain = splitPem(fs.readFileSync(`${pki.dataDir}/server-chain.pem`, 'utf8'));
    const csmsChain = await pki.chain('csms-server');
    apiCa = csmsChain[csmsChain.length - 1];
    assert.ok(serverChain.length >= 1);
    csChain = await pki.chain('charging-station');
    csRoot = csChain[csChain.length - 1];
    await pki.startDaemon();
  });

  after(async () => {
    await pki?.cleanup();
  });

  test('ocpp-rpc bundles strict-mode schemas for ocpp2.0.1 and ocpp2.1', async (t) => {
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    const validators = require('ocpp-rpc/lib/standard-validators');
    const names = validators.map((v) => v.subprotocol);
    assert.ok(names.includes('ocpp2.0.1'), `validators: ${names}`);
    assert.ok(names.includes('ocpp2.1'), `validators: ${names}`);
    if (ocpp21LookupBroken)
      t.diagnostic('ocpp-rpc bundles the 2.1 schemas under urn:XRequest/urn:XResponse but looks up urn:X.req/.conf; re-registered (lib/ocpp_validators.mjs)');
  });

  test('the mTLS API answers a Node https client with a software-key admin certificate', async () => {
    const res = await pki.api(client, apiCa, 'GET', '/v1/chain/charging-station');
    assert.equal(res.status, 200, res.text);
    assert.equal(splitPem(res.json.chain_pem).length, csChain.length);
  });

  for (const v of VERSIONS) {
    describe(`${v.protocol}`, () => {
      let csms;
      let st;
      let leafPem;
      let chainPems;
      let hashData;

      before(async () => {
        csms = await startCsms(v);
        st = await startStation(v, csms.port, `CS-${v.ocppVersion.replaceAll('.', '')}-0001`);
      });

      after(async () => {
        await st?.station.close({ force: true }).catch(() => {});
        await csms?.server.close({ force: true }).catch(() => {});
      });

      test('SignCertificate -> gridtrustd -> CertificateSigned, all schema-valid', async () => {
        const request = { csr: st.csr, certificateType: 'ChargingStationCertificate' };
        if (v.ocppVersion === '2.1') {
          request.requestId = 7;
          const root = pemToDer(csRoot);
          request.hashRootCertificate = certificateHashData(root, root);
        }
        const signedFailed = new Promise((_, reject) => {
          csms.state.signedError = reject;
        });
        signedFailed.catch(() => {});
        const answer = await withTimeout(st.station.call('SignCertificate', request), 15000, 'SignCertificate');
        assert.deepEqual(csms.state.errors, [], 'CSMS <-> gridtrustd');
        assert.equal(answer.status, 'Accepted', JSON.stringify(answer));
        const params = await withTimeout(Promise.race([st.delivered, signedFailed]), 15000, 'CertificateSigned');
        assert.deepEqual([...csms.state.failures, ...st.failures], [], 'no strict-mode validation failures');
        assert.deepEqual(csms.state.errors, []);
        // The CSMS got the station's Accepted back.
        await withTimeout((async () => { while (csms.state.signed.length === 0) await new Promise((r) => setTimeout(r, 10)); })(), 5000, 'CertificateSignedResponse');
        assert.equal(csms.state.signed[0].status, 'Accepted');

        if (params.certificateType !== undefined) assert.equal(params.certificateType, 'ChargingStationCertificate');
        if (v.ocppVersion === '2.1' && params.requestId !== undefined) assert.equal(params.requestId, 7);
        chainPems = splitPem(params.certificateChain);
        assert.ok(chainPems.length >= 2, `certificateChain has the leaf and its sub-CAs (${chainPems.length} certificates)`);
        leafPem = chainPems[0];
      });

      test('the station validates the chain with @peculiar/x509 and finds its own key and name', async (t) => {
        if (!leafPem) return t.skip('no certificate was delivered');
        const chain = await validateChain(leafPem, chainPems.slice(1), csRoot);
        assert.equal(chain.length, csChain.length + 1, 'leaf + the charging-station issuing chain');
        const leaf = chain[0];
        assert.deepEqual(Buffer.from(leaf.publicKey.rawData), st.spki, 'the certificate is for the CSR key');
        assert.equal(leaf.subjectName.getField('CN')[0], st.identity);
        assert.equal(leaf.subjectName.getField('O')[0], org);
        const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
        assert.ok(eku?.usages.includes(x509.ExtendedKeyUsage.clientAuth), 'clientAuth EKU (security profile 3)');
        // The sub-CAs delivered are the PKI's own.
        for (let i = 1; i < chainPems.length; i++) assert.deepEqual(pemToDer(chainPems[i]), pemToDer(csChain[i - 1]));
        // openssl agrees.
        const untrusted = pki.write('untrusted.pem', chainPems.slice(1).join(''));
        const rootFile = pki.write('cs-root.pem', csRoot);
        const leafFile = pki.write('leaf.pem', leafPem);
        await openssl(['verify', '-CAfile', rootFile, '-untrusted', untrusted, '-purpose', 'sslclient', leafFile]);
      });

      test('the station computes certificateHashData from the DER; OpenSSL\'s OCSP CertID agrees', async (t) => {
        if (!leafPem) return t.skip('no certificate was delivered');
        hashData = certificateHashData(pemToDer(leafPem), pemToDer(chainPems[1]));
        assert.match(hashData.issuerNameHash, /^[0-9a-f]{64}$/);
        assert.match(hashData.serialNumber, /^[1-9a-f][0-9a-f]*$/);
        // Cross-check the serial with Node's own parser, and all three with OpenSSL's
        // OCSP CertID (RFC 6960: the same hashes, SHA-256 asked for).
        assert.equal(hashData.serialNumber, new X509Certificate(leafPem).serialNumber.toLowerCase().replace(/^0+/, ''));
        const req = pki.file('certid.der');
        await openssl(['ocsp', '-sha256', '-issuer', pki.write('issuer.pem', chainPems[1]), '-cert', pki.write('leaf.pem', leafPem), '-no_nonce', '-reqout', req]);
        const text = (await openssl(['ocsp', '-reqin', req, '-req_text'])).stdout;
        const field = (name) => new RegExp(`${name}: ([0-9A-Fa-f]+)`).exec(text)?.[1].toLowerCase();
        assert.equal(field('Issuer Name Hash'), hashData.issuerNameHash, 'issuerNameHash as OpenSSL computes it');
        assert.equal(field('Issuer Key Hash'), hashData.issuerKeyHash, 'issuerKeyHash as OpenSSL computes it');
        assert.equal(field('Serial Number').replace(/^0+/, ''), hashData.serialNumber, 'serial as OpenSSL prints it');
      });

      test('gridtrust\'s certificateHashData (`gridtrust ocpp certificate-hash` / GET /v1/ocpp/certificate-hash) equals the station\'s', async (t) => {
        if (!hashData) return t.skip('no certificate was delivered');
        const theirs = await gridtrustHashData(hashData.serialNumber.toUpperCase());
        t.diagnostic(`gridtrust: cli=${JSON.stringify(theirs.cli ?? theirs.cliProblem)} api=${JSON.stringify(theirs.api ?? theirs.apiProblem)}`);
        if (!theirs.cli && !theirs.api) return t.skip(`neither \`gridtrust ocpp certificate-hash\` (${theirs.cliProblem}) nor GET /v1/ocpp/certificate-hash (${theirs.apiProblem}) exists`);
        if (theirs.cli) assert.ok(sameHashData(hashData, theirs.cli), `CLI: ${JSON.stringify(theirs.cli)} vs ours ${JSON.stringify(hashData)}`);
        if (theirs.api) assert.ok(sameHashData(hashData, theirs.api), `API: ${JSON.stringify(theirs.api)} vs ours ${JSON.stringify(hashData)}`);
      });

      test('GetCertificateStatus: ocspResult is base64 DER that openssl parses and verifies (good)', async (t) => {
        if (!leafPem) return t.skip('no certificate was delivered');
        const leaf = new x509.X509Certificate(leafPem);
        const aia = leaf.getExtension(x509.AuthorityInfoAccessExtension);
        const responderURL = aia?.ocsp?.[0]?.value ?? pki.statusUrl('/ocsp');
        const request = { ocspRequestData: { ...certificateHashData(pemToDer(leafPem), pemToDer(chainPems[1])), responderURL } };
        const answer = await withTimeout(st.station.call('GetCertificateStatus', request), 15000, 'GetCertificateStatus');
        assert.deepEqual(csms.state.errors, [], 'CSMS <-> gridtrustd');
        assert.deepEqual([...csms.state.failures, ...st.failures], [], 'no strict-mode validation failures');
        assert.equal(answer.status, 'Accepted', JSON.stringify(answer));
        assert.match(answer.ocspResult, /^[A-Za-z0-9+/]+={0,2}$/, 'standard base64');
        const der = Buffer.from(answer.ocspResult, 'base64');
        assert.equal(der.toString('base64'), answer.ocspResult, 'canonical base64 of the DER');
        assert.equal(der[0], 0x30, 'a DER SEQUENCE');
        const respFile = pki.write('ocsp.der', der);
        const parsed = await openssl(['ocsp', '-respin', respFile, '-resp_text', '-noverify']);
        assert.match(parsed.stdout, /OCSP Response Status: successful/);
        assert.match(parsed.stdout, /Cert Status: good/);
        // Signature and status for exactly this certificate, trusting only the root.
        const leafFile = pki.write('leaf.pem', leafPem);
        const issuerFile = pki.write('issuer.pem', chainPems[1]);
        const rootFile = pki.write('cs-root.pem', csRoot);
        const others = pki.write('others.pem', csChain.slice(0, -1).join(''));
        const r = await openssl(['ocsp', '-respin', respFile, '-sha256', '-issuer', issuerFile, '-cert', leafFile, '-CAfile', rootFile, '-verify_other', others]);
        assert.match(r.stderr + r.stdout, /Response verify OK/);
        assert.match(r.stdout, new RegExp(`${leafFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: good`));
      });

      test('a CSR with a key the charging-station profile does not allow (secp256k1) is refused; the CSMS answers Rejected', async (t) => {
        if (!leafPem) return t.skip('the sign-certificate route did not work for a good CSR');
        const key = pki.file('k1.key');
        await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1', '-out', key]);
        const csrFile = pki.file('k1.csr');
        await openssl(['req', '-new', '-key', key, '-subj', `/CN=${st.identity}/O=${org}`, '-out', csrFile]);
        const before = csms.state.forwarded.length;
        const errorsBefore = csms.state.errors.length;
        const answer = await withTimeout(st.station.call('SignCertificate', { csr: fs.readFileSync(csrFile, 'utf8'), certificateType: 'ChargingStationCertificate' }), 15000, 'SignCertificate');
        assert.deepEqual([...csms.state.failures, ...st.failures], [], 'no strict-mode validation failures');
        assert.equal(answer.status, 'Rejected', JSON.stringify(answer));
        const fwd = csms.state.forwarded[before];
        assert.ok(fwd.status >= 400 && fwd.status < 500 && fwd.status !== 404, `gridtrustd status ${fwd.status}: ${fwd.body}`);
        const body = JSON.parse(fwd.body);
        assert.equal(typeof body.error?.code, 'string', `error body ${fwd.body}`);
        t.diagnostic(`gridtrustd: ${fwd.status} ${body.error.code}`);
        csms.state.errors.splice(errorsBefore);
      });
    });
  }
});
