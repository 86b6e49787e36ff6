import type { FastifyInstance } from 'fastify';
import { createHttpApi } from '../api/http/index.js';
import { HttpMetrics } from '../api/http/index.js';
import { LmdbStateStore } from '../storage/index.js';
import { MemoryStateStore } from '../storage/index.js';
import { raftLogExists } from '../storage/index.js';
import { anySeedInCluster, isSelf, joinCluster, publishClientUrl } from '../node/index.js';
import { RefusingKvService, type KvService } from '../seams/index.js';
import { MemberHttp } from '../node/index.js';
import { MembershipService } from '../node/index.js';
import type { PeerSecret } from '../node/index.js';
import { RaftReplicator } from '../node/index.js';
import { createEtcdApi, RpcStatusError, type EtcdApi, type MembershipForwarder } from '../api/etcd/index.js';
import { registerEtcdGateway } from '../api/etcd/index.js';
import { createEtcdGrpcServer, type EtcdGrpcServer } from '../api/etcd/index.js';
import { ClientListener } from '../api/etcd/index.js';
import { createEtcdClientHttp } from '../api/etcd/index.js';
import type { TlsFiles } from '../util/index.js';
import { EtcdGrpcMetrics, EtcdServerMetrics, etcdGauges } from '../api/etcd/index.js';
import { MvccStateMachine, type LeaseId } from '../mvcc/index.js';
import { ConureError, UnavailableError } from '../util/index.js';
import type { Logger } from '../util/index.js';
import type { HostPort } from './options.js';

/** Everything `conured` needs to start one member; produced from flags by conured.ts. */
export interface ConuredConfig {
  nodeId: string;
  dataDir: string;
  http: HostPort;
  raft: HostPort;
  /** etcd v3 gRPC listen address (voters only; arbiters serve no clients). */
  client: HostPort;
  advertiseHttp: string;
  advertiseRaft: string;
  bootstrap: boolean;
  /** `--force-new-cluster`: quorum-loss recovery from this member's log (node/recovery.ts). */
  forceNewCluster?: boolean;
  join: string[];
  joinBackoffMs: number;
  joinRetries: number;
  role: 'voter' | 'arbiter';
  heartbeatMs: number;
  electionTimeoutMs: number;
  snapshotEntries: number;
  /** Largest etcd Range response in bytes (`--range-response-bytes-max`; MvccLimits). */
  rangeResponseBytesMax?: number;
  /** --experimental-watch-progress-notify-interval, ms (etcd's default 10 min). */
  watchProgressNotifyMs?: number;
  /** Range response bytes built and not yet sent, over all calls (`--range-bytes-in-flight-max`). */
  rangeBytesInFlightMax?: number;
  /** Raft addresses to dial instead of what these peers advertise. */
  peerAddresses: ReadonlyMap<string, string>;
  /** The cluster secret: peers authenticate on the raft port and on member-only HTTP endpoints. */
  peerSecret?: PeerSecret;
  /** TLS on the etcd client port (`--cert-file`, `--key-file`, `--trusted-ca-file`, `--client-cert-auth`). */
  clientTls?: TlsConfig;
  /** Mutual TLS on the raft port (`--peer-cert-file`, `--peer-key-file`, `--peer-trusted-ca-file`, `--peer-client-cert-auth`). */
  peerTls?: TlsConfig;
  /** HTTPS on the HTTP API port (`--http-cert-file`, `--http-key-file`); its CA (`--http-trusted-ca-file`) verifies other members' HTTP. */
  httpTls?: TlsFiles;
  /** Test-only fault switch: acknowledge writes without waiting for fsync. */
  unsafeNoSync: boolean;
  /** Test-only fault switch: serve linearizable reads from local state, without ReadIndex. */
  unsafeStaleReads: boolean;
  /** Test-only fault switch: answer writes once proposed, before a quorum has them. */
  unsafeEarlyAck: boolean;
}

/** Certificate files (reloaded on change) and whether connecting clients must present one signed by their CA. */
export interface TlsConfig { files: TlsFiles; clientCertAuth: boolean }

