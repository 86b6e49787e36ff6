import type { FastifyInstance } from 'fastify';
import { createHttpApi } from '../api/http/server.js';
import { HttpMetrics } from '../api/http/metrics.js';
import { LmdbStateStore } from '../storage/lmdb-state-store.js';
import { MembershipService } from '../node/membership-service.js';
import { PlainKvService, PlainKvStateMachine } from '../node/plain-kv.js';
import { SingleNodeReplicator } from '../node/single-node-replicator.js';
import type { Replicator } from '../node/types.js';
import type { Logger } from '../util/log.js';
import type { HostPort } from './options.js';

/** Everything `conured` needs to start one member; produced from flags by conured.ts. */
export interface ConuredConfig {
  nodeId: string;
  dataDir: string;
  http: HostPort;
  raft: HostPort;
  advertiseHttp: string;
  advertiseRaft: string;
  bootstrap: boolean;
  join: string[];
  joinBackoffMs: number;
  joinRetries: number;
  role: 'voter' | 'arbiter';
  /** Test-only fault switch: acknowledge writes without waiting for fsync. */
  unsafeNoSync: boolean;
}

export interface RunningConured {
  /** The bound HTTP port (useful with port 0). */
  httpPort: number;
  close(): Promise<void>;
}

/**
 * Composition root of one member: storage → state machine → replicator → services → HTTP.
 * Layers only see the seams below them; this is the one place that knows them all.
 */
export async function startConured(cfg: ConuredConfig, log: Logger): Promise<RunningConured> {
  const store = new LmdbStateStore({ dir: cfg.dataDir, unsafeNoSync: cfg.unsafeNoSync });
  const sm = new PlainKvStateMachine(store);
  const replicator: Replicator = new SingleNodeReplicator({ id: cfg.nodeId, raftAddress: cfg.advertiseRaft, httpAddress: cfg.advertiseHttp, stateMachine: sm });
  const metrics = new HttpMetrics({
    conure_store_size_bytes: { help: 'Bytes used by the state store on disk', read: () => store.sizeBytes() },
    conure_applied_index: { help: 'Highest log index applied to the state machine', read: () => sm.appliedIndex() },
    conure_is_leader: { help: '1 when this member is the leader', read: () => (replicator.status().isLeader ? 1 : 0) },
  });
  const app: FastifyInstance = createHttpApi({
    kv: new PlainKvService(replicator, sm),
    replicator,
    membership: new MembershipService(replicator),
    metrics,
    logger: log,
  });
  try {
    await app.listen({ host: cfg.http.host, port: cfg.http.port });
  } catch (err) {
    await store.close();
    throw err;
  }
  const address = app.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : cfg.http.port;
  log.info({ node_id: cfg.nodeId, http: `${cfg.http.host}:${httpPort}`, advertise_http: cfg.advertiseHttp, advertise_raft: cfg.advertiseRaft, data_dir: cfg.dataDir, applied_index: sm.appliedIndex(), mode: 'standalone' }, 'conured_started');

  let closing: Promise<void> | undefined;
  return {
    httpPort,
    close: () => {
      closing ??= (async () => {
        await replicator.transferLeadership().catch(() => undefined);
        await app.close();
        await replicator.close();
        await store.close();
        log.info({ node_id: cfg.nodeId }, 'conured_stopped');
      })();
      return closing;
    },
  };
}
