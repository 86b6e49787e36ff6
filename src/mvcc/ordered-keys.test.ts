import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OrderedKeys, bytesToKey, keyToBytes, prefixEnd, resolveRange } from './ordered-keys.js';

test('property: OrderedKeys (small chunks) agrees with a sorted array for adds, deletes and ranges', () => {
  const key = fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\u0000', '\u00ff'), maxLength: 4 });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), key), { maxLength: 200 }),
      fc.array(fc.tuple(key, fc.option(key, { nil: undefined }), fc.boolean()), { maxLength: 10 }),
      (ops, ranges) => {
        const set = new OrderedKeys(3);
        const model = new Set<string>();
        for (const [add, k] of ops) {
          if (add) { set.add(k); model.add(k); } else { set.delete(k); model.delete(k); }
        }
        const sorted = [...model].sort();
        assert.equal(set.size, sorted.length);
        assert.deepEqual([...set.range({ start: '', end: undefined, single: false })], sorted);
        for (const [start, end, single] of ranges) {
          const want = single ? sorted.filter((k) => k === start) : sorted.filter((k) => k >= start && (end === undefined || k < end));
          assert.deepEqual([...set.range({ start, end, single })], want);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('range conventions and prefix ends', () => {
  const b = (s: string) => keyToBytes(s);
  assert.deepEqual(resolveRange(b('k'), undefined), { start: 'k', end: undefined, single: true });
  assert.deepEqual(resolveRange(b('k'), new Uint8Array([0])), { start: 'k', end: undefined, single: false });
  assert.deepEqual(resolveRange(new Uint8Array([0]), new Uint8Array([0])), { start: '', end: undefined, single: false });
  assert.equal(bytesToKey(prefixEnd(b('ab'))), 'ac');
  assert.deepEqual([...prefixEnd(new Uint8Array([0x61, 0xff]))], [0x62]);
  assert.deepEqual([...prefixEnd(new Uint8Array([0xff]))], [0], 'all-0xff prefixes run to the end of the keyspace');
  assert.equal(bytesToKey(new Uint8Array([0xff, 0x00])) > bytesToKey(new Uint8Array([0xfe])), true, 'string order is byte order');
});
