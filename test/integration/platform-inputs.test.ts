/**
 * Every bad input the API can get, against a real conure-platform on an external conured store
 * (so the store can be killed): each answers the documented status and `{"error","code"}`, and
 * leaves the state (databases, specs, generations, operations) unchanged. Plus the exact
 * `/health` shape, `/openapi.json` listing every route, and 503 while the store is down (the
 * process keeps running and recovers when the store returns).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlatformClient } from '../../src/client/platform/index.js';
import { startConuredEndpoint, type EtcdEndpoint } from '../support/etcd-process.js';
import { killAllUnder } from '../support/local-driver.js';
import { ADMIN_TOKEN, eventually, startPlatformProcess, type PlatformProcess } from '../support/platform-process.js';

const KEY = 'inputs-key-0123456789';
let dir: string;
let store: EtcdEndpoint;
let platform: PlatformProcess;
let alice: string;
let bob: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'platform-inputs-'));
  store = await startConuredEndpoint();
  platform = await startPlatformProcess({ dataDir: dir, storeEndpoints: store.endpoint });
  alice = (await platform.admin.createTenant('alice')).token;
  bob = (await platform.admin.createTenant('bob')).token;
});

after(async () => {
  await platform?.stop();
  killAllUnder(dir);
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer { status: number; body: Record<string, unknown>; headers: Headers }

async function call(method: string, path: string, opts: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? alice : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) { body = opts.raw; headers['content-type'] ??= 'application/json'; }
  else if (opts.body !== undefined) { body = JSON.stringify(opts.body); headers['content-type'] = 'application/json'; }
  const res = await fetch(`${platform.url}${path}`, { method, headers, ...(body !== undefined && { body }) });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try { parsed = JSON.parse(text) as Record<string, unknown>; } catch { parsed = { text }; }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** The state a refused request must not change. */
async function state(): Promise<string> {
  const dbs = await platform.admin.listDatabases();
  const ops = await platform.admin.listOperations();
  return JSON.stringify({
    dbs: dbs.map((d) => [d.id, d.tenant, d.spec, d.generation, d.deletionPolicy, d.halted]).sort(),
    ops: ops.map((o) => o.id).sort(),
  });
}

async function refused(expect: number, code: string, method: string, path: string, opts: Parameters<typeof call>[2] = {}, match?: RegExp): Promise<Answer> {
  const s0 = await state();
  const r = await call(method, path, opts);
  assert.equal(r.status, expect, `${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(r.body.code, code, JSON.stringify(r.body));
  assert.equal(typeof r.body.error, 'string');
  assert.deepEqual(Object.keys(r.body).sort(), ['code', 'error']);
  if (match) assert.match(String(r.body.error), match);
  assert.equal(await state(), s0, `${method} ${path} left the state unchanged`);
  return r;
}

test('/health has exactly the documented shape; /ready and /metrics need no token', async () => {
  const r = await call('GET', '/health', { token: null });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { status: 'healthy', components: { api: 'running', workers: 'running' } });
  assert.equal((await call('GET', '/ready', { token: null })).status, 200);
  const m = await fetch(`${platform.url}/metrics`);
  assert.equal(m.status, 200);
  const text = await m.text();
  for (const name of ['conure_platform_operations', 'conure_platform_reconcile_pass_seconds', 'conure_platform_leader', 'conure_platform_instances', 'conure_platform_queue_depth', 'conure_platform_workers_busy']) {
    assert.ok(text.includes(`# TYPE ${name} `), name);
  }
});

