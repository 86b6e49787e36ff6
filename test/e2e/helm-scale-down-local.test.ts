/**
 * Scale-down on a REAL local ConureDB cluster, driven by the chart's own scripts and values:
 * 4 voters + arbiter (5 members) → 3 voters → 1 voter, exactly as
 * `helm upgrade --set voters.replicas=3` and then `=1` would do it. The test:
 * - starts the members as conured processes with the flags the chart renders for their
 *   StatefulSet (only addresses, data directory and seeds are made local), laid out as
 *   src/cli/dev-cluster.ts does (ids as the chart names pods, one port block per member);
 * - runs the pre-upgrade hook script from the rendered Job, with the rendered env, while
 *   polling the raft configuration. It asserts that members leave in the planner's order,
 *   that the bootstrap never leaves, that no member below the desired count ever leaves, and
 *   that every write made before the scale-down is still readable afterwards;
 * - runs preStop (with the rendered topology ConfigMap) and restarts each remaining member,
 *   and asserts that membership does not change;
 * - does all of it with the chart's peer authentication on: the members get the chart's
 *   `--peer-secret-file` and the hook and preStop its CONURE_PEER_SECRET_FILE, pointed from the
 *   chart's mount path to one local file holding the rendered Secret's value (one value for
 *   every rendering, as `lookup` keeps it across upgrades). Member-only calls without the
 *   secret's token are refused (401) and change nothing.
 *
 * The multi-member scenario needs conured with --join (the replicated cluster). A build whose
 * conured refuses --join skips it and says so; CI runs it once the cluster issue lands. The
 * single-member scenario runs on any build: hook, preStop and restart against a real conured.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planLocalCluster, type LocalMember } from '../../src/cli/dev-cluster.js';
import { planScaleDown, planTopology, type CurrentMember } from '../../src/planner/topology.js';
import { CONURECTL_JS, SKIP_NO_HELM, envOf, parseManifests, peerSecretPath, renderedPeerSecret, template, type K8sObject } from './helm-support.js';

const CONURED_JS = fileURLToPath(new URL('../../src/cli/conured.js', import.meta.url));
const STEP_TIMEOUT_MS = 60_000;

interface RaftConfig { leader: string; servers: CurrentMember[] }

async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return r.ok ? (await r.json()) as T : undefined;
  } catch { return undefined; }
}

/** The cluster under test, checked on every poll: a member that died fails the wait at once. */
let current: LocalCluster | undefined;

/** Polls `fn` every 200 ms until it returns a value, for at most `timeoutMs`. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = STEP_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    current?.assertAlive();
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Does this build's conured accept --join? (Before the replicated cluster it exits 2.) */
async function conuredCanJoin(dir: string): Promise<string | true> {
  if (!existsSync(CONURED_JS)) return `conured is not built at ${CONURED_JS}`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CONURED_JS, '--node-id', 'probe', '--data-dir', join(dir, 'probe'), '--http-addr', '127.0.0.1:0',
      '--raft-addr', '127.0.0.1:0', '--client-addr', '127.0.0.1:0', '--bootstrap=false', '--join', 'http://127.0.0.1:1', '--join-backoff', '100ms'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(true); }, 2000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 2 ? `this build's conured cannot --join yet (${stderr.trim().split('\n').at(-1)}); needs the replicated cluster` : true);
    });
  });
}

/**
 * conured arguments for a member, taken from the rendered StatefulSet of its pod: every flag
 * the chart passes is kept; the listen/advertise addresses, the data directory and the join
 * seeds (cluster DNS names in the chart) are replaced by their local equivalents.
 */
