import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Series } from './series.js';

function dump(s: Series): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (let i = 0; i < s.length; i++) out.push([s.tsAt(i), s.dataAt(i)]);
  return out;
}

test('appends in order, binary-inserts out of order, replaces on equal ts', () => {
  const s = new Series();
  assert.equal(s.upsert(10, 'a'), 1);
  assert.equal(s.upsert(30, 'c'), 1);
  assert.equal(s.upsert(20, 'b'), 1);
  assert.equal(s.upsert(5, 'z'), 1);
  assert.equal(s.upsert(20, 'B'), 0);
  assert.deepEqual(dump(s), [[5, 'z'], [10, 'a'], [20, 'B'], [30, 'c']]);
  assert.equal(s.dataChars, 4);
});

test('lookups: lowerBound, upperBound, latestAtOrBefore', () => {
  const s = new Series();
  for (const t of [10, 20, 30]) s.upsert(t, String(t));
  assert.equal(s.lowerBound(20), 1);
  assert.equal(s.upperBound(20), 2);
  assert.equal(s.latestAtOrBefore(9), -1);
  assert.equal(s.latestAtOrBefore(10), 0);
  assert.equal(s.latestAtOrBefore(29), 1);
  assert.equal(s.latestAtOrBefore(1e12), 2);
});

test('deleteExact and deleteRange are inclusive and exact', () => {
  const s = new Series();
  for (let t = 1; t <= 10; t++) s.upsert(t, `v${t}`);
  assert.equal(s.deleteExact(11), 0);
  assert.equal(s.deleteExact(5), 1);
  assert.equal(s.deleteRange(2, 4), 3);
  assert.equal(s.deleteRange(9, 8), 0);
  assert.deepEqual(dump(s).map(([t]) => t), [1, 6, 7, 8, 9, 10]);
});

test('a pinned view keeps its records while the series changes (copy-on-write)', () => {
  const s = new Series();
  for (let t = 1; t <= 5; t++) s.upsert(t * 10, `v${t}`);
  const view = s.pin();
  s.upsert(60, 'append'); // past the pinned prefix: no copy needed
  s.upsert(20, 'overwrite');
  s.upsert(15, 'insert');
  s.deleteRange(30, 40);
  const seen = Array.from({ length: view.len }, (_, i) => [view.ts[i], view.data[i]]);
  assert.deepEqual(seen, [[10, 'v1'], [20, 'v2'], [30, 'v3'], [40, 'v4'], [50, 'v5']]);
  assert.deepEqual(dump(s), [[10, 'v1'], [15, 'insert'], [20, 'overwrite'], [50, 'v5'], [60, 'append']]);
  s.unpin(view);
});

test('matches a sorted-map model under random operations', () => {
  fc.assert(fc.property(
    fc.array(fc.oneof(
      fc.record({ op: fc.constant('put' as const), ts: fc.integer({ min: -50, max: 50 }), v: fc.string({ maxLength: 3 }) }),
      fc.record({ op: fc.constant('del' as const), ts: fc.integer({ min: -50, max: 50 }) }),
      fc.record({ op: fc.constant('rng' as const), a: fc.integer({ min: -50, max: 50 }), b: fc.integer({ min: -50, max: 50 }) }),
      fc.record({ op: fc.constant('pin' as const) }),
    ), { maxLength: 200 }),
    (ops) => {
      const s = new Series();
      const model = new Map<number, string>();
      const views: Array<{ view: ReturnType<Series['pin']>; expect: Array<[number, string]> }> = [];
      for (const o of ops) {
        if (o.op === 'put') { s.upsert(o.ts, o.v); model.set(o.ts, o.v); }
        else if (o.op === 'del') { s.deleteExact(o.ts); model.delete(o.ts); }
        else if (o.op === 'rng') { s.deleteRange(o.a, o.b); for (const k of [...model.keys()]) if (k >= o.a && k <= o.b) model.delete(k); }
        else views.push({ view: s.pin(), expect: dump(s) });
      }
      const expected = [...model].sort((x, y) => x[0] - y[0]);
      assert.deepEqual(dump(s), expected);
      assert.equal(s.dataChars, expected.reduce((n, [, v]) => n + v.length, 0));
      for (const { view, expect } of views) {
        assert.deepEqual(Array.from({ length: view.len }, (_, i) => [view.ts[i], view.data[i]]), expect);
      }
    },
  ), { numRuns: 200 });
});
