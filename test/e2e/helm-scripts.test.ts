/**
 * The chart's lifecycle scripts, run for real (sh + the conurectl of this build) against an
 * in-process fake of the ConureDB HTTP membership API:
 * - scale-down.sh (the pre-upgrade hook), taken from the rendered Job with the chart's own
 *   values: removes exactly planScaleDown()'s members in its order, hands leadership away
 *   first, retries, tolerates absent members, fails (so helm aborts) without a quorum;
 * - prestop.sh with the rendered topology ConfigMap: a restart never removes a member; a pod
 *   beyond the desired count leaves raft;
 * - wait-for.sh and helm-test.sh.
 *
 * With the chart's peer authentication, as the chart deploys it: the fake demands the cluster
 * secret's bearer token on the member-only endpoints (401 otherwise), the secret is the value
 * of the rendered Secret written to a local file, and each script finds it through the
 * CONURE_PEER_SECRET_FILE of the container that runs it in the rendering (moved from the
 * chart's mount path to that file). A container the chart forgot would fail here.
 *
 * The fake answers like a healthy cluster whose every member is reachable; what it checks is
 * the scripts' decisions, not raft. The same scripts against a real local cluster are the
 * replicated-cluster issue's follow-up (see docs/kubernetes.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { planScaleDown, planTopology, type CurrentMember, type Topology } from '../../src/planner/topology.js';
import { PeerSecret } from '../../src/node/peer-auth.js';
import { CONURECTL_JS, SKIP_NO_HELM, envOf, parseManifests, peerSecretPath, renderedPeerSecret, template, type K8sObject } from './helm-support.js';

const skip = SKIP_NO_HELM || (existsSync(CONURECTL_JS) ? false : `conurectl is not built at ${CONURECTL_JS}`);

type Suffrage = 'voter' | 'arbiter' | 'learner';

/** The endpoints that need the cluster secret's token (src/node/peer-auth.ts, docs/security.md). */
const MEMBER_ONLY = new Set(['/join', '/remove', '/promote', '/leader/transfer', '/raft/snapshot']);

let peer: { file: string; token: string } | undefined;
/**
 * The cluster secret as the chart makes it: the value of the rendered Secret `conure-peer`,
 * written (mode 0400) to a local file. One for the whole file, as `lookup` keeps one value
 * across a release's upgrades; `token` is what conurectl must send for it.
 */
function clusterSecret(): { file: string; token: string } {
  if (!peer) {
    const value = renderedPeerSecret(parseManifests(template([]).stdout));
    const file = join(mkdtempSync(join(tmpdir(), 'conure-peer-')), 'peer-secret');
    writeFileSync(file, value, { mode: 0o400 });
    peer = { file, token: new PeerSecret(value).httpToken };
  }
  return peer;
}

/** `env` with the chart's CONURE_PEER_SECRET_FILE (its mount path) moved to the local copy. */
function localPeer(env: Record<string, string>): Record<string, string> {
  if (env.CONURE_PEER_SECRET_FILE === undefined) return env;
  assert.equal(env.CONURE_PEER_SECRET_FILE, peerSecretPath(), 'the chart points conurectl at its mount');
  return { ...env, CONURE_PEER_SECRET_FILE: clusterSecret().file };
}

/** The peer-secret variable of the rendered container `name` (conured, wait-for-cluster), localized. */
function peerEnvOf(objs: K8sObject[], name: string): Record<string, string> {
  for (const o of objs.filter((x) => x.kind === 'StatefulSet')) {
    const spec = (o.spec as { template: { spec: { containers: { name: string; env?: { name: string; value?: string }[] }[]; initContainers?: { name: string; env?: { name: string; value?: string }[] }[] } } }).template.spec;
    const c = [...spec.containers, ...(spec.initContainers ?? [])].find((x) => x.name === name);
    if (c) {
      const v = envOf(c).CONURE_PEER_SECRET_FILE;
      return v === undefined ? {} : localPeer({ CONURE_PEER_SECRET_FILE: v });
    }
  }
  throw new Error(`no container ${name} in the rendering`);
}

