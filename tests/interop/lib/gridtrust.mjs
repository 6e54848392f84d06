// The gridtrust side of the interop tests: a PKI of its own made by `gridtrust init`
// in a temp directory, the CLI and openssl as child processes, gridtrustd on free
// loopback ports, and Node's https as an mTLS client with a software-key admin
// certificate. Everything is removed and the daemon killed when the test file ends.
import { execFile, spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const CLI = process.env.GRIDTRUST_CLI;
export const DAEMON = process.env.GRIDTRUSTD;

export function requireEnv() {
  if (!CLI || !fs.existsSync(CLI)) throw new Error(`GRIDTRUST_CLI must name the gridtrust binary (got '${CLI ?? ''}')`);
  if (!DAEMON || !fs.existsSync(DAEMON)) throw new Error(`GRIDTRUSTD must name the gridtrustd binary (got '${DAEMON ?? ''}')`);
}

// Result of a child process: never throws on a non-zero exit.
export async function run(file, args, { env, input, timeout = 30000 } = {}) {
  const child = execFileP(file, args, {
    env: { ...process.env, ...env },
    timeout,
    maxBuffer: 64 << 20,
    encoding: 'utf8',
  });
  if (input !== undefined) {
    child.child.stdin.end(input);
  }
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (e) {
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(e) };
  }
}