function chartArgs(objs: K8sObject[], m: LocalMember, seeds: string[], peerFile: string): string[] {
  const stsName = m.id.replace(/-\d+$/, '');
  const sts = objs.find((o) => o.kind === 'StatefulSet' && o.metadata.name === stsName);
  assert.ok(sts, `no StatefulSet ${stsName}`);
  const args = (sts.spec as { template: { spec: { containers: { name: string; args: string[] }[] } } }).template.spec.containers.find((c) => c.name === 'conured')!.args;
  const local: Record<string, string> = {
    '--node-id': m.id, '--http-addr': m.http, '--raft-addr': m.raft, '--client-addr': m.client,
    '--advertise-http': m.http, '--advertise-raft': m.raft, '--data-dir': m.dataDir,
    '--join': seeds.filter((u) => u !== `http://${m.http}`).join(','),
    '--peer-secret-file': peerFile,
  };
  assert.ok(args.includes(`--peer-secret-file=${peerSecretPath()}`), `${stsName}: the chart passes its mounted cluster secret`);
  return args.map((a) => {
    const flag = a.split('=')[0]!;
    return flag in local ? `${flag}=${local[flag]}` : a;
  });
}

class LocalCluster {
  readonly procs = new Map<string, ChildProcess>();
  /** Members that exited without being asked to, with how. */
  readonly crashed = new Map<string, string>();
  constructor(readonly members: LocalMember[], private readonly argsFor: (m: LocalMember) => string[]) {}

  start(m: LocalMember): void {
    const child = spawn(process.execPath, [CONURED_JS, ...this.argsFor(m)], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CONURE_LOG_LEVEL: 'warn' } });
    child.stderr!.pipe(createWriteStream(m.logFile, { flags: 'a' }));
    this.procs.set(m.id, child);
    child.once('exit', (code, signal) => {
      if (this.procs.get(m.id) === child) this.crashed.set(m.id, signal ?? `code ${code}`);
    });
  }

  /** Throws, with the tail of its log, when a member died on its own. */
  assertAlive(): void {
    for (const [id, how] of this.crashed) {
      const log = this.members.find((m) => m.id === id)!.logFile;
      let tail = '';
      try { tail = readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n'); } catch { /* no log yet */ }
      throw new Error(`member ${id} exited unexpectedly (${how}); last log lines:\n${tail}`);
    }
  }

  /** SIGTERM (graceful: leadership transfer), SIGKILL after 20 s; bounded. */
  async stop(id: string): Promise<void> {
    const child = this.procs.get(id);
    this.procs.delete(id);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 25_000))]);
    clearTimeout(kill);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((id) => this.stop(id)));
  }

  url(id: string): string { return `http://${this.members.find((m) => m.id === id)!.http}`; }

  async config(): Promise<RaftConfig | undefined> {
    for (const m of this.members) {
      if (!this.procs.has(m.id)) continue;
      const c = await getJson<RaftConfig>(`http://${m.http}/raft/config`);
      if (c?.leader) return c;
    }
    return undefined;
  }
}

/** `/m/<id>/<path>` → that member's HTTP API: lets MEMBER_URL_TEMPLATE address members by id. */
function memberProxy(cluster: LocalCluster): Promise<Server> {
  const server = createServer((req, res) => {
    const m = /^\/m\/([^/]+)(\/.*)$/.exec(req.url ?? '');
    const member = m && cluster.members.find((x) => x.id === decodeURIComponent(m[1]!));
    if (!m || !member) { res.writeHead(404); res.end('unknown member'); return; }
    const [host, port] = member.http.split(':');
    const upstream = request({ host, port: Number(port), path: m[2], method: req.method, headers: req.headers }, (u) => {
      res.writeHead(u.statusCode ?? 502, u.headers);
      u.pipe(res);
    });
    upstream.on('error', (err) => { res.writeHead(502); res.end(String(err)); });
    req.pipe(upstream);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

function run(script: string, env: Record<string, string>, path: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', script, 'script'], { env: { PATH: path, HOME: tmpdir(), ...env }, timeout: 5 * 60_000, encoding: 'utf8' }, (err, _out, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 124) : 0, stderr });
    });
  });
}

/** `env` with the chart's CONURE_PEER_SECRET_FILE (asserted present: its mount) moved to `peerFile`. */
function localPeer(env: Record<string, string>, peerFile: string, what: string): Record<string, string> {
  assert.equal(env.CONURE_PEER_SECRET_FILE, peerSecretPath(), `${what}: CONURE_PEER_SECRET_FILE is the chart's mount`);
  return { ...env, CONURE_PEER_SECRET_FILE: peerFile };
}

