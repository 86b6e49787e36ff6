/**
 * One fault run and a profile of runs. A run:
 *
 *   launch cluster ─► workload ‖ nemesis (bounded) ─► heal ─► wait ready ─► final reads
 *      ─► stop cluster ─► check ─► results/<run-id>/<nemesis>-<workload>/
 *
 * Each run folder holds history.jsonl, nemesis.jsonl, nodes/<id>.log, summary.json and
 * timeline.svg. The profile folder holds summary.json with every run. See docs/fault-testing.md.
 */
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localLauncher, tmpfsUnavailableReason, type ClusterLauncher, type FaultCluster } from './cluster.js';
import { HistoryRecorder } from './history-recorder.js';
import { checkRegister, lostRegisterWrites } from './checker/register.js';
import { checkSet } from './checker/set.js';
import { checkLease } from './checker/lease.js';
import { pairOperations, type HistoryEvent } from './checker/history.js';
import { nemesisByName, runNemesis, unsupportedReason, type NemesisEvent } from './nemesis/nemesis.js';
import { workloadByName, type WorkloadOptions } from './workload/workload.js';
import { waitReady } from './workload/http-kv.js';
import { renderTimeline } from './report/timeline.js';
import { runPorcupine, type PorcupineResult } from './porcupine-harness.js';
import type { Profile } from './profiles.js';

/**
 * A bug the servers run with deliberately, to prove the suite catches it (see docs):
 * `stale-read` serves reads without ReadIndex (CONURE_UNSAFE_STALE_READS), `early-ack`
 * acknowledges writes before they commit (CONURE_UNSAFE_EARLY_ACK).
 */
export type Mutation = 'none' | 'stale-read' | 'early-ack';

export const MUTATION_ENV: Record<Mutation, Record<string, string>> = {
  'none': {}, 'stale-read': { CONURE_UNSAFE_STALE_READS: '1' }, 'early-ack': { CONURE_UNSAFE_EARLY_ACK: '1' },
};

/** The outcome of one (nemesis × workload) run. */
export interface RunSummary {
  nemesis: string;
  workload: string;
  /** pass: checked clean; fail: violation or loss; unknown: the checker could not decide; skipped; error: the run broke. */
  status: 'pass' | 'fail' | 'unknown' | 'skipped' | 'error';
  reason?: string;
  seed: number;
  mutation: Mutation;
  /** Cluster shape: members, of which arbiters. */
  members?: number;
  arbiters?: number;
  dir?: string;
  durationMs?: number;
  ops?: { ok: number; fail: number; info: number };
  faults?: number;
  /** true / false / 'unknown' (search bound hit). */
  linearizable?: boolean | 'unknown';
  lost?: number;
  unexpected?: number;
  recovered?: number;
  staleReads?: number;
  keys?: { checked: number; violations: number; unknown: number };
  /** Porcupine's verdict on the same history (register, with --porcupine). */
  porcupine?: PorcupineResult;
  /** The shrunk failing sub-history of the first violating key (register). */
  counterexample?: HistoryEvent[];
  details?: unknown;
}

/** Parameters of one run. */
export interface RunParams {
  profile: Profile;
  nemesis: string;
  workload: string;
  seed: number;
  mutation: Mutation;
  /** Folder of this run (created). */
  dir: string;
  launcher?: ClusterLauncher;
  /** A built porcupine harness (see porcupine-harness.ts): cross-check register verdicts. */
  porcupineBin?: string;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
}

/** Size of each member's tmpfs when the nemesis fills disks: room for a long run's log and state. */
const DISK_BYTES = 512 * 1024 * 1024;

/** Fewer acknowledged operations than this makes a run an error, not a pass. */
const RUN_OK_OPS_MIN = 10;

