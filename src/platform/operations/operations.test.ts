/**
 * Operations against a real conured: submit (lock, idempotency, queue bound, atomic extra
 * writes) and a WorkerPool in this process (steps, progress, retries, failures, logs, stats,
 * a lost claim cannot write). The SIGKILL resume test is test/integration/operations-resume.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdClient, compare, op } from '../../client/index.js';
import { ConureError } from '../../util/index.js';
import { startConuredEndpoint, type EtcdEndpoint } from '../../../test/support/etcd-process.js';
import { CountingExecutor, memoryLogger } from '../../../test/support/counting-executor.js';
import { PlatformStore } from '../store/index.js';
import { OperationLockedError, OperationService, WorkerPool } from './index.js';
import type { OperationRecord } from '../types.js';
import { sleep, until } from '../../../test/support/until.js';

let server: EtcdEndpoint;
let client: EtcdClient;
let n = 0;
const fresh = () => new PlatformStore(client, { prefix: `/ops${++n}/` });


async function finished(store: PlatformStore, id: string): Promise<OperationRecord> {
  return until(`operation ${id} to finish`, async () => {
    const o = (await store.getOperation(id))?.value;
    return o && (o.state === 'succeeded' || o.state === 'failed') ? o : undefined;
  });
}

const code = (c: string) => (e: unknown) => e instanceof ConureError && e.code === c;

before(async () => {
  server = await startConuredEndpoint();
  client = new EtcdClient({ endpoints: [server.endpoint] });
});
after(async () => { client?.close(); await server?.close(); });

test('submit: one txn creates record, lock, queue entry; a second submit on the database is locked naming the first', async () => {
  const store = fresh();
  const svc = new OperationService({ store });
  const { operation: a, created } = await svc.submit({ databaseId: 'db1', tenant: 't1', type: 'create', params: { x: 1 } });
  assert.equal(created, true);
  assert.equal(a.state, 'queued');
  assert.deepEqual((await store.getOperation(a.id))?.value, a);
  assert.equal((await store.read<{ operationId: string }>(store.keys.lock('db1')))?.value.operationId, a.id);
  assert.ok(await store.client.get(store.keys.queue(a.id)));
  await assert.rejects(svc.submit({ databaseId: 'db1', tenant: 't1', type: 'scale' }), (e: unknown) => e instanceof OperationLockedError && e.code === 'locked' && e.operationId === a.id);
  assert.equal((await store.listOperations()).length, 1, 'the refused submit wrote nothing');
  const other = await svc.submit({ databaseId: 'db2', tenant: 't1', type: 'create' });
  assert.notEqual(other.operation.id, a.id, 'other databases are not locked');
});

test('submit: Idempotency-Key with the same body returns the operation; with another body is unprocessable', async () => {
  const store = fresh();
  const svc = new OperationService({ store });
  const first = await svc.submit({ databaseId: 'db1', tenant: 't1', type: 'backup', idempotencyKey: 'k-1', bodyHash: 'h1' });
  const again = await svc.submit({ databaseId: 'db1', tenant: 't1', type: 'backup', idempotencyKey: 'k-1', bodyHash: 'h1' });
  assert.equal(again.created, false);
  assert.equal(again.operation.id, first.operation.id);
  await assert.rejects(svc.submit({ databaseId: 'db1', tenant: 't1', type: 'backup', idempotencyKey: 'k-1', bodyHash: 'h2' }), code('unprocessable'));
  // Keys are per tenant.
  const otherTenant = await svc.submit({ databaseId: 'db9', tenant: 't2', type: 'backup', idempotencyKey: 'k-1', bodyHash: 'zz' });
  assert.equal(otherTenant.created, true);
  // Concurrent duplicates: one operation.
  const rs = await Promise.all([1, 2, 3].map(() => svc.submit({ databaseId: 'db3', tenant: 't1', type: 'create', idempotencyKey: 'race', bodyHash: 'b' })));
  assert.equal(new Set(rs.map((r) => r.operation.id)).size, 1);
  assert.equal(rs.filter((r) => r.created).length, 1);
});

test('submit: a full queue is resource_exhausted', async () => {
  const store = fresh();
  const svc = new OperationService({ store, queueOperationsMax: 2 });
  await svc.submit({ databaseId: 'a', tenant: 't', type: 'create' });
  await svc.submit({ databaseId: 'b', tenant: 't', type: 'create' });
  await assert.rejects(svc.submit({ databaseId: 'c', tenant: 't', type: 'create' }), code('resource_exhausted'));
});

test('submit: extra compares and puts go in the same txn (database record and its create operation together)', async () => {
  const store = fresh();
  const svc = new OperationService({ store });
  const dbKey = store.keys.database('db1');
  const extra = { compares: [compare.absent(dbKey)], ops: [op.putJson(dbKey, { id: 'db1' })] };
  await svc.submit({ databaseId: 'db1', tenant: 't', type: 'create', extra });
  assert.ok(await store.client.get(dbKey));
  // Lock released by hand, database exists: the extra compare fails; nothing is written.
  await store.remove(store.keys.lock('db1'));
  await assert.rejects(svc.submit({ databaseId: 'db1', tenant: 't', type: 'create', extra }), code('conflict'));
  assert.equal((await store.listOperations()).length, 1);
  assert.equal(await store.client.get(store.keys.lock('db1')), undefined);
});

test('WorkerPool: runs steps in order to success; progress, attempts, cleanup, logs and stats', async () => {
  const store = fresh();
  const svc = new OperationService({ store });
  const exec = new CountingExecutor(store);
  const { log, lines } = memoryLogger();
  const pool = new WorkerPool({ store, executor: exec, workers: 3, leaseTtlSeconds: 5, scanIntervalMs: 500, instanceId: 'p1', log });
  await pool.start();
  try {
    assert.equal(pool.stats().workers.length, 3);
    const { operation } = await svc.submit({ databaseId: 'db1', tenant: 't', type: 'create', params: { stepMs: 300 } });
    await until('a busy worker', async () => pool.stats().running === 1 || undefined);
    assert.equal(pool.stats().workers.filter((w) => w.busy)[0]?.operationId, operation.id);
    const running = await until('progress in the record', async () => {
      const o = (await store.getOperation(operation.id))?.value;
      return o && o.progress > 0 && o.state === 'running' ? o : undefined;
    });
    assert.ok(running.progress < 100);
    const done = await finished(store, operation.id);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.progress, 100);
    assert.equal(done.attempts, 1);
    assert.deepEqual(done.steps.map((s) => `${s.name}:${s.state}`), ['prepare:done', 'apply:done', 'verify:done', 'finish:done']);
    for (const s of ['prepare', 'apply', 'verify', 'finish']) assert.equal(await exec.count(operation.id, s), 1);
    assert.equal(await store.client.get(store.keys.lock('db1')), undefined);
    assert.equal(await store.client.get(store.keys.queue(operation.id)), undefined);
    assert.equal(await store.client.get(store.keys.claim(operation.id)), undefined);
    await until('idle workers', async () => pool.stats().running === 0 || undefined);
    const events = lines();
    const started = events.find((l) => l.msg === 'operation_workers_started');
    assert.equal(started?.count, 3);
    assert.ok(events.some((l) => l.msg === 'operation_claimed' && l.operation_id === operation.id));
    assert.equal(events.filter((l) => l.msg === 'operation_step_done' && l.operation_id === operation.id).length, 4);
    assert.ok(events.some((l) => l.msg === 'operation_succeeded' && l.operation_id === operation.id));
    // The database is free again.
    await svc.submit({ databaseId: 'db1', tenant: 't', type: 'scale' });
  } finally { await pool.stop(); }
});

test('WorkerPool: unavailable retries the step; another error fails the operation and frees the lock; ops run in parallel', async () => {
  const store = fresh();
  const svc = new OperationService({ store });
  const exec = new CountingExecutor(store);
  const { log, lines } = memoryLogger();
  const pool = new WorkerPool({ store, executor: exec, workers: 3, leaseTtlSeconds: 5, scanIntervalMs: 500, retryBaseMs: 20, log });
  await pool.start();
  try {
    const flaky = await svc.submit({ databaseId: 'a', tenant: 't', type: 'create', params: { steps: ['one', 'two'], unavailableTimes: 2, stepMs: 200 } });
    const bad = await svc.submit({ databaseId: 'b', tenant: 't', type: 'create', params: { steps: ['one', 'two', 'three'], failStep: 'two', failCode: 'invalid_argument', stepMs: 200 } });
    await until('two ops running at once', async () => pool.stats().running === 2 || undefined);
    const f = await finished(store, flaky.operation.id);
    assert.equal(f.state, 'succeeded');
    assert.equal(await exec.count(f.id, 'one'), 3, 'two unavailable tries, then success');
    assert.equal(await exec.count(f.id, 'two'), 3);
    const b = await finished(store, bad.operation.id);
    assert.equal(b.state, 'failed');
    assert.equal(b.error?.code, 'invalid_argument');
    assert.match(b.error?.message ?? '', /two failed on purpose/);
    assert.deepEqual(b.steps.map((s) => s.state), ['done', 'failed', 'pending']);
    assert.equal(b.progress, 33);
    assert.equal(await exec.count(b.id, 'three'), 0);
    assert.equal(await store.client.get(store.keys.lock('b')), undefined, 'a failed operation frees its database');
    assert.ok(lines().some((l) => l.msg === 'operation_failed' && l.operation_id === b.id));
  } finally { await pool.stop(); }
});

test('WorkerPool: a worker whose claim is taken away cannot write; the operation is resumed and succeeds once', async () => {
  const store = fresh();
  const svc = new OperationService({ store });
  const exec = new CountingExecutor(store);
  const pool = new WorkerPool({ store, executor: exec, workers: 1, leaseTtlSeconds: 5, scanIntervalMs: 300, instanceId: 'victim' });
  await pool.start();
  try {
    const { operation } = await svc.submit({ databaseId: 'db', tenant: 't', type: 'create', params: { steps: ['a', 'b', 'c'], slowStep: 'b', slowMs: 1500 } });
    await until('step b running', async () => (await exec.count(operation.id, 'b')) === 1 || undefined);
    // Steal the claim: put another worker's id on it (as if our lease had lapsed and someone else claimed).
    await store.client.put(store.keys.claim(operation.id), 'thief');
    await sleep(200);
    const before = await store.getOperation(operation.id);
    await sleep(2000);
    const after = await store.getOperation(operation.id);
    assert.equal(after?.modRevision, before?.modRevision, 'the worker that lost its claim wrote nothing');
    // The thief "dies": its claim goes; the pool reclaims and resumes from step b.
    await store.remove(store.keys.claim(operation.id));
    const done = await finished(store, operation.id);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.attempts, 2);
    assert.equal(await exec.count(operation.id, 'a'), 1);
    assert.equal(await exec.count(operation.id, 'b'), 2);
    assert.equal(await exec.count(operation.id, 'c'), 1);
  } finally { await pool.stop(); }
});

test('WorkerPool: its lease revoked mid-step → the step is aborted, a new lease is granted, the operation is reclaimed and succeeds', async () => {
  const store = fresh();
  const svc = new OperationService({ store });
  const exec = new CountingExecutor(store);
  const { log, lines } = memoryLogger();
  const pool = new WorkerPool({ store, executor: exec, workers: 2, leaseTtlSeconds: 3, scanIntervalMs: 300, instanceId: 'relapse', log });
  await pool.start();
  try {
    const { operation } = await svc.submit({ databaseId: 'db', tenant: 't', type: 'create', params: { steps: ['a', 'b'], slowStep: 'a', slowMs: 3000 } });
    await until('step a running', async () => (await exec.count(operation.id, 'a')) === 1 || undefined);
    const first = pool.leaseId();
    await store.client.leaseRevoke(first!);
    const done = await finished(store, operation.id);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.attempts, 2);
    assert.equal(await exec.count(operation.id, 'a'), 2);
    assert.equal(await exec.count(operation.id, 'b'), 1);
    assert.notEqual(pool.leaseId(), first);
    assert.ok(lines().some((l) => l.msg === 'operation_claim_lost' || l.msg === 'operation_lease_lost'));
  } finally { await pool.stop(); }
});
