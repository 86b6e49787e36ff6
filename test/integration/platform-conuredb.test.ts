/**
 * The platform with ConureDB, through the HTTP API only (real conure-platform, embedded store,
 * local driver with real conured members):
 *
 *   create 2 voters + auto arbiter → Ready (status lists 3 healthy members) → a writer PUTs
 *   through the seed API the whole time → PATCH voters 3 → kill -9 one voter: status sync says
 *   Critical, the reconciler submits a repair and the member comes back → PATCH voters 1 →
 *   every acknowledged write is still there.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseView } from '../../src/client/platform/index.js';
import type { LocalInstanceFile } from '../../src/platform/drivers/local/index.js';
import { missingKeys, startWriter } from '../support/cluster.js';
import { killAllUnder } from '../support/local-driver.js';
import { eventually, startPlatformProcess, type PlatformProcess } from '../support/platform-process.js';

let dir: string;
let platform: PlatformProcess;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'platform-conuredb-'));
  // No periodic pass: the repair must follow from status sync's Critical write (the watch on databases/).
  platform = await startPlatformProcess({ dataDir: dir, env: { RECONCILE_INTERVAL: '300' } });
});

after(async () => {
  await platform?.stop();
  killAllUnder(dir);
  rmSync(dir, { recursive: true, force: true });
});

const instanceFile = (id: string) => JSON.parse(readFileSync(join(dir, 'instances', id, 'instance.json'), 'utf8')) as LocalInstanceFile;

async function phase(id: string, want: string, timeoutMs = 90_000): Promise<DatabaseView> {
  return eventually(async () => {
    const d = await platform.admin.getDatabase(id);
    // Ready as status sync sees it: with every member probed healthy.
    if (want === 'Ready') return d.status.phase === 'Ready' && d.status.members?.every((m) => m.healthy) ? d : undefined;
    return d.status.phase === want ? d : undefined;
  }, timeoutMs, `${id} ${want}`);
}

test('ConureDB: 2 voters + auto arbiter → Ready → writes → scale 3 → member killed and repaired → scale 1 → writes kept', async () => {
  const t0 = Date.now();
  const c = await platform.admin.createDatabase({ engine: 'conuredb', tenant: 'acme', voters: 2, arbiter: 'auto', storage: '1Gi' });
  assert.equal(c.database.spec.storage, '1Gi');
  await platform.admin.waitOperation(c.operation.id);
  const id = c.database.id;
  let db = await phase(id, 'Ready');
  console.log(`# figure: ConureDB 2+arbiter create → Ready: ${Date.now() - t0} ms`);
  assert.deepEqual(db.status.members?.map((m) => `${m.id}:${m.role}:${m.healthy}`).sort(),
    ['conure-0:voter:true', 'conure-arbiter-0:arbiter:true', 'conure-bootstrap-0:voter:true']);
  assert.ok(db.endpoints.http && db.endpoints.etcd);

  let endpoints = db.endpoints.http!.split(',');
  // A write through the seed API (followers answer 409; the writer rotates).
  const writer = startWriter(() => endpoints, 'w');
  await eventually(async () => writer.acked.length > 20, 30_000, 'first writes acknowledged');

  const up = await platform.admin.patchDatabase(id, { voters: 3 });
  assert.equal(up.operation.type, 'scale');
  await platform.admin.waitOperation(up.operation.id, { timeoutMs: 180_000 });
  db = await phase(id, 'Ready');
  assert.deepEqual(db.status.members?.map((m) => `${m.id}:${m.role}`).sort(), ['conure-0:voter', 'conure-1:voter', 'conure-bootstrap-0:voter']);
  endpoints = db.endpoints.http!.split(',');

  // kill -9 a voter: Critical (quorum held), then the reconciler repairs it.
  const victim = instanceFile(id).members.find((m) => m.id === 'conure-1')!;
  process.kill(victim.pid!, 'SIGKILL');
  await eventually(async () => (await platform.admin.events(id)).some((e) => e.reason === 'Critical' && e.type === 'Warning'), 30_000, 'a Critical event');
  const repair = await eventually(async () => (await platform.admin.listOperations(id)).find((o) => o.type === 'repair'), 30_000, 'a repair operation');
  await platform.admin.waitOperation(repair.id, { timeoutMs: 120_000 });
  await phase(id, 'Ready');
  assert.notEqual(instanceFile(id).members.find((m) => m.id === 'conure-1')!.pid, victim.pid, 'the member was started again');
  assert.ok(platform.events('repair_submitted').some((l) => l.database_id === id));

  const down = await platform.admin.patchDatabase(id, { voters: 1 });
  await platform.admin.waitOperation(down.operation.id, { timeoutMs: 180_000 });
  db = await phase(id, 'Ready');
  assert.deepEqual(db.status.members?.map((m) => m.id), ['conure-bootstrap-0']);
  endpoints = db.endpoints.http!.split(',');
  await eventually(async () => writer.acked.length > 100, 30_000, 'writes after the scale-down');
  const acked = await writer.stop();
  assert.deepEqual(await missingKeys(endpoints[0]!, acked), [], `every one of ${acked.length} acknowledged writes kept`);
  console.log(`# figure: ${acked.length} acknowledged writes through scale 2+a → 3 → kill → 1, none lost`);
  const reasons = (await platform.admin.events(id)).map((e) => e.reason);
  for (const r of ['Provisioning', 'Ready', 'Scaled', 'Critical', 'Repaired']) assert.ok(reasons.includes(r), `event ${r} in ${reasons.join(',')}`);
});
