/**
 * etcdctl (the real etcd 3.4 client, from Debian's etcd-client) against ConureDB's etcd API,
 * and the same script against a real etcd (Debian's etcd-server) started here on loopback
 * ports: the normalised outputs must be identical.
 *
 * Without etcdctl/etcd the suite fails in CI (`CI` set) with a clear message and skips locally.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestEtcdServer, type TestEtcdServer } from '../../src/api/etcd/test-server.js';
import { LocalReplicator } from '../../src/mvcc/test-harness.js';
import { freePort } from '../support/cluster.js';
import { etcdctl } from '../support/etcd-process.js';

const have = (bin: string) => spawnSync('which', [bin]).status === 0;
const missing = ['etcdctl', 'etcd'].filter((b) => !have(b));
const skip = missing.length > 0 && !process.env.CI ? `missing ${missing.join(', ')} (install etcd-client and etcd-server)` : false;

/** Runs `etcdctl watch` until `until` matches its output (at most 10 s), then stops it. */
function watchUntil(endpoint: string, args: string[], until: RegExp): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('etcdctl', [`--endpoints=${endpoint}`, 'watch', ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
    let out = '';
    const stop = () => child.kill('SIGTERM');
    const timer = setTimeout(stop, 10_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (until.test(out)) setTimeout(stop, 200);
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}


/** Ids, names, addresses, sizes and timings differ between the two servers; the rest must not. */
function normalise(s: string): string {
  return s
    .split('\n')
    .filter((l) => !l.startsWith('{"level"'))
    .join('\n')
    .replace(/"(cluster_id|member_id|raft_term|ID|leader)":\d+/g, '"$1":N')
    .replace(/"(ClusterID|MemberID|RaftTerm)" : \d+/g, '"$1" : N')
    .replace(/\b[0-9a-f]{16}\b/g, 'HEXID')
    .replace(/127\.0\.0\.1:\d+/g, 'ADDR')
    .replace(/took = [\d.]+[mµn]?s/g, 'took = T')
    .replace(/remaining\(\d+s\)/g, 'remaining(Ns)')
    .replace(/Snapshot saved at \S+/g, 'Snapshot saved at PATH')
    .trim();
}

let conure: TestEtcdServer;
let etcdProc: ChildProcess | undefined;
let etcdEndpoint = '';
let etcdDir = '';

before(async () => {
  if (skip) return;
  if (missing.length > 0) throw new Error(`etcd e2e needs ${missing.join(' and ')} on PATH (Debian packages etcd-client and etcd-server; see scripts/setup.sh)`);
  // etcd's default minimum lease TTL: ceil(1.5 × 1 s election timeout) = 2 s.
  conure = await startTestEtcdServer({ minLeaseTtlSeconds: 2, replicator: (sm) => new LocalReplicator(sm, 'conure-0', '127.0.0.1:7001') });
  etcdDir = mkdtempSync(join(tmpdir(), 'conure-real-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  etcdEndpoint = `127.0.0.1:${client}`;
  etcdProc = spawn('etcd', [
    '--name', 'default', '--data-dir', join(etcdDir, 'data'),
    '--listen-client-urls', `http://${etcdEndpoint}`, '--advertise-client-urls', `http://${etcdEndpoint}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `default=http://127.0.0.1:${peer}`, '--log-level', 'error',
  ], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    if ((await etcdctl(etcdEndpoint, ['endpoint', 'health'], undefined, 3000)).code === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the reference etcd did not become healthy within 10 s');
});

after(async () => {
  if (etcdProc?.pid) etcdProc.kill('SIGTERM');
  if (etcdDir) rmSync(etcdDir, { recursive: true, force: true });
  await conure?.close();
});

interface Step { args: string[]; stdin?: string; watch?: RegExp; shape?: boolean }

/** The script, with `$LEASE` replaced by the lease id granted in the step marked `grant`. */
const SCRIPT: Step[] = [
  { args: ['put', 'foo', 'bar'] },
  { args: ['put', 'foo/a', '1'] },
  { args: ['put', 'foo/b', '2', '-w', 'json'] },
  { args: ['put', 'zoo', 'z'] },
  { args: ['get', 'foo', '--prefix'] },
  { args: ['get', 'foo', '--prefix', '-w', 'json'] },
  { args: ['get', 'foo/a', '--from-key', '--keys-only'] },
  { args: ['get', 'foo', '--rev=2'] },
  { args: ['get', 'foo', '--prefix', '--limit=1', '--sort-by=MODIFY', '--order=DESCEND'] },
  { args: ['get', 'foo', '--prefix', '--count-only', '-w', 'json'] },
  { args: ['put', 'foo', 'bar2', '--prev-kv'] },
  { args: ['del', 'foo/', '--prefix', '--prev-kv'] },
  { args: ['del', 'nothing'] },
  { args: ['txn'], stdin: 'value("foo") = "bar2"\n\nput foo bar3\nget foo\n\nget zoo\n\n' },
  { args: ['txn'], stdin: 'mod("foo") < "3"\n\nput x y\n\nget foo\n\n' },
  { args: ['txn', '-w', 'json'], stdin: 'version("zoo") = "1"\n\ndel zoo\n\n\n' },
  { args: ['watch', 'foo', '--prefix', '--rev=2'], watch: /DELETE\s+foo\/b/ },
  { args: ['lease', 'grant', '60'] },
  { args: ['put', 'leased', 'v', '--lease=$LEASE'] },
  { args: ['lease', 'timetolive', '$LEASE', '--keys'] },
  { args: ['lease', 'keep-alive', '--once', '$LEASE'] },
  { args: ['lease', 'list'] },
  { args: ['lease', 'revoke', '$LEASE'] },
  { args: ['get', 'leased'] },
  { args: ['lease', 'timetolive', '$LEASE'] },
  { args: ['put', 'k', 'v1'] },
  { args: ['put', 'k', 'v2'] },
  { args: ['compaction', '12'] },
  { args: ['get', 'k', '--rev=11'] },
  { args: ['get', 'k', '--rev=12'] },
  { args: ['get', 'k', '--rev=99'] },
  // Hostile int64s (docs/security.md, finding 8): beyond 2^53 and at int64's edges.
  { args: ['lease', 'grant', '9223372036854775807'] },
  { args: ['lease', 'grant', '9000000001'] },
  { args: ['get', 'foo', '--rev=9007199254740993'] },
  { args: ['get', 'foo', '--rev=9223372036854775807'] },
  { args: ['get', 'foo', '--rev=-5'] },
  { args: ['compaction', '9007199254740993'] },
  { args: ['compaction', '--', '-1'] },
  { args: ['lease', 'timetolive', '7fffffffffffffff'] },
  { args: ['lease', 'revoke', '7fffffffffffffff'] },
  { args: ['lease', 'keep-alive', '--once', '7fffffffffffffff'] },
  { args: ['txn'], stdin: 'mod("k") < "1152921504606846976"\n\nget k\n\n\n' },
  { args: ['put', 'k', '--ignore-value'] },
  { args: ['put', 'absent', '--ignore-value'] },
  { args: ['put', 'k', 'v3', '--ignore-lease'] },
  { args: ['get', 'k', '-w', 'fields'] },
  { args: ['get', '', '--prefix', '--sort-by=CREATE', '--order=ASCEND', '--print-value-only'] },
  { args: ['watch', 'k', '--rev=3'], watch: /compacted|canceled/ },
  { args: ['lease', 'grant', '1'] },
  { args: ['del', '', '--from-key', '--prev-kv'] },
  { args: ['member', 'list'], shape: true },
  { args: ['member', 'add', 'learner1', '--learner', '--peer-urls=http://127.0.0.1:1'], shape: true },
  { args: ['endpoint', 'status'], shape: true },
  { args: ['endpoint', 'health'] },
  { args: ['alarm', 'list'] },
  { args: ['defrag'] },
];

/** For outputs that legitimately differ (sizes, indexes): compare the line and field structure. */
function shapeOf(s: string): string {
  return normalise(s).split('\n').map((l) => l.split(', ').length).join(',');
}

async function runScript(endpoint: string, dir: string): Promise<string[]> {
  const out: string[] = [];
  let lease = '';
  for (const step of SCRIPT) {
    const args = step.args.map((a) => a.replace('$LEASE', lease));
    if (step.watch) {
      out.push(`watch: ${normalise(await watchUntil(endpoint, args.slice(1), step.watch))}`);
      continue;
    }
    const r = await etcdctl(endpoint, args, step.stdin);
    if (args[0] === 'lease' && args[1] === 'grant') lease = /lease ([0-9a-f]+) granted/.exec(r.stdout)?.[1] ?? 'none';
    const errLine = r.stderr.split('\n').filter((l) => l.startsWith('Error:')).join('\n');
    const body = step.shape ? shapeOf(r.stdout) : normalise(r.stdout);
    out.push(`$ etcdctl ${step.args.join(' ')}\n[exit ${r.code}] ${body}${errLine ? `\n${normalise(errLine)}` : ''}`);
  }
  const snap = await etcdctl(endpoint, ['snapshot', 'save', join(dir, 'snap.db')]);
  out.push(`snapshot: exit ${snap.code} ${normalise(snap.stdout)} file=${existsSync(join(dir, 'snap.db'))}`);
  return out;
}

test('etcdctl behaves the same against ConureDB and a real etcd', { skip, timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conure-etcdctl-'));
  try {
    const fromEtcd = await runScript(etcdEndpoint, join(dir));
    rmSync(join(dir, 'snap.db'), { force: true });
    const fromConure = await runScript(conure.endpoint, dir);
    // The script really exercised the servers (not two empty transcripts).
    const transcript = fromEtcd.join('\n');
    assert.match(transcript, /watch: PUT\nfoo\nbar\n/);
    assert.match(transcript, /lease HEXID granted with TTL\(60s\)/);
    assert.match(transcript, /required revision has been compacted/);
    assert.match(transcript, /lease grant 9223372036854775807\n\[exit 1\] \nError: failed to grant lease \(etcdserver: too large lease TTL\)/);
    assert.match(transcript, /get foo --rev=9007199254740993\n\[exit 1\] \nError: etcdserver: mvcc: required revision is a future revision/);
    assert.match(transcript, /compaction 9007199254740993\n\[exit 1\] \nError: etcdserver: mvcc: required revision is a future revision/);
    assert.match(transcript, /snapshot: exit 0 Snapshot saved at PATH file=true/);
    assert.equal(fromConure.length, fromEtcd.length);
    for (let i = 0; i < fromEtcd.length; i++) assert.equal(fromConure[i], fromEtcd[i], `step ${i}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('etcdctl member promote and remove map onto ConureDB membership', { skip }, async () => {
  const add = await etcdctl(conure.endpoint, ['member', 'add', 'learner2', '--learner', '--peer-urls=http://127.0.0.1:2']);
  assert.equal(add.code, 0, add.stderr);
  const id = /Member ([0-9a-f]+) added/.exec(add.stdout)?.[1];
  assert.ok(id, add.stdout);
  const list = await etcdctl(conure.endpoint, ['member', 'list']);
  assert.match(list.stdout, new RegExp(`${id}, (started|unstarted), .*, http://127.0.0.1:2, , true`));
  const promote = await etcdctl(conure.endpoint, ['member', 'promote', id]);
  assert.equal(promote.code, 0, promote.stderr);
  assert.match(promote.stdout, /promoted in cluster/);
  assert.equal(conure.replicator.members().find((m) => m.address === '127.0.0.1:2')?.suffrage, 'voter');
  const again = await etcdctl(conure.endpoint, ['member', 'promote', id]);
  assert.match(again.stderr, /can only promote a learner member/);
  const remove = await etcdctl(conure.endpoint, ['member', 'remove', id]);
  assert.equal(remove.code, 0, remove.stderr);
  assert.equal(conure.replicator.members().some((m) => m.address === '127.0.0.1:2'), false);
});
