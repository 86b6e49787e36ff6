import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkRegister, lostRegisterWrites } from './checker/register.js';
import { checkSet } from './checker/set.js';
import { pairOperations, parseHistory, serializeHistory, type HistoryEvent } from './checker/history.js';
import { FIXTURES, fixture, op } from './checker/fixtures.js';
import { generateHistory, historyWithStaleRead, type ScheduleStep } from './checker/generate.js';
import { renderTimeline } from './report/timeline.js';

for (const f of FIXTURES) {
  test(`register fixture: ${f.name} → ${f.linearizable ? 'linearizable' : 'not linearizable'}`, () => {
    const r = checkRegister(f.events);
    assert.equal(r.verdict, f.linearizable ? 'linearizable' : 'not_linearizable', JSON.stringify(r.keys));
  });
}

test('history round-trips through JSONL and rejects malformed lines with their line number', () => {
  const f = FIXTURES.find((x) => x.name === 'stale read after an overwrite')!;
  assert.deepEqual(parseHistory(serializeHistory(f.events)), f.events);
  assert.throws(() => parseHistory('{"process":0,"type":"invoke","f":"read","time":1}\nnot json\n'), /line 2: not JSON/);
  assert.throws(() => parseHistory('{"process":0,"type":"done","f":"read","time":1}'), /line 1: type/);
  assert.throws(() => pairOperations(parseHistory('{"process":0,"type":"ok","f":"read","time":1}')), /without an open operation/);
  assert.throws(() => pairOperations([...op(0, 'read', 'x', null, 0, null), ...op(0, 'read', 'x', null, 1, 2)]), /invokes while an operation is open/);
});

test('a violation is shrunk to a minimal sub-history that keeps the writers of observed values', () => {
  // 200 sequential operations on one key; one stale read in the middle.
  const ops: HistoryEvent[][] = [];
  let t = 0;
  for (let i = 0; i < 100; i++) {
    ops.push(op(0, 'write', 'x', i, t, t + 1)); t += 2;
    ops.push(op(1, 'read', 'x', i === 60 ? 58 : i, t, t + 1, 'ok', i === 60 ? 58 : i)); t += 2;
  }
  ops.push(op(2, 'write', 'y', 'unrelated', 0, 1));
  const r = checkRegister(fixture('long', false, ...ops).events);
  assert.equal(r.verdict, 'not_linearizable');
  const x = r.keys.find((k) => k.key === 'x')!;
  assert.equal(x.verdict, 'not_linearizable');
  assert.equal(r.keys.find((k) => k.key === 'y')!.verdict, 'linearizable');
  assert.equal(x.counterexampleMinimal, true);
  // write 58, write 59 (or 60), the stale read of 58: three operations, six events.
  const values = pairOperations(x.counterexample!).map((o) => `${o.f}:${JSON.stringify(o.f === 'read' ? o.output : o.input)}`);
  assert.equal(values.length, 3, values.join(' '));
  assert.ok(values.includes('write:58') && values.includes('read:58'), values.join(' '));
  assert.equal(checkRegister(x.counterexample!).verdict, 'not_linearizable');
});

test('the search bound yields unknown instead of a guess', () => {
  // Many concurrent indeterminate writes and reads that never settle on one order force a wide search.
  const ops: HistoryEvent[][] = [];
  for (let i = 0; i < 30; i++) ops.push(op(i, 'write', 'x', i, 0, 5, 'info'));
  for (let i = 0; i < 30; i++) ops.push(op(100 + i, 'read', 'x', (i * 7) % 30, 10 + i * 2, 11 + i * 2));
  const r = checkRegister(fixture('wide', false, ...ops).events, { stepsMaxPerKey: 50 });
  assert.equal(r.verdict, 'unknown');
  assert.match(r.keys[0]!.reason ?? '', /step limit/);
});

const scheduleArb = (processes: number, keys: number, maxLength: number) => fc.array(
  fc.record({ process: fc.nat(processes - 1), kind: fc.nat(2), key: fc.nat(keys - 1), roll: fc.nat(99) }),
  { maxLength },
) as fc.Arbitrary<ScheduleStep[]>;

test('property: histories generated from the sequential model with random concurrency are linearizable', () => {
  fc.assert(fc.property(scheduleArb(5, 2, 300), (schedule) => {
    const { events } = generateHistory(schedule);
    const r = checkRegister(events);
    assert.equal(r.verdict, 'linearizable', serializeHistory(events));
  }), { numRuns: 200 });
});

test('property: an injected stale read is always detected, and the counterexample contains it', () => {
  fc.assert(fc.property(scheduleArb(4, 2, 120), scheduleArb(4, 2, 120), (before, after) => {
    const events = historyWithStaleRead(before, after);
    const r = checkRegister(events);
    assert.equal(r.verdict, 'not_linearizable');
    const k0 = r.keys.find((k) => k.key === 'k0')!;
    assert.ok(k0.counterexample!.some((e) => e.type === 'ok' && e.f === 'read' && e.value === 'STALE'));
    assert.equal(checkRegister(k0.counterexample!).verdict, 'not_linearizable');
  }), { numRuns: 100 });
});

