/**
 * Shared benchmark reporting: every benchmark produces `BenchRow`s; `printReport` renders
 * them as an aligned table and as one JSON document (`BENCH_JSON {...}` on its own line), so
 * humans read the table and scripts grep the JSON. Benchmarks never assert timings.
 */
export interface BenchRow {
  /** What was measured, e.g. `conuredb PUT 3-node`. */
  name: string;
  /** Parameters of this row, e.g. `{ clients: 64 }`. */
  params: Record<string, string | number>;
  /** Measured figures, e.g. `{ ops_per_s: 1234, p50_ms: 0.8, p99_ms: 3.1 }`. */
  metrics: Record<string, number>;
}

export interface BenchReport {
  suite: string;
  rows: BenchRow[];
  notes?: string[];
}

/** A module under bench/ named `*.bench.ts` default-exports one of these. */
export type BenchModule = (args: { quick: boolean }) => Promise<BenchReport>;

/** Latency recorder: collects samples in milliseconds and summarises percentiles. */
export class Latencies {
  private samples: number[] = [];
  record(ms: number): void { this.samples.push(ms); }
  get count(): number { return this.samples.length; }
  percentile(p: number): number {
    if (this.samples.length === 0) return 0;
    const sorted = Float64Array.from(this.samples).sort();
    const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[idx]!;
  }
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function formatTable(report: BenchReport): string {
  const paramKeys = [...new Set(report.rows.flatMap((r) => Object.keys(r.params)))];
  const metricKeys = [...new Set(report.rows.flatMap((r) => Object.keys(r.metrics)))];
  const header = ['name', ...paramKeys, ...metricKeys];
  const body = report.rows.map((r) => [
    r.name,
    ...paramKeys.map((k) => String(r.params[k] ?? '')),
    ...metricKeys.map((k) => (r.metrics[k] === undefined ? '' : String(round(r.metrics[k]!)))),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    `== ${report.suite} ==`,
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...body.map(line),
    ...(report.notes ?? []).map((n) => `note: ${n}`),
  ].join('\n');
}

export function printReport(report: BenchReport): void {
  console.log(formatTable(report));
  console.log(`BENCH_JSON ${JSON.stringify(report)}`);
}
