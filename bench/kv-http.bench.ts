/**
 * Single-node seed-API benchmark: PUT then GET load at 1, 16 and 64 concurrent clients
 * against a real `conured` (fsync on). Prints ops/s and p50/p99 latency.
 */
import { startConured, tempDir } from '../test/support/conured-process.js';
import { httpLoad } from './load.js';
import type { BenchModule, BenchRow } from './report.js';

const bench: BenchModule = async ({ quick }) => {
  const { dir, cleanup } = tempDir('conure-bench-');
  const node = await startConured({ dataDir: dir });
  const rows: BenchRow[] = [];
  const durationMs = quick ? 1500 : 5000;
  const keys = 10_000;
  const value = Buffer.alloc(100, 0x76);
  try {
    for (const clients of [1, 16, 64]) {
      for (const op of ['PUT', 'GET'] as const) {
        process.stderr.write(`[bench] conuredb single-node ${op} clients=${clients}\n`);
        const r = await httpLoad({
          baseUrl: node.url, clients, durationMs,
          makeRequest: (i) => op === 'PUT'
            ? { method: 'PUT', path: `/kv?key=bench-${i % keys}`, body: value }
            : { method: 'GET', path: `/kv?key=bench-${i % keys}` },
        });
        rows.push({
          name: `conuredb 1-node ${op}`,
          params: { clients },
          metrics: { ops_per_s: r.ops / r.seconds, p50_ms: r.latencies.percentile(50), p99_ms: r.latencies.percentile(99), errors: r.errors },
        });
      }
    }
  } finally {
    await node.stop();
    cleanup();
  }
  return { suite: 'kv-http: seed REST API, single node, fsync on, 100-byte values', rows, notes: ['GET is linearizable (the default); closed-loop clients over keep-alive HTTP/1.1'] };
};
export default bench;
