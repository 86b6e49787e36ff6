import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KvService, Replicator } from '../../seams/index.js';
import { MembershipService } from '../../node/index.js';
import { HttpMetrics } from './metrics.js';
import { createHttpApi } from './server.js';

/** An in-memory member that leads a one-member cluster. */
function api() {
  const data = new Map<string, Buffer>();
  const kv: KvService = {
    async get(k) { return data.get(Buffer.from(k).toString()); },
    async put(k, v) { data.set(Buffer.from(k).toString(), Buffer.from(v)); },
    async delete(k) { data.delete(Buffer.from(k).toString()); },
  };
  const replicator = {
    status: () => ({ id: 'n1', isLeader: true, leader: '127.0.0.1:7001', leaderHttp: '127.0.0.1:8081', ready: true }),
    members: () => [{ id: 'n1', address: '127.0.0.1:7001', httpAddress: '127.0.0.1:8081', suffrage: 'voter' as const }],
    stats: () => ({ state: 'leader' as const, term: 2, commit_index: 5, applied_index: 5, last_log_index: 5, last_log_term: 2, num_peers: 0, last_contact_ms: 0, transport: { sent: 1 } }),
  } as unknown as Replicator;
  const app = createHttpApi({ kv, replicator, membership: new MembershipService(replicator), metrics: new HttpMetrics({}, false) });
  return { app, data };
}

test('/kv: a repeated parameter means its first value; a missing or empty key is "missing key"', async () => {
  const { app, data } = api();
  const put = await app.inject({ method: 'PUT', url: '/kv?key=a&key=b&value=1&value=2' });
  assert.deepEqual([put.statusCode, put.body], [200, 'OK']);
  assert.deepEqual([...data.keys()], ['a']);
  assert.equal(data.get('a')!.toString(), '1');
  for (const [method, url] of [['GET', '/kv'], ['GET', '/kv?key='], ['PUT', '/kv?value=x'], ['DELETE', '/kv?key=&key=x']] as const) {
    const r = await app.inject({ method, url });
    assert.deepEqual([r.statusCode, r.headers['content-type'], r.body], [400, 'text/plain; charset=utf-8', 'missing key'], `${method} ${url}`);
  }
});

test('replies are not filtered by their response schemas', async () => {
  const { app } = api();
  const stats = await app.inject({ url: '/raft/stats' });
  assert.deepEqual(stats.json().transport, { sent: 1 }, 'a field the schema does not list is kept');
  assert.equal((await app.inject({ url: '/status' })).body, '{"is_leader":true,"leader":"127.0.0.1:7001"}');
  assert.equal((await app.inject({ url: '/raft/config' })).body, '{"leader":"127.0.0.1:7001","servers":[{"id":"n1","address":"127.0.0.1:7001","suffrage":"voter"}]}');
});

test('another method on a path of this API is 405 with Allow, also one fastify refuses before routing (QUERY)', async () => {
  const { app } = api();
  for (const [method, url, allow] of [['POST', '/kv?key=a', 'GET, HEAD, PUT, DELETE'], ['QUERY', '/kv', 'GET, HEAD, PUT, DELETE'], ['QUERY', '/status', 'GET, HEAD'], ['DELETE', '/openapi.json', 'GET, HEAD']] as const) {
    const r = await app.inject({ method, url });
    assert.deepEqual([r.statusCode, r.headers.allow], [405, allow], `${method} ${url}`);
  }
  const none = await app.inject({ method: 'QUERY', url: '/nowhere' });
  assert.deepEqual([none.statusCode, none.json().code], [404, 'not_found']);
});

test('/openapi.json lists this API\'s routes only, with their media types', async () => {
  const { app } = api();
  app.post('/v3/kv/range', async () => ({})); // added afterwards, as conured adds etcd's gateway
  const doc = (await app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }>; requestBody?: { content: Record<string, unknown> } }>> };
  assert.deepEqual(Object.keys(doc.paths), ['/kv', '/status', '/raft/config', '/raft/stats', '/raft/snapshot', '/join', '/remove', '/promote', '/leader/transfer', '/health', '/ready', '/metrics', '/openapi.json']);
  const kv = doc.paths['/kv']!;
  assert.deepEqual(Object.keys(kv), ['get', 'put', 'delete']);
  assert.deepEqual(Object.keys(kv.get!.responses['200']!.content!), ['application/octet-stream']);
  assert.deepEqual(Object.keys(kv.get!.responses['400']!.content!), ['text/plain']);
  assert.deepEqual(Object.keys(kv.get!.responses['409']!.content!), ['application/json'], 'not_leader is JSON, also on /kv');
  assert.deepEqual(Object.keys(kv.put!.requestBody!.content), ['application/octet-stream', 'text/plain']);
  assert.deepEqual(Object.keys(kv.put!.responses['200']!.content!), ['text/plain']);
  assert.deepEqual(Object.keys(doc.paths['/join']!.post!.requestBody!.content), ['application/json']);
  assert.deepEqual(Object.keys(doc.paths['/metrics']!.get!.responses['200']!.content!), ['text/plain']);
});
