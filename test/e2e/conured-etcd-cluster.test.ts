/**
 * The etcd v3 API of a replicated ConureDB, driven by the real etcdctl (Debian's etcd-client)
 * and the JSON gateway: one keyspace with the seed API, writes and lease keep-alives through a
 * follower, and a watcher that sees every acknowledged write exactly once across a leader kill.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { TestCluster, type TestMember } from '../support/cluster.js';

const run = promisify(execFile);
const haveEtcdctl = (() => { try { execFileSync('etcdctl', ['version']); return true; } catch { return false; } })();

async function etcdctl(m: TestMember, ...args: string[]): Promise<string> {
  const { stdout } = await run('etcdctl', [`--endpoints=127.0.0.1:${m.clientPort}`, '--command-timeout=10s', ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
  return stdout;
}

describe('etcd API on a replicated cluster', { timeout: 180_000 }, () => {
  it('is one keyspace across etcdctl, the gateway and /kv, through leader and follower', { skip: !haveEtcdctl && !process.env.CI && 'etcdctl is not installed (make setup installs it)' }, async () => {
    assert.ok(haveEtcdctl, 'etcdctl must be installed in CI (scripts/setup.sh)');
    const c = new TestCluster();
    try {
      const boot = await c.add({ id: 'e0', bootstrap: true });
      const v1 = await c.add({ id: 'e1' });
      const arb = await c.add({ id: 'ea', role: 'arbiter' });
      v1.spec.join = [boot.url]; arb.spec.join = [boot.url, v1.url];
      await boot.start(); await v1.start(); await arb.start();
      await c.waitConfig((s) => s.length === 3 && s.filter((x) => x.suffrage === 'voter').length === 2, '2 voters + arbiter');
      await v1.waitReady();
      const leader = await c.leader();
      const follower = leader === boot ? v1 : boot;

      // seed API → etcdctl on the follower (linearizable by default)
      assert.equal(await (await fetch(`${leader.url}/kv?key=shared&value=from-curl`, { method: 'PUT' })).text(), 'OK');
      assert.equal(await etcdctl(follower, 'get', 'shared', '--print-value-only'), 'from-curl\n');
      // etcdctl through the follower → seed API on the leader
      assert.equal(await etcdctl(follower, 'put', 'via-follower', 'yes'), 'OK\n');
      assert.equal(await (await fetch(`${leader.url}/kv?key=via-follower`)).text(), 'yes');
      // JSON gateway: base64 keys and values
      const range = await (await fetch(`${follower.url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('shared').toString('base64') }) })).json() as { kvs: Array<{ value: string }> };
      assert.equal(Buffer.from(range.kvs[0]!.value, 'base64').toString(), 'from-curl');
      const bad = await fetch(`${follower.url}/v3/kv/range`, { method: 'POST', body: '{not json' });
      assert.equal(bad.status, 400);

      // A lease granted and kept alive through the follower lives on the leader's lessor.
      const lease = /lease ([0-9a-f]+) granted/.exec(await etcdctl(follower, 'lease', 'grant', '30'))![1]!;
      await etcdctl(follower, 'put', '--lease', lease, 'leased', 'v');
      const ka = await etcdctl(follower, 'lease', 'keep-alive', '--once', lease);
      assert.match(ka, new RegExp(`lease ${lease} keepalived with TTL\\((2\\d|30)\\)`));
      assert.match(await etcdctl(leader, 'lease', 'timetolive', lease, '--keys'), /attached keys\(\[leased\]\)/);
      const members = await etcdctl(follower, 'member', 'list');
      assert.equal(members.trim().split('\n').length, 3);

      // Hostile int64s (docs/security.md, finding 8) through both members: etcd's errors, no change.
      const fails = async (m: TestMember, ...args: string[]): Promise<string> => {
        const r = await etcdctl(m, ...args).then(() => undefined, (e: { stderr?: string }) => e.stderr ?? String(e));
        assert.ok(r !== undefined, `etcdctl ${args.join(' ')} should fail`);
        return r;
      };
      const revBefore = /"revision":(\d+)/.exec(await etcdctl(leader, 'get', 'shared', '-w', 'json'))![1]!;
      for (const m of [follower, leader]) {
        assert.match(await fails(m, 'lease', 'grant', '9223372036854775807'), /etcdserver: too large lease TTL/);
        assert.match(await fails(m, 'get', 'shared', '--rev=9007199254740993'), /etcdserver: mvcc: required revision is a future revision/);
        assert.match(await fails(m, 'compaction', '9007199254740993'), /etcdserver: mvcc: required revision is a future revision/);
      }
      assert.match(await etcdctl(follower, 'lease', 'timetolive', '7fffffffffffffff'), /lease 7fffffffffffffff already expired/);
      assert.equal(/"revision":(\d+)/.exec(await etcdctl(follower, 'get', 'shared', '-w', 'json'))![1], revBefore, 'nothing was written');
      const written = /"mod_revision":(\d+)/.exec(await etcdctl(leader, 'get', 'shared', '-w', 'json'))![1]!;
      assert.equal(await etcdctl(follower, 'get', 'via-follower', '--print-value-only', `--rev=${Number(written)}`), '', 'a read at the first write\'s revision still works: nothing was compacted');
    } finally { await c.stopAll(); }
  });

  it('a watcher resuming from a revision sees every acknowledged write once, across a leader kill', { skip: !haveEtcdctl && !process.env.CI && 'etcdctl is not installed' }, async () => {
    const c = new TestCluster();
    try {
      const boot = await c.add({ id: 'w0', bootstrap: true });
      const v1 = await c.add({ id: 'w1', join: [] });
      const v2 = await c.add({ id: 'w2', join: [] });
      v1.spec.join = [boot.url]; v2.spec.join = [boot.url];
      boot.spec.join = [v1.url, v2.url];
      await boot.start(); await v1.start(); await v2.start();
      await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
      const acked: string[] = [];
      const put = async (k: string) => {
        for (const m of c.members.filter((x) => x.running)) {
          try {
            const res = await fetch(`${m.url}/kv?key=${k}&value=${k}`, { method: 'PUT', signal: AbortSignal.timeout(5000) });
            if (res.ok) { acked.push(k); return; }
          } catch { /* try the next member */ }
        }
      };
      for (let i = 0; i < 30; i++) await put(`ev-${i}`);
      const old = await c.leader();
      await old.kill9();
      await c.leader(15_000);
      for (let i = 30; i < 60; i++) await put(`ev-${i}`);
      const survivor = c.members.find((m) => m.running)!;
      // Resume from revision 1: history from the store, then live; stop once all are seen.
      const out = await run('timeout', ['10', 'etcdctl', `--endpoints=127.0.0.1:${survivor.clientPort}`, 'watch', '--prefix', 'ev-', '--rev=1'], { env: { ...process.env, ETCDCTL_API: '3' } }).then((r) => r.stdout, (e: { stdout: string }) => e.stdout);
      const seen = out.split('\n').filter((_line, i, all) => all[i - 1] === 'PUT').filter(Boolean);
      const counts = new Map<string, number>();
      for (const k of seen) counts.set(k, (counts.get(k) ?? 0) + 1);
      for (const k of acked) assert.equal(counts.get(k), 1, `${k} seen ${counts.get(k) ?? 0} times`);
      assert.ok(acked.length >= 55, `most writes acknowledged (${acked.length})`);
    } finally { await c.stopAll(); }
  });

  it('leases survive a leader kill without expiring early, then expire once, seen by a watcher', { skip: !haveEtcdctl && !process.env.CI && 'etcdctl is not installed' }, async () => {
    const c = new TestCluster();
    try {
      const boot = await c.add({ id: 'l0', bootstrap: true });
      const v1 = await c.add({ id: 'l1' });
      const v2 = await c.add({ id: 'l2' });
      v1.spec.join = [boot.url]; v2.spec.join = [boot.url]; boot.spec.join = [v1.url, v2.url];
      await boot.start(); await v1.start(); await v2.start();
      await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
      for (const m of c.members) await m.waitReady();
      const leader = await c.leader();
      const survivors = c.members.filter((m) => m !== leader);
      const kept = /lease ([0-9a-f]+) granted/.exec(await etcdctl(survivors[0]!, 'lease', 'grant', '6'))![1]!;
      const lapsing = /lease ([0-9a-f]+) granted/.exec(await etcdctl(survivors[0]!, 'lease', 'grant', '6'))![1]!;
      await etcdctl(survivors[0]!, 'put', '--lease', kept, 'pres/kept', 'x');
      await etcdctl(survivors[0]!, 'put', '--lease', lapsing, 'pres/lapsing', 'x');
      const startRev = JSON.parse(await etcdctl(survivors[0]!, 'get', 'pres/kept', '-w', 'json')).header.revision as number;
      await leader.kill9();
      await c.leader(15_000);
      // Keep one lease alive through the failover (every 2 s), let the other lapse.
      const deadline = Date.now() + 12_000;
      while (Date.now() < deadline) {
        await etcdctl(survivors[1]!, 'lease', 'keep-alive', '--once', kept).catch(() => undefined);
        const kv = await etcdctl(survivors[1]!, 'get', 'pres/kept', '--print-value-only');
        assert.equal(kv, 'x\n', 'a lease that is kept alive never expires, even across the leader kill');
        await new Promise((r) => setTimeout(r, 2000));
      }
      assert.equal(await etcdctl(survivors[1]!, 'get', 'pres/lapsing'), '', 'the lapsed lease expired after the failover');
      // Renew once more so the kept lease cannot lapse while the history is read (TTL 6 s > 3 s).
      await etcdctl(survivors[1]!, 'lease', 'keep-alive', '--once', kept);
      const out = await run('timeout', ['3', 'etcdctl', `--endpoints=127.0.0.1:${survivors[1]!.clientPort}`, 'watch', '--prefix', 'pres/', `--rev=${startRev + 1}`], { env: { ...process.env, ETCDCTL_API: '3' } }).then((r) => r.stdout, (e: { stdout: string }) => e.stdout);
      const deletes = out.split('\n').filter((_line, i, all) => all[i - 1] === 'DELETE');
      assert.deepEqual(deletes, ['pres/lapsing'], 'exactly one expiry event, for the lapsed lease only');
    } finally { await c.stopAll(); }
  });
});
