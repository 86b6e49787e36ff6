#!/usr/bin/env node
// Runs every compiled test file under dist/ with node's built-in test runner.
// Usage: node scripts/run-tests.mjs [unit|integration|e2e|sim|all] [--filter substring]
//   CONURE_DIST=/tmp/dist-x  read compiled files from there instead of dist/
// Unit tests are src/**/*.test.js; slower suites live under test/<kind>/.
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
  all: ['src', 'test/sim', 'test/integration', 'test/e2e', 'test/fault', 'bench'],
}[kind]?.map((r) => join(dist, r));
if (!roots) { console.error(`unknown test kind: ${kind}`); process.exit(2); }

let files = roots.flatMap((r) => walk(r)).sort();
if (filter) files = files.filter((f) => f.includes(filter));
if (files.length === 0) { console.error('no test files found (did you run the build?)'); process.exit(1); }
console.error(`running ${files.length} test files: ${files.map((f) => relative(dist, f)).join(' ')}`);
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const tapFile = join(mkdtempSync(join(tmpdir(), 'conure-tests-')), 'results.tap');
const r = spawnSync(process.execPath, [
  '--enable-source-maps', '--test', `--test-concurrency=${concurrency}`,
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=tap', `--test-reporter-destination=${tapFile}`,
  ...files,
], { stdio: 'inherit' });
// Close with one plain summary line, read from the TAP copy of the run.
let pass = 0, fail = 0, skipped = 0;
try {
  const tap = readFileSync(tapFile, 'utf8');
  const num = (name) => Number(tap.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
  pass = num('pass'); fail = num('fail') + num('cancelled'); skipped = num('skipped');
} catch { fail = Math.max(fail, 1); }
const status = r.status ?? 1;
if (status !== 0 && fail === 0) fail = 1;
console.log(`tests: ${pass} passed, ${fail} failed, ${skipped} skipped`);
process.exit(status);
