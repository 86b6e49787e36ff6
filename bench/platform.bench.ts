/**
 * Platform figures (printed, never asserted):
 * - Fluxion create → Ready through the API on the local driver (POST → operation succeeded and
 *   status Ready), a few samples;
 * - API reads at 100 concurrent clients: GET /v1/databases/{id} and GET /v1/databases with a
 *   tenant token (p50/p99, req/s);
 * - a reconcile pass over 1,000 database records whose instances do not exist (worst case: every
 *   one gets a fenced repair submit), in-process against the same store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdClient } from '../src/client/etcd-client.js';
import { PlatformClient } from '../src/client/platform/index.js';
import { LocalDriver, MemoryPortAllocator } from '../src/platform/drivers/local/index.js';
import { LeaderElection } from '../src/platform/election/index.js';
import { deriveFluxionSpec } from '../src/platform/engines/index.js';
import { OperationService } from '../src/platform/operations/index.js';
import { Reconciler } from '../src/platform/reconciler/index.js';
import { PlatformStore } from '../src/platform/store/index.js';
import { killAllUnder, record } from '../test/support/local-driver.js';
import { startPlatformProcess } from '../test/support/platform-process.js';
import { httpLoad } from './load.js';
import { Latencies, type BenchModule, type BenchRow } from './report.js';

const bench: BenchModule = async ({ quick }) => {
  process.env.CONURE_LOG_LEVEL ??= 'warn'; // the in-process reconciler; the platform child logs at info
  const dir = mkdtempSync(join(tmpdir(), 'bench-platform-'));
  const rows: BenchRow[] = [];
  const platform = await startPlatformProcess({ dataDir: dir, env: { STATUS_SYNC_INTERVAL: '30' } });
  try {
    const t = await platform.admin.createTenant('bench');
    const tenant = new PlatformClient({ url: platform.url, token: t.token });
    const ready = new Latencies();
    const ids: string[] = [];
    for (let i = 0; i < (quick ? 2 : 5); i++) {
      const t0 = performance.now();
      const c = await tenant.createDatabase({ engine: 'fluxion', ram: '256Mi', apiKey: 'bench-key-0123456789' });
      await tenant.waitOperation(c.operation.id, { pollMs: 10 });
      for (;;) {
        if ((await tenant.getDatabase(c.database.id)).status.phase === 'Ready') break;
        await new Promise((r) => setTimeout(r, 10));
      }
      ready.record(performance.now() - t0);
      ids.push(c.database.id);
    }
    rows.push({ name: 'fluxion create → Ready (API, local driver)', params: { samples: ready.count }, metrics: { p50_ms: ready.percentile(50), max_ms: ready.percentile(100) } });

    const headers = { authorization: `Bearer ${t.token}` };
    for (const [name, path] of [['GET /v1/databases/{id}', (i: number) => `/v1/databases/${ids[i % ids.length]}`], ['GET /v1/databases', () => '/v1/databases']] as Array<[string, (i: number) => string]>) {
      const r = await httpLoad({ baseUrl: platform.url, clients: 100, durationMs: quick ? 2000 : 5000, headers, makeRequest: (i) => ({ method: 'GET', path: path(i) }) });
      rows.push({ name: `API ${name}`, params: { clients: 100 }, metrics: { req_per_s: r.ops / r.seconds, p50_ms: r.latencies.percentile(50), p99_ms: r.latencies.percentile(99), errors: r.errors } });
    }

    // A 1,000-database reconcile pass, in-process, under its own prefix of the same store.
    const client = new EtcdClient({ endpoints: [(platform.events('embedded_store_started')[0]?.endpoint as string | undefined) ?? ''] });
    try {
      const store = new PlatformStore(client, { prefix: '/bench-reconcile/' });
      const n = quick ? 200 : 1000;
      const spec = deriveFluxionSpec('512Mi', '1.0');
      for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => store.putDatabase({ ...record(`db-${i + j}`, spec), observedGeneration: 1 })));
      const driver = new LocalDriver({ dataDir: join(dir, 'reconcile'), ports: new MemoryPortAllocator() });
      const election = new LeaderElection({ client, key: store.keys.leader(), instanceId: 'bench', ttlSeconds: 30 });
      election.start();
      const signal = await election.waitForLeadership(10_000);
      const rec = new Reconciler({ store, driver, operations: new OperationService({ store, queueOperationsMax: n + 10 }), election, minPassGapMs: 0 });
      const first = await rec.pass(signal);
      const second = await rec.pass(signal);
      rows.push({ name: 'reconcile pass, every instance missing (fenced repair submits)', params: { databases: n }, metrics: { pass_ms: first.durationMs, repairs: first.repairs.length } });
      rows.push({ name: 'reconcile pass, all locked by their repairs', params: { databases: n }, metrics: { pass_ms: second.durationMs, repairs: second.repairs.length } });
      await election.stop();
      await driver.close();
    } finally {
      client.close();
    }
  } finally {
    await platform.stop();
    killAllUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  return { suite: 'platform', rows, notes: ['embedded store (one conured member in the platform process), local driver; figures only'] };
};

export default bench;
