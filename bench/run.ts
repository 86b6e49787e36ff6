/**
 * Benchmark runner: `node dist/bench/run.js [name-filter...] [--quick]`.
 * Runs every `bench/*.bench.ts` module (or those whose file name contains a filter), printing
 * each report as a table and as JSON. Progress goes to stderr.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { printReport, type BenchModule } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick') || process.env.BENCH_QUICK === '1';
const filters = args.filter((a) => !a.startsWith('--'));
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no benchmarks match ${filters.join(', ') || '(none found)'}`);
  process.exit(1);
}
for (const f of files) {
  console.error(`[bench] running ${f}${quick ? ' (quick)' : ''}`);
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: BenchModule };
  printReport(await mod.default({ quick }));
}
