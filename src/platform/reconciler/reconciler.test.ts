/**
 * Reconciler against a real conured and a real LocalDriver (a database record whose instance
 * does not exist on this host): the leader submits one fenced repair; halted, deleting and
 * locked databases are left alone; after leadership moves, the old leader's fence (captured while
 * it led) is refused by the store inside the submit txn, and its pass submits nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdClient } from '../../client/index.js';
import { startConuredEndpoint, type EtcdEndpoint } from '../../../test/support/etcd-process.js';
import { record } from '../../../test/support/local-driver.js';
import { LocalDriver, MemoryPortAllocator } from '../drivers/local/index.js';
import { LeaderElection } from '../election/index.js';
import { deriveFluxionSpec, stepsFor } from '../engines/index.js';
import { OperationService } from '../operations/index.js';
import { PlatformStore, StoreConflictError } from '../store/index.js';
import { Reconciler } from './index.js';

let server: EtcdEndpoint;
let client: EtcdClient;
let dir: string;

before(async () => {
  server = await startConuredEndpoint();
  client = new EtcdClient({ endpoints: [server.endpoint] });
  dir = mkdtempSync(join(tmpdir(), 'reconciler-'));
});
after(async () => { client?.close(); await server?.close(); rmSync(dir, { recursive: true, force: true }); });

test('leader repairs what should run; a deposed leader cannot submit', async () => {
  const store = new PlatformStore(client, { prefix: '/rec1/' });
  const ops = new OperationService({ store });
  const driver = new LocalDriver({ dataDir: dir, ports: new MemoryPortAllocator() });
  const spec = deriveFluxionSpec('512Mi', '1.0');
  const gone = { ...record('gone', spec), observedGeneration: 1 };
  await store.putDatabase(gone);
  await store.putDatabase({ ...record('halted', spec), halted: true, observedGeneration: 1 });
  await store.putDatabase({ ...record('deleting', spec), deleting: true, observedGeneration: 1 });
  await store.putDatabase({ ...record('busy', spec), observedGeneration: 1 });
  await ops.submit({ databaseId: 'busy', tenant: 't1', type: 'backup', params: { engine: 'fluxion', backupId: 'b1' }, steps: ['backup'] });

  const a = new LeaderElection({ client, key: store.keys.leader(), instanceId: 'a', ttlSeconds: 5 });
  const b = new LeaderElection({ client, key: store.keys.leader(), instanceId: 'b', ttlSeconds: 5, checkIntervalMs: 200 });
  const ra = new Reconciler({ store, driver, operations: ops, election: a, minPassGapMs: 0 });
  a.start();
  const signal = await a.waitForLeadership(10_000);
  b.start();
  try {
    const r1 = await ra.pass(signal);
    assert.deepEqual(r1.repairs, ['gone'], 'only the database that should run and does not');
    const repairs = (await store.listOperations({ databaseId: 'gone' })).map((o) => o.value);
    assert.deepEqual(repairs.map((o) => [o.type, o.steps.map((s) => s.name)]), [['repair', stepsFor('fluxion', 'repair')]]);
    assert.equal((await ra.pass(signal)).repairs.length, 0, 'locked by its own repair now');

    // Leadership moves behind a's back; a's captured fence no longer holds in the store.
    const stale = a.fence();
    await store.deleteDatabase('gone');
    await store.putDatabase({ ...record('gone2', spec), observedGeneration: 1 });
    await client.delete(store.keys.leader());
    await b.waitForLeadership(10_000);
    await assert.rejects(
      ops.submit({ databaseId: 'gone2', tenant: 't1', type: 'repair', params: { engine: 'fluxion' }, steps: ['apply'], extra: { compares: stale } }),
      StoreConflictError,
    );
    const r2 = await ra.pass(signal);
    assert.equal(r2.repairs.length, 0, 'the deposed leader submits nothing');
    assert.equal((await store.listOperations({ databaseId: 'gone2' })).length, 0);
    assert.ok(ra.lastPassMs >= 0 && ra.passes === 3);
  } finally {
    await ra.stop();
    await a.stop();
    await b.stop();
    await driver.close();
  }
});

test('finished operations past the retention go, with their Idempotency-Keys; running and recent ones stay', async () => {
  const store = new PlatformStore(client, { prefix: '/rec2/' });
  const ops = new OperationService({ store });
  const driver = new LocalDriver({ dataDir: dir, ports: new MemoryPortAllocator() });
  const spec = deriveFluxionSpec('512Mi', '1.0');
  await store.putDatabase({ ...record('d1', spec), halted: true, observedGeneration: 1 });
  const old = (await ops.submit({ databaseId: 'd1', tenant: 't1', type: 'backup', params: { engine: 'fluxion' }, steps: ['backup'], idempotencyKey: 'k1', bodyHash: 'h' })).operation;
  const longAgo = new Date(Date.now() - 3_600_000).toISOString();
  await store.putOperation({ ...old, state: 'succeeded', finishedAt: longAgo, updatedAt: longAgo });
  await store.client.delete(store.keys.lock('d1'));
  await store.client.delete(store.keys.queue(old.id));
  const recent = (await ops.submit({ databaseId: 'd1', tenant: 't1', type: 'backup', params: { engine: 'fluxion' }, steps: ['backup'] })).operation;
  const election = new LeaderElection({ client, key: store.keys.leader(), instanceId: 'r', ttlSeconds: 5 });
  const rec = new Reconciler({ store, driver, operations: ops, election, operationRetentionMs: 60_000 });
  election.start();
  try {
    await rec.pass(await election.waitForLeadership(10_000));
    assert.equal(await store.getOperation(old.id), undefined, 'the old finished operation is gone');
    assert.equal(await store.read(store.keys.idempotency('t1', 'k1')), undefined, 'with its Idempotency-Key');
    assert.ok(await store.getOperation(recent.id), 'a queued operation stays');
  } finally {
    await rec.stop();
    await election.stop();
    await driver.close();
  }
});

