/**
 * The guide's cluster check script (scripts/test-etcd-cluster.sh), unchanged, against a real
 * 3-member ConureDB and a real 3-member etcd 3.4: all nine checks pass on both, and the script
 * fails (non-zero, FAIL lines) against an endpoint where nothing listens.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, TestCluster } from '../../../test/support/cluster.js';

const SCRIPT = fileURLToPath(new URL('../../../../examples/presence-registry/scripts/test-etcd-cluster.sh', import.meta.url));
const HAVE = spawnSync('which', ['etcd']).status === 0 && spawnSync('which', ['etcdctl']).status === 0;
const SKIP = !HAVE && !process.env.CI && 'etcd/etcdctl not installed (scripts/setup.sh installs them)';

function runScript(endpoints: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('bash', [SCRIPT], { env: { ...process.env, ENDPOINTS: endpoints.join(','), ...extraEnv }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr });
    });
  });
}

function assertAllPass(r: { code: number; out: string }): void {
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out.split('\n').filter((l) => l.startsWith('PASS ')).length, 9, r.out);
  assert.match(r.out, /RESULT: 9 passed, 0 failed/);
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => { const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); }); s.on('error', () => resolve(false)); });
}

/** A 3-member etcd 3.4 on loopback (static bootstrap, --initial-cluster of all three). */
async function startEtcdCluster(): Promise<{ endpoints: string[]; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'conure-etcd3-'));
  const members = await Promise.all([0, 1, 2].map(async (i) => ({ name: `e${i}`, client: await freePort(), peer: await freePort() })));
  const initial = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  const procs: ChildProcess[] = members.map((m) => spawn('etcd', [
    '--name', m.name, '--data-dir', join(dir, m.name),
    '--listen-client-urls', `http://127.0.0.1:${m.client}`, '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
    '--listen-peer-urls', `http://127.0.0.1:${m.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
    '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `conure-${process.pid}`,
    '--log-level', 'error', '--logger', 'zap',
  ], { stdio: 'ignore' }));
  const deadline = Date.now() + 30_000;
  for (const m of members) while (!(await listening(m.client))) {
    if (Date.now() > deadline) throw new Error('etcd cluster did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoints: members.map((m) => `127.0.0.1:${m.client}`),
    close: async () => {
      await Promise.all(procs.map((p) => new Promise<void>((r) => { if (p.exitCode !== null || p.signalCode !== null) r(); else { p.once('exit', () => r()); p.kill('SIGKILL'); } })));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** SIGTERM every member, then SIGKILL any that has not exited within 15 s (a member that cannot hand over must not outlive the test). */
async function stopCluster(c: TestCluster): Promise<void> {
  await Promise.race([c.stopAll(), new Promise((r) => setTimeout(r, 15_000))]);
  await Promise.all(c.members.map((m) => (m.running ? m.kill9() : undefined)));
}

describe('scripts/test-etcd-cluster.sh', { timeout: 240_000 }, () => {
  const cleanups: Array<() => Promise<void>> = [];
  let conuredEndpoints: string[] = [];
  after(async () => { for (const c of cleanups) await c(); });

  it('passes all nine checks against a 3-member ConureDB', { skip: SKIP }, async () => {
    const c = new TestCluster();
    cleanups.push(() => stopCluster(c));
    const boot = await c.add({ id: 's0', bootstrap: true });
    const v1 = await c.add({ id: 's1' });
    const v2 = await c.add({ id: 's2' });
    v1.spec.join = [boot.url]; v2.spec.join = [boot.url, v1.url];
    await boot.start(); await v1.start(); await v2.start();
    await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
    await Promise.all(c.members.map((m) => m.waitReady()));
    conuredEndpoints = c.members.map((m) => `127.0.0.1:${m.clientPort}`);
    assertAllPass(await runScript(conuredEndpoints));
  });

  it('runs every etcdctl through `kubectl exec -n $NAMESPACE $KUBECTL_POD --` when KUBECTL_POD is set', { skip: SKIP }, async () => {
    // A stand-in kubectl on PATH: records its arguments, then runs the command after `--` here,
    // as `kubectl exec` would run it in the pod. Endpoints are the ConureDB cluster's above.
    const dir = mkdtempSync(join(tmpdir(), 'fake-kubectl-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const log = join(dir, 'calls.log');
    writeFileSync(join(dir, 'kubectl'), `#!/usr/bin/env bash\necho "$*" >> ${JSON.stringify(log)}\nwhile [ "$1" != "--" ]; do shift; done; shift\nexec "$@"\n`);
    chmodSync(join(dir, 'kubectl'), 0o755);
    const r = await runScript(conuredEndpoints, { KUBECTL_POD: 'conure-bootstrap-0', NAMESPACE: 'chat', PATH: `${dir}:${process.env.PATH}` });
    assertAllPass(r);
    assert.match(r.out, /pod=chat\/conure-bootstrap-0/);
    const calls = readFileSync(log, 'utf8').trim().split('\n');
    assert.ok(calls.length >= 9, `${calls.length} kubectl calls`);
    for (const call of calls) assert.match(call, /^exec -n chat conure-bootstrap-0 -- env ETCDCTL_API=3 etcdctl --endpoints=/);
  });

  it('passes all nine checks against a 3-member etcd 3.4', { skip: SKIP }, async () => {
    const e = await startEtcdCluster();
    cleanups.push(() => e.close());
    // etcd elects a leader shortly after all three members are up; the health check waits on it.
    let r = await runScript(e.endpoints);
    for (let i = 0; i < 10 && r.code !== 0 && /FAIL 1 /.test(r.out); i++) { await new Promise((res) => setTimeout(res, 500)); r = await runScript(e.endpoints); }
    assertAllPass(r);
  });

  it('fails, with FAIL lines, when an endpoint is down', { skip: SKIP }, async () => {
    const r = await runScript([`127.0.0.1:${await freePort()}`], { DIAL_TIMEOUT: '1s', COMMAND_TIMEOUT: '2s' });
    assert.notEqual(r.code, 0);
    assert.match(r.out, /FAIL 1 cluster health/);
    assert.match(r.out, /RESULT: 0 passed, 9 failed/);
  });
});