test('/openapi.json lists every route with its parameters', async () => {
  const r = await call('GET', '/openapi.json', { token: null });
  assert.equal(r.status, 200);
  const doc = r.body as { openapi: string; paths: Record<string, Record<string, { parameters: Array<{ name: string; in: string }>; requestBody?: unknown }>> };
  assert.match(doc.openapi, /^3\./);
  const listed = Object.entries(doc.paths).flatMap(([p, ms]) => Object.keys(ms).map((m) => `${m.toUpperCase()} ${p}`)).sort();
  assert.deepEqual(listed, [
    'DELETE /v1/databases/{id}', 'GET /health', 'GET /metrics', 'GET /openapi.json', 'GET /ready', 'GET /v1/backups', 'GET /v1/databases',
    'GET /v1/databases/{id}', 'GET /v1/databases/{id}/backups', 'GET /v1/databases/{id}/events', 'GET /v1/operations', 'GET /v1/operations/{id}',
    'GET /v1/tenants', 'PATCH /v1/databases/{id}', 'POST /v1/databases', 'POST /v1/databases/{id}/backups', 'POST /v1/databases/{id}/halt',
    'POST /v1/databases/{id}/restore', 'POST /v1/databases/{id}/resume', 'POST /v1/databases/{id}/rotate-key', 'POST /v1/tenants',
  ].sort());
  assert.ok(doc.paths['/v1/databases/{id}']!.patch!.parameters.some((p) => p.name === 'id' && p.in === 'path'));
  assert.ok(doc.paths['/v1/databases']!.post!.requestBody);
  assert.ok(doc.paths['/v1/databases/{id}']!.delete!.parameters.some((p) => p.name === 'policy' && p.in === 'query'));
});

test('bad create requests: 400 with the reason, nothing created', async () => {
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: { engine: 'redis', ram: '1Gi' } }, /unknown engine "redis"/);
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: { ram: '1Gi', apiKey: KEY } }, /engine/);
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: { engine: 'fluxion', ram: 'lots', apiKey: KEY } }, /not a quantity/);
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: { engine: 'fluxion', ram: '128Mi', apiKey: KEY } }, /between 256Mi and 64Gi/);
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: { engine: 'fluxion', ram: '65Gi', apiKey: KEY } }, /between 256Mi and 64Gi/);
  const short = await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: { engine: 'fluxion', ram: '1Gi', apiKey: 'short-key' } }, /at least 16 characters/);
  assert.ok(!JSON.stringify(short.body).includes('short-key'), 'the key is not echoed');
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: { engine: 'fluxion', ram: '1Gi', apiKey: KEY, replicas: 3 } }, /scales vertically only/);
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: { engine: 'conuredb', voters: 8, arbiter: 'auto', storage: '1Gi' } }, /from 1 to 7/);
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: { engine: 'conuredb', voters: 0, arbiter: 'auto', storage: '1Gi' } }, /from 1 to 7/);
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: { engine: 'conuredb', voters: '3', arbiter: 'auto', storage: '1Gi' } }, /got "3"/);
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: { engine: 'conuredb', voters: 3, arbiter: 'auto', storage: '1Gi', ram: '1Gi' } }, /unknown field "ram"/);
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { token: ADMIN_TOKEN, body: { engine: 'fluxion', ram: '1Gi', apiKey: KEY } }, /tenant is required/);
  await refused(403, 'permission_denied', 'POST', '/v1/databases', { body: { engine: 'fluxion', tenant: 'bob', ram: '1Gi', apiKey: KEY } });
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { raw: '{"engine": "fluxion", "ram": ' }, /malformed JSON/);
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { raw: '[1,2' }, /malformed JSON/);
  await refused(400, 'invalid_argument', 'POST', '/v1/databases', { body: [1, 2] });
  await refused(413, 'too_large', 'POST', '/v1/databases', { body: { engine: 'fluxion', ram: '1Gi', apiKey: KEY, pad: 'x'.repeat(70 * 1024) } });
});

test('auth: missing or wrong token 401; a tenant on an admin route 403', async () => {
  await refused(401, 'unauthenticated', 'GET', '/v1/databases', { token: null });
  await refused(401, 'unauthenticated', 'GET', '/v1/databases', { token: 'not-a-token' });
  await refused(401, 'unauthenticated', 'POST', '/v1/databases', { token: null, body: { engine: 'fluxion', ram: '1Gi', apiKey: KEY } });
  await refused(401, 'unauthenticated', 'GET', '/v1/databases', { headers: { authorization: `Basic ${alice}` }, token: null });
  await refused(403, 'permission_denied', 'GET', '/v1/tenants');
  await refused(403, 'permission_denied', 'POST', '/v1/tenants', { body: { id: 'mallory' } });
  await refused(404, 'not_found', 'GET', '/v1/nothing-here');
});

