import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceClientConstructor } from '@grpc/grpc-js';
import type { KeyValue } from '../../mvcc/index.js';
import { encodeRangeResult, type Header } from './codec.js';
import { etcdProto } from './proto/index.js';
import { RangeBudget, RangeResponseBuilder, RangeTooLargeError, kvEntryBytes } from './range-response.js';

const range = (etcdProto().KV as ServiceClientConstructor).service.Range!;
const header: Header = { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '9007199254740991', raft_term: '7' };

function kvs(): KeyValue[] {
  return [
    { key: Buffer.from('a'), createRevision: 2, modRevision: 3, version: 2, value: Buffer.from('x'.repeat(300)), lease: 9007199254740991 },
    { key: Buffer.from('b'), createRevision: 4, modRevision: 4, version: 1, value: new Uint8Array(0), lease: 0 },
    { key: Buffer.alloc(70_000, 0x63), createRevision: 5, modRevision: 5, version: 1, value: Buffer.alloc(200_000, 1), lease: 0 },
  ];
}

test('RangeResponseBuilder: the same message proto-loader encodes, byte counts exact', () => {
  const seen: number[] = [];
  const b = new RangeResponseBuilder(1 << 30, (n) => seen.push(n));
  for (const kv of kvs()) b.kv(kv);
  const buf = b.finish(header, true, 12345);
  assert.equal(seen.reduce((a, n) => a + n, 0), buf.length, 'every byte was accounted');
  const ours = range.responseDeserialize(buf);
  const theirs = range.responseDeserialize(range.responseSerialize(encodeRangeResult({ revision: 0, kvs: kvs(), more: true, count: 12345 }, header)));
  assert.deepEqual(ours, theirs);
  const empty = new RangeResponseBuilder(1 << 30).finish({ ...header, revision: '1' }, false, 0);
  assert.deepEqual(range.responseDeserialize(empty), range.responseDeserialize(range.responseSerialize(encodeRangeResult({ revision: 0, kvs: [], more: false, count: 0 }, { ...header, revision: '1' }))));
});

test('RangeResponseBuilder: over the limit it stops storing, reports the full size', () => {
  const all = kvs();
  const b = new RangeResponseBuilder(1000);
  for (const kv of all) b.kv(kv);
  assert.throws(() => b.finish(header, false, 3), (e: unknown) => {
    assert.ok(e instanceof RangeTooLargeError);
    assert.ok(e.sizeBytes > all.reduce((a, kv) => a + kvEntryBytes(kv), 0));
    assert.match(e.message, /^grpc: trying to send message larger than max \(\d+ vs\. 1000\)$/);
    return true;
  });
});

test('RangeBudget: one build at a time, waits over the budget in order, a lone big one runs', async () => {
  const b = new RangeBudget(100);
  const order: string[] = [];
  await b.enter();
  b.add(150); // one Range larger than the whole budget ran alone
  const w1 = b.enter().then(() => order.push('w1'));
  const w2 = b.enter().then(() => order.push('w2'));
  b.leave();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [], 'over budget: both wait');
  b.release(150);
  await w1;
  assert.deepEqual(order, ['w1'], 'one build at a time');
  b.add(60);
  b.leave();
  await w2;
  assert.deepEqual(order, ['w1', 'w2'], '60 < 100: the next one may build');
  b.leave();
  b.release(60);
  assert.equal(b.bytesInFlight, 0);
  assert.equal(b.waiting, 0);
});

test('over gRPC: ten parallel large Ranges stay within the budget plus one response, and release it all', async () => {
  const { startTestEtcdServer } = await import('./test-server.js');
  const { credentials } = await import('@grpc/grpc-js');
  const budgetBytes = 256 * 1024;
  const server = await startTestEtcdServer({ limits: { rangeBytesInFlightMax: budgetBytes } });
  const KV = etcdProto().KV as ServiceClientConstructor;
  const clients = Array.from({ length: 10 }, () => new KV(server.endpoint, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  type Unary = (req: object, cb: (e: Error | null, r: Record<string, unknown>) => void) => void;
  const call = (i: number, method: string, req: object) => new Promise<Record<string, unknown>>((resolve, reject) =>
    (clients[i] as unknown as Record<string, Unary>)[method]!.call(clients[i], req, (e, r) => (e ? reject(e) : resolve(r))));
  try {
    const value = Buffer.alloc(1000, 0x61);
    for (let i = 0; i < 400; i += 50) {
      const success = Array.from({ length: 50 }, (_, j) => ({ request_put: { key: Buffer.from(`big/${String(i + j).padStart(4, '0')}`), value } }));
      await call(0, 'Txn', { compare: [], success, failure: [] });
    }
    let peak = 0;
    let waitedMax = 0;
    // Sampled once per event-loop turn (setImmediate), so no state lasting a turn is missed.
    let sampling = true;
    const sample = (): void => {
      const b = server.grpc.rangeBudget();
      peak = Math.max(peak, b.bytesInFlight);
      waitedMax = Math.max(waitedMax, b.waiting);
      if (sampling) setImmediate(sample);
    };
    sample();
    const results = await Promise.all(clients.map((_, i) => call(i, 'Range', { key: Buffer.from('big/'), range_end: Buffer.from('big0') })));
    sampling = false;
    const responseBytes = 400 * 1020; // ~ one response
    assert.ok(results.every((r) => (r.kvs as unknown[]).length === 400));
    assert.ok(peak <= budgetBytes + responseBytes + 4096, `peak ${peak} within budget + one response`);
    assert.ok(waitedMax > 0, 'some Ranges waited for the budget');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(server.grpc.rangeBudget(), { bytesInFlight: 0, waiting: 0 }, 'everything released');
  } finally {
    for (const c of clients) c.close();
    await server.close();
  }
});
