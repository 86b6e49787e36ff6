/**
 * A worker process killed with SIGKILL mid-operation loses nothing: its lease lapses, its claim
 * vanishes with it, and a second pool resumes the operation from the last finished step. Each
 * step counts its runs in the store, so the test sees which effects happened how often; the
 * operation's `succeeded` state is written exactly once (counted on a watch of its key).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { EtcdClient, type WatchEvent } from '../../src/client/etcd-client.js';
import { OperationService, WorkerPool } from '../../src/platform/operations/index.js';
import { PlatformStore } from '../../src/platform/store/index.js';
import type { OperationRecord } from '../../src/platform/types.js';
import { CountingExecutor } from '../support/counting-executor.js';
import { DIST_ROOT } from '../support/conured-process.js';
import { startConuredEndpoint, type EtcdEndpoint } from '../support/etcd-process.js';
import { sleep, until } from '../support/until.js';

const CHILD = join(DIST_ROOT, 'test', 'support', 'worker-pool-child.js');


let server: EtcdEndpoint;
let client: EtcdClient;
const children: ChildProcess[] = [];

before(async () => {
  server = await startConuredEndpoint();
  client = new EtcdClient({ endpoints: [server.endpoint] });
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  client?.close();
  await server?.close();
});

function startChild(prefix: string, instanceId: string): Promise<{ proc: ChildProcess; stderr: () => string }> {
  const proc = spawn(process.execPath, ['--enable-source-maps', CHILD], {
    env: { ...process.env, STORE_ENDPOINT: server.endpoint, STORE_PREFIX: prefix, LEASE_TTL_S: '2', WORKERS: '3', INSTANCE_ID: instanceId, CONURE_LOG_LEVEL: 'info', NODE_TEST_CONTEXT: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker child did not start:\n${err}`)), 15_000);
    proc.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) { clearTimeout(timer); resolve({ proc, stderr: () => err }); } });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`worker child exited with ${code}:\n${err}`)); });
  });
}

test('SIGKILL mid-operation: a second pool resumes from the last finished step; the operation succeeds exactly once', async () => {
  const prefix = '/resume/';
  const store = new PlatformStore(client, { prefix });
  const svc = new OperationService({ store });
  const exec = new CountingExecutor(store);
  const child = await startChild(prefix, 'doomed');
  assert.match(child.stderr(), /"count":3[^\n]*operation_workers_started|operation_workers_started[^\n]*"count":3/);

  const { operation } = await svc.submit({ databaseId: 'db1', tenant: 't', type: 'create', params: { slowStep: 'apply', slowMs: 60_000, stepMs: 50 } });
  const finals: WatchEvent[] = [];
  const w = client.watch(store.keys.operation(operation.id), {}, (evs) => {
    for (const e of evs) if (e.type === 'put' && (JSON.parse(e.kv.value.toString()) as OperationRecord).state === 'succeeded') finals.push(e);
  });
  let pool: WorkerPool | undefined;
  try {
    await w.ready;
    await until('step apply running in the child', async () => (await exec.count(operation.id, 'apply')) === 1 || undefined);
    const mid = (await store.getOperation(operation.id))!.value;
    assert.equal(mid.worker?.startsWith('doomed/'), true);
    assert.deepEqual(mid.steps.map((s) => s.state), ['done', 'running', 'pending', 'pending']);
    child.proc.kill('SIGKILL');
    await new Promise((r) => child.proc.once('exit', r));

    pool = new WorkerPool({ store, executor: new CountingExecutor(store, { honourSlow: false }), workers: 3, leaseTtlSeconds: 5, scanIntervalMs: 500, instanceId: 'rescuer' });
    await pool.start();
    // The child's lease lapses within its TTL; then the rescuer claims and resumes.
    const done = await until('the operation to succeed', async () => {
      const o = (await store.getOperation(operation.id))?.value;
      return o?.state === 'succeeded' ? o : undefined;
    });
    assert.equal(done.attempts, 2);
    assert.equal(done.worker?.startsWith('rescuer/'), true);
    assert.equal(done.progress, 100);
    assert.equal(await exec.count(operation.id, 'prepare'), 1, 'the finished step was not run again');
    assert.equal(await exec.count(operation.id, 'apply'), 2, 'the interrupted step ran again');
    assert.equal(await exec.count(operation.id, 'verify'), 1);
    assert.equal(await exec.count(operation.id, 'finish'), 1);
    await sleep(300);
    assert.equal(finals.length, 1, 'succeeded was written exactly once');
    assert.equal(await client.get(store.keys.lock('db1')), undefined);
    assert.equal(await client.get(store.keys.queue(operation.id)), undefined);
    assert.equal(await client.get(store.keys.claim(operation.id)), undefined);
  } finally {
    w.close();
    await pool?.stop();
  }
});
