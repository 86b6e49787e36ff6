import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, status, type Client, type ClientDuplexStream, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { decodeSnapshot } from '../../mvcc/index.js';
import { LocalReplicator } from '../../mvcc/test-harness.js';
import type { Msg } from './codec.js';
import { Registry } from 'prom-client';
import { EtcdGrpcMetrics, etcdGauges } from './metrics.js';
import { etcdProto } from './proto/index.js';
import { startTestEtcdServer, type TestEtcdServer } from './test-server.js';

let server: TestEtcdServer;
const registry = new Registry();
const clients: Record<string, Client> = {};
const enc = (s: string) => Buffer.from(s);

before(async () => {
  server = await startTestEtcdServer({ limits: { requestBytesMax: 64 * 1024 }, replicator: (sm) => new LocalReplicator(sm, 'conure-0'), metrics: new EtcdGrpcMetrics(registry) });
  const pkg = etcdProto();
  for (const name of ['KV', 'Watch', 'Lease', 'Cluster', 'Maintenance', 'Auth']) {
    const Ctor = pkg[name] as ServiceClientConstructor;
    clients[name] = new Ctor(server.endpoint, credentials.createInsecure());
  }
});

after(async () => {
  for (const c of Object.values(clients)) c.close();
  await server.close();
});

function call(service: string, method: string, req: Msg): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const c = clients[service] as unknown as Record<string, (r: Msg, cb: (e: ServiceError | null, r: Msg) => void) => void>;
    c[method]!.call(clients[service], req, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function rejectsWith(p: Promise<unknown>, code: status, details: string): Promise<void> {
  await assert.rejects(p, (e: ServiceError) => {
    assert.equal(e.code, code);
    assert.equal(e.details, details);
    return true;
  });
}

/** A Watch stream with a queue of responses. */
function openWatch(): { stream: ClientDuplexStream<Msg, Msg>; next(ms?: number): Promise<Msg>; close(): void } {
  const stream = (clients.Watch as unknown as { Watch(): ClientDuplexStream<Msg, Msg> }).Watch();
  const queue: Msg[] = [];
  const waiters: ((m: Msg) => void)[] = [];
  stream.on('data', (m: Msg) => (waiters.length ? waiters.shift()!(m) : queue.push(m)));
  stream.on('error', () => undefined);
  return {
    stream,
    next(ms = 5000) {
      if (queue.length) return Promise.resolve(queue.shift()!);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no watch response within the deadline')), ms);
        waiters.push((m) => {
          clearTimeout(t);
          resolve(m);
        });
      });
    },
    close: () => stream.cancel(),
  };
}