test('set checker: lost, unexpected, recovered and stale reads', () => {
  const ev: HistoryEvent[] = [
    ...op(0, 'add', 's', 1, 0, 1),
    ...op(0, 'add', 's', 2, 2, 3),
    ...op(1, 'add', 's', 3, 2, 4, 'info'),
    ...op(1, 'add', 's', 4, 5, 6, 'fail'), // process 1 continues after info only in this hand-made test
    ...op(2, 'read', 's', null, 7, 8, 'ok', [1]), // misses 2, acknowledged at 3: stale
    ...op(2, 'read', 's', null, 9, 10, 'ok', [1, 3, 4, 99]),
  ];
  const r = checkSet(ev);
  assert.equal(r.valid, false);
  assert.deepEqual(r.lost, [2]);
  assert.deepEqual(r.recovered, [3]);
  assert.deepEqual(r.unexpected.sort(), [4, 99]);
  assert.deepEqual(r.staleReads, [{ read: 4, missing: [2] }]);

  const clean = checkSet([...op(0, 'add', 's', 1, 0, 1), ...op(1, 'add', 's', 2, 0, 5, 'info'), ...op(2, 'read', 's', null, 6, 7, 'ok', [1])]);
  assert.equal(clean.valid, true);
  assert.equal(clean.lostCount, 0);
  assert.equal(checkSet(op(0, 'add', 's', 1, 0, 1)).valid, false, 'no final read is not a pass');
});

test('shrinking keeps a writer invoked after the read that observes it (regression)', () => {
  const ev = fixture('late writer', false,
    op(0, 'write', 'k', 'STALE', 10, 11), op(0, 'write', 'k', 'NEWER', 12, 13),
    op(2, 'read', 'k', null, 15, 20, 'ok', 'b0'), op(1, 'write', 'k', 'b0', 16, null),
    op(0, 'read', 'k', null, 30, 31, 'ok', 'STALE')).events;
  const k = checkRegister(ev).keys[0]!;
  assert.equal(k.verdict, 'not_linearizable');
  const ops = pairOperations(k.counterexample!);
  assert.ok(ops.some((o) => o.f === 'read' && o.output === 'STALE'), JSON.stringify(k.counterexample));
  for (const r of ops.filter((o) => o.f === 'read' && o.output !== null)) {
    assert.ok(ops.some((w) => w.f === 'write' && w.input === r.output), `the writer of ${String(r.output)} is kept`);
  }
});

test('lost register writes: the final read must show a write that may be last', () => {
  const base = [op(0, 'write', 'x', 'a', 0, 1), op(0, 'write', 'x', 'b', 2, 3), op(1, 'write', 'x', 'c', 2, null)];
  const final = (v: unknown) => fixture('f', false, ...base, op(2, 'read', 'x', null, 10, 11, 'ok', v)).events;
  assert.deepEqual(lostRegisterWrites(final('b')), []);
  assert.deepEqual(lostRegisterWrites(final('c')), [], 'an indeterminate write may be last');
  assert.deepEqual(lostRegisterWrites(final('a')), [{ key: 'x', read: 'a', expectedOneOf: ['b', 'c'] }]);
  assert.equal(lostRegisterWrites(final(null)).length, 1, 'an emptied key lost its writes');
  // No read after the last acknowledged write: nothing to judge.
  assert.deepEqual(lostRegisterWrites(fixture('f', true, ...base, op(2, 'read', 'x', null, 1, 2, 'ok', 'a')).events), []);
});

test('lost register writes: a swapped cas counts as a write of its new value, a failed one not at all', () => {
  const final = (v: unknown, casOutcome: 'ok' | 'fail' = 'ok') => fixture('f', false, op(0, 'write', 'x', 'a', 0, 1), op(0, 'cas', 'x', ['a', 'b'], 2, 3, casOutcome), op(2, 'read', 'x', null, 10, 11, 'ok', v)).events;
  assert.deepEqual(lostRegisterWrites(final('b')), []);
  assert.deepEqual(lostRegisterWrites(final('a')), [{ key: 'x', read: 'a', expectedOneOf: ['b'] }]);
  assert.deepEqual(lostRegisterWrites(final('a', 'fail')), [], 'a cas whose compare failed wrote nothing');
  assert.equal(lostRegisterWrites(final('b', 'fail')).length, 1, 'and its value cannot be the last write');
});

test('the timeline renders a huge history (no argument-spread overflow) and draws a bounded number of operations', () => {
  const events: HistoryEvent[] = [];
  for (let i = 0; i < 150_000; i++) {
    events.push({ process: 'watch-0', type: 'invoke', f: 'watch-event', value: null, time: 2 * i }, { process: 'watch-0', type: 'ok', f: 'watch-event', value: { revision: i }, time: 2 * i + 1 });
  }
  const svg = renderTimeline(events, [], { title: 'big', workers: 2 });
  assert.match(svg, /^<svg[\s\S]*20000 ops · [\s\S]*<\/svg>$/);
});
