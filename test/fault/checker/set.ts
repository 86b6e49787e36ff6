/**
 * Checker for the set (append) workload: "every acknowledged add is present at the end".
 *
 * Events: `add` (value = the element; one element per add) and `read` (ok value = the array of
 * elements present). The final read is the last `ok` read in the history; the runner records it
 * after healing every fault. Element identity is by canonical JSON text.
 *
 * Classification of every element that was attempted or seen:
 *
 *   add outcome │ in final read │ class
 *   ────────────┼───────────────┼──────────────────────────────────────────────
 *   ok          │ yes           │ ok
 *   ok          │ no            │ LOST         (acknowledged, then gone: a violation)
 *   info        │ yes           │ recovered    (indeterminate, took effect: fine)
 *   info        │ no            │ (nothing)    (indeterminate, did not take effect: fine)
 *   fail        │ yes           │ UNEXPECTED   (reported failed, yet present: a violation)
 *   never added │ yes           │ UNEXPECTED   (phantom element: a violation)
 *
 * Additionally, a non-final `ok` read that misses an element whose add was acknowledged before
 * that read was invoked is a STALE read (a linearizability violation of the set).
 */
import { canon } from './register.js';
import { pairOperations, type HistoryEvent } from './history.js';

/** The verdict of a set history. */
export interface SetCheckResult {
  /** False on any lost, unexpected or stale observation, or when there is no final read. */
  valid: boolean;
  /** Why `valid` is false when it is not because of lost/unexpected/stale elements. */
  reason?: string;
  attempted: number;
  acknowledged: number;
  /** Acknowledged adds missing from the final read. */
  lost: unknown[];
  /** Elements in the final read that were never added or whose add failed. */
  unexpected: unknown[];
  /** Indeterminate adds present in the final read. */
  recovered: unknown[];
  /** Reads (by invocation index) that missed an add acknowledged before they started. */
  staleReads: { read: number; missing: unknown[] }[];
  finalReadSize: number;
}

/** Elements listed in a report are capped at this many per class (counts stay exact in the summary). */
const LIST_MAX = 100;

/** Checks a set-workload history. Throws InvalidArgumentError on malformed pairing. */
export function checkSet(events: readonly HistoryEvent[]): SetCheckResult & { lostCount: number; unexpectedCount: number; recoveredCount: number } {
  const ops = pairOperations(events);
  const adds = new Map<string, { value: unknown; status: 'ok' | 'fail' | 'info'; completeTime: number }>();
  const reads = ops.filter((o) => o.f === 'read' && o.status === 'ok');
  for (const o of ops) {
    if (o.f !== 'add') continue;
    const k = canon(o.input);
    if (adds.has(k)) throw new TypeError(`element ${k} is added twice; the set workload adds each element once`);
    adds.set(k, { value: o.input, status: o.status, completeTime: o.completeTime });
  }
  const final = reads.at(-1);
  const acknowledged = [...adds.values()].filter((a) => a.status === 'ok').length;
  const base = { attempted: adds.size, acknowledged, lost: [], unexpected: [], recovered: [], staleReads: [], finalReadSize: 0, lostCount: 0, unexpectedCount: 0, recoveredCount: 0 };
  if (!final) return { ...base, valid: false, reason: 'no successful final read' };
  if (!Array.isArray(final.output)) throw new TypeError(`read ${final.index}: value must be an array of elements`);
  const present = new Set(final.output.map(canon));
  const lost: unknown[] = [], unexpected: unknown[] = [], recovered: unknown[] = [];
  for (const [k, a] of adds) {
    const there = present.has(k);
    if (a.status === 'ok' && !there) lost.push(a.value);
    else if (a.status === 'fail' && there) unexpected.push(a.value);
    else if (a.status === 'info' && there) recovered.push(a.value);
  }
  for (const k of present) if (!adds.has(k)) unexpected.push(JSON.parse(k));
  const staleReads: SetCheckResult['staleReads'] = [];
  for (const r of reads) {
    if (r === final || !Array.isArray(r.output)) continue;
    const seen = new Set(r.output.map(canon));
    const missing = [...adds.values()].filter((a) => a.status === 'ok' && a.completeTime < r.invokeTime && !seen.has(canon(a.value))).map((a) => a.value);
    if (missing.length > 0) staleReads.push({ read: r.index, missing: missing.slice(0, LIST_MAX) });
  }
  return {
    ...base,
    valid: lost.length === 0 && unexpected.length === 0 && staleReads.length === 0,
    lost: lost.slice(0, LIST_MAX), unexpected: unexpected.slice(0, LIST_MAX), recovered: recovered.slice(0, LIST_MAX),
    lostCount: lost.length, unexpectedCount: unexpected.length, recoveredCount: recovered.length,
    staleReads, finalReadSize: present.size,
  };
}
