/**
 * LeaderElection in this process against a real conured: one leader of two, fencing refused by
 * the store once the key is gone (before the leader notices), resignation hands over.
 * Multi-process kill/pause tests: test/integration/leader-election.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdClient, op } from '../../client/index.js';
import { startConuredEndpoint, type EtcdEndpoint } from '../../../test/support/etcd-process.js';
import { memoryLogger } from '../../../test/support/counting-executor.js';
import { FencedError, LeaderElection } from './index.js';

let server: EtcdEndpoint;
let client: EtcdClient;
let n = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  server = await startConuredEndpoint();
  client = new EtcdClient({ endpoints: [server.endpoint] });
});
after(async () => { client?.close(); await server?.close(); });

test('two candidates: exactly one leader; fence refused in the store after the key is lost; fencedTxn steps down', async () => {
  const key = `/el${++n}/leader`;
  const la = memoryLogger();
  const a = new LeaderElection({ client, key, instanceId: 'a', ttlSeconds: 5, checkIntervalMs: 60_000, log: la.log });
  const b = new LeaderElection({ client, key, instanceId: 'b', ttlSeconds: 5, checkIntervalMs: 500 });
  a.start();
  await a.waitForLeadership(10_000);
  b.start();
  try {
    await sleep(1000);
    assert.equal(a.isLeader(), true);
    assert.equal(b.isLeader(), false);
    assert.equal(await a.currentLeader(), 'a');
    assert.throws(() => b.fence(), FencedError);
    const acquired = la.lines().find((l) => l.msg === 'leadership_acquired');
    assert.equal(acquired?.instance_id, 'a');

    const ok = await a.fencedTxn([op.put(`/el${n}/data`, '1')]);
    assert.equal(ok.succeeded, true);
    // A caller compare that fails is not a fencing failure.
    const cmpFail = await a.fencedTxn([op.put(`/el${n}/data`, '2')], { compares: [{ target: 'value', key: `/el${n}/data`, op: '==', value: 'zzz' }] });
    assert.equal(cmpFail.succeeded, false);
    assert.equal(a.isLeader(), true);

    // The key goes behind a's back (as when its lease lapsed): the captured fence is refused by
    // the store even before a notices.
    const fence = a.fence();
    const lost = new Promise<string>((r) => a.once('lost', r));
    await client.delete(key);
    const raw = await client.runTxn({ compare: fence, success: [op.put(`/el${n}/data`, 'stale')] });
    assert.equal(raw.succeeded, false, 'the store refuses a write fenced on the old term');
    await assert.rejects(a.fencedTxn([op.put(`/el${n}/data`, 'stale')]), (e: unknown) => e instanceof FencedError && e.code === 'permission_denied');
    assert.match(await lost, /changed|refused/);
    assert.equal((await client.get(`/el${n}/data`))?.value.toString(), '1');
    assert.ok(la.lines().some((l) => l.msg === 'leadership_lost' && l.instance_id === 'a'));
    // The standby takes over (a's lease was revoked when it stepped down, so no one else holds the key).
    await b.waitForLeadership(10_000);
    assert.equal(await b.currentLeader(), 'b');
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('a leader that stops resigns at once and the standby takes over; the term signal aborts', async () => {
  const key = `/el${++n}/leader`;
  const a = new LeaderElection({ client, key, instanceId: 'a', ttlSeconds: 30, checkIntervalMs: 5000 });
  const b = new LeaderElection({ client, key, instanceId: 'b', ttlSeconds: 30, checkIntervalMs: 5000 });
  a.start();
  const signal = await a.waitForLeadership(10_000);
  b.start();
  try {
    await sleep(300);
    assert.equal(b.isLeader(), false);
    const t0 = Date.now();
    await a.stop();
    assert.equal(signal.aborted, true);
    await b.waitForLeadership(10_000);
    assert.ok(Date.now() - t0 < 25_000, 'took over by the watch, not by the 30 s TTL');
  } finally {
    await a.stop();
    await b.stop();
  }
});
