/**
 * The guide's Go snippet (clientv3.New, three endpoints, 5 s dial timeout) built with the real
 * go.etcd.io/etcd/client/v3 from the Go module proxy, run against a 3-member ConureDB: it
 * registers a device under a 90 s lease, looks it up, keeps it alive once and revokes it.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TestCluster } from '../../../test/support/cluster.js';

const run = promisify(execFile);
const SRC = fileURLToPath(new URL('../../../../examples/presence-registry/go', import.meta.url));
const HAVE_GO = spawnSync('go', ['version']).status === 0;

/** SIGTERM every member, then SIGKILL any that has not exited within 15 s (a member that cannot hand over must not outlive the test). */
async function stopCluster(c: TestCluster): Promise<void> {
  await Promise.race([c.stopAll(), new Promise((r) => setTimeout(r, 15_000))]);
  await Promise.all(c.members.map((m) => (m.running ? m.kill9() : undefined)));
}

describe('the guide\'s Go client against ConureDB', { timeout: 400_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'presence-go-'));
  const c = new TestCluster();
  after(async () => { await stopCluster(c); rmSync(tmp, { recursive: true, force: true }); });

  it('connects with three endpoints and registers, looks up and revokes', { skip: !HAVE_GO && !process.env.CI && 'go is not installed' }, async () => {
    const bin = join(tmp, 'presence-go');
    await run('go', ['build', '-o', bin, '.'], { cwd: SRC, timeout: 360_000, env: { ...process.env, GOFLAGS: '-mod=mod -buildvcs=false' } });
    const boot = await c.add({ id: 'g0', bootstrap: true });
    const v1 = await c.add({ id: 'g1' }); const v2 = await c.add({ id: 'g2' });
    v1.spec.join = [boot.url]; v2.spec.join = [boot.url, v1.url];
    await boot.start(); await v1.start(); await v2.start();
    await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
    await Promise.all(c.members.map((m) => m.waitReady()));
    const endpoints = c.members.map((m) => `127.0.0.1:${m.clientPort}`).join(',');
    const { stdout } = await run(bin, [], { env: { ...process.env, ETCD_ENDPOINTS: endpoints }, timeout: 60_000 });
    assert.equal(stdout.trim().split('\n').pop(), 'PRESENCE OK');
  });
});
