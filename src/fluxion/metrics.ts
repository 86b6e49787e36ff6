/**
 * Prometheus metrics of one Fluxion server. Each server owns its Registry (several servers can
 * run in one process in tests). Gauges read live values at scrape time; nothing on the hot path
 * does more than increment a counter or observe a histogram.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsSources {
  stats: () => { collections: number; documents: number; records: number; keyValues: number; estimatedBytes: number };
  connections: () => number;
}

export class FluxionMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'type'>;
  readonly walFsync: Histogram;
  readonly walBatchRecords: Histogram;
  readonly snapshotSeconds: Histogram;

  constructor(src: MetricsSources, processMetrics = true) {
    if (processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'fluxion_' });
    const r = [this.registry];
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({ name, help, registers: r, collect() { this.set(read()); } });
    };
    gauge('fluxion_records', 'Records held in memory', () => src.stats().records);
    gauge('fluxion_documents', 'Documents held in memory', () => src.stats().documents);
    gauge('fluxion_collections', 'Collections', () => src.stats().collections);
    gauge('fluxion_key_values', 'Key/value entries', () => src.stats().keyValues);
    gauge('fluxion_connections', 'Open WebSocket connections', src.connections);
    gauge('fluxion_data_estimated_bytes', 'Estimated bytes held by records, documents and key/values', () => src.stats().estimatedBytes);
    gauge('fluxion_memory_rss_bytes', 'Resident set size of the process', () => process.memoryUsage.rss());
    this.requests = new Counter({ name: 'fluxion_requests_total', help: 'Requests by message type', labelNames: ['type'], registers: r });
    this.walFsync = new Histogram({
      name: 'fluxion_wal_fsync_seconds', help: 'WAL fdatasync latency (one per group commit)', registers: r,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    });
    this.walBatchRecords = new Histogram({
      name: 'fluxion_wal_group_commit_records', help: 'Requests made durable per fsync', registers: r,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024],
    });
    this.snapshotSeconds = new Histogram({
      name: 'fluxion_snapshot_seconds', help: 'Time to write one snapshot', registers: r,
      buckets: [0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60],
    });
  }
}
