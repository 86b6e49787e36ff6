/**
 * Test support: a child process running one WorkerPool with the CountingExecutor, so a test can
 * SIGKILL it mid-operation. Configured by env: STORE_ENDPOINT, STORE_PREFIX, LEASE_TTL_S,
 * WORKERS, INSTANCE_ID. Prints `ready` on stdout once started; logs JSON on stderr.
 */
import { EtcdClient } from '../../src/client/etcd-client.js';
import { WorkerPool } from '../../src/platform/operations/index.js';
import { PlatformStore } from '../../src/platform/store/index.js';
import { CountingExecutor } from './counting-executor.js';

const client = new EtcdClient({ endpoints: [process.env.STORE_ENDPOINT!] });
const store = new PlatformStore(client, { prefix: process.env.STORE_PREFIX! });
const pool = new WorkerPool({
  store, executor: new CountingExecutor(store), workers: Number(process.env.WORKERS ?? 3),
  leaseTtlSeconds: Number(process.env.LEASE_TTL_S ?? 2), scanIntervalMs: 500, instanceId: process.env.INSTANCE_ID ?? `child-${process.pid}`,
});
await pool.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => { void pool.stop().then(() => { client.close(); process.exit(0); }); });