test('isolation, overlap (423), idempotency (same op / 422), DoNotTerminate (422)', async () => {
  // Idempotency-Key: same key + body → the same operation; another body → 422.
  const body = { engine: 'fluxion', ram: '512Mi', apiKey: KEY, deletionPolicy: 'DoNotTerminate' };
  const first = await call('POST', '/v1/databases', { body, headers: { 'idempotency-key': 'create-1' } });
  assert.equal(first.status, 202);
  const opId = (first.body.operation as { id: string }).id;
  const dbId = (first.body.database as { id: string }).id;
  const again = await call('POST', '/v1/databases', { body, headers: { 'idempotency-key': 'create-1' } });
  assert.equal(again.status, 202);
  assert.equal((again.body.operation as { id: string }).id, opId, 'same key + same body → same operation');
  assert.equal((again.body.database as { id: string }).id, dbId);
  await refused(422, 'unprocessable', 'POST', '/v1/databases', { body: { ...body, ram: '1Gi' }, headers: { 'idempotency-key': 'create-1' } }, /different request body/);

  // The create still runs: an overlapping operation is 423 and names it.
  const overlap = await refused(423, 'locked', 'PATCH', `/v1/databases/${dbId}`, { body: { ram: '1Gi' } });
  assert.match(String(overlap.body.error), new RegExp(opId));
  await new PlatformClient({ url: platform.url, token: alice }).waitOperation(opId);

  // Another tenant's database does not exist for bob.
  for (const [m, p, b] of [
    ['GET', `/v1/databases/${dbId}`], ['PATCH', `/v1/databases/${dbId}`, { ram: '1Gi' }], ['DELETE', `/v1/databases/${dbId}`],
    ['GET', `/v1/databases/${dbId}/events`], ['GET', `/v1/databases/${dbId}/backups`], ['POST', `/v1/databases/${dbId}/backups`],
    ['POST', `/v1/databases/${dbId}/halt`], ['POST', `/v1/databases/${dbId}/restore`, { backupId: 'bk-1' }], ['GET', `/v1/operations/${opId}`],
  ] as Array<[string, string, unknown?]>) {
    await refused(404, 'not_found', m, p, { token: bob, ...(b !== undefined && { body: b }) });
  }
  assert.deepEqual((await call('GET', '/v1/databases', { token: bob })).body, { databases: [] });
  assert.deepEqual((await call('GET', `/v1/operations?database=${dbId}`, { token: bob })).body, { operations: [] });
  await refused(404, 'not_found', 'GET', '/v1/databases/..%2Fsecrets');

  // Bad patches and operation inputs on an existing database.
  await refused(400, 'invalid_argument', 'PATCH', `/v1/databases/${dbId}`, { body: { ram: '1Gi', replicas: 2 } }, /vertically/);
  await refused(400, 'invalid_argument', 'PATCH', `/v1/databases/${dbId}`, { body: { apiKey: KEY } }, /rotate-key/);
  await refused(400, 'invalid_argument', 'POST', `/v1/databases/${dbId}/rotate-key`, { body: { apiKey: 'short' } });
  await refused(404, 'not_found', 'POST', `/v1/databases/${dbId}/restore`, { body: { backupId: 'bk-none' } });
  await refused(400, 'invalid_argument', 'DELETE', `/v1/databases/${dbId}?policy=Sometimes`);

  // DoNotTerminate refuses a delete with the reason.
  await refused(422, 'unprocessable', 'DELETE', `/v1/databases/${dbId}`, {}, /DoNotTerminate/);
  await refused(422, 'unprocessable', 'DELETE', `/v1/databases/${dbId}?policy=WipeOut`, {}, /DoNotTerminate/);
  // A halted database refuses spec changes and key rotation (apply would start it) with 409.
  const halt = await call('POST', `/v1/databases/${dbId}/halt`);
  assert.equal(halt.status, 202);
  await new PlatformClient({ url: platform.url, token: alice }).waitOperation((halt.body.operation as { id: string }).id);
  await refused(409, 'conflict', 'PATCH', `/v1/databases/${dbId}`, { body: { ram: '1Gi' } }, /halted; resume it/);
  await refused(409, 'conflict', 'POST', `/v1/databases/${dbId}/rotate-key`, { body: { apiKey: `${KEY}-2` } }, /halted/);
  await refused(409, 'conflict', 'POST', `/v1/databases/${dbId}/backups`, {}, /halted/);

  // Changing the policy is a plain write; then the delete goes through.
  const p = await call('PATCH', `/v1/databases/${dbId}`, { body: { deletionPolicy: 'WipeOut' } });
  assert.equal(p.status, 200);
  const del = await call('DELETE', `/v1/databases/${dbId}`);
  assert.equal(del.status, 202);
  await new PlatformClient({ url: platform.url, token: alice }).waitOperation((del.body.operation as { id: string }).id);
  assert.equal((await call('GET', `/v1/databases/${dbId}`)).status, 404);
});

