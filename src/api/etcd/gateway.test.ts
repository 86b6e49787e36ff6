import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { registerEtcdGateway } from './gateway.js';
import { startTestEtcdServer, type TestEtcdServer } from './test-server.js';

let server: TestEtcdServer;
let app: FastifyInstance;
const b64 = (s: string) => Buffer.from(s).toString('base64');

before(async () => {
  server = await startTestEtcdServer();
  app = Fastify();
  registerEtcdGateway(app, server.api.services);
  await app.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  await app.close();
  await server.close();
});

async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await app.inject({ method: 'POST', url: path, payload: body as object });
  return { status: r.statusCode, json: r.json() as Record<string, unknown> };
}

test('gateway KV: base64 bytes, int64 as strings, defaults omitted', async () => {
  const put = await post('/v3/kv/put', { key: b64('gw/a'), value: b64('hello') });
  assert.equal(put.status, 200);
  assert.equal((put.json.header as Record<string, string>).revision, '2');
  const range = await post('/v3/kv/range', { key: b64('gw/'), range_end: b64('gw0') });
  assert.deepEqual(range.json.kvs, [{ key: b64('gw/a'), create_revision: '2', mod_revision: '2', version: '1', value: b64('hello') }]);
  assert.equal(range.json.count, '1');
  assert.equal('more' in range.json, false, 'false booleans are omitted, as grpc-gateway does');
  const txn = await post('/v3/kv/txn', {
    compare: [{ key: b64('gw/a'), target: 'VALUE', result: 'EQUAL', value: b64('hello') }],
    success: [{ request_delete_range: { key: b64('gw/a'), prev_kv: true } }],
  });
  assert.equal(txn.json.succeeded, true);
  const del = (txn.json.responses as Record<string, Record<string, unknown>>[])[0]!.response_delete_range!;
  assert.equal(del.deleted, '1');
  // The same keyspace as the gRPC API and the seed /kv service.
  await server.api.kv.put(Buffer.from('shared'), Buffer.from('from-kv'));
  const shared = await post('/v3/kv/range', { key: b64('shared') });
  assert.equal((shared.json.kvs as Record<string, string>[])[0]!.value, b64('from-kv'));
});

test('gateway errors carry the etcd text, the gRPC code and a mapped HTTP status', async () => {
  const empty = await post('/v3/kv/put', { value: b64('x') });
  assert.deepEqual([empty.status, empty.json.error, empty.json.code], [400, 'etcdserver: key is not provided', 3]);
  const future = await post('/v3/kv/range', { key: b64('a'), revision: '1000' });
  assert.deepEqual([future.status, future.json.code], [400, 11]);
  const lease = await post('/v3/lease/revoke', { ID: '12345' });
  assert.deepEqual([lease.status, lease.json.message], [404, 'etcdserver: requested lease not found']);
  const auth = await post('/v3/auth/authenticate', { name: 'root', password: 'x' });
  assert.deepEqual([auth.status, auth.json.error], [412, 'etcdserver: authentication is not enabled']);
  const bad = await app.inject({ method: 'POST', url: '/v3/kv/range', payload: '[1]', headers: { 'content-type': 'application/json' } });
  assert.equal(bad.statusCode, 400);
});

test('gateway leases, cluster and maintenance', async () => {
  const grant = await post('/v3/lease/grant', { TTL: '30' });
  const id = grant.json.ID as string;
  assert.equal(grant.json.TTL, '30');
  const ka = await app.inject({ method: 'POST', url: '/v3/lease/keepalive', payload: { ID: id } });
  assert.equal(JSON.parse(ka.body.trim()).result.TTL, '30');
  const ttl = await post('/v3/kv/lease/timetolive', { ID: id, keys: true });
  assert.equal(ttl.json.grantedTTL, '30');
  const members = await post('/v3/cluster/member/list', {});
  assert.equal((members.json.members as unknown[]).length, 1);
  const st = await post('/v3/maintenance/status', {});
  assert.equal(st.json.version, '3.4.31');
  assert.equal((await post('/v3/lease/revoke', { ID: id })).status, 200);
});

test('gateway watch streams newline-delimited results', async () => {
  const address = app.server.address() as { port: number };
  const lines: Record<string, unknown>[] = [];
  const req = request({ host: '127.0.0.1', port: address.port, path: '/v3/watch', method: 'POST', headers: { 'content-type': 'application/json' } });
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('watch events did not arrive within 5 s')), 5000);
    req.on('response', (res) => {
      let buf = '';
      res.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buf.slice(0, nl)).result);
          buf = buf.slice(nl + 1);
          if (lines.length === 1) void post('/v3/kv/put', { key: b64('watched/1'), value: b64('v') });
          if (lines.length === 2) {
            clearTimeout(timer);
            resolve();
          }
        }
      });
    });
    req.on('error', () => undefined);
  });
  req.end(JSON.stringify({ create_request: { key: b64('watched/'), range_end: b64('watched0') } }));
  await done;
  req.destroy();
  assert.equal(lines[0]!.created, true);
  const ev = (lines[1]!.events as Record<string, Record<string, string>>[])[0]!;
  assert.equal(ev.kv!.key, b64('watched/1'));
  assert.equal('type' in ev, false, 'PUT is the default enum value and is omitted');
});

test('gateway int64s: exact decimal strings, etcd errors beyond 2^53, malformed numbers refused (finding 8)', async () => {
  const ttl = await post('/v3/lease/grant', { TTL: '4611686018427387904' });
  assert.deepEqual([ttl.status, ttl.json.message, ttl.json.code], [400, 'etcdserver: too large lease TTL', 11]);
  const future = await post('/v3/kv/range', { key: b64('gw/a'), revision: '9007199254740993' });
  assert.deepEqual([future.status, future.json.message, future.json.code], [400, 'etcdserver: mvcc: required revision is a future revision', 11]);
  const compact = await post('/v3/kv/compaction', { revision: '9223372036854775807' });
  assert.deepEqual([compact.status, compact.json.message], [400, 'etcdserver: mvcc: required revision is a future revision']);
  const ttlOf = await post('/v3/lease/timetolive', { ID: '9223372036854775807' });
  assert.deepEqual([ttlOf.status, ttlOf.json.ID, ttlOf.json.TTL], [200, '9223372036854775807', '-1']);
  // A JSON number past 2^53 has already lost precision in JSON.parse: refused, never rounded.
  for (const revision of [9007199254740993, '1e3', '9223372036854775808', 1.5]) {
    const bad = await post('/v3/kv/range', { key: b64('gw/a'), revision });
    assert.deepEqual([bad.status, bad.json.code], [400, 3], String(revision));
  }
});
