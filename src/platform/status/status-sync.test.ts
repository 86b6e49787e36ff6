/**
 * StatusSync against a real conured store and a real LocalDriver (a real fluxiond): the phase of
 * each kind of database, a guarded write, and an event on each phase change.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdClient } from '../../client/index.js';
import { startConuredEndpoint, type EtcdEndpoint } from '../../../test/support/etcd-process.js';
import { killAllUnder, record } from '../../../test/support/local-driver.js';
import { LocalDriver, MemoryPortAllocator } from '../drivers/local/index.js';
import { deriveFluxionSpec } from '../engines/index.js';
import { OperationService } from '../operations/index.js';
import { PlatformStore } from '../store/index.js';
import type { OperationRecord } from '../types.js';
import { StatusSync } from './index.js';

let server: EtcdEndpoint;
let client: EtcdClient;
let dir: string;
const KEY = 'status-key-0123456789';

before(async () => {
  server = await startConuredEndpoint();
  client = new EtcdClient({ endpoints: [server.endpoint] });
  dir = mkdtempSync(join(tmpdir(), 'status-sync-'));
});
after(async () => { client?.close(); await server?.close(); killAllUnder(dir); rmSync(dir, { recursive: true, force: true }); });

test('phases: Ready, NotReady on a dead process (Warning event), Provisioning, Failed, Halted, Deleting', async () => {
  const store = new PlatformStore(client, { prefix: '/st1/' });
  const driver = new LocalDriver({ dataDir: dir, ports: new MemoryPortAllocator(), stopGraceMs: 5000 });
  const sync = new StatusSync({ store, driver, intervalSeconds: 3600 });
  const spec = deriveFluxionSpec('256Mi', '1.0');
  try {
    const live = { ...record('live', spec), observedGeneration: 1 };
    await store.putDatabase(live);
    await driver.apply(live, { apiKey: KEY });
    await driver.waitReady(live, 30_000);
    await store.putDatabase(record('fresh', spec)); // never converged, no operation yet
    await store.putDatabase({ ...record('broken', spec), observedGeneration: 1 });
    await store.putDatabase({ ...record('failed', spec), observedGeneration: 1 });
    await store.putDatabase({ ...record('halted', spec), halted: true, observedGeneration: 1 });
    await store.putDatabase({ ...record('going', spec), deleting: true, observedGeneration: 1 });
    const now = new Date().toISOString();
    const failedOp: OperationRecord = {
      id: 'op-failed', type: 'resize', databaseId: 'failed', tenant: 't1', state: 'failed', params: {}, steps: [], progress: 0, attempts: 1,
      error: { code: 'timeout', message: 'did not start' }, createdAt: now, updatedAt: now, finishedAt: now,
    };
    await store.putOperation(failedOp);
    // An operation in flight on `fresh` (queued, holding its lock).
    await new OperationService({ store }).submit({ databaseId: 'fresh', tenant: 't1', type: 'create', params: { engine: 'fluxion' }, steps: ['apply'] });

    await sync.pass();
    const phase = async (id: string) => (await store.getDatabase(id))!.value.status;
    assert.equal((await phase('live')).phase, 'Ready');
    assert.equal((await phase('fresh')).phase, 'Provisioning');
    assert.equal((await phase('broken')).phase, 'NotReady');
    assert.equal((await phase('failed')).phase, 'Failed');
    assert.match((await phase('failed')).message, /resize op-failed failed: did not start/);
    assert.equal((await phase('halted')).phase, 'Halted');
    assert.equal((await phase('going')).phase, 'Deleting');
    assert.deepEqual([...sync.phases.entries()].sort(), [['Deleting', 1], ['Failed', 1], ['Halted', 1], ['NotReady', 1], ['Provisioning', 1], ['Ready', 1]]);
    assert.deepEqual((await store.listEvents('live')).map((e) => [e.type, e.reason]), [['Normal', 'Ready']]);

    // An unchanged status is not rewritten.
    const rev = (await store.getDatabase('live'))!.modRevision;
    await sync.pass();
    assert.equal((await store.getDatabase('live'))!.modRevision, rev);

    // The process dies: NotReady, with a Warning event.
    await driver.halt({ ...live, halted: true });
    await sync.pass();
    assert.equal((await phase('live')).phase, 'NotReady');
    assert.deepEqual((await store.listEvents('live')).map((e) => [e.type, e.reason]), [['Normal', 'Ready'], ['Warning', 'NotReady']]);
  } finally {
    await sync.stop();
    await driver.close();
  }
});