/** Small seeded PRNG (mulberry32) so a schedule can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs one (nemesis × workload) and writes its folder. Never throws: errors become status `error`. */
export async function runOne(p: RunParams): Promise<RunSummary> {
  const log = p.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const launcher = p.launcher ?? localLauncher;
  const shape = p.profile.shapes[p.seed % p.profile.shapes.length]!;
  const base: RunSummary = { nemesis: p.nemesis, workload: p.workload, status: 'error', seed: p.seed, mutation: p.mutation, members: shape.members, arbiters: shape.arbiters, dir: p.dir };
  const nemesis = nemesisByName(p.nemesis);
  const workload = workloadByName(p.workload);
  const skip = unsupportedReason(nemesis, shape.members);
  if (skip) return { ...base, status: 'skipped', reason: skip, dir: undefined };
  mkdirSync(join(p.dir, 'nodes'), { recursive: true });
  const dataRoot = mkdtempSync(join(tmpdir(), 'conure-fault-'));
  const recorder = new HistoryRecorder(join(p.dir, 'history.jsonl'));
  const nemesisLog = createWriteStream(join(p.dir, 'nemesis.jsonl'));
  const random = seededRandom(p.seed);
  const started = Date.now();
  let cluster: FaultCluster | undefined;
  let nemesisEvents: NemesisEvent[] = [];
  const abort = new AbortController();
  let summary: RunSummary = base;
  try {
    cluster = await launcher.launch({
      size: shape.members, arbiters: shape.arbiters, dataRoot, logDir: join(p.dir, 'nodes'), env: MUTATION_ENV[p.mutation],
      ...(nemesis.needs.disk && !tmpfsUnavailableReason() && { diskBytes: DISK_BYTES }),
    });
    const c = cluster;
    const wopts: WorkloadOptions = {
      workers: p.profile.workers, deadline: Date.now() + p.profile.runMs, opsMax: p.profile.opsMax,
      requestTimeoutMs: p.profile.requestTimeoutMs, thinkMs: p.profile.thinkMs, endpoints: () => c.endpoints(),
      etcdEndpoints: () => c.etcdEndpoints(),
      random, keyPrefix: `fault-${p.seed}`, signal: abort.signal,
    };
    log(`  ${p.nemesis} × ${p.workload}: running ${(p.profile.runMs / 1000).toFixed(0)} s on ${shape.members - shape.arbiters} voters${shape.arbiters ? ` + ${shape.arbiters} arbiter` : ''} (seed ${p.seed})`);
    const nemesisRun = runNemesis(nemesis, c, recorder, {
      durationMs: p.profile.runMs, quietMs: p.profile.quietMs, faultMs: p.profile.faultMs, faultsMax: p.profile.faultsMax,
    }, random, (e) => { nemesisLog.write(JSON.stringify(e) + '\n'); if (e.phase !== 'stop') log(`    nemesis ${e.phase}: ${e.action} ${e.targets.join(',')}`); }, abort.signal);
    const workloadRun = workload.run(recorder, wopts);
    // If the nemesis breaks (e.g. a restart fails) stop the workload too, then report.
    nemesisEvents = await nemesisRun.catch((err: Error) => { abort.abort(); throw err; });
    await workloadRun;
    if (!(await waitReady(() => c.endpoints(), 30_000))) throw new Error('the cluster did not become ready within 30 s after healing');
    await workload.final(recorder, { ...wopts, signal: undefined });
    summary = { ...base, status: 'pass' }; // provisional: the checkers decide below
  } catch (err) {
    summary = { ...base, status: 'error', reason: (err as Error).message };
    log(`    error: ${(err as Error).message}`);
  } finally {
    abort.abort();
    await cluster?.close().catch(() => undefined);
    await recorder.close().catch((err: Error) => { summary = { ...base, status: 'error', reason: `cannot write history.jsonl: ${err.message}` }; });
    await new Promise<void>((r) => nemesisLog.end(() => r()));
    rmSync(dataRoot, { recursive: true, force: true });
  }
  const events = recorder.events;
  const faults = nemesisEvents.filter((e) => e.phase === 'start').length;
  const ops = { ok: 0, fail: 0, info: 0 };
  for (const o of pairOperations(events)) ops[o.status]++;
  summary = { ...summary, durationMs: Date.now() - started, ops, faults };
  // A run that did nothing proves nothing: it must not read as a pass.
  if (summary.status !== 'error' && ops.ok < RUN_OK_OPS_MIN) summary = { ...summary, status: 'error', reason: `the workload made no progress (${ops.ok} ok operations)` };
  if (summary.status !== 'error' && p.nemesis !== 'none' && faults === 0) summary = { ...summary, status: 'error', reason: 'the nemesis injected no fault (run too short for its schedule?)' };
  let highlight = new Set<number>();
  if (summary.status !== 'error') {
    if (workload.checker === 'register') {
      const r = checkRegister(events, { deadlineMs: 120_000 });
      const lost = lostRegisterWrites(events);
      const bad = r.keys.filter((k) => k.verdict === 'not_linearizable');
      const unknown = r.keys.filter((k) => k.verdict === 'unknown');
      const lin = r.verdict === 'linearizable' ? true : r.verdict === 'not_linearizable' ? false : 'unknown';
      summary = {
        ...summary, linearizable: lin, lost: lost.length,
        keys: { checked: r.keys.length, violations: bad.length, unknown: unknown.length },
        status: lin === false || lost.length > 0 ? 'fail' : lin === 'unknown' ? 'unknown' : 'pass',
        ...(bad[0]?.counterexample && { counterexample: bad[0].counterexample }),
        ...((bad.length > 0 || lost.length > 0 || unknown.length > 0) && { details: { violations: bad.slice(0, 10).map((k) => ({ key: k.key, counterexample: k.counterexample, minimal: k.counterexampleMinimal })), lost: lost.slice(0, 50), unknown: unknown.map((k) => ({ key: k.key, reason: k.reason })) } }),
      };
      if (p.porcupineBin) {
        // An independent second opinion: disagreement means one checker is wrong, an error.
        const theirs = runPorcupine(p.porcupineBin, join(p.dir, 'history.jsonl'), 120_000);
        const ours = lin === true ? 'Ok' : lin === false ? 'Illegal' : 'Unknown';
        summary = { ...summary, porcupine: theirs };
        if (typeof theirs === 'string' && theirs !== 'Unknown' && ours !== 'Unknown' && theirs !== ours) {
          summary = { ...summary, status: 'error', reason: `checkers disagree: ours ${ours}, porcupine ${theirs}` };
        }
      }
      const ce = new Set(bad[0]?.counterexample ?? []);
      highlight = new Set(pairOperations(events).filter((o) => o.events.some((e) => ce.has(e))).map((o) => o.index));
    } else if (workload.checker === 'lease') {
      const l = checkLease(events);
      summary = {
        ...summary, linearizable: l.valid ? true : l.undecided ? 'unknown' : false, lost: l.violations.filter((v) => v.kind === 'missed-put').length,
        status: l.valid ? 'pass' : l.undecided ? 'unknown' : 'fail',
        ...(!l.valid && { reason: l.reason }),
        details: { leases: l.leases, keys: l.keys, watchers: l.watchers, closestExpiryMarginMs: l.closestExpiryMarginMs, violations: l.violations.slice(0, 20), violationCount: l.violationCount },
      };
    } else {
      const s = checkSet(events);
      summary = {
        ...summary, linearizable: s.staleReads.length === 0 && s.unexpectedCount === 0, lost: s.lostCount, unexpected: s.unexpectedCount,
        recovered: s.recoveredCount, staleReads: s.staleReads.length,
        status: s.valid ? 'pass' : 'fail',
        ...(!s.valid && { reason: s.reason ?? 'lost, unexpected or stale elements', details: { lost: s.lost, unexpected: s.unexpected, staleReads: s.staleReads.slice(0, 10) } }),
      };
    }
  }
  writeFileSync(join(p.dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  writeFileSync(join(p.dir, 'timeline.svg'), renderTimeline(events, nemesisEvents, {
    title: `${p.nemesis} × ${p.workload} — ${summary.status}${p.mutation !== 'none' ? ` (mutation ${p.mutation})` : ''} — seed ${p.seed}`,
    workers: p.profile.workers, highlight,
  }));
  return summary;
}

/** The one-line verdict printed per run, e.g. `kill × register: linearizable: true, lost: 0 …`. */
export function summaryLine(s: RunSummary): string {
  const name = `${s.nemesis} × ${s.workload}`;
  if (s.status === 'skipped') return `${name}: skipped (${s.reason})`;
  if (s.status === 'error') return `${name}: ERROR ${s.reason}${s.dir ? `  ${s.dir}` : ''}`;
  const lease = s.details as { leases?: { granted: number; expiriesObserved: number } } | undefined;
  const extra = {
    set: `, unexpected: ${s.unexpected}, recovered: ${s.recovered}, stale reads: ${s.staleReads}`,
    lease: `, leases: ${lease?.leases?.granted}, expiries seen: ${lease?.leases?.expiriesObserved}${s.reason ? `, ${s.reason}` : ''}`,
    register: `, keys: ${s.keys?.checked}`,
  }[workloadByName(s.workload).checker];
  const pc = s.porcupine === undefined ? '' : `, porcupine: ${typeof s.porcupine === 'string' ? s.porcupine : `error (${s.porcupine.error})`}`;
  return `${name}: linearizable: ${s.linearizable}, lost: ${s.lost}${extra}${pc}  [${s.status}; ops ok ${s.ops?.ok} fail ${s.ops?.fail} info ${s.ops?.info}; faults ${s.faults}]  ${s.dir}`;
}
