import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConureError } from '../../util/index.js';
import type { PlatformService } from '../service/index.js';
import { PlatformMetrics } from './metrics.js';
import { createPlatformApi } from './server.js';

/** The API over a service that knows no database (every id is not_found). */
function api() {
  const asked: string[] = [];
  const service = {
    authenticate: async () => ({ kind: 'admin' }),
    getDatabase: async (_p: unknown, id: string) => { asked.push(id); throw new ConureError('not_found', `no database ${id}`); },
  } as unknown as PlatformService;
  const none = async () => [];
  const metrics = new PlatformMetrics({
    operations: none, databases: none, leader: () => false, queueDepth: () => 0, workersBusy: () => 0,
    reconcilePassSeconds: () => 0, reconcilePasses: () => 0, statusPassSeconds: () => 0,
  });
  const app = createPlatformApi({ service, metrics, health: { components: () => ({ api: 'running' }), storeReachable: async () => true } });
  return { app, asked };
}

const get = (app: ReturnType<typeof api>['app'], path: string) => app.inject({ method: 'GET', url: path, headers: { authorization: 'Bearer t' } });

test('ids up to the documented 128 characters reach the service (the router\'s limit was 100: 414)', async () => {
  const { app, asked } = api();
  const id = 'd'.repeat(128);
  const r = await get(app, `/v1/databases/${id}`);
  assert.deepEqual([r.statusCode, r.json().code], [404, 'not_found']);
  assert.deepEqual(asked, [id]);
});

test('longer or undecodable ids are 400 with the API\'s error body, not fastify\'s', async () => {
  const { app, asked } = api();
  for (const path of [`/v1/databases/${'d'.repeat(129)}`, `/v1/databases/${'d'.repeat(5000)}`, '/v1/databases/%E0%A4%A', `/v1/operations/${'o'.repeat(5000)}`]) {
    const r = await get(app, path);
    assert.equal(r.statusCode, 400, path.slice(0, 40));
    assert.deepEqual(Object.keys(r.json()).sort(), ['code', 'error'], r.body.slice(0, 200));
    assert.equal(r.json().code, 'invalid_argument');
  }
  assert.deepEqual(asked, []);
});

test('the document lists what mutations answer: 201 for a tenant, 200 or 202 for a patch', async () => {
  const { app } = api();
  const doc = (await app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  assert.ok(doc.paths['/v1/tenants']!.post!.responses['201']);
  assert.ok(doc.paths['/v1/databases/{id}']!.patch!.responses['200']);
  assert.ok(doc.paths['/v1/databases/{id}']!.patch!.responses['202']);
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(ops)) assert.ok(Object.keys(op.responses).some((c) => c.startsWith('2')), `${m} ${path} documents its success`);
  }
});
