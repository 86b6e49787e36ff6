import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INT64_MAX, bytes, decodeRange, decodeTxn, encodeKv, int, int64, saturated } from './codec.js';
import { toJson } from './gateway.js';
import { grpcStatusOf, httpStatusOfGrpc } from './grpc-status.js';
import { MvccError } from '../../mvcc/index.js';
import { NotLeaderError } from '../../util/index.js';

test('int64 fields: parsed strictly to bigint, never through a float', () => {
  assert.equal(int64('42'), 42n);
  assert.equal(int64(7), 7n);
  assert.equal(int64(undefined), 0n);
  assert.equal(int64('9007199254740993'), 9007199254740993n);
  assert.equal(int64('9223372036854775807'), INT64_MAX);
  assert.equal(int64('-9223372036854775808'), -(2n ** 63n));
  for (const bad of ['not a number', '9223372036854775808', '1e3', ' 12', '1.5', 2 ** 60, 0.5]) {
    assert.throws(() => int64(bad), (e: unknown) => e instanceof MvccError && e.reason === 'invalid', String(bad));
  }
  assert.equal(saturated('9223372036854775807', 'limit'), Number.MAX_SAFE_INTEGER);
  assert.equal(saturated('-5', 'limit'), -1);
  assert.equal(int('42'), 42);
  assert.throws(() => int('9007199254740993'));
  // A range at revision 2^53 + 1 keeps it exactly, for the check against the current revision.
  assert.equal(decodeRange({ key: 'YQ==', revision: '9007199254740993' }).revision, 9007199254740993n);
  assert.equal(decodeRange({ key: 'YQ==', revision: '12' }).revision, 12, 'safe values stay numbers (small raft commands)');
});

test('bytes accept Buffers and base64 strings (gateway)', () => {
  assert.deepEqual([...bytes(Buffer.from('ab'))], [97, 98]);
  assert.deepEqual([...bytes('YWI=')], [97, 98]);
  assert.equal(bytes(undefined).length, 0);
});

test('enums decode from names and numbers; txn ops and compares', () => {
  const r = decodeRange({ key: 'YQ==', sort_order: 2, sort_target: 'MOD', limit: '5' });
  assert.deepEqual([r.sortOrder, r.sortTarget, r.limit], ['descend', 'mod', 5]);
  const t = decodeTxn({
    compare: [{ key: 'YQ==', target: 'VALUE', result: 'NOT_EQUAL', value: 'Yg==' }, { key: 'YQ==', target: 1, result: 1, create_revision: '3' }],
    success: [{ request_put: { key: 'YQ==', value: 'Yw==' } }, {}],
    failure: [{ request_txn: { compare: [], success: [{ request_delete_range: { key: 'YQ==' } }], failure: [] } }],
  });
  assert.deepEqual(t.compare.map((c) => [c.target, c.result]), [['value', 'not_equal'], ['create', 'greater']]);
  assert.equal(t.compare[1]!.operand, 3);
  assert.ok('put' in t.success[0]!);
  assert.ok('range' in t.success[1]! && t.success[1].range.key.length === 0, 'an empty RequestOp becomes an invalid empty range');
  assert.ok('txn' in t.failure[0]!);
});

test('proto3 JSON for the gateway omits defaults and base64-encodes bytes', () => {
  const kv = encodeKv({ key: Buffer.from('k'), value: new Uint8Array(0), createRevision: 2, modRevision: 2, version: 1, lease: 0 });
  assert.deepEqual(toJson(kv), { key: 'aw==', create_revision: '2', mod_revision: '2', version: '1' });
  assert.deepEqual(toJson({ type: 'DELETE', kv: {} }), { type: 'DELETE', kv: {} });
  assert.deepEqual(toJson({ type: 'PUT', more: false, list: [] }), {});
});

test('error mapping: etcd texts and codes, HTTP statuses', () => {
  assert.deepEqual(grpcStatusOf(new MvccError('compacted', 'x')), { code: 11, details: 'etcdserver: mvcc: required revision has been compacted' });
  assert.deepEqual(grpcStatusOf(new NotLeaderError('10.0.0.1:7001')), { code: 9, details: 'etcdserver: not leader' });
  assert.equal(grpcStatusOf(new MvccError('invalid', 'too many watchers')).details, 'etcdserver: too many watchers');
  assert.equal(grpcStatusOf(new Error('boom')).code, 13);
  assert.deepEqual([400, 404, 412, 429, 503, 500].map((s) => s), [3, 5, 9, 8, 14, 13].map((c) => httpStatusOfGrpc(c)));
});
