import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Series, type SeriesView } from './series.js';

function viewDump(v: SeriesView): Array<[number, string]> {
  return Array.from({ length: v.len }, (_, i) => [v.ts[i]!, v.bytes.toString('utf8', v.offs[i]!, v.offs[i + 1]!)]);
}

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
  assert.equal(s.dataBytes, 4);
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
  assert.deepEqual(viewDump(view), [[10, 'v1'], [20, 'v2'], [30, 'v3'], [40, 'v4'], [50, 'v5']]);
  assert.deepEqual(dump(s), [[10, 'v1'], [15, 'insert'], [20, 'overwrite'], [50, 'v5'], [60, 'append']]);
  s.unpin(view);
});

test('matches a sorted-map model under random operations', () => {
  fc.assert(fc.property(
    fc.array(fc.oneof(
      fc.record({ op: fc.constant('put' as const), ts: fc.integer({ min: -50, max: 50 }), v: fc.string({ maxLength: 6, unit: 'binary' }) }),
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
      assert.equal(s.dataBytes, expected.reduce((n, [, v]) => n + Buffer.byteLength(v), 0));
      for (const { view, expect } of views) assert.deepEqual(viewDump(view), expect);
    },
  ), { numRuns: 200 });
});

test('data of any length and script round-trips, including replacements that grow and shrink', () => {
  const s = new Series();
  const big = 'é'.repeat(500);
  s.upsert(2, 'two');
  s.upsert(1, big);
  s.upsert(3, '\u{1F600}');
  s.upsert(2, '');
  s.upsert(1, 'x');
  s.upsert(2, big + big);
  assert.deepEqual(dump(s), [[1, 'x'], [2, big + big], [3, '\u{1F600}']]);
  assert.equal(s.dataBytes, 1 + 2000 + 4);
});

test('appendRun appends packed records, and refuses a run that is not newer', () => {
  const s = new Series();
  s.upsert(1, 'a');
  const src = Buffer.from('..bbccc');
  const ts = [2, 3];
  const lens = [2, 3];
  assert.equal(s.appendRun(2, (k) => ts[k]!, (k) => lens[k]!, src, 2), true);
  assert.deepEqual(dump(s), [[1, 'a'], [2, 'bb'], [3, 'ccc']]);
  assert.equal(s.appendRun(1, () => 3, () => 1, src, 0), false);
  assert.equal(s.length, 3);
});
