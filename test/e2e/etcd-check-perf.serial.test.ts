/**
 * `etcdctl check perf --load=s` must PASS against a real conured (a raft member, fsync on).
 * check perf judges latency (slowest request, stddev), so this file is `.serial`: the test
 * runner runs it alone, after the parallel suites, instead of beside CPU-heavy cluster tests.
 * One retry is allowed on a shared machine; both verdicts are reported on failure.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { TestCluster } from '../support/cluster.js';

const run = promisify(execFile);
const haveEtcdctl = spawnSync('which', ['etcdctl']).status === 0;
const skip = !haveEtcdctl && !process.env.CI ? 'etcdctl is not installed (install etcd-client)' : false;

test('etcdctl check perf --load=s passes against conured', { skip, timeout: 400_000 }, async () => {
  const c = new TestCluster();
  try {
    const m = await c.add({ id: 'perf0', bootstrap: true });
    await m.start();
    await m.waitReady();
    const verdicts: string[] = [];
    for (let attempt = 1; attempt <= 2; attempt++) {
      const r = await run('etcdctl', [`--endpoints=127.0.0.1:${m.clientPort}`, 'check', 'perf', '--load=s'], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 180_000 })
        .then((x) => ({ code: 0, out: x.stdout }), (e: { code?: number; stdout?: string }) => ({ code: e.code ?? 1, out: e.stdout ?? '' }));
      const lines = r.out.replace(/\r/g, '\n').split('\n').filter((l) => /^(PASS|FAIL)/.test(l.trim()));
      verdicts.push(`attempt ${attempt} (exit ${r.code}): ${lines.join(' | ')}`);
      if (r.code === 0) {
        assert.equal(lines.filter((l) => l.startsWith('PASS')).length, 4, lines.join('\n'));
        return;
      }
    }
    assert.fail(verdicts.join('\n'));
  } finally {
    await c.stopAll();
  }
});