test('store unreachable: 503 from the API, no crash, recovers when the store returns', async () => {
  await store.kill9();
  try {
    await refusedNoState(503, 'GET', '/v1/databases');
    await refusedNoState(503, 'POST', '/v1/databases', { engine: 'fluxion', ram: '1Gi', apiKey: KEY });
    const ready = await call('GET', '/ready', { token: null });
    assert.equal(ready.status, 503);
    assert.equal(platform.proc.exitCode, null, 'the platform keeps running');
  } finally {
    await store.restart();
  }
  await eventually(async () => (await call('GET', '/v1/databases')).status === 200, 30_000, 'the API answers again');
  assert.equal((await call('GET', '/ready', { token: null })).status, 200);
  // And it still does work: a create runs to the end.
  const c = await call('POST', '/v1/databases', { body: { engine: 'fluxion', ram: '512Mi', apiKey: KEY } });
  assert.equal(c.status, 202);
  await new PlatformClient({ url: platform.url, token: alice }).waitOperation((c.body.operation as { id: string }).id, { timeoutMs: 60_000 });
  assert.deepEqual((await call('GET', '/health', { token: null })).body, { status: 'healthy', components: { api: 'running', workers: 'running' } });
});

async function refusedNoState(expect: number, method: string, path: string, body?: unknown): Promise<void> {
  const r = await call(method, path, body === undefined ? {} : { body });
  assert.equal(r.status, expect, `${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(r.body.code, 'unavailable');
}

test('queue full: 429, nothing created', async () => {
  const d2 = mkdtempSync(join(tmpdir(), 'platform-queue-'));
  const small = await startPlatformProcess({ dataDir: d2, env: { OPERATION_QUEUE_MAX: '1', NUM_OPERATION_WORKERS: '1' } });
  try {
    const first = await small.admin.createDatabase({ engine: 'fluxion', tenant: 'q', ram: '512Mi', apiKey: KEY });
    const r = await fetch(`${small.url}/v1/databases`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ engine: 'fluxion', tenant: 'q', ram: '512Mi', apiKey: KEY }),
    });
    const body = await r.json() as { code: string; error: string };
    assert.equal(r.status, 429, JSON.stringify(body));
    assert.equal(body.code, 'resource_exhausted');
    assert.deepEqual((await small.admin.listDatabases()).map((d) => d.id), [first.database.id]);
    await small.admin.waitOperation(first.operation.id);
  } finally {
    await small.stop();
    killAllUnder(d2);
    rmSync(d2, { recursive: true, force: true });
  }
});
