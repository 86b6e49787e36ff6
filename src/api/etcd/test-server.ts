/**
 * Test-only: an in-process single-node etcd-compatible server (LMDB store in a temporary
 * directory, MvccStateMachine, the standalone SingleNodeReplicator, the etcd gRPC API on an
 * ephemeral loopback port). Used by unit and e2e tests; production wiring lives in conured.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SingleNodeReplicator } from '../../node/index.js';
import { LmdbStateStore } from '../../storage/index.js';
import { MvccStateMachine, type MvccLimits } from '../../mvcc/index.js';
import type { Replicator } from '../../seams/index.js';
import { createEtcdApi, type EtcdApi } from './compose.js';
import { createEtcdGrpcServer, type EtcdGrpcServer } from './grpc-server.js';
import type { EtcdGrpcMetrics } from './metrics.js';

export interface TestEtcdServer {
  port: number;
  /** `127.0.0.1:<port>` */
  endpoint: string;
  api: EtcdApi;
  sm: MvccStateMachine;
  replicator: Replicator;
  dir: string;
  grpc: EtcdGrpcServer;
  close(): Promise<void>;
}

export async function startTestEtcdServer(opts: {
  minLeaseTtlSeconds?: number;
  limits?: Partial<MvccLimits>;
  replicator?: (sm: MvccStateMachine) => Replicator;
  metrics?: EtcdGrpcMetrics;
} = {}): Promise<TestEtcdServer> {
  const dir = mkdtempSync(join(tmpdir(), 'conure-etcd-'));
  const store = new LmdbStateStore({ dir });
  const sm = new MvccStateMachine(store, { minLeaseTtlSeconds: opts.minLeaseTtlSeconds ?? 1 });
  const replicator = opts.replicator?.(sm) ?? new SingleNodeReplicator({ id: 'conure-0', raftAddress: '127.0.0.1:7001', httpAddress: '127.0.0.1:8081', stateMachine: sm });
  const api = createEtcdApi({ store, sm, replicator, ...(opts.limits ? { limits: opts.limits } : {}) });
  const server = createEtcdGrpcServer({ services: api.services, ...(opts.metrics ? { metrics: opts.metrics } : {}) });
  const port = await server.listen('127.0.0.1:0');
  return {
    port, endpoint: `127.0.0.1:${port}`, api, sm, replicator, dir, grpc: server,
    async close() {
      await server.close();
      api.close();
      await replicator.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
