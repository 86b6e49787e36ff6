/**
 * Hostile-input review, findings 8–10 (docs/security.md), over real gRPC calls: int64 values
 * beyond 2^53, hand-made protobuf bytes with wrong wire types, a compressed flag without an
 * encoding, and a Range response over the size limit.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { Client, credentials, status, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import type { Msg } from './codec.js';
import { etcdProto } from './proto/index.js';
import { startTestEtcdServer, type TestEtcdServer } from './test-server.js';

const RANGE_RESPONSE_BYTES_MAX = 20_000;
let server: TestEtcdServer;
const clients: Record<string, Client> = {};
let raw: Client;
const enc = (s: string) => Buffer.from(s);

before(async () => {
  server = await startTestEtcdServer({ limits: { requestBytesMax: 64 * 1024, rangeResponseBytesMax: RANGE_RESPONSE_BYTES_MAX } as never });
  const pkg = etcdProto();
  for (const name of ['KV', 'Lease', 'Maintenance']) {
    const Ctor = pkg[name] as ServiceClientConstructor;
    clients[name] = new Ctor(server.endpoint, credentials.createInsecure());
  }
  raw = new Client(server.endpoint, credentials.createInsecure());
});

after(async () => {
  for (const c of Object.values(clients)) c.close();
  raw.close();
  await server.close();
});

function call(service: string, method: string, req: Msg): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const c = clients[service] as unknown as Record<string, (r: Msg, cb: (e: ServiceError | null, r: Msg) => void) => void>;
    c[method]!.call(clients[service], req, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** A unary call with hand-made request bytes (a pass-through serializer), raw response bytes. */
