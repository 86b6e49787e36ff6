/** Pure helpers of the etcd client: prefix range ends, wire integer checks, request encoding. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromWireKv, leaseId, prefixEnd, safeInt } from './bytes.js';
import { encodeCompare, encodeRange } from './wire.js';
import { ConureError } from '../../util/index.js';

test('prefixEnd: etcd rules, and every key with the prefix sorts inside [prefix, end)', () => {
  assert.deepEqual(prefixEnd('abc'), Buffer.from('abd'));
  assert.deepEqual(prefixEnd(Buffer.from([0x61, 0xff])), Buffer.from([0x62]));
  assert.deepEqual(prefixEnd(Buffer.from([0xff, 0xff])), Buffer.from([0]));
  assert.deepEqual(prefixEnd(''), Buffer.from([0]));
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 6 }), fc.uint8Array({ maxLength: 4 }), fc.uint8Array({ maxLength: 6 }), (p, tail, other) => {
    const prefix = Buffer.from(p);
    const end = prefixEnd(prefix);
    const inside = Buffer.concat([prefix, Buffer.from(tail)]);
    if (!prefix.every((b) => b === 0xff)) assert.ok(Buffer.compare(inside, end) < 0);
    const o = Buffer.from(other);
    const hasPrefix = o.subarray(0, prefix.length).equals(prefix);
    const inRange = Buffer.compare(o, prefix) >= 0 && (end.equals(Buffer.from([0])) || Buffer.compare(o, end) < 0);
    assert.equal(inRange, hasPrefix);
  }));
});

test('wire integers: safe integers only; lease ids stay exact beyond 2^53', () => {
  assert.equal(safeInt('42', 'x'), 42);
  assert.throws(() => safeInt('9007199254740993', 'x'), ConureError);
  assert.throws(() => safeInt('abc', 'x'), ConureError);
  assert.equal(leaseId('7587869389287653123'), '7587869389287653123');
  assert.throws(() => fromWireKv({ key: Buffer.from('k'), create_revision: '-1' }), ConureError);
});

test('request encoding: prefix ranges and compare targets', () => {
  const r = encodeRange('/a/', { prefix: true, limit: 5, keysOnly: true });
  assert.deepEqual(r.range_end, Buffer.from('/a0'));
  assert.equal(r.limit, '5');
  assert.throws(() => encodeRange('/a', { limit: -1 }), ConureError);
  assert.deepEqual(encodeCompare({ target: 'createRevision', key: 'k', op: '==', value: 0 }), { key: Buffer.from('k'), result: 'EQUAL', target: 'CREATE', create_revision: '0' });
  assert.equal(encodeCompare({ target: 'lease', key: 'k', op: '!=', value: '123' }).lease, '123');
  assert.throws(() => encodeCompare({ target: 'lease', key: 'k', op: '==', value: 'x1' }), ConureError);
});
