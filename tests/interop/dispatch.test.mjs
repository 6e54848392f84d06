// Commands the dispatch engine emits (docs/dispatch.md), checked by independent code:
// every SetChargingProfileRequest that gridtrustd's /v1/dispatch routes (and the
// offline `gridtrust dispatch submit`) return or queue in the outbox must
//   - pass ocpp-rpc's strict OCPP 2.1 SetChargingProfileRequest schema, and
//   - verify with jose + canonicalize (single messages, and batch entries through their
//     Merkle inclusion path) under an aggregator-signer certificate of the PKI, for the
//     station it is addressed to;
// and one of them is delivered CSMS -> station over ocpp-rpc in strict mode on both ends.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { describe as describeRun, pemToDer, Pki, splitPem } from './lib/gridtrust.mjs';
import { strictModeValidators } from './lib/ocpp_validators.mjs';
import { jose, verifyBatchEntry, verifySingle, x5tS256 } from './lib/signed.mjs';

const require = createRequire(import.meta.url);
const { RPCClient, RPCServer } = require('ocpp-rpc');
const standard = require('ocpp-rpc/lib/standard-validators');

let pki;
let client; // software-key admin client certificate
let apiCa;
const signers = new Map(); // x5t#S256 -> PEM
const emitted = []; // { via, station, command }

// The OCPP 2.1 validator strict mode uses; SetChargingProfile's schemas compiled
// quietly (Ajv's strictTypes notes about the official schemas are not findings here).
function validator21() {
  const fixed = strictModeValidators();
  const v = fixed.length ? fixed[0] : standard.find((x) => x.subprotocol === 'ocpp2.1');
  const warn = console.warn;
  console.warn = () => {};
  try {
    for (const kind of ['req', 'conf']) v._ajv.getSchema(`urn:SetChargingProfile.${kind}`);
  } finally {
    console.warn = warn;
  }
  return v;
}

function registry() {
  const departure = Math.floor(Date.now() / 1000) + 10 * 3600;
  const ev = (id, station, evse) =>
    `  - {ev: ${id}, station: ${station}, evse: ${evse}, battery_kwh: 60, soc: 0.5, soc_min: 0.2, soc_max: 0.9, ` +
    `max_charge_w: 9000, max_discharge_w: 7000, eta_charge: 0.95, eta_discharge: 0.95, departure: ${departure}}\n`;
  return (
    'sites:\n' +
    '  - id: depot\n' +
    '    import_limit_w: 40000\n' +
    '    export_limit_w: 30000\n' +
    '    policy: clamp\n' +
    '    stations:\n' +
    `      - id: CS-1\n        aggregator: ${pki.org}\n` +
    '        evses:\n          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}\n' +
    '          - {id: 2, max_charge_w: 11000, max_discharge_w: 11000}\n' +
    `      - id: CS-2\n        aggregator: ${pki.org}\n` +
    '        evses:\n          - {id: 1, max_charge_w: 11000, max_discharge_w: 11000}\n' +
    'sessions:\n' +
    ev('EV-1', 'CS-1', 1) +
    ev('EV-2', 'CS-1', 2) +
    ev('EV-3', 'CS-2', 1)
  );
}

function setpoint(evse, w, mode = 'CentralSetpoint') {
  const period = { startPeriod: 0, operationMode: mode };
  if (mode === 'ExternalSetpoint') Object.assign(period, { limit: w, dischargeLimit: -w });
  else period.setpoint = w;
  return {
    evseId: evse,
    chargingProfile: {
      id: 21,
      stackLevel: 1,
      chargingProfilePurpose: 'TxDefaultProfile',
      chargingProfileKind: 'Absolute',
      chargingSchedule: [{ id: 1, chargingRateUnit: 'W', duration: 900, chargingSchedulePeriod: [period] }],
    },
  };
}

async function gtSign(message, station, action = 'SetChargingProfile') {
  const file = pki.write('m.json', JSON.stringify(message));
  return JSON.parse((await pki.gtOk(['sign', '--action', action, '--station', station, file])).stdout);
}

async function learnSigners() {
  const r = await pki.gtOk(['list', '--profile', 'aggregator-signer', '--json']);
  for (const rec of JSON.parse(r.stdout)) {
    const pem = splitPem((await pki.gtOk(['show', rec.serial, '--pem'])).stdout)[0];
    signers.set(x5tS256(pemToDer(pem)), pem);
  }
}

async function keyFor(header) {
  if (!signers.has(header['x5t#S256'])) await learnSigners();
  const pem = signers.get(header['x5t#S256']);
  assert.ok(pem, `x5t#S256 ${header['x5t#S256']} names an aggregator-signer certificate of the PKI`);
  return jose.importX509(pem, header.alg);
}

async function post(route, body) {
  const res = await pki.api(client, apiCa, 'POST', route, body);
  assert.equal(res.status, 200, `${route}: HTTP ${res.status} ${res.text}`);
  return res.json;
}