/** A fake cluster: one HTTP server answering as the client service at `/` and as member <id> at `/m/<id>`. */
class FakeCluster {
  readonly members = new Map<string, Suffrage>();
  readonly events: string[] = [];
  readonly kv = new Map<string, string>();
  leader: string;
  /** Answer this many /remove calls with 503 before accepting. */
  failRemoves = 0;
  /** Answer every /remove with 503 (no quorum). */
  noQuorum = false;
  /** /ready of members answers 503 this many times first. */
  notReadyFor = 0;
  /** Member-only calls refused with 401 (no token, or the wrong one). */
  readonly rejected: string[] = [];
  private readonly server = createServer((req, res) => { void this.handle(req, res); });
  url = '';

  /** `token`: the bearer token member-only endpoints demand, as conured with --peer-secret-file; null: a cluster without one. */
  constructor(members: [string, Suffrage][], leader: string, readonly token: string | null = clusterSecret().token) {
    for (const [id, s] of members) this.members.set(id, s);
    this.leader = leader;
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  ids(): string[] { return [...this.members.keys()]; }
  current(): CurrentMember[] { return [...this.members].map(([id, suffrage]) => ({ id, suffrage })); }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://x');
    let path = url.pathname;
    let self: string | undefined;
    const m = /^\/m\/([^/]+)(\/.*)$/.exec(path);
    if (m) { self = decodeURIComponent(m[1]!); path = m[2]!; }
    const json = (status: number, v: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(v)); };
    const addr = (id: string) => `${id}.hs:7001`;
    if (this.token !== null && MEMBER_ONLY.has(path) && req.headers.authorization !== `Bearer ${this.token}`) {
      this.rejected.push(`${path} ${req.headers.authorization ? 'wrong token' : 'no token'}`);
      return json(401, { error: 'member-only endpoint: peer token required', code: 'unauthenticated' });
    }
    if (path === '/health') return json(200, { ok: true });
    if (path === '/ready') {
      if (this.notReadyFor > 0) { this.notReadyFor--; return json(503, { error: 'no leader yet' }); }
      return json(200, { ok: true });
    }
    if (path === '/status') return json(200, { is_leader: self === this.leader, leader: addr(this.leader) });
    if (path === '/raft/stats') {
      const id = self || this.leader;
      return json(200, { id, role: this.members.get(id) === 'arbiter' ? 'arbiter' : 'voter', state: id === this.leader ? 'leader' : 'follower', term: 1, leader_id: this.leader, last_log_index: 10, last_log_term: 1, commit_index: 10 });
    }
    if (path === '/raft/config') return json(200, { leader: addr(this.leader), servers: this.ids().map((id) => ({ id, address: addr(id), suffrage: this.members.get(id) })) });
    if (path === '/leader/transfer' && req.method === 'POST') {
      if (self !== this.leader) return json(200, { transferred: false, note: 'not the leader' });
      const want = (JSON.parse(body || '{}') as { ID?: string }).ID;
      const target = want ?? this.ids().find((id) => id !== self && this.members.get(id) === 'voter');
      if (!target || this.members.get(target) !== 'voter') return json(400, { error: `cannot transfer to ${String(target)}` });
      this.events.push(`transfer ${self} -> ${target}`);
      this.leader = target;
      return json(200, { transferred: true, leader: target });
    }
    if (path === '/remove' && req.method === 'POST') {
      if (this.noQuorum || this.failRemoves > 0) {
        if (this.failRemoves > 0) this.failRemoves--;
        return json(503, { error: 'no quorum: the change cannot commit', code: 'unavailable' });
      }
      const id = (JSON.parse(body) as { ID: string }).ID;
      if (!this.members.has(id)) return json(200, { removed: false });
      this.events.push(id === this.leader ? `remove ${id} (while leader)` : `remove ${id}`);
      this.members.delete(id);
      if (id === this.leader) this.leader = this.ids()[0] ?? '';
      return json(200, { removed: true });
    }
    if (path === '/kv') {
      const key = url.searchParams.get('key');
      if (!key) { res.writeHead(400); res.end('missing key'); return; }
      if (req.method === 'PUT') { this.kv.set(key, url.searchParams.get('value') ?? body); res.end('OK'); return; }
      if (req.method === 'DELETE') { this.kv.delete(key); res.end('OK'); return; }
      res.end(this.kv.get(key) ?? '');
      return;
    }
    json(404, { error: `no route ${req.method} ${path}` });
  }
}

