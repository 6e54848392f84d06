// ctest entry point of the Node interop suite (tests/CMakeLists.txt, test interop_node):
//   GRIDTRUST_CLI=... GRIDTRUSTD=... node tests/interop/run.mjs
// runs every *.test.mjs here with node:test. Exit 77 (ctest SKIP_RETURN_CODE) when
// the dependencies are not installed: `npm ci --prefix tests/interop` (scripts/test.sh
// does it).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const lock = JSON.parse(fs.readFileSync(path.join(here, 'package-lock.json'), 'utf8'));
const missing = Object.keys(lock.packages?.['']?.dependencies ?? {}).filter(
  (name) => !fs.existsSync(path.join(here, 'node_modules', name, 'package.json')),
);
if (missing.length) {
  console.error(`SKIP: interop dependencies not installed (${missing.join(', ')}); run: npm ci --prefix ${path.relative(process.cwd(), here) || '.'}`);
  process.exit(77);
}
for (const v of ['GRIDTRUST_CLI', 'GRIDTRUSTD']) {
  if (!process.env[v]) {
    console.error(`${v} is not set (the gridtrust / gridtrustd binary under test)`);
    process.exit(2);
  }
}
const files = process.argv.length > 2
  ? process.argv.slice(2).map((f) => path.resolve(f))
  : fs.readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => path.join(here, f));
const started = Date.now();
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit', cwd: here });
// ctest's timeout or ^C: pass it on, so that the test files stop their daemons.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => {
  console.log(`# interop suite wall time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exit(code ?? 1);
});