function rendered(voters: number): {
  objs: K8sObject[]; hook: { script: string; env: Record<string, string> }; topologyFiles: Record<string, string>;
  /** The environment preStop runs with: that of the conured container. */ memberEnv: Record<string, string>;
} {
  const r = template(['--set', `voters.replicas=${voters}`]);
  assert.ok(r.ok, r.stderr);
  const objs = parseManifests(r.stdout);
  const job = objs.find((o) => o.kind === 'Job')!;
  const c = (job.spec as { template: { spec: { containers: { command: string[]; env: { name: string; value?: string }[] }[] } } }).template.spec.containers[0]!;
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-topology'))!.data as Record<string, string>;
  const sts = objs.find((o) => o.kind === 'StatefulSet')!;
  const conured = (sts.spec as { template: { spec: { containers: { name: string; env: { name: string; value?: string }[] }[] } } }).template.spec.containers.find((x) => x.name === 'conured')!;
  return { objs, hook: { script: c.command[2]!, env: envOf(c) }, topologyFiles: cm, memberEnv: envOf(conured) };
}

/** A member-only call without the cluster secret's token: refused, nothing changes. */
async function assertRefusedWithoutToken(cluster: LocalCluster, leaderUrl: string, victim: string): Promise<void> {
  const before = (await cluster.config())!.servers.map((x) => x.id).sort();
  for (const [path, body] of [['/remove', { ID: victim }], ['/join', { ID: 'intruder-0', Address: '127.0.0.1:1', HttpAddress: '127.0.0.1:2' }], ['/leader/transfer', {}]] as const) {
    const r = await fetch(`${leaderUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
    assert.equal(r.status, 401, `${path} without the token`);
    const forged = await fetch(`${leaderUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer 00' }, body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
    assert.equal(forged.status, 401, `${path} with a wrong token`);
  }
  assert.deepEqual((await cluster.config())!.servers.map((x) => x.id).sort(), before, 'refused calls changed nothing');
}

/** Shared plumbing of both scenarios: tool PATH, member proxy, cleanup. */
async function withLocal(voters: number, fn: (c: LocalCluster, ctx: { PATH: string; proxyUrl: string; endpoints: () => string; dir: string; peerFile: string }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'conure-scale-local-'));
  const basePort = 21000 + (process.pid % 200) * 10 + (voters === 1 ? 5 : 0);
  const members = planLocalCluster({ voters, arbiter: 'auto', basePort, dataDir: dir, host: '127.0.0.1' });
  // Seeds as the chart gives them: the bootstrap pod, then the client service (every voter).
  const seeds = [`http://${members[0]!.http}`, ...members.filter((m) => m.role === 'voter').map((m) => `http://${m.http}`)];
  const { objs } = rendered(voters);
  // The chart's cluster secret (the rendered Secret's value) where its mount would be, read-only.
  const peerFile = join(dir, 'peer', 'peer-secret');
  mkdirSync(dirname(peerFile), { recursive: true });
  writeFileSync(peerFile, renderedPeerSecret(objs), { mode: 0o400 });
  const cluster = new LocalCluster(members, (m) => chartArgs(objs, m, [...new Set(seeds)], peerFile));
  const bin = mkdtempSync(join(tmpdir(), 'conure-bin-'));
  writeFileSync(join(bin, 'conurectl'), `#!/bin/sh\nexec "${process.execPath}" "${CONURECTL_JS}" "$@"\n`);
  chmodSync(join(bin, 'conurectl'), 0o755);
  const PATH = `${bin}:${dirname(process.execPath)}:/usr/bin:/bin`;
  const proxy = await memberProxy(cluster);
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const endpoints = () => members.filter((m) => cluster.procs.has(m.id) && m.role === 'voter').map((m) => `http://${m.http}`).join(',');
  current = cluster;
  try {
    await fn(cluster, { PATH, proxyUrl, endpoints, dir, peerFile });
  } finally {
    current = undefined;
    await cluster.stopAll();
    await new Promise<void>((r) => proxy.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
    rmSync(bin, { recursive: true, force: true });
  }
}

function topologyDirOf(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'conure-topo-'));
  for (const [k, v] of Object.entries(files)) writeFileSync(join(d, k), v);
  return d;
}