test('KV over gRPC: headers, int64 as strings, prev_kv, txn, etcd error texts and codes', async () => {
  const put = await call('KV', 'Put', { key: enc('g/a'), value: enc('1') });
  const header = put.header as Msg;
  assert.equal(header.revision, '2');
  assert.equal(header.cluster_id, server.api.services.clusterId);
  const again = await call('KV', 'Put', { key: enc('g/a'), value: enc('2'), prev_kv: true });
  assert.equal(((again.prev_kv as Msg).value as Buffer).toString(), '1');
  const range = await call('KV', 'Range', { key: enc('g/'), range_end: enc('g0') });
  assert.equal(range.count, '1');
  const kv = (range.kvs as Msg[])[0]!;
  assert.deepEqual([kv.create_revision, kv.mod_revision, kv.version], ['2', '3', '2']);
  const txn = await call('KV', 'Txn', {
    compare: [{ key: enc('g/a'), target: 'VERSION', result: 'EQUAL', version: '2' }],
    success: [{ request_put: { key: enc('g/b'), value: enc('x') } }, { request_range: { key: enc('g/b') } }],
  });
  assert.equal(txn.succeeded, true);
  assert.equal((((txn.responses as Msg[])[1]!.response_range as Msg).kvs as Msg[]).length, 1);
  await rejectsWith(call('KV', 'Put', { key: Buffer.alloc(0), value: enc('v') }), status.INVALID_ARGUMENT, 'etcdserver: key is not provided');
  await rejectsWith(call('KV', 'Range', { key: enc('g/a'), revision: '999' }), status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision');
  await rejectsWith(call('KV', 'Put', { key: enc('big'), value: Buffer.alloc(100 * 1024) }), status.INVALID_ARGUMENT, 'etcdserver: request is too large');
  await rejectsWith(call('KV', 'Put', { key: enc('l'), value: enc('v'), lease: '123' }), status.NOT_FOUND, 'etcdserver: requested lease not found');
  await rejectsWith(call('Auth', 'Authenticate', { name: 'root', password: 'x' }), status.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled');
  assert.equal((await call('Auth', 'AuthStatus', {})).enabled, false);
});

test('Watch stream: created first, events, cancel, progress, client ids, fragments, compaction', async () => {
  const w = openWatch();
  try {
    w.stream.write({ create_request: { key: enc('w/'), range_end: enc('w0'), prev_kv: true } });
    const created = await w.next();
    assert.equal(created.created, true);
    const id = created.watch_id;
    await call('KV', 'Put', { key: enc('w/1'), value: enc('a') });
    await call('KV', 'Put', { key: enc('w/1'), value: enc('b') });
    const e1 = await w.next();
    const e2 = await w.next();
    assert.equal(((e1.events as Msg[])[0]!.kv as Msg).mod_revision, (e1.header as Msg).revision);
    const ev2 = (e2.events as Msg[])[0]!;
    assert.equal(ev2.type, 'PUT');
    assert.equal(((ev2.prev_kv as Msg).value as Buffer).toString(), 'a');
    w.stream.write({ progress_request: {} });
    const progress = await w.next();
    assert.deepEqual([progress.watch_id, (progress.header as Msg).revision], ['-1', (e2.header as Msg).revision]);
    w.stream.write({ cancel_request: { watch_id: id } });
    assert.equal((await w.next()).canceled, true);

    // Client-chosen id, from a past revision, fragmented: history arrives in pieces.
    const rev = Number((e1.header as Msg).revision);
    w.stream.write({ create_request: { key: enc('w/1'), start_revision: String(rev), watch_id: '77', fragment: true } });
    const c2 = await w.next();
    assert.deepEqual([c2.created, c2.watch_id], [true, '77']);
    const hist = await w.next();
    assert.equal((hist.events as Msg[]).length, 2);
    w.stream.write({ create_request: { key: enc('x'), watch_id: '77' } });
    const dup = await w.next();
    assert.deepEqual([dup.created, dup.canceled], [true, true]);

    // A watch below the compacted revision is cancelled with compact_revision.
    await call('KV', 'Compact', { revision: String(rev + 1) });
    w.stream.write({ create_request: { key: enc('w/1'), start_revision: String(rev) } });
    assert.equal((await w.next()).created, true);
    const cancelled = await w.next();
    assert.deepEqual([cancelled.canceled, cancelled.compact_revision], [true, String(rev + 1)]);
  } finally {
    w.close();
  }
});

test('a large watch response is split into fragments when asked', async () => {
  const w = openWatch();
  try {
    const start = Number(((await call('KV', 'Range', { key: enc('f') })).header as Msg).revision) + 1;
    // 40 × 50 KiB values = 2 MiB of history, above the 1.5 MiB fragment size.
    for (let i = 0; i < 40; i++) await call('KV', 'Put', { key: enc(`f/${i}`), value: Buffer.alloc(50 * 1024, 97) });
    w.stream.write({ create_request: { key: enc('f/'), range_end: enc('f0'), start_revision: String(start), fragment: true } });
    assert.equal((await w.next()).created, true);
    const parts: Msg[] = [];
    for (;;) {
      const m = await w.next();
      parts.push(m);
      if (m.fragment !== true) break;
    }
    assert.ok(parts.length >= 2, `expected fragments, got ${parts.length} response(s)`);
    assert.equal(parts.reduce((n, p) => n + (p.events as Msg[]).length, 0), 40);
  } finally {
    w.close();
  }
});

test('Lease over gRPC: grant, keep-alive stream, unknown lease answers, time-to-live -1', async () => {
  const g = await call('Lease', 'LeaseGrant', { TTL: '30' });
  const stream = (clients.Lease as unknown as { LeaseKeepAlive(): ClientDuplexStream<Msg, Msg> }).LeaseKeepAlive();
  stream.on('error', () => undefined);
  const replies: Msg[] = [];
  const got = new Promise<void>((resolve) => stream.on('data', (m: Msg) => { replies.push(m); if (replies.length === 2) resolve(); }));
  stream.write({ ID: g.ID });
  stream.write({ ID: '999999' });
  await got;
  stream.cancel();
  assert.deepEqual(replies.map((r) => [r.ID, r.TTL]), [[g.ID, '30'], ['999999', '0']]);
  const ttl = await call('Lease', 'LeaseTimeToLive', { ID: '999999' });
  assert.equal(ttl.TTL, '-1');
  const leases = await call('Lease', 'LeaseLeases', {});
  assert.ok((leases.leases as Msg[]).some((l) => l.ID === g.ID));
  await call('Lease', 'LeaseRevoke', { ID: g.ID });
  await rejectsWith(call('Lease', 'LeaseRevoke', { ID: g.ID }), status.NOT_FOUND, 'etcdserver: requested lease not found');
});

test('Maintenance: status, hash, alarms, snapshot that decodes back to the store', async () => {
  const st = await call('Maintenance', 'Status', {});
  assert.equal(st.leader, (st.header as Msg).member_id);
  assert.equal(st.version, '3.4.31');
  const h1 = await call('Maintenance', 'HashKV', { revision: '0' });
  const h2 = await call('Maintenance', 'HashKV', { revision: '0' });
  assert.equal(h1.hash, h2.hash);
  await call('KV', 'Put', { key: enc('hash-changes'), value: enc('1') });
  assert.notEqual((await call('Maintenance', 'HashKV', { revision: '0' })).hash, h1.hash);
  const memberID = (st.header as Msg).member_id;
  await call('Maintenance', 'Alarm', { action: 'ACTIVATE', memberID, alarm: 'NOSPACE' });
  assert.deepEqual(((await call('Maintenance', 'Alarm', { action: 'GET' })).alarms as Msg[]).map((a) => a.alarm), ['NOSPACE']);
  await rejectsWith(call('KV', 'Put', { key: enc('k'), value: enc('v') }), status.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded');
  await call('Maintenance', 'Alarm', { action: 'DEACTIVATE', memberID, alarm: 'NOSPACE' });
  await call('KV', 'Put', { key: enc('k'), value: enc('v') });

  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = (clients.Maintenance as unknown as { Snapshot(r: Msg): NodeJS.ReadableStream }).Snapshot({});
    s.on('data', (m: Msg) => chunks.push(m.blob as Buffer));
    s.on('end', resolve);
    s.on('error', reject);
  });
  const blob = Buffer.concat(chunks);
  assert.equal((blob.length - 32) % 512, 0, 'etcdctl needs (size - sha256) to be a multiple of 512');
  const snap = decodeSnapshot(blob);
  assert.equal(snap.appliedIndex, server.sm.appliedIndex());
  assert.ok((snap.data.get('key') ?? []).length > 0);
  blob[100] = blob[100]! ^ 0xff;
  assert.throws(() => decodeSnapshot(blob), /checksum/);
});

test('Cluster over gRPC: add learner, promote, update, remove; unknown ids', async () => {
  const add = await call('Cluster', 'MemberAdd', { peerURLs: ['http://10.0.0.9:7001'], isLearner: true });
  const id = (add.member as Msg).ID as string;
  assert.equal((add.member as Msg).isLearner, true);
  await rejectsWith(call('Cluster', 'MemberAdd', { peerURLs: ['http://10.0.0.9:7001'] }), status.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists');
  await call('Cluster', 'MemberPromote', { ID: id });
  await rejectsWith(call('Cluster', 'MemberPromote', { ID: id }), status.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member');
  const upd = await call('Cluster', 'MemberUpdate', { ID: id, peerURLs: ['http://10.0.0.10:7001'] });
  assert.ok((upd.members as Msg[]).some((m) => m.ID === id && (m.peerURLs as string[])[0] === 'http://10.0.0.10:7001'));
  await call('Cluster', 'MemberRemove', { ID: id });
  await rejectsWith(call('Cluster', 'MemberRemove', { ID: id }), status.NOT_FOUND, 'etcdserver: member not found');
  const list = await call('Cluster', 'MemberList', {});
  assert.equal((list.members as Msg[]).length, 1);
});

test('metrics: per-RPC counters with status codes, and state gauges', async () => {
  await call('KV', 'Put', { key: enc('m'), value: enc('1') });
  await assert.rejects(call('KV', 'Put', { key: Buffer.alloc(0), value: enc('1') }));
  const text = await registry.metrics();
  assert.match(text, /conure_etcd_grpc_requests_total\{method="KV.Put",code="0"\} [1-9]/);
  assert.match(text, /conure_etcd_grpc_requests_total\{method="KV.Put",code="3"\} [1-9]/);
  const gauges = etcdGauges(server.api);
  assert.equal(gauges.conure_mvcc_revision!.read(), server.sm.currentRevision());
  assert.equal(gauges.conure_mvcc_keys!.read(), server.sm.keyCount());
  assert.ok(server.sm.keyCount() > 0);
});
