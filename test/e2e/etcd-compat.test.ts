/**
 * Issue 19: what unmodified etcd clients showed against a 3-member ConureDB, each finding through
 * the client that found it (etcdctl 3.4, a raw @grpc/grpc-js client over the proto files, curl's
 * view of the gateway and /metrics). One cluster is shared by the file's tests.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { credentials, type ClientDuplexStream, type ServiceClientConstructor } from '@grpc/grpc-js';
import { etcdProto } from '../../src/api/etcd/proto/index.js';
import { TestCluster, type TestMember } from '../support/cluster.js';
import { HAVE_ETCD, startEtcd } from '../support/etcd-process.js';
import { buildGoModule, goAvailable } from '../support/go-module.js';
import { sleep, until } from '../support/until.js';

const run = promisify(execFile);
const haveEtcdctl = (() => { try { execFileSync('etcdctl', ['version']); return true; } catch { return false; } })();
const skip = !haveEtcdctl && !process.env.CI ? 'etcdctl is not installed (make setup installs it)' : false;

async function etcdctl(endpoints: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('etcdctl', [`--endpoints=${endpoints}`, '--dial-timeout=5s', '--command-timeout=10s', ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
  return stdout;
}

const url = (m: TestMember) => `http://127.0.0.1:${m.clientPort}`;

/**
 * A raw @grpc/grpc-js LeaseKeepAlive stream over the proto files: one request, then the client
 * half-closes. Resolves with the replies and how the stream ended.
 */
function halfClosedKeepAlive(endpoint: string, id: string): Promise<{ replies: Array<{ ID: string; TTL: string }>; ended: string }> {
  const Lease = etcdProto().Lease as ServiceClientConstructor;
  const client = new Lease(endpoint, credentials.createInsecure());
  return new Promise((resolve) => {
    const replies: Array<{ ID: string; TTL: string }> = [];
    const stream = (client as unknown as { LeaseKeepAlive(): ClientDuplexStream<object, { ID: string; TTL: string }> }).LeaseKeepAlive();
    const done = (ended: string) => { client.close(); resolve({ replies, ended }); };
    stream.on('data', (r) => replies.push({ ID: r.ID, TTL: r.TTL }));
    stream.on('status', (st: { code: number }) => done(`status ${st.code}`));
    stream.on('error', () => { /* reported through 'status' */ });
    stream.write({ ID: id });
    stream.end();
  });
}

/**
 * A raw Watch stream: one create request, then the client half-closes; two puts follow (after
 * the half-close). Resolves with what arrived before the client cancels.
 */
