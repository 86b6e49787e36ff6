/**
 * The presence registry (examples/presence-registry) on a 3-member ConureDB: register (lease
 * grant + put), unregister (revoke) and cache delivery (register acknowledged → a watching
 * gateway cache applies it) at a few concurrency levels. Prints figures; asserts nothing.
 *
 *   node dist/bench/run.js presence [--quick]
 */
import { EtcdClient } from '../src/client/etcd-client.js';
import { TestCluster } from '../test/support/cluster.js';
import { PresenceCache, PresenceRegistry, type PresenceChange } from '../examples/presence-registry/registry.js';
import { Latencies, type BenchModule, type BenchRow } from './report.js';

const bench: BenchModule = async ({ quick }) => {
  const c = new TestCluster();
  const rows: BenchRow[] = [];
  try {
    const boot = await c.add({ id: 'b0', bootstrap: true });
    const v1 = await c.add({ id: 'b1' }); const v2 = await c.add({ id: 'b2' });
    v1.spec.join = [boot.url]; v2.spec.join = [boot.url, v1.url];
    await boot.start(); await v1.start(); await v2.start();
    await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
    await Promise.all(c.members.map((m) => m.waitReady()));
    const leader = await c.leader();
    const endpoints = [leader, ...c.members.filter((m) => m !== leader)].map((m) => `127.0.0.1:${m.clientPort}`);
    const client = new EtcdClient({ endpoints });
    const watcherClient = new EtcdClient({ endpoints: [...endpoints].reverse() });
    const cache = new PresenceCache(watcherClient);
    await cache.start();
    // When each registration was acknowledged, and when the cache applied it (either may come first).
    const ackedAt = new Map<string, number>();
    const seenAt = new Map<string, number>();
    cache.on('change', (ch: PresenceChange) => { if (ch.type === 'put') seenAt.set(`${ch.userId}/${ch.deviceId}`, performance.now()); });
    for (const concurrency of quick ? [1, 16] : [1, 16, 64]) {
      const devices = quick ? 200 : 1000;
      const reg = new PresenceRegistry(client, { ttlSeconds: 90 });
      const regLat = new Latencies(); const unregLat = new Latencies();
      const pairs = Array.from({ length: devices }, (_, i) => [`bench-c${concurrency}-u${i % 100}`, `d${i}`] as const);
      const pool = async (fn: (u: string, d: string) => Promise<unknown>, lat: Latencies): Promise<number> => {
        let i = 0;
        const t0 = performance.now();
        await Promise.all(Array.from({ length: concurrency }, async () => {
          while (i < pairs.length) {
            const [u, d] = pairs[i++]!;
            const t = performance.now();
            await fn(u, d);
            lat.record(performance.now() - t);
          }
        }));
        return performance.now() - t0;
      };
      const regMs = await pool(async (u, d) => { await reg.register(u, d, 'gw-bench'); ackedAt.set(`${u}/${d}`, performance.now()); }, regLat);
      const unregMs = await pool((u, d) => reg.unregister(u, d), unregLat);
      await reg.close(true);
      rows.push({ name: 'register (grant + put)', params: { clients: concurrency, devices }, metrics: { ops_per_s: (devices / regMs) * 1000, p50_ms: regLat.percentile(50), p99_ms: regLat.percentile(99) } });
      rows.push({ name: 'unregister (revoke)', params: { clients: concurrency, devices }, metrics: { ops_per_s: (devices / unregMs) * 1000, p50_ms: unregLat.percentile(50), p99_ms: unregLat.percentile(99) } });
    }
    await new Promise((r) => setTimeout(r, 500));
    const delivery = new Latencies();
    for (const [k, t] of ackedAt) { const seen = seenAt.get(k); if (seen !== undefined) delivery.record(Math.max(0, seen - t)); }
    rows.push({ name: 'cache delivery (ack → cache)', params: { clients: 'all' }, metrics: { events: delivery.count, p50_ms: delivery.percentile(50), p99_ms: delivery.percentile(99) } });
    cache.close(); client.close(); watcherClient.close();
  } finally { await c.stopAll(); }
  return { suite: 'presence registry on 3-member ConureDB', rows, notes: ['one lease per device; load sent to the leader, the cache watches through another member'] };
};
export default bench;