function rawCall(path: string, bytes: number[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

async function rejectsWith(p: Promise<unknown>, code: status, details: string | RegExp): Promise<void> {
  await assert.rejects(p, (e: ServiceError) => {
    assert.equal(e.code, code, e.details);
    if (typeof details === 'string') assert.equal(e.details, details);
    else assert.match(e.details, details);
    return true;
  });
}

const revision = async (): Promise<string> => ((await call('KV', 'Range', { key: enc('any') })).header as Msg).revision as string;

test('finding 8: int64 TTLs, revisions and lease ids are exact, with etcd errors', async () => {
  await call('KV', 'Put', { key: enc('f8'), value: enc('v') });
  const rev = await revision();
  // etcd: MaxLeaseTTL 9,000,000,000 s; above it OutOfRange "etcdserver: too large lease TTL".
  for (const ttl of ['4611686018427387904', '9223372036854775807', '9000000001']) {
    await rejectsWith(call('Lease', 'LeaseGrant', { TTL: ttl }), status.OUT_OF_RANGE, 'etcdserver: too large lease TTL');
  }
  assert.equal((await call('Lease', 'LeaseLeases', {})).leases instanceof Array && ((await call('Lease', 'LeaseLeases', {})).leases as Msg[]).length, 0, 'no lease granted');
  const max = await call('Lease', 'LeaseGrant', { TTL: '9000000000' });
  assert.equal(max.TTL, '9000000000');
  await call('Lease', 'LeaseRevoke', { ID: max.ID });

  // A revision beyond 2^53 is a future revision, for Range, Compact and HashKV alike.
  const future = 'etcdserver: mvcc: required revision is a future revision';
  for (const r of ['9007199254740993', '9223372036854775807']) {
    await rejectsWith(call('KV', 'Range', { key: enc('f8'), revision: r }), status.OUT_OF_RANGE, future);
    await rejectsWith(call('KV', 'Compact', { revision: r }), status.OUT_OF_RANGE, future);
    await rejectsWith(call('Maintenance', 'HashKV', { revision: r }), status.OUT_OF_RANGE, future);
    const txn = await call('KV', 'Txn', { compare: [], success: [{ request_range: { key: enc('f8'), revision: r } }] }).catch((e: ServiceError) => e);
    assert.equal((txn as ServiceError).details, future);
  }
  // Negative revisions: Range reads the current one, Compact is "compacted" (etcd's checks).
  assert.equal((await call('KV', 'Range', { key: enc('f8'), revision: '-9223372036854775808' })).count, '1');
  await rejectsWith(call('KV', 'Compact', { revision: '-1' }), status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted');
  assert.equal(await revision(), rev, 'nothing was compacted or written');

  // Lease ids beyond 2^53 are reported exactly, not as -1.
  const ttl = await call('Lease', 'LeaseTimeToLive', { ID: '9223372036854775807' });
  assert.deepEqual([ttl.ID, ttl.TTL], ['9223372036854775807', '-1']);
  await rejectsWith(call('Lease', 'LeaseRevoke', { ID: '9223372036854775807' }), status.NOT_FOUND, 'etcdserver: requested lease not found');
  await rejectsWith(call('KV', 'Put', { key: enc('f8'), value: enc('w'), lease: '9223372036854775807' }), status.NOT_FOUND, 'etcdserver: requested lease not found');
  // Any positive int64 may be a client-chosen lease id, as in etcd (a migration keeps etcd's ids).
  const wide = await call('Lease', 'LeaseGrant', { TTL: '60', ID: '9223372036854775807' });
  assert.equal(wide.ID, '9223372036854775807');
  await call('KV', 'Put', { key: enc('f8-wide'), value: enc('w'), lease: '9223372036854775807' });
  assert.equal(((await call('KV', 'Range', { key: enc('f8-wide') })).kvs as Msg[])[0]!.lease, '9223372036854775807');
  assert.deepEqual(((await call('Lease', 'LeaseLeases', {})).leases as Msg[]).map((l) => l.ID), ['9223372036854775807']);
  assert.equal((await call('Lease', 'LeaseTimeToLive', { ID: '9223372036854775807' })).grantedTTL, '60');
  await call('Lease', 'LeaseRevoke', { ID: '9223372036854775807' });
  assert.equal((await call('KV', 'Range', { key: enc('f8-wide') })).count, '0');
  await rejectsWith(call('Lease', 'LeaseGrant', { TTL: '60', ID: '-7' }), status.INVALID_ARGUMENT, /positive int64/);

  // Compares with int64 operands are exact: mod_revision < 2^60 holds.
  const cmp = await call('KV', 'Txn', { compare: [{ key: enc('f8'), target: 'MOD', result: 'LESS', mod_revision: '1152921504606846976' }], success: [] });
  assert.equal(cmp.succeeded, true);
  // limit and min/max filters beyond 2^53 mean "no limit" and "no bound".
  const r = await call('KV', 'Range', { key: enc('f'), range_end: enc('g'), limit: '9223372036854775807', max_mod_revision: '9223372036854775807' });
  assert.equal((r.kvs as Msg[]).length, 1);
});

test('finding 9: a field with the wrong wire type is InvalidArgument and changes nothing', async () => {
  const before = await revision();
  // Field 1 (key, bytes) sent as a varint: protobufjs alone would read it as the key "\x02".
  await rejectsWith(rawCall('/etcdserverpb.KV/Put', [0x08, 0x01, 0x02]), status.INVALID_ARGUMENT, /wrong wireType = 0 for field key/);
  // Field 2 (value, bytes) as fixed32; and a nested one: Txn.success[0].request_put.key as varint.
  await rejectsWith(rawCall('/etcdserverpb.KV/Put', [0x0a, 0x01, 0x61, 0x15, 1, 2, 3, 4]), status.INVALID_ARGUMENT, /wrong wireType = 5 for field value/);
  await rejectsWith(rawCall('/etcdserverpb.KV/Txn', [0x1a, 0x04, 0x12, 0x02, 0x08, 0x02]), status.INVALID_ARGUMENT, /wrong wireType = 0 for field key/);
  // A length past the end, a group, field number 0.
  await rejectsWith(rawCall('/etcdserverpb.KV/Put', [0x0a, 0x09, 0x61]), status.INVALID_ARGUMENT, /runs past the end/);
  await rejectsWith(rawCall('/etcdserverpb.KV/Put', [0x7b, 0x7c]), status.INVALID_ARGUMENT, /illegal wireType 3 for field 15/);
  await rejectsWith(rawCall('/etcdserverpb.Lease/LeaseGrant', [0x02, 0x00]), status.INVALID_ARGUMENT, /illegal field number 0/);
  assert.equal(await revision(), before, 'nothing was written');
  const k = await call('KV', 'Range', { key: Buffer.from([0x02]) });
  assert.equal(k.count, '0');
  // Well-formed bytes still work, unknown fields (field 99, varint) included.
  await rawCall('/etcdserverpb.KV/Put', [0x0a, 0x01, 0x61, 0x12, 0x01, 0x62, 0x98, 0x06, 0x07]);
  assert.equal(((await call('KV', 'Range', { key: enc('a') })).kvs as Msg[])[0]!.value!.toString(), 'b');
});

test('finding 9: a compressed flag without a negotiated grpc-encoding is refused', async () => {
  const before = await revision();
  const grpcStatus = (flag: number): Promise<string> => new Promise((resolve, reject) => {
    const session = connect(`http://${server.endpoint}`);
    session.on('error', reject);
    const msg = Buffer.from([0x0a, 0x02, 0x63, 0x66, 0x12, 0x01, 0x76]); // Put key "cf" value "v"
    const frame = Buffer.concat([Buffer.from([flag, 0, 0, 0, msg.length]), msg]);
    const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Put', 'content-type': 'application/grpc', te: 'trailers' });
    let code: string | undefined;
    req.on('response', (h) => { if (h['grpc-status'] !== undefined) code = String(h['grpc-status']); });
    req.on('trailers', (h) => { code = String(h['grpc-status']); });
    req.on('data', () => undefined);
    req.on('close', () => {
      session.close();
      resolve(code ?? 'none');
    });
    req.end(frame);
  });
  assert.equal(await grpcStatus(1), String(status.INTERNAL));
  assert.equal(await revision(), before, 'the compressed-flag frame wrote nothing');
  assert.equal((await call('KV', 'Range', { key: enc('cf') })).count, '0');
  assert.equal(await grpcStatus(0), String(status.OK), 'the same frame uncompressed is a Put');
  // A negotiated compression still works: a gzip client's Puts and Ranges.
  const KV = etcdProto().KV as ServiceClientConstructor;
  const gzip = new KV(server.endpoint, credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
  try {
    const put = (req: Msg) => new Promise<Msg>((resolve, reject) => (gzip as unknown as Record<string, (r: Msg, cb: (e: ServiceError | null, r: Msg) => void) => void>).Put!.call(gzip, req, (e, r) => (e ? reject(e) : resolve(r))));
    for (const n of [1, 3000, 30_000]) await put({ key: enc(`gz/${n}`), value: Buffer.alloc(n, 0x67) });
    assert.equal((await call('KV', 'Range', { key: enc('gz/'), range_end: enc('gz0'), count_only: true })).count, '3');
  } finally {
    gzip.close();
  }
});

test('finding 10: a Range response over the limit is ResourceExhausted with grpc-go\'s text; under it is whole', async () => {
  const value = Buffer.alloc(100, 0x61);
  for (let i = 0; i < 300; i++) await call('KV', 'Put', { key: enc(`r/${String(i).padStart(3, '0')}`), value });
  await rejectsWith(call('KV', 'Range', { key: enc('r/'), range_end: enc('r0') }), status.RESOURCE_EXHAUSTED,
    new RegExp(`^grpc: trying to send message larger than max \\(\\d+ vs\\. ${RANGE_RESPONSE_BYTES_MAX}\\)$`));
  // Ten at once: all refused alike, and the server still answers.
  const all = await Promise.allSettled(Array.from({ length: 10 }, () => call('KV', 'Range', { key: enc('r/'), range_end: enc('r0') })));
  assert.ok(all.every((r) => r.status === 'rejected' && (r.reason as ServiceError).code === status.RESOURCE_EXHAUSTED));
  const some = await call('KV', 'Range', { key: enc('r/'), range_end: enc('r0'), limit: '100' });
  assert.deepEqual([(some.kvs as Msg[]).length, some.more, some.count], [100, true, '300']);
  const counted = await call('KV', 'Range', { key: enc('r/'), range_end: enc('r0'), count_only: true });
  assert.equal(counted.count, '300');
  const keysOnly = await call('KV', 'Range', { key: enc('r/'), range_end: enc('r0'), keys_only: true });
  assert.equal((keysOnly.kvs as Msg[]).length, 300);
  assert.equal(((keysOnly.kvs as Msg[])[299]!.key as Buffer).toString(), 'r/299');
});
