/**
 * Two platform replicas against one external store (a single conured), sharing the local
 * driver's data directory (one host):
 *
 * - exactly one of them logs `leadership_acquired`;
 * - a ConureDB create is submitted; the replica whose worker claimed it is killed with SIGKILL
 *   mid-operation; the other one's workers take the operation over when the claim's lease lapses
 *   and finish it exactly once: the operation succeeds with attempts = 2, `operation_succeeded`
 *   is logged once in all, and exactly the planned member processes run (none started twice);
 * - if the killed replica led, the survivor becomes the leader.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startConuredEndpoint, type EtcdEndpoint } from '../support/etcd-process.js';
import { killAllUnder, processesUnder } from '../support/local-driver.js';
import { eventually, startPlatformProcess, type PlatformProcess } from '../support/platform-process.js';

let dir: string;
let store: EtcdEndpoint;
let a: PlatformProcess;
let b: PlatformProcess;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'platform-ha-'));
  store = await startConuredEndpoint();
  const env = { OPERATION_LEASE_SECONDS: '3', LEADER_LEASE_SECONDS: '3', RECONCILE_INTERVAL: '300' };
  [a, b] = await Promise.all([
    startPlatformProcess({ dataDir: dir, storeEndpoints: store.endpoint, instanceId: 'replica-a', env }),
    startPlatformProcess({ dataDir: dir, storeEndpoints: store.endpoint, instanceId: 'replica-b', env }),
  ]);
});

after(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  killAllUnder(dir);
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('one leader; a replica killed mid-operation: the other finishes it exactly once', async () => {
  await eventually(async () => a.events('leadership_acquired').length + b.events('leadership_acquired').length > 0, 20_000, 'a leader');
  await new Promise((r) => setTimeout(r, 2000));
  const leaders = [a, b].filter((p) => p.events('leadership_acquired').length > 0);
  assert.equal(leaders.length, 1, 'exactly one replica logs leadership_acquired');
  assert.equal(leaders[0]!.events('leadership_acquired')[0]!.instance_id, leaders[0] === a ? 'replica-a' : 'replica-b');
  for (const p of [a, b]) assert.equal(p.events('operation_workers_started')[0]!.count, 3);

  const c = await a.admin.createDatabase({ engine: 'conuredb', tenant: 'acme', voters: 2, arbiter: 'auto', storage: '1Gi' });
  const opId = c.operation.id;
  const id = c.database.id;
  // Wait until a worker is inside the operation (its apply step started), then kill that replica.
  const running = await eventually(async () => {
    const op = await b.admin.getOperation(opId);
    return op.state === 'running' && op.worker && op.steps.some((s) => s.name === 'apply' && s.state !== 'pending') ? op : undefined;
  }, 30_000, 'the operation running');
  const owner = running.worker!.startsWith('replica-a/') ? a : b;
  const survivor = owner === a ? b : a;
  await owner.kill9();
  const stepAtKill = running.steps.find((s) => s.state === 'running')?.name;

  const done = await survivor.admin.waitOperation(opId, { timeoutMs: 120_000 });
  assert.equal(done.state, 'succeeded');
  assert.equal(done.attempts, 2, 'resumed once by the survivor');
  assert.ok(done.worker!.startsWith(survivor === a ? 'replica-a/' : 'replica-b/'));
  assert.deepEqual(done.steps.map((s) => s.state), ['done', 'done', 'done']);
  const succeeded = [...a.events('operation_succeeded'), ...b.events('operation_succeeded')].filter((l) => l.operation_id === opId);
  assert.equal(succeeded.length, 1, 'finished exactly once');
  const db = await eventually(async () => { const d = await survivor.admin.getDatabase(id); return d.status.phase === 'Ready' ? d : undefined; }, 60_000, 'Ready');
  assert.equal(db.observedGeneration, 1);
  assert.equal(processesUnder(join(dir, 'instances', id)).length, 3, 'exactly the planned member processes run');
  if (owner === leaders[0]) {
    await eventually(async () => survivor.events('leadership_acquired').length > 0, 30_000, 'the survivor takes over leadership');
  }
  console.log(`# figure: replica killed during step ${stepAtKill}; survivor finished the operation (attempts ${done.attempts})`);
});
