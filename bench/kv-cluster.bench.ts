/**
 * 3-member ConureDB over the seed REST API (bootstrap + 2 voters, fsync on): PUT through the
 * leader and a follower, linearizable and serializable GET, at 1, 16, 64 and 256 clients.
 */
import { TestCluster } from '../test/support/cluster.js';
import { httpLoad } from './load.js';
import type { BenchModule, BenchRow } from './report.js';

const bench: BenchModule = async ({ quick }) => {
  const c = new TestCluster();
  const rows: BenchRow[] = [];
  const durationMs = quick ? 1500 : 5000;
  const keys = 10_000;
  const value = Buffer.alloc(100, 0x76);
  try {
    const boot = await c.add({ id: 'b0', bootstrap: true });
    await boot.start();
    await boot.waitReady();
    for (const id of ['b1', 'b2']) {
      const m = await c.add({ id, join: [boot.url] });
      await m.start();
    }
    await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
    const leader = await c.leader();
    const follower = c.members.find((m) => m !== leader)!;
    await follower.waitReady();
    for (const clients of [1, 16, 64, 256]) {
      const cases: Array<[string, string, (i: number) => { method: string; path: string; body?: Buffer }]> = [
        ['PUT via leader', leader.url, (i) => ({ method: 'PUT', path: `/kv?key=k-${i % keys}`, body: value })],
        ['PUT via follower', follower.url, (i) => ({ method: 'PUT', path: `/kv?key=k-${i % keys}`, body: value })],
        ['GET linearizable', leader.url, (i) => ({ method: 'GET', path: `/kv?key=k-${i % keys}` })],
        ['GET serializable', leader.url, (i) => ({ method: 'GET', path: `/kv?key=k-${i % keys}&consistency=serializable` })],
      ];
      for (const [name, url, makeRequest] of cases) {
        process.stderr.write(`[bench] conuredb 3-node ${name} clients=${clients}\n`);
        const r = await httpLoad({ baseUrl: url, clients, durationMs, makeRequest });
        rows.push({ name: `conuredb 3-node ${name}`, params: { clients }, metrics: { ops_per_s: r.ops / r.seconds, p50_ms: r.latencies.percentile(50), p99_ms: r.latencies.percentile(99), errors: r.errors } });
      }
    }
  } finally {
    await c.stopAll();
  }
  return { suite: 'kv-cluster: seed REST API, 3 voters on one machine, fsync on, 100-byte values', rows, notes: ['all members and the load generator share this machine\'s cores'] };
};
export default bench;
