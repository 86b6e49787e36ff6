/**
 * Issue 19: what unmodified etcd clients showed against a 3-member ConureDB, each finding through
 * the client that found it (etcdctl 3.4, a raw @grpc/grpc-js client over the proto files, curl's
 * view of the gateway and /metrics). One cluster is shared by the file's tests.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { TestCluster, type TestMember } from '../support/cluster.js';

const run = promisify(execFile);
const haveEtcdctl = (() => { try { execFileSync('etcdctl', ['version']); return true; } catch { return false; } })();
const skip = !haveEtcdctl && !process.env.CI ? 'etcdctl is not installed (make setup installs it)' : false;

async function etcdctl(endpoints: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('etcdctl', [`--endpoints=${endpoints}`, '--dial-timeout=5s', '--command-timeout=10s', ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
  return stdout;
}

const url = (m: TestMember) => `http://127.0.0.1:${m.clientPort}`;

describe('etcd compatibility (issue 19) on a 3-member cluster', { skip, timeout: 240_000 }, () => {
  const c = new TestCluster();
  let members: TestMember[] = [];

  before(async () => {
    assert.ok(haveEtcdctl, 'etcdctl must be installed in CI (scripts/setup.sh)');
    const boot = await c.add({ id: 'c0', bootstrap: true });
    const v1 = await c.add({ id: 'c1' });
    const v2 = await c.add({ id: 'c2' });
    v1.spec.join = [boot.url]; v2.spec.join = [boot.url]; boot.spec.join = [v1.url, v2.url];
    await boot.start(); await v1.start(); await v2.start();
    await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
    for (const m of c.members) await m.waitReady();
    members = c.members;
  });

  after(async () => { await c.stopAll(); });

  it('finding 2: etcdctl with --endpoints=http://host:port (endpoint status, defrag, hashkv, move-leader)', async () => {
    const leader = await c.leader();
    const follower = members.find((m) => m !== leader)!;
    assert.match(await etcdctl(url(follower), 'endpoint', 'status'), new RegExp(`^${url(follower)}, [0-9a-f]{16}, 3\\.4\\.0, `));
    assert.match(await etcdctl(url(follower), 'defrag'), /Finished defragmenting etcd member/);
    assert.match(await etcdctl(url(follower), 'endpoint', 'hashkv'), new RegExp(`^${url(follower)}, \\d+`));
    assert.equal(await etcdctl(url(follower), 'put', 'k', 'v'), 'OK\n');
    // move-leader goes to the leader's endpoint; the target is the follower's member id.
    const target = /"member_id":(\d+)/.exec(await etcdctl(url(follower), 'endpoint', 'status', '-w', 'json'))![1]!; // a uint64: not through JSON.parse
    const all = members.map(url).join(',');
    assert.match(await etcdctl(all, 'move-leader', BigInt(target).toString(16)), /Leadership transferred from [0-9a-f]+ to [0-9a-f]+/);
    assert.equal(await c.leader(), follower);
  });

  it('finding 3: member list shows every member\'s client URL; endpoint status --cluster reaches all three', async () => {
    const one = members[0]!;
    const list = (await etcdctl(url(one), 'member', 'list')).trim().split('\n');
    assert.equal(list.length, 3);
    for (const m of members) {
      const row = list.find((l) => l.includes(`, ${m.spec.id}, `));
      assert.ok(row, `member ${m.spec.id} listed`);
      assert.ok(row.endsWith(`, ${url(m)}, false`), `client URL of ${m.spec.id}: ${row}`);
    }
    const status = (await etcdctl(url(one), 'endpoint', 'status', '--cluster')).trim().split('\n');
    assert.deepEqual(status.map((l) => l.split(', ')[0]).sort(), members.map(url).sort());
  });
});
