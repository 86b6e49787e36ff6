#!/usr/bin/env node
// Runs every compiled test file under dist/ with node's built-in test runner.
// Usage: node scripts/run-tests.mjs [unit|integration|e2e|sim|fault|k8s|examples|all] [--filter substring]
//   CONURE_DIST=/tmp/dist-x  read compiled files from there instead of dist/
// Unit tests are src/**/*.test.js (and scripts/*.test.mjs); slower suites live under test/<kind>/.
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const filterAt = args.indexOf('--filter');
const filter = filterAt >= 0 ? args[filterAt + 1] : undefined;
const kind = args.find((a, i) => !a.startsWith('--') && (filterAt < 0 || i !== filterAt + 1)) ?? 'all';

function walk(dir, out = []) {
  let names;
  try { names = readdirSync(dir); } catch { return out; }
  for (const name of names) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

// CONURE_DIST lets parallel work build into separate output folders (default dist).
const dist = process.env.CONURE_DIST ?? 'dist';
const roots = {
  unit: ['src'],
  sim: ['test/sim'],
  integration: ['test/integration'],
  e2e: ['test/e2e'],
  fault: ['test/fault'],
  k8s: ['test/k8s'],
  examples: ['examples'],
  all: ['src', 'test/sim', 'test/integration', 'test/e2e', 'test/fault', 'test/k8s', 'bench', 'examples'],
}[kind]?.map((r) => join(dist, r));
if (!roots) { console.error(`unknown test kind: ${kind}`); process.exit(2); }

// The tests of the repository's own scripts (scripts/*.test.mjs, e.g. check-layers) are plain
// ESM, never compiled: they run with the unit tests, from scripts/ itself.
const scriptTests = kind === 'unit' || kind === 'all'
  ? readdirSync('scripts').filter((n) => n.endsWith('.test.mjs')).map((n) => join('scripts', n))
  : [];
let files = [...roots.flatMap((r) => walk(r)).sort(), ...scriptTests.sort()];
if (filter) files = files.filter((f) => f.includes(filter));
if (files.length === 0) { console.error('no test files found (did you run the build?)'); process.exit(1); }
console.error(`running ${files.length} test files: ${files.map((f) => (f.startsWith(dist) ? relative(dist, f) : f)).join(' ')}`);
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// Files named *.serial.test.js judge latency (e.g. etcdctl check perf): they run afterwards,
// one at a time, so CPU-heavy suites running in parallel cannot skew them.
// test/k8s files each assemble the machine's one local Kubernetes: they are serial too.
const isSerial = (f) => f.endsWith('.serial.test.js') || f.split(/[\\/]/).join('/').includes('/test/k8s/');
const serial = files.filter(isSerial);
const parallel = files.filter((f) => !isSerial(f));
const tmp = mkdtempSync(join(tmpdir(), 'conure-tests-'));

function runPhase(list, concurrency, name) {
  if (list.length === 0) return { status: 0, tap: '' };
  const tapFile = join(tmp, `${name}.tap`);
  const r = spawnSync(process.execPath, [
    '--enable-source-maps', '--test', `--test-concurrency=${concurrency}`,
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    '--test-reporter=tap', `--test-reporter-destination=${tapFile}`,
    ...list,
  ], { stdio: 'inherit' });
  let tap = '';
  try { tap = readFileSync(tapFile, 'utf8'); } catch { /* the runner died before writing */ }
  return { status: r.status ?? 1, tap };
}

const phases = [runPhase(parallel, concurrency, 'parallel'), runPhase(serial, 1, 'serial')];
// Close with one plain summary line over both phases, read from their TAP copies.
const num = (tap, name) => Number(tap.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
let pass = 0, fail = 0, skipped = 0, status = 0;
for (const p of phases) {
  pass += num(p.tap, 'pass');
  fail += num(p.tap, 'fail') + num(p.tap, 'cancelled');
  skipped += num(p.tap, 'skipped');
  if (p.status !== 0) status = p.status;
}
if (status !== 0 && fail === 0) fail = 1;
console.log(`tests: ${pass} passed, ${fail} failed, ${skipped} skipped`);
process.exit(status);
