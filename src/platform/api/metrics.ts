/**
 * The platform's Prometheus metrics (prom-client, own registry). Gauges are computed when
 * scraped from the sources given (one range read of operations/ and databases/ per scrape).
 *
 *   conure_platform_operations{state,type}          operations in the store
 *   conure_platform_reconcile_pass_seconds          duration of the last reconcile pass (leader)
 *   conure_platform_reconcile_passes_total          passes run by this replica
 *   conure_platform_leader                          1 on the leader replica
 *   conure_platform_instances{phase}                databases per status phase
 *   conure_platform_queue_depth                     queued or running operations
 *   conure_platform_workers_busy                    this replica's busy workers
 *   conure_platform_status_sync_pass_seconds        duration of the last status pass
 *   conure_platform_http_request_duration_seconds{method,route,status}
 */
import { Gauge, Histogram, Registry } from 'prom-client';
import type { DatabaseRecord, OperationRecord } from '../types.js';

export interface MetricsSources {
  operations(): Promise<OperationRecord[]>;
  databases(): Promise<DatabaseRecord[]>;
  leader(): boolean;
  queueDepth(): number;
  workersBusy(): number;
  reconcilePassSeconds(): number;
  reconcilePasses(): number;
  statusPassSeconds(): number;
}

export class PlatformMetrics {
  readonly registry = new Registry();
  private readonly http: Histogram<'method' | 'route' | 'status'>;

  constructor(src: MetricsSources) {
    const r = this.registry;
    new Gauge({
      name: 'conure_platform_operations', help: 'Operations in the store by state and type', labelNames: ['state', 'type'], registers: [r],
      async collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const o of await src.operations().catch(() => [])) counts.set(`${o.state}\u0000${o.type}`, (counts.get(`${o.state}\u0000${o.type}`) ?? 0) + 1);
        for (const [k, n] of counts) { const [state, type] = k.split('\u0000'); this.set({ state: state!, type: type! }, n); }
      },
    });
    new Gauge({
      name: 'conure_platform_instances', help: 'Databases by status phase', labelNames: ['phase'], registers: [r],
      async collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const d of await src.databases().catch(() => [])) counts.set(d.status.phase, (counts.get(d.status.phase) ?? 0) + 1);
        for (const [phase, n] of counts) this.set({ phase }, n);
      },
    });
    new Gauge({ name: 'conure_platform_reconcile_pass_seconds', help: 'Duration of the last reconcile pass', registers: [r], collect() { this.set(src.reconcilePassSeconds()); } });
    new Gauge({ name: 'conure_platform_reconcile_passes_total', help: 'Reconcile passes run by this replica', registers: [r], collect() { this.set(src.reconcilePasses()); } });
    new Gauge({ name: 'conure_platform_status_sync_pass_seconds', help: 'Duration of the last status sync pass', registers: [r], collect() { this.set(src.statusPassSeconds()); } });
    new Gauge({ name: 'conure_platform_leader', help: '1 when this replica is the leader', registers: [r], collect() { this.set(src.leader() ? 1 : 0); } });
    new Gauge({ name: 'conure_platform_queue_depth', help: 'Queued or running operations', registers: [r], collect() { this.set(src.queueDepth()); } });
    new Gauge({ name: 'conure_platform_workers_busy', help: 'Busy operation workers of this replica', registers: [r], collect() { this.set(src.workersBusy()); } });
    this.http = new Histogram({
      name: 'conure_platform_http_request_duration_seconds', help: 'API request duration', labelNames: ['method', 'route', 'status'], registers: [r],
      buckets: [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5],
    });
  }

  get contentType(): string { return this.registry.contentType; }

  render(): Promise<string> { return this.registry.metrics(); }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.http.observe({ method, route, status: String(status) }, seconds);
  }
}
