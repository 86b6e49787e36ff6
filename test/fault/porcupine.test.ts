/**
 * Cross-check: the TypeScript checker and porcupine (through the Go harness in
 * test/fault/porcupine) must agree on every fixture and on random histories, both
 * linearizable ones and ones with an injected stale read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { checkRegister } from './checker/register.js';
import { serializeHistory, type HistoryEvent } from './checker/history.js';
import { FIXTURES } from './checker/fixtures.js';
import { generateHistory, historyWithStaleRead, type ScheduleStep } from './checker/generate.js';

/** The Go module directory, found upward from this (compiled) file or the working directory. */
function harnessDir(): string | undefined {
  for (let d = dirname(fileURLToPath(import.meta.url)); ; d = dirname(d)) {
    const candidate = join(d, 'test', 'fault', 'porcupine');
    if (existsSync(join(candidate, 'go.mod'))) return candidate;
    if (dirname(d) === d) break;
  }
  const fromCwd = join(process.cwd(), 'test', 'fault', 'porcupine');
  return existsSync(join(fromCwd, 'go.mod')) ? fromCwd : undefined;
}

const goAvailable = spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0;

test('porcupine and the TypeScript checker agree', { skip: goAvailable ? false : 'go is not installed: the porcupine cross-check needs Go (CI installs it)', timeout: 240_000 }, (t) => {
  const dir = harnessDir();
  assert.ok(dir, 'test/fault/porcupine/go.mod not found');
  const tmp = mkdtempSync(join(tmpdir(), 'conure-porcupine-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const bin = join(tmp, 'porcupine-check');
  const build = spawnSync('go', ['build', '-o', bin, '.'], { cwd: dir, encoding: 'utf8', timeout: 180_000 });
  assert.equal(build.status, 0, `go build failed:\n${build.stderr}`);

  const cases: { name: string; events: HistoryEvent[] }[] = FIXTURES.map((f) => ({ name: f.name, events: f.events }));
  const arb = fc.array(fc.record({ process: fc.nat(4), kind: fc.nat(2), key: fc.nat(1), roll: fc.nat(99) }), { maxLength: 200 }) as fc.Arbitrary<ScheduleStep[]>;
  fc.sample(arb, { numRuns: 30, seed: 42 }).forEach((s, i) => cases.push({ name: `random linearizable #${i}`, events: generateHistory(s).events }));
  const pairs = fc.sample(fc.tuple(arb, arb), { numRuns: 15, seed: 7 });
  pairs.forEach(([a, b], i) => cases.push({ name: `random with stale read #${i}`, events: historyWithStaleRead(a, b) }));

  let linearizable = 0, violations = 0;
  for (const [i, c] of cases.entries()) {
    const file = join(tmp, `h${i}.jsonl`);
    writeFileSync(file, serializeHistory(c.events));
    const r = spawnSync(bin, ['-timeout', '20s', file], { encoding: 'utf8', timeout: 30_000 });
    assert.ok(r.status === 0 || r.status === 1, `${c.name}: porcupine harness exited ${r.status}: ${r.stderr}${r.stdout}`);
    const theirs = (JSON.parse(r.stdout) as { result: string }).result;
    const ours = checkRegister(c.events).verdict;
    assert.equal(ours === 'linearizable' ? 'Ok' : ours === 'not_linearizable' ? 'Illegal' : 'Unknown', theirs, `${c.name}: checkers disagree (ours ${ours}, porcupine ${theirs})`);
    if (theirs === 'Ok') linearizable++; else violations++;
  }
  // Both outcomes must be represented, or agreement proves little.
  assert.ok(linearizable >= 20 && violations >= 20, `linearizable ${linearizable}, violations ${violations}`);
});
