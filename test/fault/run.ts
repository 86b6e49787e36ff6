#!/usr/bin/env node
/**
 * The fault-injection runner: `make fault PROFILE=short|long` (node dist/test/fault/run.js).
 *
 * For every (nemesis × workload) of the profile it starts a fresh system under test, runs the
 * workload under the nemesis, heals, reads the final state, checks the history and writes
 * results/<run-id>/<nemesis>-<workload>/. It prints one `linearizable: …, lost: …` line per run.
 *
 * Exit status: 0 all runs clean; 1 a violation or loss; 2 a run errored or was undecided.
 * With --expect-violation (the mutation check) the status is inverted: 0 only when at least one
 * run reported a violation or loss.
 */
import { Command, Option } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { crossRuns, PROFILES, WORKLOAD_NAMES, type Profile } from './profiles.js';
import { MUTATION_ENV, runOne, summaryLine, type Mutation, type RunSummary } from './runner.js';
import { NEMESIS_NAMES, nemesisByName } from './nemesis/nemesis.js';
import { workloadByName } from './workload/workload.js';
import { buildPorcupine } from './porcupine-harness.js';

const program = new Command('fault')
  .description('ConureDB fault-injection suite: nemesis × workload runs checked for linearizability and lost writes')
  .addOption(new Option('--profile <name>', 'run profile').choices(Object.keys(PROFILES)).default('short'))
  .option('--nemesis <list>', `comma-separated nemeses (default: the profile's); known: ${NEMESIS_NAMES.join(', ')}`)
  .option('--workload <list>', `comma-separated workloads (default: the profile's); known: ${WORKLOAD_NAMES.join(', ')}`)
  .option('--run-seconds <n>', 'override the time per run')
  .option('--seed <n>', 'seed of the first run (later runs use seed+1, …); default random')
  .addOption(new Option('--mutation <m>', 'deliberate bug to prove the suite catches it (see docs)').choices(Object.keys(MUTATION_ENV)).default('none'))
  .option('--porcupine', 'also check register histories with porcupine (needs go); disagreement is an error')
  .option('--expect-violation', 'succeed only if some run reports a violation (for mutations)')
  .option('--results <dir>', 'results root', 'results')
  .option('--run-id <id>', 'name of the results folder (default: time stamp)')
  .showHelpAfterError();

program.parse();
const o = program.opts<{ profile: string; nemesis?: string; workload?: string; runSeconds?: string; seed?: string; mutation: Mutation; expectViolation?: boolean; porcupine?: boolean; results: string; runId?: string }>();

const base = PROFILES[o.profile]!;
const list = (text: string | undefined) => text?.split(',').map((x) => x.trim()).filter(Boolean);
const nemeses = list(o.nemesis);
const workloads = list(o.workload);
const profile: Profile = {
  ...base,
  // With --nemesis or --workload: every chosen nemesis × every chosen workload (the other list
  // defaults to what the profile uses).
  ...((nemeses || workloads) && { runs: crossRuns(nemeses ?? [...new Set(base.runs.map((r) => r.nemesis))], workloads ?? [...new Set(base.runs.map((r) => r.workload))]) }),
  ...(o.runSeconds && { runMs: Math.round(Number(o.runSeconds) * 1000) }),
};
for (const r of profile.runs) {
  try {
    nemesisByName(r.nemesis);
    workloadByName(r.workload);
  } catch (err) {
    console.error(`fault: ${(err as Error).message}`);
    process.exit(2);
  }
}
if (!(profile.runMs > 0)) { console.error('--run-seconds must be a positive number'); process.exit(2); }
const seed0 = o.seed !== undefined ? Number(o.seed) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isInteger(seed0)) { console.error('--seed must be an integer'); process.exit(2); }
const runId = o.runId ?? new Date().toISOString().replace(/[:.]/g, '-');
const root = resolve(o.results, runId);
mkdirSync(root, { recursive: true });
const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() || undefined;

let porcupineBin: string | undefined;
if (o.porcupine) {
  try {
    porcupineBin = buildPorcupine();
  } catch (err) {
    console.error(`--porcupine: ${(err as Error).message}`);
    process.exit(2);
  }
}
console.error(`fault suite: profile ${profile.name}, ${profile.runs.length} runs, ${profile.runMs / 1000} s each, seed ${seed0}, mutation ${o.mutation}, results ${root}`);
const started = new Date();
const runs: RunSummary[] = [];
let seed = seed0;
for (const { nemesis, workload } of profile.runs) {
  const s = await runOne({ profile, nemesis, workload, seed: seed++, mutation: o.mutation, dir: join(root, `${nemesis}-${workload}`), ...(porcupineBin && { porcupineBin }) });
  runs.push(s);
  console.log(summaryLine(s));
}
const count = (st: RunSummary['status']) => runs.filter((r) => r.status === st).length;
const total = { pass: count('pass'), fail: count('fail'), unknown: count('unknown'), error: count('error'), skipped: count('skipped') };
writeFileSync(join(root, 'summary.json'), JSON.stringify({
  runId, profile: profile.name, seed: seed0, mutation: o.mutation, commit, started: started.toISOString(), finished: new Date().toISOString(),
  totals: total, runs: runs.map(({ counterexample: _c, details: _d, ...r }) => r),
}, null, 2) + '\n');
console.log(`fault suite: ${total.pass} clean, ${total.fail} with violations, ${total.unknown} undecided, ${total.error} errors, ${total.skipped} skipped — ${join(root, 'summary.json')}`);
for (const r of runs.filter((x) => x.status === 'fail' && x.counterexample)) {
  console.log(`\ncounterexample (${r.nemesis} × ${r.workload}, minimal failing sub-history):`);
  for (const e of r.counterexample!) console.log('  ' + JSON.stringify(e));
}
if (o.expectViolation) {
  const caught = total.fail > 0;
  console.log(caught ? `mutation ${o.mutation}: caught` : `mutation ${o.mutation}: NOT caught`);
  process.exit(caught ? 0 : 1);
}
process.exit(total.fail > 0 ? 1 : total.error + total.unknown > 0 ? 2 : 0);