/** A bin directory with `conurectl` (this build) and `node` on PATH, as in the image. */
function toolsPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conure-chart-bin-'));
  writeFileSync(join(dir, 'conurectl'), `#!/bin/sh\nexec "${process.execPath}" "${CONURECTL_JS}" "$@"\n`);
  chmodSync(join(dir, 'conurectl'), 0o755);
  return `${dir}:${dirname(process.execPath)}:/usr/bin:/bin`;
}
const PATH = skip ? '' : toolsPath();

interface RunResult { code: number; stdout: string; stderr: string }
/** Runs a shell script (text) with an environment; bounded by a timeout. */
function runScript(script: string, env: Record<string, string>, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', script, 'script'], { env: { PATH, HOME: tmpdir(), ...env }, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 124) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Renders the chart for `sets` and returns its objects and the planner's topology. */
function render(sets: string[]): { objs: K8sObject[]; plan: Topology } {
  const r = template(sets.flatMap((s) => ['--set', s]));
  assert.ok(r.ok, r.stderr);
  const v = new Map(sets.map((s) => s.split('=') as [string, string]));
  const plan = planTopology({ votersReplicas: Number(v.get('voters.replicas') ?? 2), arbiterMode: (v.get('arbiter.mode') ?? 'auto') as 'auto' });
  return { objs: parseManifests(r.stdout), plan };
}

/** The scale-down hook's script and environment from the rendered Job, pointed at the fake. */
function hookFromChart(objs: K8sObject[], fake: FakeCluster): { script: string; env: Record<string, string> } {
  const job = objs.find((o) => o.kind === 'Job')!;
  const c = (job.spec as { template: { spec: { containers: { command: string[]; env: { name: string; value?: string }[] }[] } } }).template.spec.containers[0]!;
  assert.deepEqual(c.command.slice(0, 2), ['sh', '-c']);
  return {
    script: c.command[2]!,
    env: { ...localPeer(envOf(c)), CONURE_ENDPOINTS: fake.url, MEMBER_URL_TEMPLATE: `${fake.url}/m/%s`, ATTEMPTS: '3', BACKOFF_SECONDS: '0' },
  };
}

/** Writes the rendered topology ConfigMap's files into a directory, as the volume mount does. */
function topologyDir(objs: K8sObject[]): { dir: string; prestop: string; waitFor: string; prestopPeer: Record<string, string>; waitForPeer: Record<string, string> } {
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-topology'))!.data as Record<string, string>;
  const dir = mkdtempSync(join(tmpdir(), 'conure-topology-'));
  for (const [k, v] of Object.entries(cm)) writeFileSync(join(dir, k), v);
  // preStop runs in the conured container (its environment); wait-for.sh is the init container.
  return { dir, prestop: cm['prestop.sh']!, waitFor: cm['wait-for.sh']!, prestopPeer: peerEnvOf(objs, 'conured'), waitForPeer: peerEnvOf(objs, 'wait-for-cluster') };
}

/**
 * Runs `fn` against a fake cluster. By default the fake demands the chart's cluster secret, and
 * the run must end without a single refused member-only call; `opts.auth: false` is a cluster
 * without a secret, `opts.refusalsExpected` a test about refusals.
 */
async function withFake<T>(members: [string, Suffrage][], leader: string, fn: (f: FakeCluster) => Promise<T>, opts: { auth?: boolean; refusalsExpected?: boolean } = {}): Promise<T> {
  const fake = await new FakeCluster(members, leader, opts.auth === false ? null : clusterSecret().token).start();
  try {
    const out = await fn(fake);
    if (!opts.refusalsExpected) assert.deepEqual(fake.rejected, [], 'every member-only call carried the cluster secret\'s token');
    return out;
  } finally { await fake.stop(); }
}

test('scale-down hook 3 -> 1: removes conure-1 then conure-0, leader handed to the bootstrap first', { skip }, async () => {
  const { objs, plan } = render(['voters.replicas=1']);
  await withFake([['conure-bootstrap-0', 'voter'], ['conure-0', 'voter'], ['conure-1', 'voter']], 'conure-1', async (fake) => {
    const expected = planScaleDown(fake.current(), plan);
    const { script, env } = hookFromChart(objs, fake);
    const r = await runScript(script, env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(expected.remove, ['conure-1', 'conure-0']);
    assert.deepEqual(fake.events, ['transfer conure-1 -> conure-bootstrap-0', 'remove conure-1', 'remove conure-0']);
    assert.deepEqual(fake.ids(), plan.members.map((m) => m.id));
    // A second run (post-upgrade) finds nothing to do.
    const again = await runScript(script, env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /nothing to remove/);
    assert.equal(fake.events.length, 3);
  });
});

test('scale-down hook 4 voters + arbiter -> 3 voters: voters first, then the arbiter; foreign ids untouched', { skip }, async () => {
  const { objs, plan } = render(['voters.replicas=3', 'arbiter.mode=auto']);
  const start: [string, Suffrage][] = [['conure-bootstrap-0', 'voter'], ['conure-0', 'voter'], ['conure-1', 'voter'], ['conure-2', 'voter'],
    ['conure-arbiter-0', 'arbiter'], ['manual-1', 'voter'], ['conure-01', 'learner']];
  await withFake(start, 'conure-0', async (fake) => {
    const expected = planScaleDown(fake.current(), plan);
    const { script, env } = hookFromChart(objs, fake);
    fake.failRemoves = 2; // the first two attempts hit a leader election: retried
    const r = await runScript(script, env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(expected.remove, ['conure-2', 'conure-arbiter-0']);
    assert.deepEqual(fake.events, ['remove conure-2', 'remove conure-arbiter-0']);
    assert.deepEqual(fake.ids().sort(), [...expected.keep, ...expected.foreign].sort());
    assert.ok(fake.ids().includes('manual-1') && fake.ids().includes('conure-01'));
  });
});

test('scale-down hook on a scale-up keeps the arbiter until the new voters are members', { skip }, async () => {
  const { objs, plan } = render(['voters.replicas=5']);
  await withFake([['conure-bootstrap-0', 'voter'], ['conure-0', 'voter'], ['conure-arbiter-0', 'arbiter']], 'conure-bootstrap-0', async (fake) => {
    const { script, env } = hookFromChart(objs, fake);
    assert.deepEqual(planScaleDown(fake.current(), plan).deferred, ['conure-arbiter-0']);
    const pre = await runScript(script, env); // pre-upgrade: the new voters do not exist yet
    assert.equal(pre.code, 0, pre.stderr);
    assert.match(pre.stderr, /keeping arbiter conure-arbiter-0 until 5 voters are members \(2 now\)/);
    assert.deepEqual(fake.events, []);
    fake.members.set('conure-1', 'voter');
    fake.members.set('conure-2', 'voter');
    fake.members.set('conure-3', 'learner'); // still catching up
    assert.equal((await runScript(script, env)).code, 0);
    assert.deepEqual(fake.events, [], 'a learner does not count as a voter');
    fake.members.set('conure-3', 'voter');
    const post = await runScript(script, env); // post-upgrade, once promoted
    assert.equal(post.code, 0, post.stderr);
    assert.deepEqual(planScaleDown(fake.current(), plan).remove, []);
    assert.deepEqual(fake.events, ['remove conure-arbiter-0']);
  });
});

test('scale-down hook without quorum fails (helm aborts the upgrade) and removes nothing', { skip }, async () => {
  const { objs } = render(['voters.replicas=1']);
  await withFake([['conure-bootstrap-0', 'voter'], ['conure-0', 'voter'], ['conure-1', 'voter']], 'conure-bootstrap-0', async (fake) => {
    fake.noQuorum = true;
    const { script, env } = hookFromChart(objs, fake);
    const r = await runScript(script, { ...env, ATTEMPTS: '2' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /giving up after 2 attempts/);
    assert.equal(fake.ids().length, 3);
  });
});

test('scale-down hook fails when no endpoint answers', { skip }, async () => {
  const { objs } = render(['voters.replicas=1']);
  const fake = await new FakeCluster([], '').start();
  const { script, env } = hookFromChart(objs, fake);
  await fake.stop();
  const r = await runScript(script, { ...env, ATTEMPTS: '2' });
  assert.notEqual(r.code, 0);
});

test('preStop: restarts never shrink the cluster; a pod beyond the desired count leaves raft', { skip }, async () => {
  const three = render(['voters.replicas=3']);
  const two = render(['voters.replicas=2']);
  const members: [string, Suffrage][] = [['conure-bootstrap-0', 'voter'], ['conure-0', 'voter'], ['conure-1', 'voter']];
  await withFake(members, 'conure-1', async (fake) => {
    const t = topologyDir(three.objs);
    // A restart, rollout or drain of every member with the desired count unchanged.
    for (const id of fake.ids()) {
      const r = await runScript(t.prestop, { ...t.prestopPeer, POD_NAME: id, TOPOLOGY_DIR: t.dir, LOCAL_ENDPOINT: `${fake.url}/m/${id}`, CONURE_ENDPOINTS: fake.url });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /keeping membership/);
    }
    assert.deepEqual(fake.ids(), members.map(([id]) => id));
    assert.deepEqual(fake.events, ['transfer conure-1 -> conure-bootstrap-0'], 'only the leader hands off');
    rmSync(t.dir, { recursive: true });
  });
  await withFake(members, 'conure-1', async (fake) => {
    const t = topologyDir(two.objs);
    const r = await runScript(t.prestop, { ...t.prestopPeer, POD_NAME: 'conure-1', TOPOLOGY_DIR: t.dir, LOCAL_ENDPOINT: `${fake.url}/m/conure-1`, CONURE_ENDPOINTS: fake.url });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fake.events, ['transfer conure-1 -> conure-bootstrap-0', 'remove conure-1']);
    // Then every remaining pod restarts: membership stays.
    for (const id of fake.ids()) {
      const again = await runScript(t.prestop, { ...t.prestopPeer, POD_NAME: id, TOPOLOGY_DIR: t.dir, LOCAL_ENDPOINT: `${fake.url}/m/${id}`, CONURE_ENDPOINTS: fake.url });
      assert.equal(again.code, 0, again.stderr);
    }
    assert.deepEqual(fake.ids(), two.plan.members.filter((m) => m.role === 'voter').map((m) => m.id));
    // The arbiter of voters=2 is within its desired count; with voters=3 (auto) it is surplus.
    fake.members.set('conure-arbiter-0', 'arbiter');
    const keepArb = await runScript(t.prestop, { ...t.prestopPeer, POD_NAME: 'conure-arbiter-0', TOPOLOGY_DIR: t.dir, LOCAL_ENDPOINT: `${fake.url}/m/conure-arbiter-0`, CONURE_ENDPOINTS: fake.url });
    assert.equal(keepArb.code, 0);
    assert.ok(fake.members.has('conure-arbiter-0'));
    const t3 = topologyDir(three.objs);
    await runScript(t.prestop, { ...t.prestopPeer, POD_NAME: 'conure-arbiter-0', TOPOLOGY_DIR: t3.dir, LOCAL_ENDPOINT: `${fake.url}/m/conure-arbiter-0`, CONURE_ENDPOINTS: fake.url });
    assert.ok(!fake.members.has('conure-arbiter-0'), 'surplus arbiter leaves raft');
    rmSync(t.dir, { recursive: true });
    rmSync(t3.dir, { recursive: true });
  });
});

test('preStop fails safe: without the ConfigMap, or with an unreadable count, the member stays', { skip }, async () => {
  const { objs } = render(['voters.replicas=1']);
  await withFake([['conure-bootstrap-0', 'voter'], ['conure-0', 'voter']], 'conure-bootstrap-0', async (fake) => {
    const t = topologyDir(objs);
    const empty = mkdtempSync(join(tmpdir(), 'conure-empty-'));
    const r = await runScript(t.prestop, { ...t.prestopPeer, POD_NAME: 'conure-0', TOPOLOGY_DIR: empty, LOCAL_ENDPOINT: `${fake.url}/m/conure-0`, CONURE_ENDPOINTS: fake.url });
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(join(empty, 'conure.replicas'), 'zero');
    await runScript(t.prestop, { ...t.prestopPeer, POD_NAME: 'conure-0', TOPOLOGY_DIR: empty, LOCAL_ENDPOINT: `${fake.url}/m/conure-0`, CONURE_ENDPOINTS: fake.url });
    assert.deepEqual(fake.ids(), ['conure-bootstrap-0', 'conure-0']);
    // The bootstrap member is never beyond its count of 1.
    await runScript(t.prestop, { ...t.prestopPeer, POD_NAME: 'conure-bootstrap-0', TOPOLOGY_DIR: t.dir, LOCAL_ENDPOINT: `${fake.url}/m/conure-bootstrap-0`, CONURE_ENDPOINTS: fake.url });
    assert.ok(fake.members.has('conure-bootstrap-0'));
    rmSync(empty, { recursive: true });
    rmSync(t.dir, { recursive: true });
  });
});

test('wait-for: bootstrap refuses an empty disk while a member lives; joiners wait for readiness', { skip }, async () => {
  const { objs } = render(['voters.replicas=3']);
  const t = topologyDir(objs);
  await withFake([['conure-0', 'voter']], 'conure-0', async (fake) => {
    const data = mkdtempSync(join(tmpdir(), 'conure-data-'));
    const refused = await runScript(t.waitFor, { ...t.waitForPeer, WAIT_MODE: 'bootstrap', WAIT_URL: `http://127.0.0.1:1 ${fake.url}/m/conure-0`, CONURE_DATA_DIR: data });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /REFUSING to bootstrap/);
    const fresh = await runScript(t.waitFor, { ...t.waitForPeer, WAIT_MODE: 'bootstrap', WAIT_URL: 'http://127.0.0.1:1', CONURE_DATA_DIR: data });
    assert.equal(fresh.code, 0, fresh.stderr);
    const noOthers = await runScript(t.waitFor, { ...t.waitForPeer, WAIT_MODE: 'bootstrap', WAIT_URL: '', CONURE_DATA_DIR: data });
    assert.equal(noOthers.code, 0, noOthers.stderr);
    // As the chart runs it: the other members' URLs from the topology ConfigMap's replica counts
    // (t.dir holds conure.replicas=2, conure-arbiter.replicas=0) and the URL template.
    const planned = await runScript(t.waitFor, { ...t.waitForPeer, WAIT_MODE: 'bootstrap', WAIT_URL: '', MEMBER_URL_TEMPLATE: `${fake.url}/m/%s`, OTHER_STATEFULSETS: 'conure conure-arbiter', TOPOLOGY_DIR: t.dir, CONURE_DATA_DIR: data });
    assert.equal(planned.code, 1, planned.stderr);
    assert.match(planned.stderr, /REFUSING to bootstrap: .* member http:\/\/127\.0\.0\.1:\d+\/m\/conure-0 is alive/);
    mkdirSync(join(data, 'raft'));
    const restart = await runScript(t.waitFor, { ...t.waitForPeer, WAIT_MODE: 'bootstrap', WAIT_URL: `${fake.url}/m/conure-0`, CONURE_DATA_DIR: data });
    assert.equal(restart.code, 0, 'a member with data starts without waiting');
    assert.match(restart.stderr, /holds data/);
    const empty = mkdtempSync(join(tmpdir(), 'conure-data-'));
    fake.notReadyFor = 2;
    const join_ = await runScript(t.waitFor, { ...t.waitForPeer, WAIT_MODE: 'join', WAIT_URL: `${fake.url}/m/conure-bootstrap-0`, CONURE_DATA_DIR: empty, WAIT_INTERVAL_SECONDS: '0', POD_NAME: 'conure-2', CONURE_ENDPOINTS: fake.url });
    assert.equal(join_.code, 0, join_.stderr);
    assert.equal((join_.stderr.match(/waiting for/g) ?? []).length, 2);
    assert.deepEqual(fake.events, [], 'conure-2 is not a member: nothing removed');
    // A fresh pod still listed in raft (its volume was lost) drops the stale entry before joining.
    fake.members.set('conure-2', 'voter');
    const stale = await runScript(t.waitFor, { ...t.waitForPeer, WAIT_MODE: 'join', WAIT_URL: `${fake.url}/m/conure-bootstrap-0`, CONURE_DATA_DIR: empty, POD_NAME: 'conure-2', CONURE_ENDPOINTS: fake.url });
    assert.equal(stale.code, 0, stale.stderr);
    assert.match(stale.stderr, /removing the stale entry/);
    assert.deepEqual(fake.events, ['remove conure-2']);
    // ...but a member with data never does.
    fake.members.set('conure-2', 'voter');
    await runScript(t.waitFor, { ...t.waitForPeer, WAIT_MODE: 'any', WAIT_URL: fake.url, CONURE_DATA_DIR: data, POD_NAME: 'conure-2', CONURE_ENDPOINTS: fake.url });
    assert.ok(fake.members.has('conure-2'));
    rmSync(data, { recursive: true });
    rmSync(empty, { recursive: true });
  });
  rmSync(t.dir, { recursive: true });
});

test('helm test script: round trip and exact member counts', { skip }, async () => {
  const { objs } = render([]);
  const pod = objs.find((o) => o.kind === 'Pod')!;
  const c = (pod.spec as { containers: { command: string[]; env: { name: string; value?: string }[] }[] }).containers[0]!;
  await withFake([['conure-bootstrap-0', 'voter'], ['conure-0', 'voter'], ['conure-arbiter-0', 'arbiter']], 'conure-0', async (fake) => {
    const env = { ...envOf(c), CONURE_ENDPOINTS: fake.url };
    const ok = await runScript(c.command[2]!, env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /2 voter\(s\) \+ 1 arbiter/);
    assert.equal(fake.kv.size, 0, 'the test key is deleted');
    fake.members.set('conure-1', 'learner');
    const bad = await runScript(c.command[2]!, env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /voters\/arbiters\/learners = 2 1 1/);
    // No member knows a leader: the health check fails first, with its reason.
    fake.leader = '';
    const noLeader = await runScript(c.command[2]!, env);
    assert.equal(noLeader.code, 1);
    assert.match(noLeader.stderr, /helm-test: FAIL: health: no member knows a leader/);
  });
});

test('peer auth: without the cluster secret the hook removes nothing and fails; preStop and wait-for keep the member', { skip }, async () => {
  const { objs } = render(['voters.replicas=1']);
  await withFake([['conure-bootstrap-0', 'voter'], ['conure-0', 'voter'], ['conure-1', 'voter']], 'conure-1', async (fake) => {
    const { script, env } = hookFromChart(objs, fake);
    const { CONURE_PEER_SECRET_FILE: _file, ...noSecret } = env;
    const r = await runScript(script, { ...noSecret, ATTEMPTS: '2' });
    assert.notEqual(r.code, 0, 'the upgrade aborts before the StatefulSets shrink');
    assert.equal(fake.ids().length, 3);
    assert.ok(fake.rejected.includes('/remove no token') && fake.rejected.includes('/leader/transfer no token'), fake.rejected.join());
    // Another cluster's secret is refused just the same.
    const other = join(mkdtempSync(join(tmpdir(), 'conure-peer-')), 'other');
    writeFileSync(other, 'x'.repeat(48), { mode: 0o400 });
    const w = await runScript(script, { ...env, CONURE_PEER_SECRET_FILE: other, ATTEMPTS: '1' });
    assert.notEqual(w.code, 0);
    assert.ok(fake.rejected.includes('/remove wrong token'));
    assert.equal(fake.ids().length, 3);
    // preStop never fails, and keeps the member when it cannot authenticate.
    const t = topologyDir(objs);
    const p = await runScript(t.prestop, { POD_NAME: 'conure-1', TOPOLOGY_DIR: t.dir, LOCAL_ENDPOINT: `${fake.url}/m/conure-1`, CONURE_ENDPOINTS: fake.url, REMOVE_ATTEMPTS: '1' });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stderr, /leadership transfer failed/);
    assert.match(p.stderr, /could not remove conure-1/);
    assert.ok(fake.members.has('conure-1'));
    // wait-for cannot drop a stale entry without it (and so the pod does not start).
    const empty = mkdtempSync(join(tmpdir(), 'conure-data-'));
    const wf = await runScript(t.waitFor, { WAIT_MODE: 'join', WAIT_URL: `${fake.url}/m/conure-bootstrap-0`, CONURE_DATA_DIR: empty, POD_NAME: 'conure-1', CONURE_ENDPOINTS: fake.url });
    assert.notEqual(wf.code, 0);
    assert.ok(fake.members.has('conure-1'));
    rmSync(empty, { recursive: true });
    rmSync(t.dir, { recursive: true });
  }, { refusalsExpected: true });
});

test('peer auth being turned on: the pre-upgrade hook finds no secret file yet and scales the old members down without one', { skip }, async () => {
  const { objs, plan } = render(['voters.replicas=1']);
  // The members still run without a secret; the hook's optional volume is empty.
  await withFake([['conure-bootstrap-0', 'voter'], ['conure-0', 'voter'], ['conure-1', 'voter']], 'conure-bootstrap-0', async (fake) => {
    const { script, env } = hookFromChart(objs, fake);
    const r = await runScript(script, { ...env, CONURE_PEER_SECRET_FILE: join(tmpdir(), 'conure-no-such-dir', 'peer-secret') });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /no cluster secret at .* yet \(peer authentication being turned on\): calling without it/);
    assert.deepEqual(fake.ids(), plan.members.map((m) => m.id));
  }, { auth: false });
});