function halfClosedWatch(endpoint: string, key: string, put: (kv: string) => Promise<unknown>): Promise<{ created: boolean; events: string[] }> {
  const Watch = etcdProto().Watch as ServiceClientConstructor;
  const client = new Watch(endpoint, credentials.createInsecure());
  const stream = (client as unknown as { Watch(): ClientDuplexStream<object, { created?: boolean; events?: Array<{ kv: { key: Buffer; value: Buffer } }> }> }).Watch();
  const out = { created: false, events: [] as string[] };
  stream.on('error', () => { /* the cancel below */ });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { stream.cancel(); client.close(); resolve(out); }, 10_000);
    stream.on('data', (r) => {
      if (r.created) {
        out.created = true;
        stream.end(); // half-close, then write
        put(`${key}=1`).then(() => put(`${key}=2`)).catch(reject);
      }
      for (const e of r.events ?? []) out.events.push(`${e.kv.key.toString()}=${e.kv.value.toString()}`);
      if (out.events.length >= 2) { clearTimeout(timer); stream.cancel(); client.close(); resolve(out); }
    });
    stream.write({ create_request: { key: Buffer.from(key) } });
  });
}

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
    assert.match(await etcdctl(url(follower), 'endpoint', 'status'), new RegExp(`^${url(follower)}, [0-9a-f]{16}, 3\\.4\\.31, `));
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
    // Asked through every member: the bootstrap member, which never joined, publishes its own URL.
    for (const asked of members) {
      const list = (await etcdctl(url(asked), 'member', 'list')).trim().split('\n');
      assert.equal(list.length, 3);
      for (const m of members) {
        const row = list.find((l) => l.includes(`, ${m.spec.id}, `));
        assert.ok(row, `member ${m.spec.id} listed`);
        assert.ok(row.endsWith(`, ${url(m)}, false`), `client URL of ${m.spec.id}, asked through ${asked.spec.id}: ${row}`);
      }
    }
    const one = members[members.length - 1]!;
    const status = (await etcdctl(url(one), 'endpoint', 'status', '--cluster')).trim().split('\n');
    assert.deepEqual(status.map((l) => l.split(', ')[0]).sort(), members.map(url).sort());
  });

  it('finding 4: Go clientv3 maps every error back to its rpctypes error, exactly as against etcd 3.4', { skip: !(goAvailable() && HAVE_ETCD) && !process.env.CI && 'go or etcd is not installed' }, async () => {
    const probe = buildGoModule('test/e2e/clientv3-errors', 'clientv3-errors');
    const lines = async (endpoints: string) => (await run(probe, [endpoints], { timeout: 60_000 })).stdout.trim().split('\n');
    const conure = await lines(members.map((m) => `127.0.0.1:${m.clientPort}`).join(','));
    const etcd = await startEtcd();
    try {
      assert.deepEqual(conure, await lines(etcd.endpoint));
    } finally { await etcd.close(); }
    assert.equal(conure.length, 10);
    for (const l of conure) assert.equal((JSON.parse(l) as { match: boolean }).match, true, l);
  });

  it('finding 5: with no leader a put is held until one is elected, not refused at once', async () => {
    const leader = await c.leader();
    const kept = members.find((m) => m !== leader)!;
    const paused = members.filter((m) => m !== kept);
    for (const m of paused) m.proc!.kill('SIGSTOP');
    try {
      // The kept member, alone, loses its leader once the election timeout passes.
      await until('the kept member to know no leader', async () => {
        const s = await (await fetch(`${kept.url}/status`)).json() as { leader: string };
        return s.leader === '';
      }, 15_000);
      // It used to fail at once ("proposal dropped: no-leader"); now it waits for a leader.
      const put = etcdctl(url(kept), '--command-timeout=20s', 'put', 'held', 'yes');
      put.catch(() => undefined);
      await sleep(1500);
      for (const m of paused) m.proc!.kill('SIGCONT');
      assert.equal(await put, 'OK\n');
    } finally {
      for (const m of paused) m.proc!.kill('SIGCONT');
    }
    assert.equal(await etcdctl(url(kept), 'get', 'held', '--print-value-only'), 'yes\n');
  });

  it('finding 1: a half-closed LeaseKeepAlive stream gets its reply (with the TTL) before it ends, as from etcd 3.4', async () => {
    const leader = await c.leader();
    const follower = members.find((m) => m !== leader)!;
    const lease = /lease ([0-9a-f]+) granted/.exec(await etcdctl(url(leader), 'lease', 'grant', '60'))![1]!;
    const id = BigInt(`0x${lease}`).toString();
    for (const m of [leader, follower]) { // the follower forwards the keep-alive to the leader
      const r = await halfClosedKeepAlive(`127.0.0.1:${m.clientPort}`, id);
      assert.equal(r.ended, 'status 0', m.spec.id);
      assert.equal(r.replies.length, 1, `${m.spec.id}: one reply before the end`);
      assert.equal(r.replies[0]!.ID, id);
      assert.ok(Number(r.replies[0]!.TTL) > 50, `TTL ${r.replies[0]!.TTL}`);
    }
    if (!HAVE_ETCD) return;
    const etcd = await startEtcd();
    try {
      const etcdLease = /lease ([0-9a-f]+) granted/.exec(await etcdctl(etcd.endpoint, 'lease', 'grant', '60'))![1]!;
      const r = await halfClosedKeepAlive(etcd.endpoint, BigInt(`0x${etcdLease}`).toString());
      assert.equal(r.ended, 'status 0');
      assert.equal(r.replies.length, 1, 'etcd answers too');
    } finally { await etcd.close(); }
  });

  it('member add, update and remove through a follower are forwarded to the leader, as etcd does; its errors keep etcd\'s code and text', async () => {
    const leader = await c.leader();
    const follower = members.find((m) => m !== leader && m.spec.role !== 'arbiter')!;
    const ep = url(follower);
    const added = await etcdctl(ep, 'member', 'add', 'extra', '--peer-urls=http://127.0.0.1:7999', '--learner');
    assert.match(added, /Member\s+[0-9a-f]+ added to cluster\s+[0-9a-f]+/);
    const id = /Member\s+([0-9a-f]+) added/.exec(added)![1]!;
    const listed = await etcdctl(ep, 'member', 'list', '-w', 'json');
    const learner = (JSON.parse(listed) as { members: Array<{ ID: string | number; peerURLs: string[]; isLearner?: boolean }> }).members
      .find((m) => m.peerURLs.includes('http://127.0.0.1:7999'));
    assert.ok(learner?.isLearner, `the follower lists the new learner at once: ${listed}`);
    try {
      assert.match(await etcdctl(ep, 'member', 'update', id, '--peer-urls=http://127.0.0.1:7998'), /updated in cluster/);
      assert.match(await etcdctl(url(leader), 'member', 'list'), /http:\/\/127\.0\.0\.1:7998/);
    } finally {
      assert.match(await etcdctl(ep, 'member', 'remove', id), new RegExp(`Member\\s+${id} removed from cluster`));
    }
    assert.doesNotMatch(await etcdctl(ep, 'member', 'list'), /127\.0\.0\.1:799[89]/);
    // The leader's refusal, through the follower: etcd's NotFound "etcdserver: member not found".
    await assert.rejects(etcdctl(ep, 'member', 'remove', id), (e: { stderr: string }) => /etcdserver: member not found/.test(e.stderr));
  });

  it('a half-closed Watch keeps delivering events until the client cancels, as etcd does', async () => {
    const check = async (endpoint: string, put: (k: string) => Promise<unknown>, who: string) => {
      const r = await halfClosedWatch(endpoint, `hw-${who}`, put);
      assert.deepEqual(r, { created: true, events: [`hw-${who}=1`, `hw-${who}=2`] }, who);
    };
    const m = members[1]!;
    await check(`127.0.0.1:${m.clientPort}`, (k) => etcdctl(url(m), 'put', k.split('=')[0]!, k.split('=')[1]!), 'conuredb');
    if (!HAVE_ETCD) return;
    const etcd = await startEtcd();
    try {
      await check(etcd.endpoint.replace(/^http:\/\//, ''), (k) => etcdctl(etcd.endpoint, 'put', k.split('=')[0]!, k.split('=')[1]!), 'etcd');
    } finally { await etcd.close(); }
  });

  it('finding 10: /metrics has etcd\'s metric names and labels; leader changes are counted', async () => {
    const names = [
      'etcd_server_has_leader', 'etcd_server_leader_changes_seen_total', 'etcd_server_proposals_committed_total',
      'etcd_server_proposals_applied_total', 'etcd_server_proposals_pending', 'etcd_server_proposals_failed_total',
      'etcd_disk_wal_fsync_duration_seconds_bucket', 'etcd_disk_backend_commit_duration_seconds_bucket',
      'etcd_mvcc_db_total_size_in_bytes', 'etcd_network_peer_round_trip_time_seconds_bucket', 'grpc_server_handled_total',
    ];
    const scrape = async (u: string) => (await (await fetch(`${u}/metrics`)).text()).split('\n').filter((l) => l && !l.startsWith('#'));
    const value = (lines: string[], name: string) => Number(lines.find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? NaN);
    const leader = await c.leader();
    await etcdctl(url(leader), 'put', 'metrics', 'x');
    const lines = await scrape(leader.url);
    for (const n of names) assert.ok(lines.some((l) => l.startsWith(n)), `${n} on ConureDB`);
    assert.equal(value(lines, 'etcd_server_has_leader'), 1);
    assert.ok(value(lines, 'etcd_server_proposals_committed_total') > 0);
    assert.ok(lines.some((l) => /^grpc_server_handled_total\{grpc_type="unary",grpc_service="etcdserverpb\.KV",grpc_method="Put",grpc_code="OK"\} \d+/.test(l)), 'handled Put, labelled as go-grpc-prometheus does');
    assert.ok(lines.some((l) => /^etcd_network_peer_round_trip_time_seconds_bucket\{le="[^"]+",To="[0-9a-f]+"\}/.test(l)), 'peer RTT by To (a member id in hex)');
    if (HAVE_ETCD) { // the same names on a real etcd 3.4
      const etcd = await startEtcd();
      try {
        await etcdctl(etcd.endpoint, 'put', 'metrics', 'x');
        const theirs = await scrape(`http://${etcd.endpoint}`);
        for (const n of names.filter((x) => !x.startsWith('etcd_network'))) assert.ok(theirs.some((l) => l.startsWith(n)), `${n} on etcd`);
        assert.ok(theirs.some((l) => /^grpc_server_handled_total\{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb\.KV",grpc_type="unary"\}/.test(l)));
      } finally { await etcd.close(); }
    }
    // A leader change (move-leader) is seen by a member that stays a follower.
    const target = members.find((m) => m !== leader)!;
    const watcher = members.find((m) => m !== leader && m !== target)!;
    const before = value(await scrape(watcher.url), 'etcd_server_leader_changes_seen_total');
    const targetId = /"member_id":(\d+)/.exec(await etcdctl(url(target), 'endpoint', 'status', '-w', 'json'))![1]!;
    await etcdctl(members.map(url).join(','), 'move-leader', BigInt(targetId).toString(16));
    await until('the follower to count the leader change', async () => value(await scrape(watcher.url), 'etcd_server_leader_changes_seen_total') > before);
  });

  it('finding 7: the gateway under /v3 and /v3beta (not /v3alpha) answers in the shapes etcd 3.4 answers', { skip: !HAVE_ETCD && !process.env.CI && 'etcd is not installed' }, async () => {
    /** A response's shape: keys and value types, not values. */
    const shape = (v: unknown): unknown => Array.isArray(v) ? v.slice(0, 1).map(shape)
      : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, shape(x)]))
      : typeof v;
    const requests: Array<[string, object]> = [
      ['/v3/maintenance/alarm', {}], ['/v3beta/maintenance/alarm', {}], ['/v3/maintenance/alarm', { action: 'GET' }],
      ['/v3/maintenance/defragment', {}], ['/v3/maintenance/hash', {}], ['/v3/maintenance/status', {}],
      ['/v3/cluster/member/list', {}], ['/v3beta/kv/put', { key: 'Zm9v', value: 'YmFy' }], ['/v3beta/kv/range', { key: 'Zm9v' }],
      ['/v3alpha/kv/range', { key: 'Zm9v' }], ['/v3beta/kv/deleterange', { key: 'Zm9v' }],
    ];
    const answers = async (base: string) => {
      const out: string[] = [];
      for (const [path, body] of requests) { // in order: the range reads the put
        const res = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body) });
        const text = await res.text();
        out.push(`${path} ${res.status} ${res.status === 200 ? JSON.stringify(shape(JSON.parse(text))) : ''}`);
      }
      return out;
    };
    const leader = await c.leader();
    const etcd = await startEtcd();
    try {
      assert.deepEqual(await answers(leader.url), await answers(`http://${etcd.endpoint}`));
    } finally { await etcd.close(); }
    const alarm = await fetch(`${leader.url}/v3/maintenance/alarm`, { method: 'POST', body: '{}' });
    assert.equal(await alarm.text(), '{}', 'no alarms: etcd answers {} (no header)');
  });
});
