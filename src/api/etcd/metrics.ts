import { status } from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { memberIdOf } from '../../mvcc/index.js';
import type { MemberObserver, Replicator } from '../../seams/index.js';
import type { StateStore } from '../../storage/index.js';
import type { EtcdApi } from './compose.js';

/**
 * Gauges of the etcd API's state, read at scrape time, in the `{ name: { help, read } }` shape
 * that `api/http/metrics.ts`'s HttpMetrics accepts. `conure_mvcc_keys` walks the in-memory
 * index (O(keys)); the others are O(1).
 */
export function etcdGauges(api: EtcdApi): Record<string, { help: string; read: () => number }> {
  return {
    conure_mvcc_revision: { help: 'Current MVCC store revision', read: () => api.mvcc.sm.currentRevision() },
    conure_mvcc_compacted_revision: { help: 'Revision below which history has been compacted', read: () => api.mvcc.sm.compactedRevision() },
    conure_mvcc_keys: { help: 'Live keys in the MVCC store', read: () => api.mvcc.sm.keyCount() },
    conure_mvcc_leases: { help: 'Granted leases', read: () => api.mvcc.sm.leases().length },
    conure_mvcc_watchers: { help: 'Registered watchers', read: () => api.hub.size },
    conure_mvcc_alarms: { help: 'Active alarms (NOSPACE, CORRUPT)', read: () => api.mvcc.sm.alarms().length },
  };
}

/** grpc-go's names of the status codes, as go-grpc-prometheus labels them (`grpc_code`). */
const CODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries({
  OK: status.OK, Canceled: status.CANCELLED, Unknown: status.UNKNOWN, InvalidArgument: status.INVALID_ARGUMENT,
  DeadlineExceeded: status.DEADLINE_EXCEEDED, NotFound: status.NOT_FOUND, AlreadyExists: status.ALREADY_EXISTS,
  PermissionDenied: status.PERMISSION_DENIED, ResourceExhausted: status.RESOURCE_EXHAUSTED, FailedPrecondition: status.FAILED_PRECONDITION,
  Aborted: status.ABORTED, OutOfRange: status.OUT_OF_RANGE, Unimplemented: status.UNIMPLEMENTED, Internal: status.INTERNAL,
  Unavailable: status.UNAVAILABLE, DataLoss: status.DATA_LOSS, Unauthenticated: status.UNAUTHENTICATED,
}).map(([name, code]) => [code, name]));

/** etcd's histogram buckets for disk latencies: 1 ms doubling to 8.192 s. */
const DISK_BUCKETS = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);
/** etcd's buckets for peer round trips: 0.1 ms doubling to 3.2768 s. */
const RTT_BUCKETS = Array.from({ length: 16 }, (_, i) => 0.0001 * 2 ** i);

/**
 * etcd 3.4's server metrics, by etcd's names, meanings and label names, beside Conure's own:
 *
 * | metric | type | value |
 * |---|---|---|
 * | etcd_server_has_leader | gauge | 1 when a leader is known |
 * | etcd_server_is_leader | gauge | 1 on the leader |
 * | etcd_server_leader_changes_seen_total | counter | changes to a known leader seen by this member |
 * | etcd_server_proposals_committed_total | gauge | the raft commit index |
 * | etcd_server_proposals_applied_total | gauge | the applied index |
 * | etcd_server_proposals_pending | gauge | proposals waiting to commit |
 * | etcd_server_proposals_failed_total | counter | proposals that failed (dropped, timed out) |
 * | etcd_disk_wal_fsync_duration_seconds | histogram | raft log fsyncs |
 * | etcd_disk_backend_commit_duration_seconds | histogram | state store write commits |
 * | etcd_mvcc_db_total_size_in_bytes | gauge | the state store's size |
 * | etcd_network_peer_round_trip_time_seconds{To} | histogram | heartbeat round trips, `To` the peer's etcd member id in hex |
 *
 * It is built before the member (the histograms are fed as it starts: pass it as the
 * replicator's `observer` and `backendCommitSeconds` to the store) and registered once the
 * HTTP server's registry exists (`register`).
 */