export function describe(r) {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

// "error: <code>: <message>" on stderr (the CLI's one error line) -> <code>.
export function errorCode(r) {
  const m = /^error: ([a-z0-9_.-]+):/m.exec(r.stderr);
  return m ? m[1] : null;
}

export async function openssl(args, opts) {
  const r = await run('openssl', args, opts);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${describe(r)}`);
  return r;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function splitPem(text) {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)?.map((p) => p + '\n') ?? [];
}

export function pemToDer(pem) {
  return Buffer.from(pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

export function derToPem(der, label = 'CERTIFICATE') {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

// Daemons still running, killed however this process ends (short of SIGKILL).
const liveDaemons = new Set();
function killLiveDaemons() {
  for (const child of liveDaemons) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  liveDaemons.clear();
}
process.on('exit', killLiveDaemons);
// Temp directories of PKIs not cleaned up yet: removed when a signal ends the run.
const liveRoots = new Set();
for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]]) {
  process.once(sig, () => {
    killLiveDaemons();
    if (!process.env.GRIDTRUST_INTEROP_KEEP) for (const root of liveRoots) fs.rmSync(root, { recursive: true, force: true });
    process.exit(code);
  });
}

export function sha256(data) {
  return createHash('sha256').update(data).digest();
}

// An initialised data directory (`gridtrust init`), a work directory next to it and,
// once started, its daemon.
export class Pki {
  static async create(prefix = 'gridtrust-interop-') {
    requireEnv();
    const root = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), prefix));
    liveRoots.add(root);
    const pki = new Pki(root);
    const r = await run(CLI, ['init', '--data-dir', pki.dataDir], { env: pki.env, timeout: 120000 });
    if (r.code !== 0) {
      pki.cleanup();
      throw new Error(`gridtrust init failed: ${describe(r)}`);
    }
    return pki;
  }

  constructor(root) {
    this.root = root;
    this.dataDir = path.join(root, 'pki');
    this.work = path.join(root, 'work');
    fs.mkdirSync(this.work);
    this.env = { SOFTHSM2_CONF: path.join(this.dataDir, 'softhsm2.conf') };
    this.daemon = null;
    this.counter = 0;
  }

  // A new file name in the work directory.
  file(name) {
    return path.join(this.work, `${++this.counter}-${name}`);
  }

  write(name, content) {
    const f = this.file(name);
    fs.writeFileSync(f, content);
    return f;
  }

  // `gridtrust <args> --data-dir DIR`.
  gt(args, opts = {}) {
    return run(CLI, [...args, '--data-dir', this.dataDir], { ...opts, env: { ...this.env, ...opts.env } });
  }

  async gtOk(args, opts) {
    const r = await this.gt(args, opts);
    if (r.code !== 0) throw new Error(`gridtrust ${args.join(' ')} failed: ${describe(r)}`);
    return r;
  }

  async organisation() {
    if (!this.org) {
      // init's admin certificate carries O=<organisation of the profiles>.
      const admin = splitPem(fs.readFileSync(path.join(this.dataDir, 'admin-chain.pem'), 'utf8'))[0];
      const subject = new X509Certificate(admin).subject;
      this.org = /^O=(.*)$/m.exec(subject)[1];
    }
    return this.org;
  }

  // The issuing chain of a profile, root last (`gridtrust chain --profile P`).
  async chain(profile) {
    const r = await this.gtOk(['chain', '--profile', profile]);
    return splitPem(r.stdout);
  }

  // A key made by openssl (software) and a certificate of `profile` issued for it by
  // the CLI from an openssl CSR. keyType: P-256 | P-384 | P-521 | Ed25519.
  async issueSoftware(profile, subject, keyType = 'P-256', existingKeyPem = null) {
    const base = `${profile}-${keyType}`;
    const key = this.file(`${base}.key`);
    const csr = this.file(`${base}.csr`);
    const out = this.file(`${base}.pem`);
    if (existingKeyPem) {
      fs.writeFileSync(key, existingKeyPem, { mode: 0o600 });
    } else if (keyType === 'Ed25519') {
      await openssl(['genpkey', '-algorithm', 'ED25519', '-out', key]);
    } else {
      const curve = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }[keyType];
      await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-out', key]);
    }
    await openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
    const r = await this.gt(['issue', '--profile', profile, '--csr', csr, '--out', out, '--json']);
    if (r.code !== 0) throw new Error(`gridtrust issue --profile ${profile} --csr failed: ${describe(r)}`);
    // --out with --json writes the JSON record (chain_pem inside) to the file.
    const text = fs.readFileSync(out, 'utf8');
    let chainPem = text;
    let serial = null;
    try {
      const o = JSON.parse(text);
      chainPem = o.chain_pem;
      serial = o.serial;
    } catch {
      /* plain PEM */
    }
    const chainFile = this.write(`${base}-chain.pem`, chainPem);
    const certPem = splitPem(chainPem)[0];
    if (!serial) serial = new X509Certificate(certPem).serialNumber;
    return { key, keyPem: fs.readFileSync(key, 'utf8'), cert: chainFile, certPem, chainPem, serial };
  }

  // An admin-profile client certificate with a software key (the admin key of init
  // is in the token, which Node cannot use).
  async adminClient(ou = 'admin') {
    const org = await this.organisation();
    return this.issueSoftware('admin', `/CN=node ${ou} client/O=${org}/OU=${ou}`, 'P-256');
  }

  // ---- gridtrustd ----

  async startDaemon() {
    const yamlPath = path.join(this.dataDir, 'gridtrust.yaml');
    let yaml = fs.readFileSync(yamlPath, 'utf8');
    if (!yaml.includes('127.0.0.1:8443') || !yaml.includes('127.0.0.1:8081'))
      throw new Error('gridtrust.yaml does not have the default ports of init');
    this.apiPort = await freePort();
    this.statusPort = await freePort();
    yaml = yaml.replaceAll('127.0.0.1:8443', `127.0.0.1:${this.apiPort}`).replaceAll('127.0.0.1:8081', `127.0.0.1:${this.statusPort}`);
    fs.writeFileSync(yamlPath, yaml);
    this.daemonLog = path.join(this.work, 'gridtrustd.log');
    const log = fs.openSync(this.daemonLog, 'w');
    const child = spawn(DAEMON, ['--config', yamlPath], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    this.daemon = child;
    liveDaemons.add(child);
    let exited = null;
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      liveDaemons.delete(child);
      if (this.daemon === child) this.daemon = null;
    });
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`gridtrustd exited during start-up (${JSON.stringify(exited)}): ${this.log()}`);
      try {
        const res = await fetch(`http://127.0.0.1:${this.statusPort}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return;
      } catch {
        /* not yet */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`gridtrustd not ready after 15 s: ${this.log()}`);
  }

  log() {
    try {
      return fs.readFileSync(this.daemonLog, 'utf8');
    } catch {
      return '';
    }
  }

  statusUrl(p) {
    return `http://127.0.0.1:${this.statusPort}${p}`;
  }

  // One mTLS request to the API: client certificate and key from `client`, the
  // server authenticated against `caPem` (the root) as host name localhost.
  api(client, caPem, method, urlPath, body) {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port: this.apiPort,
          method,
          path: urlPath,
          cert: client.chainPem,
          key: client.keyPem,
          ca: caPem,
          headers: payload
            ? { 'content-type': 'application/json', 'content-length': payload.length }
            : {},
          timeout: 15000,
          agent: false,
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json = null;
            try {
              json = JSON.parse(text);
            } catch {
              /* not JSON */
            }
            resolve({ status: res.statusCode, text, json });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timeout`)));
      req.on('error', reject);
      if (payload) req.end(payload);
      else req.end();
    });
  }

  killDaemon() {
    if (this.daemon) {
      try {
        this.daemon.kill('SIGKILL');
      } catch {
        /* gone */
      }
      this.daemon = null;
    }
  }

  // Stops the daemon if one runs (a second call, or one after it exited, does nothing).
  async stopDaemon() {
    const child = this.daemon;
    if (!child) return;
    this.daemon = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(t);
  }

  async cleanup() {
    await this.stopDaemon().catch(() => this.killDaemon());
    this.killDaemon();
    liveRoots.delete(this.root);
    if (process.env.GRIDTRUST_INTEROP_KEEP) {
      console.error(`# kept ${this.root}`);
      return;
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
