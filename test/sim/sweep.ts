/**
 * Seed sweep over the raft simulator.
 *   node dist/test/sim/sweep.js --seeds 100000 [--start 1] [--mutation countStaleVotes]
 *   node dist/test/sim/sweep.js --seed 1234 --verbose        (replay one seed with a trace)
 *   --driver-bug skipSync: a driver that never fsyncs (shows the crash model bites)
 * Progress goes to stderr; the last stdout line is the summary. Exit code 1 on any failure.
 */
import type { RaftMutation } from '../../src/raft/index.js';
import { runSim, type SimStats } from './cluster.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : undefined; };
const dist = process.argv[1]?.includes('/test/sim/') ? process.argv[1] : 'dist/test/sim/sweep.js';
const mutation = opt('mutation') as RaftMutation | undefined;
const driverBug = opt('driver-bug') as 'skipSync' | undefined;
const single = opt('seed');
const verbose = args.includes('--verbose');

if (single !== undefined) {
  const seed = Number(single);
  const r = runSim({ seed, mutation, driverBug, trace: verbose ? (l) => process.stderr.write(`${l}\n`) : undefined });
  console.log(`seed ${seed} scenario=${r.scenario} ${r.ok ? 'ok' : `FAILED: ${r.violation}`} ticks=${r.tick} ${JSON.stringify(r.stats)}`);
  process.exit(r.ok ? 0 : 1);
}

const seeds = Number(opt('seeds') ?? 1000);
const start = Number(opt('start') ?? 1);
const maxFailures = Number(opt('max-failures') ?? 20);
const t0 = performance.now();
let lastReport = t0;
const total: SimStats = { ticks: 0, elections: 0, commits: 0, reads: 0, crashes: 0, snapshotsSent: 0, confChanges: 0, arbiterLeaderships: 0, arbiterTrimmedChecked: 0, lost: 0 };
const failures: number[] = [];
for (let s = start; s < start + seeds; s++) {
  const r = runSim({ seed: s, mutation, driverBug });
  for (const k of Object.keys(total) as Array<keyof SimStats>) total[k] += r.stats[k];
  if (!r.ok) {
    failures.push(s);
    process.stderr.write(`\nFAIL seed ${s} (${r.scenario}): ${r.violation}\n  replay: node ${dist} --seed ${s}${mutation ? ` --mutation ${mutation}` : ''} --verbose\n`);
    if (failures.length >= maxFailures) { process.stderr.write(`stopping after ${maxFailures} failures\n`); break; }
  }
  const now = performance.now();
  if (now - lastReport > 5000) {
    lastReport = now;
    const done = s - start + 1;
    process.stderr.write(`[sim] ${done}/${seeds} seeds, ${failures.length} failures, ${(done / ((now - t0) / 1000)).toFixed(0)} seeds/s\n`);
  }
}
const secs = (performance.now() - t0) / 1000;
console.log(`sim sweep: seeds ${start}..${start + seeds - 1} (${seeds})${mutation ? ` mutation=${mutation}` : ''}: ${failures.length} failures${failures.length ? ` [${failures.slice(0, 10).join(', ')}]` : ''}; ` +
  `${total.ticks} ticks, ${total.elections} elections, ${total.commits} commits, ${total.reads} reads, ${total.crashes} crashes, ${total.snapshotsSent} snapshots, ${total.confChanges} conf changes, ${total.arbiterLeaderships} arbiter leaderships, ${total.lost} members lost, ${total.arbiterTrimmedChecked} arbiter entries checked trimmed; ${secs.toFixed(1)} s`);
process.exit(failures.length === 0 ? 0 : 1);