export class EtcdServerMetrics implements MemberObserver {
  private readonly walFsync = new Histogram({ name: 'etcd_disk_wal_fsync_duration_seconds', help: 'The latency distributions of fsync called by WAL.', buckets: DISK_BUCKETS, registers: [] });
  private readonly backendCommit = new Histogram({ name: 'etcd_disk_backend_commit_duration_seconds', help: 'The latency distributions of commit called by backend.', buckets: DISK_BUCKETS, registers: [] });
  private readonly peerRtt = new Histogram({ name: 'etcd_network_peer_round_trip_time_seconds', help: 'Round-Trip-Time histogram between peers', labelNames: ['To'], buckets: RTT_BUCKETS, registers: [] });

  walFsyncSeconds(seconds: number): void { this.walFsync.observe(seconds); }
  peerRoundTripSeconds(to: string, seconds: number): void { this.peerRtt.observe({ To: memberIdOf(to).toString(16) }, seconds); }
  readonly backendCommitSeconds = (seconds: number): void => { this.backendCommit.observe(seconds); };

  /** Adds every metric to `registry`; gauges and counters read the member at scrape time. */
  register(registry: Registry, member: { replicator: Replicator; store: StateStore }): void {
    const { replicator, store } = member;
    const stat = (name: string) => Number(replicator.stats()[name] ?? 0);
    const gauge = (name: string, help: string, read: () => number) => new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
    // A counter whose total the member keeps: set to it at scrape time.
    const counter = (name: string, help: string, read: () => number) => new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
    gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.', () => (replicator.status().leader !== '' || replicator.status().isLeader ? 1 : 0));
    gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.', () => (replicator.status().isLeader ? 1 : 0));
    counter('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.', () => stat('leader_changes_seen'));
    gauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.', () => replicator.stats().commit_index);
    gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.', () => replicator.stats().applied_index);
    gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.', () => stat('proposals_pending'));
    counter('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.', () => stat('proposals_failed'));
    gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', () => store.sizeBytes());
    for (const m of [this.walFsync, this.backendCommit, this.peerRtt]) registry.registerMetric(m);
  }
}

/**
 * Per-RPC counters and latency of the etcd gRPC server, registered on the caller's registry:
 * Conure's own, and go-grpc-prometheus's `grpc_server_handled_total` (labels `grpc_type`,
 * `grpc_service`, `grpc_method`, `grpc_code`) as etcd exports it.
 */
export class EtcdGrpcMetrics {
  readonly requests: Counter<'method' | 'code'>;
  readonly latency: Histogram<'method'>;
  readonly handled: Counter<'grpc_type' | 'grpc_service' | 'grpc_method' | 'grpc_code'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'conure_etcd_grpc_requests_total', help: 'etcd gRPC unary requests by method and gRPC status code',
      labelNames: ['method', 'code'], registers: [registry],
    });
    this.latency = new Histogram({
      name: 'conure_etcd_grpc_request_duration_seconds', help: 'etcd gRPC unary request latency by method',
      labelNames: ['method'], registers: [registry],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    this.handled = new Counter({
      name: 'grpc_server_handled_total', help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: ['grpc_type', 'grpc_service', 'grpc_method', 'grpc_code'], registers: [registry],
    });
  }

  /** A finished unary call; `method` is `Service.Method` as in rpc.proto. */
  record(method: string, code: number, seconds: number): void {
    this.requests.inc({ method, code: String(code) });
    this.latency.observe({ method }, seconds);
    this.finished('unary', method, code);
  }

  /** A finished call of any type (`unary`, `server_stream`, `bidi_stream`). */
  finished(type: 'unary' | 'server_stream' | 'bidi_stream', method: string, code: number): void {
    const [service, name] = method.split('.') as [string, string];
    this.handled.inc({ grpc_type: type, grpc_service: `etcdserverpb.${service}`, grpc_method: name, grpc_code: CODE_NAMES[code] ?? 'Unknown' });
  }
}
