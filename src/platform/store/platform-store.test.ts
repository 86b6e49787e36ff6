/**
 * PlatformStore and StorePortAllocator against a real conured: key layout, typed JSON round
 * trips, optimistic concurrency, id validation, events order, port reservation races.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { EtcdClient } from '../../client/index.js';
import { ConureError } from '../../util/index.js';
import { startConuredEndpoint, type EtcdEndpoint } from '../../../test/support/etcd-process.js';
import { freePort } from '../../../test/support/cluster.js';
import { PlatformStore, StoreConflictError, StorePortAllocator } from './index.js';
import type { DatabaseRecord } from '../types.js';

let server: EtcdEndpoint;
let client: EtcdClient;
let n = 0;
const fresh = () => new PlatformStore(client, { prefix: `/t${++n}/` });

before(async () => {
  server = await startConuredEndpoint();
  client = new EtcdClient({ endpoints: [server.endpoint] });
});
after(async () => { client?.close(); await server?.close(); });

function db(id: string, tenant = 'acme'): DatabaseRecord {
  const now = new Date().toISOString();
  return {
    id, tenant, name: id, engine: 'fluxion',
    spec: { engine: 'fluxion', ram: '1Gi', storage: '2Gi', cpuRequest: '250m', cpuLimit: '1', replicas: 1, version: '1' },
    status: { phase: 'Provisioning', message: '', observedAt: now }, endpoints: {}, deletionPolicy: 'Delete',
    generation: 1, observedGeneration: 0, createdAt: now, updatedAt: now,
  };
}

test('key layout under the prefix', () => {
  const s = new PlatformStore(client);
  const k = s.keys;
  assert.equal(k.tenant('t1'), '/conure-platform/tenants/t1');
  assert.equal(k.database('d1'), '/conure-platform/databases/d1');
  assert.equal(k.secret('d1'), '/conure-platform/secrets/d1');
  assert.equal(k.operation('o1'), '/conure-platform/operations/o1');
  assert.equal(k.queue('o1'), '/conure-platform/queue/o1');
  assert.equal(k.lock('d1'), '/conure-platform/locks/d1');
  assert.equal(k.claim('o1'), '/conure-platform/claims/o1');
  assert.equal(k.idempotency('t1', 'a b/c'), '/conure-platform/idempotency/t1/a%20b%2Fc');
  assert.equal(k.backup('d1', 'b1'), '/conure-platform/backups/d1/b1');
  assert.equal(k.event('d1', '000000000000001-000000'), '/conure-platform/events/d1/000000000000001-000000');
  assert.equal(k.port(9000), '/conure-platform/ports/9000');
  assert.equal(k.leader(), '/conure-platform/leader');
  for (const bad of ['', 'a/b', '..', '.x', 'x'.repeat(129), 'é']) {
    assert.throws(() => k.database(bad), (e: unknown) => e instanceof ConureError && e.code === 'invalid_argument', bad);
  }
  assert.throws(() => k.port(70000), (e: unknown) => e instanceof ConureError && e.code === 'invalid_argument');
});

test('records round-trip; mod-revision guards give optimistic concurrency', async () => {
  const s = fresh();
  const d1 = db('d1');
  const rev = await s.putDatabase(d1, 0);
  await assert.rejects(s.putDatabase(db('d1'), 0), (e: unknown) => e instanceof StoreConflictError && e.code === 'conflict');
  const got = await s.getDatabase('d1');
  assert.deepEqual(got?.value, d1);
  assert.equal(got?.modRevision, rev);
  const next = { ...got!.value, generation: 2 };
  await s.putDatabase(next, got!.modRevision);
  await assert.rejects(s.putDatabase({ ...next, generation: 3 }, got!.modRevision), StoreConflictError, 'a stale writer is refused');
  assert.equal((await s.getDatabase('d1'))?.value.generation, 2);
  await s.putDatabase(db('d2', 'other'));
  assert.deepEqual((await s.listDatabases()).map((d) => d.value.id), ['d1', 'd2']);
  assert.deepEqual((await s.listDatabases({ tenant: 'other' })).map((d) => d.value.id), ['d2']);
  await assert.rejects(s.deleteDatabase('d1', got!.modRevision), StoreConflictError);
  assert.equal(await s.deleteDatabase('d1'), true);
  assert.equal(await s.getDatabase('d1'), undefined);
  await s.putTenant({ id: 'acme', name: 'Acme', tokenHashes: ['ab'], createdAt: 'now' });
  assert.equal((await s.listTenants())[0]?.value.name, 'Acme');
  await s.putSecret('d2', { apiKey: 'k' });
  assert.equal((await s.getSecret('d2'))?.value.apiKey, 'k');
  await s.putBackup({ id: 'b1', databaseId: 'd2', tenant: 'other', engine: 'fluxion', location: '/x', sizeBytes: 1, createdAt: 'now' });
  assert.equal((await s.listBackups('d2')).length, 1);
});

test('events keep their order and a limit returns the newest', async () => {
  let t = 1000;
  const s = new PlatformStore(client, { prefix: `/t${++n}/`, now: () => t });
  for (let i = 0; i < 5; i++) {
    await s.appendEvent({ at: String(i), databaseId: 'd1', type: 'Normal', reason: `r${i}`, message: '' });
    if (i % 2) t++;
  }
  assert.deepEqual((await s.listEvents('d1')).map((e) => e.reason), ['r0', 'r1', 'r2', 'r3', 'r4']);
  assert.deepEqual((await s.listEvents('d1', { limit: 2 })).map((e) => e.reason), ['r3', 'r4']);
});

test('ports: reserved once across racing allocators, idempotent per owner, busy host ports skipped, exhausted range', async () => {
  const s = fresh();
  // A range of free ports with one of them bound by "another process".
  const base = await freePort();
  const low = base, high = base + 5;
  let busy: Server | undefined;
  try {
    busy = createServer();
    const busyPort = low + 1;
    const bound = await new Promise<boolean>((r) => { busy!.once('error', () => r(false)); busy!.listen(busyPort, '127.0.0.1', () => r(true)); });
    const a1 = new StorePortAllocator({ store: s, portLow: low, portHigh: high });
    const a2 = new StorePortAllocator({ store: s, portLow: low, portHigh: high });
    const [p1, p2] = await Promise.all([a1.allocate('db-a', 2), a2.allocate('db-b', 2)]);
    const all = [...p1, ...p2];
    assert.equal(new Set(all).size, 4, `no port handed out twice: ${all.join(',')}`);
    if (bound) assert.ok(!all.includes(busyPort), 'a port in use on the host is skipped');
    assert.deepEqual(await a1.allocate('db-a', 2), p1, 'asking again returns the same ports');
    await assert.rejects(a1.allocate('db-c', 3), (e: unknown) => e instanceof ConureError && e.code === 'resource_exhausted');
    assert.equal([...(await a1.reserved()).values()].filter((o) => o === 'db-c').length, 0, 'a failed allocation keeps nothing');
    await a1.release('db-a');
    assert.deepEqual([...(await a1.reserved()).values()].sort(), ['db-b', 'db-b']);
    const again = await a2.allocate('db-c', 1);
    assert.ok(p1.includes(again[0]!), 'released ports are reused');
  } finally {
    busy?.close();
  }
});