export interface RunningConured {
  /** The bound HTTP port (useful with port 0). */
  httpPort: number;
  /** The bound etcd gRPC port, or 0 on an arbiter. */
  clientPort: number;
  close(): Promise<void>;
}

/**
 * Composition root of one member: storage → MVCC state machine → raft replicator → services →
 * HTTP (seed API, `/v3/*` gateway, probes) and etcd gRPC.
 * Layers only see the seams below them; this is the one place that knows them all.
 * `onFatal` is called when the member cannot continue (storage failure, join gave up).
 */
export async function startConured(cfg: ConuredConfig, log: Logger, onFatal: (err: unknown) => void): Promise<RunningConured> {
  const arbiter = cfg.role === 'arbiter';
  // Arbiters keep no state machine: an in-memory store that is never written stands in.
  // The raft log is durable and replays what the state store lost; the store is fsynced before
  // the log may be compacted behind it (RaftReplicator.maybeSnapshot).
  // etcd's server metrics, fed from here on; registered on /metrics below.
  const etcdMetrics = new EtcdServerMetrics();
  const store = arbiter ? new MemoryStateStore() : new LmdbStateStore({ dir: cfg.dataDir, fsyncOnCommit: false, unsafeNoSync: cfg.unsafeNoSync, onCommitSeconds: etcdMetrics.backendCommitSeconds });
  const sm = new MvccStateMachine(store, { minLeaseTtlSeconds: Math.ceil((1.5 * cfg.electionTimeoutMs) / 1000) });
  const fresh = !raftLogExists(cfg.dataDir);
  const memberHttp = new MemberHttp(cfg.httpTls);
  let bootstrap = cfg.bootstrap;
  if (bootstrap && fresh && cfg.join.length > 0 && await anySeedInCluster(cfg.join, cfg.advertiseHttp, memberHttp)) {
    log.warn({ seeds: cfg.join }, 'bootstrap_skipped_cluster_exists_joining_instead');
    bootstrap = false;
  }
  let replicator: RaftReplicator;
  try {
    replicator = await RaftReplicator.start({
      id: cfg.nodeId, role: cfg.role, dataDir: cfg.dataDir, raftListen: cfg.raft,
      advertiseRaft: cfg.advertiseRaft, advertiseHttp: cfg.advertiseHttp,
      stateMachine: sm, bootstrap, forceNewCluster: cfg.forceNewCluster === true,
      tickMs: cfg.heartbeatMs, electionTimeoutTicks: Math.max(2, Math.round(cfg.electionTimeoutMs / cfg.heartbeatMs)),
      snapshotEntries: cfg.snapshotEntries, logger: log, onFatal, peerAddresses: cfg.peerAddresses, observer: etcdMetrics,
      ...(cfg.peerSecret && { peerSecret: cfg.peerSecret }),
      ...(cfg.peerTls && { peerTls: cfg.peerTls }),
      memberHttp,
      unsafeNoSync: cfg.unsafeNoSync, unsafeStaleReads: cfg.unsafeStaleReads, unsafeEarlyAck: cfg.unsafeEarlyAck,
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  // Arbiters hold no data: no etcd API, and /kv refuses with the leader's address.
  const etcd: EtcdApi | undefined = arbiter ? undefined : createEtcdApi({
    store, sm, replicator, log,
    limits: {
      ...(cfg.rangeResponseBytesMax !== undefined && { rangeResponseBytesMax: cfg.rangeResponseBytesMax }),
      ...(cfg.rangeBytesInFlightMax !== undefined && { rangeBytesInFlightMax: cfg.rangeBytesInFlightMax }),
    },
    ...(cfg.watchProgressNotifyMs !== undefined && { watch: { progressIntervalMs: cfg.watchProgressNotifyMs } }),
    forwardKeepAlive: (id) => forwardKeepAlive(replicator, memberHttp, id),
    forwardMembership: membershipForwarder(replicator, memberHttp),
  });
  const kv: KvService = etcd
    ? etcd.kv
    : new RefusingKvService(() => new UnavailableError(`this member is an arbiter: it holds no data; send reads and writes to a voter${replicator.status().leaderHttp ? ` (the leader is at http://${replicator.status().leaderHttp})` : ''}`, 1));
  const metrics = new HttpMetrics({
    ...(etcd && etcdGauges(etcd)),
    conure_store_size_bytes: { help: 'Bytes used by the state store on disk', read: () => store.sizeBytes() },
    conure_applied_index: { help: 'Highest log index applied to the state machine', read: () => sm.appliedIndex() },
    conure_is_leader: { help: '1 when this member is the leader', read: () => (replicator.status().isLeader ? 1 : 0) },
    conure_raft_term: { help: 'Current raft term', read: () => replicator.stats().term },
    conure_raft_commit_index: { help: 'Raft commit index known to this member', read: () => replicator.stats().commit_index },
    conure_raft_log_size_bytes: { help: 'Bytes used by the raft log on disk', read: () => Number(replicator.stats().log_size_bytes ?? 0) },
  });
  etcdMetrics.register(metrics.registry, { replicator, store });
  const membership = new MembershipService(replicator);
  const app: FastifyInstance = createHttpApi({ kv, replicator, membership, metrics, snapshots: replicator, logger: log,
    ...(cfg.peerSecret && { peerAuth: cfg.peerSecret }), ...(cfg.httpTls && { tls: cfg.httpTls }) });
  if (etcd) registerEtcdGateway(app, etcd.services);
  let grpc: EtcdGrpcServer | undefined;
  let clientHttp: FastifyInstance | undefined;
  let clientListener: ClientListener | undefined;
  let clientPort = 0;
  try {
    if (etcd) {
      // etcd's client port: gRPC and HTTP/1.1 (/health, /version, /metrics, /v3/*) on one listener.
      grpc = createEtcdGrpcServer({ services: etcd.services, log, metrics: new EtcdGrpcMetrics(metrics.registry) });
      clientHttp = createEtcdClientHttp({ services: etcd.services, metrics: metrics.registry });
      await clientHttp.ready();
      clientListener = new ClientListener({ host: cfg.client.host, port: cfg.client.port, grpc: grpc.connectionInjector(), http: clientHttp.server, logger: log,
        ...(cfg.clientTls && { tls: cfg.clientTls }) });
      clientPort = await clientListener.start();
      etcd.services.clientUrl = `${cfg.clientTls ? 'https' : 'http'}://${hostOf(cfg.advertiseHttp)}:${clientPort}`;
    }
    await app.listen({ host: cfg.http.host, port: cfg.http.port });
  } catch (err) {
    await clientListener?.close();
    await clientHttp?.close();
    await grpc?.close();
    etcd?.close();
    await replicator.close();
    await store.close();
    throw err;
  }
  const address = app.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : cfg.http.port;
  log.info({ node_id: cfg.nodeId, role: cfg.role, scheme: memberHttp.scheme, http: `${cfg.http.host}:${httpPort}`, client: etcd ? `${cfg.client.host}:${clientPort}` : '', advertise_http: cfg.advertiseHttp, advertise_raft: cfg.advertiseRaft, data_dir: cfg.dataDir, applied_index: sm.appliedIndex() }, 'conured_started');

  const joining = new AbortController();
  // A bootstrap member whose only seed is itself (a one-member cluster) has nobody to join.
  if (cfg.join.some((seed) => !isSelf(seed, cfg.advertiseHttp))) {
    joinCluster({
      id: cfg.nodeId, raftAddr: cfg.advertiseRaft, httpAddr: cfg.advertiseHttp, role: cfg.role, seeds: cfg.join, fresh: fresh && !bootstrap,
      ...clusterOf(replicator),
      ...(etcd?.services.clientUrl && { clientUrl: etcd.services.clientUrl }),
      backoffMs: cfg.joinBackoffMs, retries: cfg.joinRetries, logger: log, signal: joining.signal,
      ...(cfg.peerSecret && { token: cfg.peerSecret.httpToken }), http: memberHttp,
    }).catch((err: Error) => { if (!joining.signal.aborted) onFatal(err); });
  } else if (etcd?.services.clientUrl) {
    // No join to carry it (the bootstrap member, or one restarted without seeds): publish this
    // member's client URL itself, so that every member's MemberList lists it.
    void publishClientUrl({ replicator, join: (body) => membership.join(body), id: cfg.nodeId, raftAddr: cfg.advertiseRaft, httpAddr: cfg.advertiseHttp, role: cfg.role, clientUrl: etcd.services.clientUrl,
      memberHttp, signal: joining.signal, log, ...(cfg.peerSecret && { token: cfg.peerSecret.httpToken }) });
  }

  let closing: Promise<void> | undefined;
  return {
    httpPort,
    clientPort,
    close: () => {
      closing ??= (async () => {
        joining.abort();
        await replicator.close(); // hands leadership over first when this member leads
        etcd?.close();
        await grpc?.close();
        await clientHttp?.close();
        await clientListener?.close();
        await app.close();
        await store.close();
        log.info({ node_id: cfg.nodeId }, 'conured_stopped');
      })();
      return closing;
    },
  };
}

/** The cluster id this member's data directory holds, for its join requests. */
function clusterOf(replicator: RaftReplicator): { cluster?: string } {
  const id = replicator.stats().cluster_id;
  return typeof id === 'string' ? { cluster: id } : {};
}

function hostOf(hostPort: string): string {
  return hostPort.slice(0, hostPort.lastIndexOf(':'));
}

/**
 * POSTs `body` (JSON) to `path` on the leader's HTTP API, as a follower does on behalf of a
 * client. Resolves with the answer's status and text; a leader that cannot be reached, or none
 * known, is an UnavailableError (clients retry).
 */
async function postToLeader(replicator: RaftReplicator, members: MemberHttp, path: string, body: unknown, what: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  const leaderHttp = replicator.status().leaderHttp;
  if (!leaderHttp) throw new UnavailableError(`no leader is known to ${what}; retry shortly`, 1, { reason: 'no_leader' });
  try {
    const res = await members.fetch(`${members.url(leaderHttp)}${path}`, {
      method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs),
      headers: { 'content-type': 'application/json' },
    });
    return { status: res.status, text: await res.text() };
  } catch (err) {
    // The leader went away or is slow: a client should retry (UNAVAILABLE), not give up (INTERNAL).
    throw new UnavailableError(`could not reach the leader at ${leaderHttp} to ${what} (${(err as Error).message}); retry shortly`, 1, { cause: err });
  }
}

/**
 * A follower forwards a lease keep-alive to the leader (leases live on the leader's lessor),
 * through the leader's JSON gateway. Returns the renewed TTL in seconds (≤ 0: lease not found).
 */
async function forwardKeepAlive(replicator: RaftReplicator, members: MemberHttp, id: LeaseId): Promise<number> {
  const { status, text } = await postToLeader(replicator, members, '/v3/lease/keepalive', { ID: String(id) }, 'renew the lease with', 5000);
  if (status !== 200) throw new ConureError(status === 404 ? 'not_found' : 'unavailable', `the leader refused the keep-alive: ${text.slice(0, 200)}`);
  const result = (JSON.parse(text.split('\n')[0]!) as { result?: { TTL?: string | number } }).result;
  return Number(result?.TTL ?? 0);
}

/**
 * A follower carries an etcd Cluster change (MemberAdd, MemberRemove, MemberUpdate,
 * MemberPromote) to the leader's JSON gateway, as etcd forwards it. The leader's refusal reaches
 * the client with the leader's gRPC code and text.
 */
function membershipForwarder(replicator: RaftReplicator, members: MemberHttp): MembershipForwarder {
  return async (method, body) => {
    const { status, text } = await postToLeader(replicator, members, `/v3/cluster/member/${method}`, body, 'change the membership', 15_000);
    if (status === 200) return;
    let answer: { code?: number; message?: string; error?: string } = {};
    try { answer = JSON.parse(text) as typeof answer; } catch { /* not the gateway's JSON */ }
    if (typeof answer.code === 'number' && answer.code > 0) throw new RpcStatusError(answer.code, answer.message ?? answer.error ?? text.slice(0, 300));
    throw new UnavailableError(`the leader answered ${status} to the membership change: ${text.slice(0, 300)}`, 1);
  };
}
