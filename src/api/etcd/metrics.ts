import { Counter, Histogram, type Registry } from 'prom-client';
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

/** Per-RPC counters and latency of the etcd gRPC server, registered on the caller's registry. */
export class EtcdGrpcMetrics {
  readonly requests: Counter<'method' | 'code'>;
  readonly latency: Histogram<'method'>;

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
  }

  record(method: string, code: number, seconds: number): void {
    this.requests.inc({ method, code: String(code) });
    this.latency.observe({ method }, seconds);
  }
}
