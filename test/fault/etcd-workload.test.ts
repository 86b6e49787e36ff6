/**
 * The etcd-API workloads (etcd-register, etcd-set, lease) against a real 3-member ConureDB:
 * each runs for a few seconds and its history must come out valid under the existing register
 * and set checkers and the lease checker; the lease run kills the leader midway (watch streams
 * break and are re-created) and restarts it. A doctored copy of the lease history must be
 * rejected, so the check is not vacuous.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster } from '../support/cluster.js';
import { HistoryRecorder } from './history-recorder.js';
import { writeFileSync } from 'node:fs';
import { pairOperations, serializeHistory, type HistoryEvent } from './checker/history.js';
import { checkRegister, lostRegisterWrites } from './checker/register.js';
import { checkSet } from './checker/set.js';
import { checkLease } from './checker/lease.js';
import { workloadByName, type Workload, type WorkloadOptions } from './workload/workload.js';
import { classifyGrpcError, EtcdChannels } from './workload/etcd-client.js';
import { status } from '@grpc/grpc-js';

function seeded(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let x = Math.imul(t ^ (t >>> 15), t | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const counts = (events: HistoryEvent[], f?: string) => {
  const c = { ok: 0, fail: 0, info: 0 };
  for (const o of pairOperations(events)) if (!f || o.f === f) c[o.status]++;
  return c;
};

describe('etcd-API fault workloads on a 3-member cluster', { timeout: 120_000 }, () => {
  let c: TestCluster;
  before(async () => {
    c = new TestCluster();
    const m0 = await c.add({ id: 'k0', bootstrap: true });
    const m1 = await c.add({ id: 'k1' });
    const m2 = await c.add({ id: 'k2' });
    m1.spec.join = [m0.url]; m2.spec.join = [m0.url]; m0.spec.join = [m1.url, m2.url];
    await m0.start(); await m1.start(); await m2.start();
    await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
    for (const m of c.members) await m.waitReady();
  });
  after(async () => { await c?.stopAll(); });

  const opts = (seconds: number, seed: number, prefix: string): WorkloadOptions => ({
    workers: 4, deadline: Date.now() + seconds * 1000, opsMax: 100_000, requestTimeoutMs: 3000, thinkMs: 5,
    endpoints: () => c.members.map((m) => m.url),
    // Every member, down or not: a stopped member's calls must classify as fail, not hang.
    etcdEndpoints: () => c.members.map((m) => `127.0.0.1:${m.clientPort}`),
    random: seeded(seed), keyPrefix: prefix,
  });
  const runWorkload = async (w: Workload, o: WorkloadOptions, during?: () => Promise<void>) => {
    const recorder = new HistoryRecorder();
    await Promise.all([w.run(recorder, o), during?.()]);
    await w.final(recorder, o);
    return recorder.events;
  };

  it('etcd-register: linearizable reads, writes and Txn compare-and-set; no lost write', async () => {
    const events = await runWorkload(workloadByName('etcd-register'), opts(4, 1, 'er'));
    const r = checkRegister(events);
    assert.equal(r.verdict, 'linearizable', JSON.stringify(r.keys.filter((k) => k.verdict !== 'linearizable')).slice(0, 2000));
    assert.deepEqual(lostRegisterWrites(events), []);
    const cas = counts(events, 'cas');
    assert.ok(cas.ok > 10 && cas.fail > 10, `both cas outcomes occur: ${JSON.stringify(cas)}`);
    assert.ok(events.some((e) => e.f === 'cas' && e.type === 'fail' && e.error === 'compare failed'));
    assert.ok(counts(events, 'read').ok > 50 && counts(events, 'write').ok > 50, JSON.stringify(counts(events)));
  });

  it('etcd-set: prefix reads during the run are never stale; the final prefix read loses nothing', async () => {
    const events = await runWorkload(workloadByName('etcd-set'), opts(4, 2, 'es'));
    const s = checkSet(events);
    assert.equal(s.valid, true, JSON.stringify(s).slice(0, 2000));
    assert.ok(s.acknowledged > 100, `acknowledged ${s.acknowledged}`);
    assert.equal(s.finalReadSize, s.acknowledged + s.recoveredCount);
    assert.ok(counts(events, 'read').ok >= 3, `non-final reads: ${JSON.stringify(counts(events, 'read'))}`);
  });

  let leaseHistory: HistoryEvent[] = [];
  it('lease: across a leader kill and restart, no early or out-of-order expiry, every lapsed lease expires', async (t) => {
    const o = opts(8, 3, 'ls');
    const events = await runWorkload(workloadByName('lease'), o, async () => {
      await new Promise((r) => setTimeout(r, 3000));
      const leader = await c.leader();
      await leader.kill9();
      await new Promise((r) => setTimeout(r, 1500));
      await leader.start();
    });
    leaseHistory = events;
    const r = checkLease(events);
    t.diagnostic(`lease: ${JSON.stringify({ leases: r.leases, keys: r.keys, watchers: r.watchers, closestExpiryMarginMs: r.closestExpiryMarginMs, ops: counts(events) })}`);
    if (process.env.LEASE_HISTORY_OUT) writeFileSync(process.env.LEASE_HISTORY_OUT, serializeHistory(events));
    assert.equal(r.valid, true, JSON.stringify({ ...r, violations: r.violations.slice(0, 10) }).slice(0, 3000));
    assert.ok(r.leases.granted >= 6 && r.leases.kept >= 2, JSON.stringify(r.leases));
    // Every lease with an acknowledged key was seen expiring (the checker also demands it per watcher).
    const withKeys = new Set(pairOperations(events).filter((o) => o.f === 'put' && o.status === 'ok').map((o) => (o.input as { lease: string }).lease));
    assert.ok(withKeys.size >= 5 && r.leases.expiriesObserved >= withKeys.size, `${withKeys.size} leases with keys, ${JSON.stringify(r.leases)}`);
    assert.equal(r.watchers.count, 2);
    assert.ok(r.watchers.recreated >= 1, `a watch on the killed leader was re-created: ${JSON.stringify(r.watchers)}`);
    assert.ok(counts(events, 'keepalive').ok > 5, JSON.stringify(counts(events, 'keepalive')));
  });

  it('lease: the checker rejects the same history doctored (an early expiry, a reordered or missing expiry)', () => {
    assert.ok(leaseHistory.length > 0, 'needs the lease run above');
    assert.equal(checkLease(leaseHistory).valid, true);
    const ops = pairOperations(leaseHistory);
    const deleteOps = ops.filter((o) => o.f === 'watch-event' && o.process === 'watch-0' && JSON.stringify(o.output).includes('"DELETE"'));
    assert.ok(deleteOps.length >= 2);
    // 1. A keep-alive acknowledged (with the lease's TTL) one second before an observed expiry.
    const E = deleteOps[0]!.invokeTime;
    const key = (deleteOps[0]!.output as { events: { key: string }[] }).events[0]!.key;
    const lease = (ops.find((o) => o.f === 'put' && o.key === key)!.input as { lease: string }).lease;
    const ttl = (ops.find((o) => o.f === 'grant' && (o.input as { lease: string }).lease === lease)!.output as { ttl: number }).ttl;
    const fake: HistoryEvent[] = [
      { process: 'doctored', type: 'invoke', f: 'keepalive', value: { lease }, time: E - 1e9 },
      { process: 'doctored', type: 'ok', f: 'keepalive', value: { lease, ttl }, time: E - 0.9e9 },
    ];
    const early = [...leaseHistory, ...fake].sort((a, b) => a.time - b.time);
    const er = checkLease(early);
    assert.equal(er.valid, false);
    assert.ok(er.violations.some((v) => v.kind === 'early-expiry' && v.lease === lease), JSON.stringify(er.violations.slice(0, 5)));
    // 2. Swap the events of two expiry responses of one watcher.
    const [a, b] = [deleteOps[0]!, deleteOps[1]!];
    const swapped = leaseHistory.map((e) => (e === a.events[1] ? { ...e, value: b.events[1]!.value } : e === b.events[1] ? { ...e, value: a.events[1]!.value } : e));
    const sr = checkLease(swapped);
    assert.equal(sr.valid, false);
    assert.ok(sr.violations.some((v) => v.kind === 'revision-order'), JSON.stringify(sr.violations.slice(0, 5)));
    assert.ok(sr.violations.some((v) => v.kind === 'watchers-disagree'), JSON.stringify(sr.violations.slice(0, 5)));
    // 3. Drop one expiry response from one watcher.
    const dropped = leaseHistory.filter((e) => !a.events.includes(e));
    const dr = checkLease(dropped);
    assert.equal(dr.valid, false);
    assert.ok(dr.violations.some((v) => v.kind === 'expiry-not-observed'), JSON.stringify(dr.violations.slice(0, 5)));
  });

  it('gRPC outcomes: a stopped member is fail (nothing sent), a rejected request fail, a deadline info', async () => {
    const ch = new EtcdChannels();
    try {
      const dead = c.members.find((m) => !m.running);
      const closed = `127.0.0.1:${dead ? dead.clientPort : 1}`;
      const r = await ch.put(closed, 'x', 'y', 2000);
      assert.equal(r.type, 'fail');
      assert.equal(r.type === 'fail' && r.error, 'no connection');
      const live = `127.0.0.1:${c.members.find((m) => m.running)!.clientPort}`;
      const bad = await ch.put(live, '', 'y', 2000);
      assert.equal(bad.type, 'fail');
      const missingLease = await ch.put(live, 'x', 'y', 2000, '123456789');
      assert.equal(missingLease.type, 'fail', JSON.stringify(missingLease));
      assert.equal(classifyGrpcError({ code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' }).type, 'info');
      assert.equal(classifyGrpcError({ code: status.UNAVAILABLE, details: 'read ECONNRESET' }).type, 'info');
      assert.equal(classifyGrpcError({ code: status.UNAVAILABLE, details: 'etcdserver: not leader' }).type, 'info');
      assert.equal((await ch.cas(live, 'cas-x', 'nope', 'v', 2000)).type, 'fail');
    } finally { ch.close(); }
  });
});