test('single member on a real conured: the hook removes nothing, preStop keeps it, a restart keeps membership and data', { skip: SKIP_NO_HELM || (existsSync(CONURED_JS) ? false : `conured is not built at ${CONURED_JS}`), timeout: 3 * 60_000 }, async () => {
  await withLocal(1, async (cluster, { PATH, proxyUrl, endpoints, peerFile }) => {
    const [m] = cluster.members;
    cluster.start(m!);
    await until('the member serving /raft/config', async () => ((await cluster.config())?.servers.length === 1 ? true : undefined));
    const put = await fetch(`${cluster.url(m!.id)}/kv?key=a&value=1`, { method: 'PUT' });
    assert.equal(put.status, 200);
    await assertRefusedWithoutToken(cluster, cluster.url(m!.id), m!.id);
    const { hook, topologyFiles, memberEnv } = rendered(1);
    const r = await run(hook.script, { ...localPeer(hook.env, peerFile, 'hook'), CONURE_ENDPOINTS: endpoints(), MEMBER_URL_TEMPLATE: `${proxyUrl}/m/%s`, BACKOFF_SECONDS: '0' }, PATH);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /nothing to remove/);
    const dirT = topologyDirOf(topologyFiles);
    const p = await run(topologyFiles['prestop.sh']!, { ...localPeer({ CONURE_PEER_SECRET_FILE: memberEnv.CONURE_PEER_SECRET_FILE! }, peerFile, 'conured'), POD_NAME: m!.id, TOPOLOGY_DIR: dirT, LOCAL_ENDPOINT: cluster.url(m!.id), CONURE_ENDPOINTS: endpoints() }, PATH);
    rmSync(dirT, { recursive: true });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stderr, /leadership handed off/);
    assert.match(p.stderr, /keeping membership/);
    await cluster.stop(m!.id);
    cluster.start(m!);
    const c = await until('the member back', async () => cluster.config());
    assert.deepEqual(c.servers.map((x) => x.id), [m!.id]);
    assert.equal(await (await fetch(`${cluster.url(m!.id)}/kv?key=a`)).text(), '1');
  });
});

