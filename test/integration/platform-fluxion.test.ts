/**
 * The platform end to end with Fluxion, through the HTTP API only, on a real conure-platform
 * process with its embedded store and the local driver (real fluxiond processes):
 *
 *   provision (202, Location) → Ready → connect over WebSocket with the key, write, read →
 *   PATCH ram 512Mi → 1Gi (storage 2Gi, data kept) → backup → delete (policy Delete keeps the
 *   backup) → a NEW database restored from that backup (restore is into an existing database;
 *   the backup of a deleted database stays listed under GET /v1/backups) → the data is back.
 *   rotate-key: the old key is refused, the new one works. Halt / resume keep the data.
 *
 * Prints the create → Ready figure (not asserted).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlatformClient } from '../../src/client/platform/index.js';
import { Client } from './fluxion-harness.js';
import { eventually, startPlatformProcess, type PlatformProcess } from '../support/platform-process.js';
import { killAllUnder } from '../support/local-driver.js';

const KEY = 'fluxion-key-0123456789';
const KEY2 = 'fluxion-key-rotated-987654';
let dir: string;
let platform: PlatformProcess;
let tenant: PlatformClient;
let tenantToken: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'platform-fluxion-'));
  platform = await startPlatformProcess({ dataDir: dir });
  const t = await platform.admin.createTenant('user123');
  tenantToken = t.token;
  tenant = new PlatformClient({ url: platform.url, token: t.token });
});

after(async () => {
  await platform?.stop();
  killAllUnder(dir);
  rmSync(dir, { recursive: true, force: true });
});

async function ready(id: string): Promise<{ ws: string }> {
  const db = await eventually(async () => { const d = await tenant.getDatabase(id); return d.status.phase === 'Ready' && d.endpoints.ws ? d : undefined; }, 60_000, `${id} Ready`);
  return { ws: db.endpoints.ws! };
}

function connect(ws: string, key = KEY): Promise<Client> {
  return Client.connect(`${ws}/?api-key=${encodeURIComponent(key)}`);
}

test('provision → Ready → write → resize keeps data → backup → delete → restore into a new database', async () => {
  // Provision through the raw API: 202 with a Location header.
  const t0 = Date.now();
  const res = await fetch(`${platform.url}/v1/databases`, {
    method: 'POST', headers: { authorization: `Bearer ${tenantToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ engine: 'fluxion', ram: '512Mi', apiKey: KEY }),
  });
  assert.equal(res.status, 202);
  const created = await res.json() as { database: { id: string; tenant: string; spec: { storage: string } }; operation: { id: string; type: string } };
  assert.equal(res.headers.get('location'), `/v1/operations/${created.operation.id}`);
  assert.equal(created.database.tenant, 'user123');
  assert.equal(created.database.spec.storage, '1Gi');
  assert.equal(created.operation.type, 'create');
  assert.ok(!JSON.stringify(created).includes(KEY), 'the API key is never returned');
  const id = created.database.id;
  const op = await tenant.waitOperation(created.operation.id, { pollMs: 20 });
  assert.deepEqual(op.steps.map((s) => [s.name, s.state]), [['allocate-ports', 'done'], ['apply', 'done'], ['wait-ready', 'done']]);
  assert.equal(op.progress, 100);
  const { ws } = await ready(id);
  console.log(`# figure: Fluxion create → Ready through the API: ${Date.now() - t0} ms`);
  assert.ok(!JSON.stringify(await tenant.getDatabase(id)).includes(KEY));

  let c = await connect(ws);
  await c.request('sval', { col: 'cfg', key: 'k', value: 'v1' });
  await c.request('ins', [{ col: 'm', doc: 'd1', ts: 1, data: '{"v":1}' }]);
  assert.equal((await c.request('gval', { col: 'cfg', key: 'k' })).value, 'v1');
  await c.close();

  // Resize 512Mi → 1Gi through the guide's call: storage follows (2 × ram), data kept.
  const resized = await tenant.updateRam('user123', '1Gi');
  assert.equal(resized.operation.type, 'resize');
  assert.equal(resized.database.generation, 2);
  await tenant.waitOperation(resized.operation.id);
  const after = await tenant.getDatabase(id);
  assert.equal(after.spec.engine === 'fluxion' && after.spec.ram, '1Gi');
  assert.equal(after.spec.storage, '2Gi');
  assert.equal(after.observedGeneration, 2);
  c = await connect((await ready(id)).ws);
  assert.equal((await c.request('gval', { col: 'cfg', key: 'k' })).value, 'v1', 'data kept across the resize');
  await c.close();

  // Backup.
  const b = await tenant.backup(id);
  await tenant.waitOperation(b.operation.id);
  const backups = await tenant.listBackups(id);
  assert.equal(backups.length, 1);
  const backupId = backups[0]!.id;
  assert.equal(backupId, b.operation.params.backupId);

  // Writes after the backup are not in it.
  c = await connect((await ready(id)).ws);
  await c.request('sval', { col: 'cfg', key: 'k', value: 'after-backup' });
  await c.close();

  // Delete (policy Delete keeps backups).
  const del = await tenant.deleteDatabase(id);
  assert.equal(del.database.status.phase, 'Deleting');
  await tenant.waitOperation(del.operation.id);
  await assert.rejects(tenant.getDatabase(id), (e: Error & { status?: number }) => e.status === 404);
  assert.deepEqual((await tenant.listBackups()).map((x) => x.id), [backupId], 'the backup outlives its database');

  // Restore into a new database of the same tenant.
  const fresh = await tenant.createDatabase({ engine: 'fluxion', ram: '1Gi', apiKey: KEY });
  await tenant.waitOperation(fresh.operation.id);
  const r = await tenant.restore(fresh.database.id, backupId);
  assert.equal(r.operation.type, 'restore');
  await tenant.waitOperation(r.operation.id);
  c = await connect((await ready(fresh.database.id)).ws);
  assert.equal((await c.request('gval', { col: 'cfg', key: 'k' })).value, 'v1', 'the backup\'s data is back');
  assert.equal(((await c.request('qdoc', { col: 'm', doc: 'd1', to: Number.MAX_SAFE_INTEGER })).records as unknown[]).length, 1);
  await c.close();

  // rotate-key: the old key stops working, the new one works, data kept.
  const rot = await tenant.rotateKey(fresh.database.id, KEY2);
  assert.ok(!JSON.stringify(rot).includes(KEY2));
  await tenant.waitOperation(rot.operation.id);
  const ws2 = (await ready(fresh.database.id)).ws;
  await assert.rejects(connect(ws2, KEY), /HTTP 401|HTTP 403/);
  c = await connect(ws2, KEY2);
  assert.equal((await c.request('gval', { col: 'cfg', key: 'k' })).value, 'v1');
  await c.close();

  // Halt → Halted (process stopped), resume → Ready with the data.
  const h = await tenant.halt(fresh.database.id);
  await tenant.waitOperation(h.operation.id);
  assert.equal((await tenant.getDatabase(fresh.database.id)).status.phase, 'Halted');
  await assert.rejects(connect(ws2, KEY2));
  const rs = await tenant.resume(fresh.database.id);
  await tenant.waitOperation(rs.operation.id);
  c = await connect((await ready(fresh.database.id)).ws, KEY2);
  assert.equal((await c.request('gval', { col: 'cfg', key: 'k' })).value, 'v1');
  await c.close();

  const reasons = (await tenant.events(fresh.database.id)).map((e) => e.reason);
  for (const r2 of ['Provisioning', 'Ready', 'Restored', 'KeyRotated', 'Halted', 'Resumed']) assert.ok(reasons.includes(r2), `event ${r2} in ${reasons.join(',')}`);
});
