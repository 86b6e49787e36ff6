/**
 * A closed-loop HTTP load generator: `clients` workers each keep one request in flight over a
 * keep-alive connection for `durationMs`, recording per-request latency.
 */
import { Agent, request } from 'node:http';
import { Latencies } from './report.js';

export interface LoadResult { ops: number; errors: number; seconds: number; latencies: Latencies }

export async function httpLoad(opts: {
  baseUrl: string;
  clients: number;
  durationMs: number;
  /** Builds request i: method, path and optional body. */
  makeRequest: (i: number) => { method: string; path: string; body?: Buffer };
  /** Sent with every request (e.g. authorization). */
  headers?: Record<string, string>;
}): Promise<LoadResult> {
  const url = new URL(opts.baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.clients });
  const latencies = new Latencies();
  let ops = 0, errors = 0, seq = 0;
  const deadline = performance.now() + opts.durationMs;
  const one = (i: number) => new Promise<boolean>((resolve) => {
    const r = opts.makeRequest(i);
    const req = request({ host: url.hostname, port: url.port, method: r.method, path: r.path, agent, ...(opts.headers && { headers: opts.headers }) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.end(r.body);
  });
  const started = performance.now();
  await Promise.all(Array.from({ length: opts.clients }, async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const ok = await one(seq++);
      latencies.record(performance.now() - t0);
      if (ok) ops++; else errors++;
    }
  }));
  agent.destroy();
  return { ops, errors, seconds: (performance.now() - started) / 1000, latencies };
}
