import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics of one HTTP server. Each server owns its own Registry, so several members
 * can run in one process (tests) without clashing. Gauges read live values at scrape time.
 */
export class HttpMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'code'>;
  readonly latency: Histogram<'method' | 'route'>;

  constructor(gauges: Record<string, { help: string; read: () => number }> = {}, defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'conure_process_' });
    this.requests = new Counter({
      name: 'conure_http_requests_total', help: 'HTTP requests by method, route and status code',
      labelNames: ['method', 'route', 'code'], registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'conure_http_request_duration_seconds', help: 'HTTP request latency by method and route',
      labelNames: ['method', 'route'], registers: [this.registry],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    for (const [name, g] of Object.entries(gauges)) {
      new Gauge({ name, help: g.help, registers: [this.registry], collect() { this.set(g.read()); } });
    }
  }
}