test('scale-down 4+arbiter -> 3 -> 1 on a local cluster with the chart hook; restarts keep membership', { skip: SKIP_NO_HELM, timeout: 10 * 60_000 }, async (t: TestContext) => {
  const probeDir = mkdtempSync(join(tmpdir(), 'conure-probe-'));
  const capable = await conuredCanJoin(probeDir);
  rmSync(probeDir, { recursive: true, force: true });
  if (capable !== true) { t.skip(capable); return; }
  await withLocal(4, async (cluster, { PATH, proxyUrl, endpoints, peerFile }) => {
    const members = cluster.members;
    for (const m of members) cluster.start(m);
    let last: RaftConfig | undefined;
    await until('5 members with 4 voters and 1 arbiter', async () => {
      const c = await cluster.config();
      last = c ?? last;
      const s = c?.servers ?? [];
      return s.length === 5 && s.filter((x) => x.suffrage === 'voter').length === 4 ? c : undefined;
    }).catch((err: Error) => {
      throw new Error(`the local cluster did not form, so the scale-down cannot be exercised (needs the replicated cluster); last /raft/config: ${JSON.stringify(last)}`, { cause: err });
    });
    const written: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${cluster.url('conure-bootstrap-0')}/kv?key=k${i}&value=v${i}`, { method: 'PUT' });
      assert.equal(r.status, 200);
      written.push(`k${i}`);
    }
    // Authentication is on: without the secret's token nobody can change the membership.
    // (Checked before routing, so leader and followers alike answer 401.)
    for (const m of members) await assertRefusedWithoutToken(cluster, cluster.url(m.id), 'conure-2');

    for (const voters of [3, 1]) {
      const { hook, topologyFiles, memberEnv } = rendered(voters);
      const preStopPeer = localPeer({ CONURE_PEER_SECRET_FILE: memberEnv.CONURE_PEER_SECRET_FILE! }, peerFile, 'conured');
      const desired = planTopology({ votersReplicas: voters, arbiterMode: 'auto' });
      const before = (await cluster.config())!;
      const plan = planScaleDown(before.servers, desired);
      // Watch the configuration while the hook runs.
      const seen: string[][] = [];
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const c = await cluster.config();
          if (c) {
            const ids = c.servers.map((s) => s.id).sort();
            if (seen.length === 0 || seen.at(-1)!.join() !== ids.join()) seen.push(ids);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const r = await run(hook.script, { ...localPeer(hook.env, peerFile, 'hook'), CONURE_ENDPOINTS: endpoints(), MEMBER_URL_TEMPLATE: `${proxyUrl}/m/%s`, BACKOFF_SECONDS: '1' }, PATH);
      watching = false;
      await watcher;
      assert.equal(r.code, 0, r.stderr);
      t.diagnostic(`scale to ${voters} voter(s): planned removals ${plan.remove.join(', ')}; configurations seen: ${seen.map((ids) => ids.join(',')).join(' | ')}`);
      const after = (await cluster.config())!;
      assert.deepEqual(after.servers.map((s) => s.id).sort(), desired.members.map((m) => m.id).sort(), `members after scaling to ${voters}`);
      // Removal order: each observed config drops members in plan order; none below the desired count.
      const desiredIds = new Set(desired.members.map((m) => m.id));
      for (const ids of seen) {
        for (const id of desiredIds) assert.ok(ids.includes(id), `${id} (desired) missing from an observed config ${ids.join(',')}`);
        const gone = plan.remove.filter((id) => !ids.includes(id));
        assert.deepEqual(gone, plan.remove.slice(0, gone.length), `removed out of order: ${ids.join(',')}`);
      }
      // The StatefulSets shrink: the removed members' pods get preStop, then stop.
      for (const id of plan.remove) {
        const dirT = mkdtempSync(join(tmpdir(), 'conure-topo-'));
        for (const [k, v] of Object.entries(topologyFiles)) writeFileSync(join(dirT, k), v);
        const p = await run(topologyFiles['prestop.sh']!, { ...preStopPeer, POD_NAME: id, TOPOLOGY_DIR: dirT, LOCAL_ENDPOINT: cluster.url(id), CONURE_ENDPOINTS: endpoints() }, PATH);
        assert.equal(p.code, 0, p.stderr);
        await cluster.stop(id);
        rmSync(dirT, { recursive: true });
      }
      // Restart every remaining member (preStop first, as the kubelet does): membership stays.
      for (const m of desired.members) {
        const dirT = mkdtempSync(join(tmpdir(), 'conure-topo-'));
        for (const [k, v] of Object.entries(topologyFiles)) writeFileSync(join(dirT, k), v);
        const p = await run(topologyFiles['prestop.sh']!, { ...preStopPeer, POD_NAME: m.id, TOPOLOGY_DIR: dirT, LOCAL_ENDPOINT: cluster.url(m.id), CONURE_ENDPOINTS: endpoints() }, PATH);
        assert.match(p.stderr, /leadership handed off/, `${m.id}: preStop's leader transfer authenticated`);
        assert.equal(p.code, 0, p.stderr);
        assert.match(p.stderr, /keeping membership/);
        rmSync(dirT, { recursive: true });
        await cluster.stop(m.id);
        cluster.start(members.find((x) => x.id === m.id)!);
        await until(`${m.id} back and a leader elected`, async () => {
          const c = await cluster.config();
          const ok = await getJson(`${cluster.url(m.id)}/health`);
          return c && ok ? c : undefined;
        });
        const c = (await cluster.config())!;
        assert.deepEqual(c.servers.map((s) => s.id).sort(), desired.members.map((x) => x.id).sort(), `membership after restarting ${m.id}`);
      }
      // Nothing acknowledged was lost.
      for (const k of written) {
        const v = await until(`read ${k}`, async () => {
          try {
            const res = await fetch(`${cluster.url('conure-bootstrap-0')}/kv?key=${k}`, { signal: AbortSignal.timeout(2000) });
            return res.ok ? res.text() : undefined;
          } catch { return undefined; }
        });
        assert.equal(v, `v${k.slice(1)}`);
      }
    }
  });
});
