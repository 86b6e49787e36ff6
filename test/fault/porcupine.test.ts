/**
 * Cross-check: the TypeScript checker and porcupine (through the Go harness in
 * test/fault/porcupine) must agree on every fixture and on random histories, both
 * linearizable ones and ones with an injected stale read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { checkRegister } from './checker/register.js';
import { serializeHistory, type HistoryEvent } from './checker/history.js';
import { FIXTURES } from './checker/fixtures.js';
import { generateHistory, historyWithStaleRead, type ScheduleStep } from './checker/generate.js';
import { buildPorcupine, goAvailable, runPorcupine } from './porcupine-harness.js';

test('porcupine and the TypeScript checker agree', { skip: goAvailable() ? false : 'go is not installed: the porcupine cross-check needs Go (CI installs it)', timeout: 240_000 }, (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'conure-porcupine-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const bin = buildPorcupine(tmp);

  const cases: { name: string; events: HistoryEvent[] }[] = FIXTURES.map((f) => ({ name: f.name, events: f.events }));
  const arb = fc.array(fc.record({ process: fc.nat(4), kind: fc.nat(2), key: fc.nat(1), roll: fc.nat(99) }), { maxLength: 200 }) as fc.Arbitrary<ScheduleStep[]>;
  fc.sample(arb, { numRuns: 30, seed: 42 }).forEach((s, i) => cases.push({ name: `random linearizable #${i}`, events: generateHistory(s).events }));
  const pairs = fc.sample(fc.tuple(arb, arb), { numRuns: 15, seed: 7 });
  pairs.forEach(([a, b], i) => cases.push({ name: `random with stale read #${i}`, events: historyWithStaleRead(a, b) }));

  let linearizable = 0, violations = 0;
  for (const [i, c] of cases.entries()) {
    const file = join(tmp, `h${i}.jsonl`);
    writeFileSync(file, serializeHistory(c.events));
    const theirs = runPorcupine(bin, file, 20_000);
    assert.ok(typeof theirs === 'string', `${c.name}: porcupine harness failed: ${JSON.stringify(theirs)}`);
    const ours = checkRegister(c.events).verdict;
    assert.equal(ours === 'linearizable' ? 'Ok' : ours === 'not_linearizable' ? 'Illegal' : 'Unknown', theirs, `${c.name}: checkers disagree (ours ${ours}, porcupine ${theirs})`);
    if (theirs === 'Ok') linearizable++; else violations++;
  }
  // Both outcomes must be represented, or agreement proves little.
  assert.ok(linearizable >= 20 && violations >= 20, `linearizable ${linearizable}, violations ${violations}`);
});