describe('dispatch: emitted SetChargingProfileRequests are OCPP 2.1 schema-valid and verify with jose', () => {
  before(async () => {
    pki = await Pki.create('gridtrust-interop-dispatch-');
    pki.org = await pki.organisation();
    client = await pki.adminClient('operator');
    const csmsChain = await pki.chain('csms-server');
    apiCa = csmsChain[csmsChain.length - 1];
    fs.writeFileSync(path.join(pki.dataDir, 'fleet.yaml'), registry());
    const yamlPath = path.join(pki.dataDir, 'gridtrust.yaml');
    const yaml = fs.readFileSync(yamlPath, 'utf8');
    const at = yaml.indexOf('\ndispatch:');
    assert.ok(at >= 0, 'init wrote a dispatch section');
    fs.writeFileSync(yamlPath, `${yaml.slice(0, at + 1)}dispatch:\n  enabled: true\n  registry: fleet.yaml\n  output: return\n`);
    await pki.startDaemon();
  });

  after(async () => {
    await pki?.cleanup();
  });

  test('the daemon returns a signed command for applied and clamped setpoints, single and batch', async () => {
    const applied = await post('/v1/dispatch/setpoints', await gtSign(setpoint(1, 3000), 'CS-1'));
    assert.equal(applied.decision.outcome, 'applied', JSON.stringify(applied));
    emitted.push({ via: 'single applied', station: 'CS-1', command: applied.command });

    const clamped = await post('/v1/dispatch/setpoints', await gtSign(setpoint(1, -20000), 'CS-1'));
    assert.equal(clamped.decision.outcome, 'clamped', JSON.stringify(clamped));
    emitted.push({ via: 'single clamped', station: 'CS-1', command: clamped.command });

    const external = await post('/v1/dispatch/setpoints', await gtSign(setpoint(2, 4000, 'ExternalSetpoint'), 'CS-1'));
    assert.notEqual(external.decision.outcome, 'rejected', JSON.stringify(external));
    emitted.push({ via: 'single ExternalSetpoint', station: 'CS-1', command: external.command });

    const items = [
      { action: 'SetChargingProfile', station: 'CS-1', message: setpoint(2, 1500) },
      { action: 'SetChargingProfile', station: 'CS-2', message: setpoint(1, 2500) },
      { action: 'SetChargingProfile', station: 'CS-2', message: setpoint(1, 0, 'Idle') },
    ];
    const entries = JSON.parse((await pki.gtOk(['sign-batch', pki.write('items.json', JSON.stringify(items))])).stdout);
    const batch = await post('/v1/dispatch/setpoints', { batch: entries });
    assert.equal(batch.results.length, 3);
    batch.results.forEach((r, i) => {
      assert.notEqual(r.decision.outcome, 'rejected', JSON.stringify(r));
      emitted.push({ via: `batch entry ${i}`, station: items[i].station, command: r.command });
    });
  });

  test('a fleet target emits one signed command per EV, as one batch', async () => {
    const target = await gtSign({ group: 'g1', targetW: 6000, stations: ['CS-1', 'CS-2'], durationS: 600 }, 'fleet:g1',
      'gridtrust.FleetTarget');
    const answer = await post('/v1/dispatch/targets', target);
    assert.notEqual(answer.decision.outcome, 'rejected', JSON.stringify(answer));
    assert.equal(answer.commands.length, 3);
    for (const c of answer.commands) emitted.push({ via: `fleet target ${c.station}#${c.evse}`, station: c.station, command: c.command });
  });

  test('`gridtrust dispatch submit` offline emits the same kind of command', async () => {
    const file = pki.write('offline.json', JSON.stringify(await gtSign(setpoint(1, 2000), 'CS-2')));
    // Not while gridtrustd runs its engine on the same data directory (one engine per
    // site limit): the daemon stays stopped for the next test, which restarts it.
    const busy = await pki.gt(['dispatch', 'submit', file]);
    assert.equal(busy.code, 5, describeRun(busy));
    assert.match(busy.stderr, /conflict\.dispatch_engine_busy/);
    await pki.stopDaemon();
    const r = await pki.gt(['dispatch', 'submit', file]);
    assert.equal(r.code, 0, describeRun(r));
    const answer = JSON.parse(r.stdout);
    assert.equal(answer.decision.outcome, 'applied');
    emitted.push({ via: 'offline CLI', station: 'CS-2', command: answer.command });
  });

  test('output: outbox: the signed command is queued in the outbox (GET /v1/outbox)', async () => {
    await pki.stopDaemon(); // (the offline test above stopped it already, if it got that far)
    const yamlPath = path.join(pki.dataDir, 'gridtrust.yaml');
    // Back to init's ports (startDaemon moves them to free ones again), and to the outbox.
    const yaml = fs
      .readFileSync(yamlPath, 'utf8')
      .replaceAll(`127.0.0.1:${pki.apiPort}`, '127.0.0.1:8443')
      .replaceAll(`127.0.0.1:${pki.statusPort}`, '127.0.0.1:8081')
      .replace('  output: return\n', '  output: outbox\n');
    fs.writeFileSync(yamlPath, yaml);
    await pki.startDaemon();
    const answer = await post('/v1/dispatch/setpoints', await gtSign(setpoint(1, 1800), 'CS-2'));
    assert.equal(answer.decision.outcome, 'applied', JSON.stringify(answer));
    assert.equal(answer.command, undefined);
    assert.equal(typeof answer.outbox_id, 'string');
    const admin = await pki.adminClient('admin'); // the outbox is read by admin and aggregator callers
    const box = await pki.api(admin, apiCa, 'GET', '/v1/outbox?limit=1000');
    assert.equal(box.status, 200, box.text);
    const entry = box.json.entries.find((e) => e.id === answer.outbox_id);
    assert.ok(entry, `outbox entry ${answer.outbox_id}`);
    assert.equal(entry.action, 'SetChargingProfile');
    assert.equal(entry.station, 'CS-2');
    emitted.push({ via: 'outbox', station: 'CS-2', command: entry.payload });
  });

  test('every emitted command passes the strict OCPP 2.1 SetChargingProfileRequest schema', () => {
    assert.ok(emitted.length >= 10, `emitted ${emitted.length}`);
    const v = validator21();
    for (const e of emitted) {
      assert.ok(e.command && typeof e.command === 'object', `${e.via}: a command`);
      assert.doesNotThrow(() => v.validate('urn:SetChargingProfile.req', e.command), `${e.via}: ${JSON.stringify(e.command)}`);
      // The schema's own invariant for CentralSetpoint: setpoint within [dischargeLimit, limit].
      const p = e.command.chargingProfile.chargingSchedule[0].chargingSchedulePeriod[0];
      if (p.setpoint !== undefined && p.limit !== undefined) assert.ok(p.setpoint <= p.limit, e.via);
      if (p.setpoint !== undefined && p.dischargeLimit !== undefined) assert.ok(p.setpoint >= p.dischargeLimit, e.via);
    }
  });

  test('every emitted command verifies with jose + canonicalize for its own station', async () => {
    for (const e of emitted) {
      const cd = e.command.customData;
      assert.equal(cd?.vendorId, 'org.gridtrust', e.via);
      if (cd.batch) {
        const { header } = await verifyBatchEntry(e.command, keyFor);
        assert.equal(cd.batch.action, 'SetChargingProfile', e.via);
        assert.equal(cd.batch.station, e.station, e.via);
        assert.ok(header.exp > header.iat, e.via);
      } else {
        const { header } = await verifySingle(e.command, keyFor);
        assert.equal(header.action, 'SetChargingProfile', e.via);
        assert.equal(header.station, e.station, e.via);
        assert.ok(Number.isSafeInteger(header.seq) && header.seq > 0, e.via);
      }
      // One changed value breaks it.
      const changed = structuredClone(e.command);
      changed.evseId += 1;
      await assert.rejects(cd.batch ? verifyBatchEntry(changed, keyFor) : verifySingle(changed, keyFor), e.via);
    }
  });

  test('a CSMS delivers an emitted command to a station over ocpp-rpc, strict on both ends', async () => {
    const failures = [];
    validator21(); // compiled quietly before strict mode uses it
    const server = new RPCServer({ protocols: ['ocpp2.1'], strictMode: true, strictModeValidators: strictModeValidators() });
    let connected;
    const ready = new Promise((r) => (connected = r));
    server.on('client', (cs) => {
      cs.on('strictValidationFailure', (e) => failures.push(`csms: ${e.error ?? e}`));
      connected(cs);
    });
    const http = await server.listen(0, '127.0.0.1');
    const station = new RPCClient({
      endpoint: `ws://127.0.0.1:${http.address().port}`,
      identity: 'CS-1',
      protocols: ['ocpp2.1'],
      strictMode: true,
      strictModeValidators: strictModeValidators(),
      reconnect: false,
    });
    station.on('strictValidationFailure', (e) => failures.push(`station: ${e.error ?? e}`));
    const received = [];
    station.handle('SetChargingProfile', async ({ params }) => {
      const { header } = await verifySingle(params, keyFor);
      received.push(header);
      return { status: header.station === 'CS-1' ? 'Accepted' : 'Rejected' };
    });
    try {
      await station.connect();
      const cs = await ready;
      const one = emitted.find((e) => e.station === 'CS-1' && !e.command.customData.batch);
      const answer = await cs.call('SetChargingProfile', one.command);
      assert.equal(answer.status, 'Accepted');
      assert.equal(received.length, 1);
      assert.deepEqual(failures, []);
    } finally {
      await station.close({ force: true }).catch(() => {});
      await server.close({ force: true }).catch(() => {});
    }
  });
});
