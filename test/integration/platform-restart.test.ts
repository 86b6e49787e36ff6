/**
 * kill -9 the platform (and its embedded store, which lives in the same process) while a
 * Fluxion instance and a ConureDB cluster run → start it again on the same data directory →
 * the instances are re-adopted: same pids, never restarted, no repair submitted, both Ready,
 * the data written before the kill still there. Then SIGTERM: exit 0, instances keep running.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalInstanceFile } from '../../src/platform/drivers/local/index.js';
import { Client } from './fluxion-harness.js';
import { killAllUnder } from '../support/local-driver.js';
import { eventually, startPlatformProcess, type PlatformProcess } from '../support/platform-process.js';

const KEY = 'restart-key-0123456789';
let dir: string;
let platform: PlatformProcess;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'platform-restart-'));
  platform = await startPlatformProcess({ dataDir: dir, env: { RECONCILE_INTERVAL: '2' } });
});

after(async () => {
  await platform?.stop();
  killAllUnder(dir);
  rmSync(dir, { recursive: true, force: true });
});

const pids = (id: string) => (JSON.parse(readFileSync(join(dir, 'instances', id, 'instance.json'), 'utf8')) as LocalInstanceFile).members.map((m) => m.pid!).sort();
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

async function ready(p: PlatformProcess, id: string) {
  return eventually(async () => { const d = await p.admin.getDatabase(id); return d.status.phase === 'Ready' ? d : undefined; }, 60_000, `${id} Ready`);
}

test('kill -9 the platform with instances running; the restart re-adopts them (same pids)', async () => {
  const f = await platform.admin.createDatabase({ engine: 'fluxion', tenant: 'acme', ram: '512Mi', apiKey: KEY });
  const c = await platform.admin.createDatabase({ engine: 'conuredb', tenant: 'acme', voters: 2, arbiter: 'auto', storage: '1Gi' });
  await Promise.all([platform.admin.waitOperation(f.operation.id), platform.admin.waitOperation(c.operation.id)]);
  const fdb = await ready(platform, f.database.id);
  await ready(platform, c.database.id);
  const ws = await Client.connect(`${fdb.endpoints.ws}/?api-key=${KEY}`);
  await ws.request('sval', { col: 'cfg', key: 'k', value: 'before-kill' });
  await ws.close();
  const before = { f: pids(f.database.id), c: pids(c.database.id) };
  assert.equal(before.c.length, 3);

  await platform.kill9();
  for (const pid of [...before.f, ...before.c]) assert.ok(alive(pid), `instance process ${pid} outlives the platform`);

  platform = await startPlatformProcess({ dataDir: dir, port: platform.port, env: { RECONCILE_INTERVAL: '2' } });
  await ready(platform, f.database.id);
  await ready(platform, c.database.id);
  // Let the reconciler look at least twice.
  await eventually(async () => (await (await fetch(`${platform.url}/metrics`)).text()).match(/conure_platform_reconcile_passes_total (\d+)/)?.[1] !== '0', 20_000, 'a reconcile pass');
  await new Promise((r) => setTimeout(r, 2500));
  assert.deepEqual({ f: pids(f.database.id), c: pids(c.database.id) }, before, 'same pids after the restart');
  assert.equal(platform.events('process_started').length, 0, 'nothing was started again');
  assert.equal(platform.events('repair_submitted').length, 0, 'no repair needed');
  assert.equal((await platform.admin.listOperations()).filter((o) => o.type === 'repair').length, 0);
  const again = await Client.connect(`${fdb.endpoints.ws}/?api-key=${KEY}`);
  assert.equal((await again.request('gval', { col: 'cfg', key: 'k' })).value, 'before-kill');
  await again.close();

  // SIGTERM: a clean exit; the instances keep running.
  assert.equal(await platform.stop(), 0);
  for (const pid of [...before.f, ...before.c]) assert.ok(alive(pid));
  platform = await startPlatformProcess({ dataDir: dir, port: platform.port });
});

test('SIGTERM mid-operation releases the claim at once; the next start resumes the operation', async () => {
  const c = await platform.admin.createDatabase({ engine: 'conuredb', tenant: 'acme', voters: 2, arbiter: 'auto', storage: '1Gi' });
  await eventually(async () => {
    const op = await platform.admin.getOperation(c.operation.id);
    return op.state === 'running' && op.steps.some((s) => s.name === 'apply' && s.state !== 'pending');
  }, 30_000, 'the operation running');
  assert.equal(await platform.stop(), 0);
  platform = await startPlatformProcess({ dataDir: dir, port: platform.port });
  const done = await platform.admin.waitOperation(c.operation.id, { timeoutMs: 60_000 });
  assert.equal(done.state, 'succeeded');
  // The API closes first; an operation that finishes meanwhile is simply done (attempts 1).
  if (done.attempts === 1) {
    console.log('# the operation finished while the API was closing; nothing to resume');
  } else {
    assert.equal(done.attempts, 2, 'stopped mid-way by SIGTERM, resumed by the next start');
    // The claim went with the revoked lease: the new process claims it at once, not after the
    // lease's TTL (OPERATION_LEASE_SECONDS, 10 s by default).
    const started = Number(platform.events('platform_started')[0]!.time);
    const claimed = Number(platform.events('operation_claimed').find((l) => l.operation_id === c.operation.id)!.time);
    assert.ok(claimed - started < 5000, `claimed ${claimed - started} ms after the start`);
  }
  await ready(platform, c.database.id);
});
