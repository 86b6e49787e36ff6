/**
 * Linearizability checker for a key-value register (read / write / cas).
 *
 * Algorithm: the Wing–Gong backtracking search with Lowe's memoisation ("just-in-time"
 * linearization, as in Lowe 2017 and porcupine). Calls and returns form one doubly linked list
 * ordered by time (calls before returns on ties, so operations whose intervals touch count as
 * concurrent). Walking the list, a call may be linearized when the model accepts it from the
 * current state; it is then lifted out of the list with its return. Reaching a return means the
 * operation it closes should already have been linearized: backtrack. A configuration
 * (set of linearized operations, model state) already explored is never explored again.
 *
 *   head ─► call(a) ─► call(b) ─► ret(a) ─► call(c) ─► ret(b) ─► ret(c) ─► ∅
 *             └─ linearize a: lift call(a) and ret(a), continue from head
 *
 * P-compositionality: a history of a map of independent registers is linearizable iff the
 * sub-history of every key is, so each key is searched on its own.
 *
 * Indeterminate operations (`info`, or never completed) return at +∞: they may be linearized
 * anywhere after their invocation. Linearizing one after every completed operation is the same
 * as "it never took effect", so the search needs no special case. An indeterminate read
 * constrains nothing and is dropped; a `fail` operation did not take effect and is dropped;
 * on keys without cas, an indeterminate write whose value is never read is dropped too (exact;
 * see pruneUnobservedIndeterminateWrites).
 *
 * The search is bounded (steps per key and a wall-clock deadline); when a bound is hit the key's
 * verdict is `unknown`, never a guess. On a violation the failing key's history is shrunk
 * greedily to a 1-minimal non-linearizable sub-history (removing any one operation of it
 * makes the rest linearizable, except that the writer of a value a kept operation observes is
 * always kept, so the counterexample explains itself), when the shrink budget allows.
 */
import { eventsOf, pairOperations, type HistoryEvent, type Operation } from './history.js';

/** Verdict for a key or a whole history. */
export type Verdict = 'linearizable' | 'not_linearizable' | 'unknown';

/** Bounds of a check. */
export interface RegisterCheckOptions {
  /** Search steps per key before the key's verdict is `unknown`; default 2,000,000. */
  stepsMaxPerKey?: number;
  /** Wall-clock budget for the whole check in ms; keys not finished by then are `unknown`; default 60,000. */
  deadlineMs?: number;
  /** Shrink a violation to a minimal sub-history; default true. */
  shrink?: boolean;
  /** Wall-clock budget for shrinking one key, in ms; default 10,000. */
  shrinkBudgetMs?: number;
}

/** The verdict for one key. */
export interface KeyResult {
  key: string;
  verdict: Verdict;
  /** Operations searched (after dropping fail and indeterminate reads). */
  ops: number;
  /** Search steps taken. */
  steps: number;
  /** For a violation: a small non-linearizable sub-history (events, time-ordered). */
  counterexample?: HistoryEvent[];
  /** True when the counterexample is 1-minimal (the shrink finished within its budget). */
  counterexampleMinimal?: boolean;
  /** Why the verdict is unknown. */
  reason?: string;
}

/** The verdict for a whole history. */
export interface RegisterCheckResult {
  verdict: Verdict;
  /** Keys in first-invocation order; violations first is left to the reporter. */
  keys: KeyResult[];
  /** Operations in the history, by status. */
  counts: { ok: number; fail: number; info: number };
}

/** Canonical JSON text of a register value; `undefined` and null both mean "absent". */
export function canon(v: unknown): string {
  return v === undefined ? 'null' : JSON.stringify(v);
}

/** A register operation ready for the search. */
interface SearchOp {
  op: Operation;
  call: number;
  ret: number;
  f: 'read' | 'write' | 'cas';
  /** read: value read; write: value written; cas: expected. */
  a: string;
  /** cas: new value. */
  b: string;
  /** Completed ok (its output is known). */
  known: boolean;
}

/** Applies `o` to state `s`: the next state, or undefined when the model rejects it. */
function step(s: string, o: SearchOp): string | undefined {
  switch (o.f) {
    case 'read': return o.a === s ? s : undefined;
    case 'write': return o.a;
    case 'cas':
      if (s === o.a) return o.b;
      return o.known ? undefined : s; // an acknowledged cas must have matched
  }
}

/** Turns paired operations of one key into search operations; throws on unsupported shapes. */
function toSearchOps(ops: readonly Operation[]): SearchOp[] {
  const out: SearchOp[] = [];
  for (const op of ops) {
    if (op.status === 'fail') continue;
    if (op.f === 'read') {
      if (op.status !== 'ok') continue;
      out.push({ op, call: op.invokeTime, ret: op.completeTime, f: 'read', a: canon(op.output), b: '', known: true });
    } else if (op.f === 'write') {
      out.push({ op, call: op.invokeTime, ret: op.completeTime, f: 'write', a: canon(op.input), b: '', known: op.status === 'ok' });
    } else if (op.f === 'cas') {
      if (!Array.isArray(op.input) || op.input.length !== 2) throw new TypeError(`operation ${op.index}: cas value must be [expected, new]`);
      out.push({ op, call: op.invokeTime, ret: op.completeTime, f: 'cas', a: canon(op.input[0]), b: canon(op.input[1]), known: op.status === 'ok' });
    } else {
      throw new TypeError(`operation ${op.index}: f ${JSON.stringify(op.f)} is not a register operation (read, write, cas)`);
    }
  }
  return out;
}

interface SearchOutcome { verdict: Verdict; steps: number; reason?: string }

/**
 * Wing–Gong/Lowe search over the operations of one key, starting from the absent value.
 * Exact memoisation: the linearized set is encoded as (highest linearized id, ids below it
 * that are not linearized), which stays short because operations are numbered in invocation
 * order and the search linearizes them roughly in that order.
 */
function search(ops: readonly SearchOp[], stepsMax: number, deadline: number): SearchOutcome {
  const n = ops.length;
  if (n === 0) return { verdict: 'linearizable', steps: 0 };
  // Sorted by invocation so that ids follow invocation order (keeps memo keys short).
  const sorted = [...ops].sort((x, y) => x.call - y.call || x.op.index - y.op.index);
  // Entries 0..n-1 are calls, n..2n-1 returns; 2n is the head sentinel.
  const HEAD = 2 * n;
  const order: number[] = [];
  for (let i = 0; i < 2 * n; i++) order.push(i);
  const timeOf = (e: number) => (e < n ? sorted[e]!.call : sorted[e - n]!.ret);
  order.sort((x, y) => timeOf(x) - timeOf(y) || (x < n ? 0 : 1) - (y < n ? 0 : 1) || (x % n) - (y % n));
  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  let last = HEAD;
  for (const e of order) { next[last] = e; prev[e] = last; last = e; }

  const lift = (c: number) => {
    const r = c + n;
    next[prev[c]!] = next[c]!; if (next[c]! >= 0) prev[next[c]!] = prev[c]!;
    next[prev[r]!] = next[r]!; if (next[r]! >= 0) prev[next[r]!] = prev[r]!;
  };
  const unlift = (c: number) => {
    const r = c + n;
    next[prev[r]!] = r; if (next[r]! >= 0) prev[next[r]!] = r;
    next[prev[c]!] = c; if (next[c]! >= 0) prev[next[c]!] = c;
  };

  const words = new Uint32Array(Math.ceil(n / 32));
  let maxLin = -1; // highest linearized id, recomputed on backtrack
  const memoKey = (state: string): string => {
    const holes: number[] = [];
    const lastWord = maxLin >> 5;
    for (let w = 0; w <= lastWord; w++) {
      const bits = words[w]!;
      if (bits === 0xffffffff) continue;
      for (let b = 0; b < 32; b++) {
        const id = (w << 5) | b;
        if (id > maxLin) break;
        if ((bits & (1 << b)) === 0) holes.push(id);
      }
    }
    return `${maxLin}/${holes.join(',')}/${state}`;
  };
  const isSet = (id: number) => (words[id >> 5]! & (1 << (id & 31))) !== 0;
  const set = (id: number) => { words[id >> 5]! |= 1 << (id & 31); if (id > maxLin) maxLin = id; };
  const clear = (id: number) => {
    words[id >> 5]! &= ~(1 << (id & 31));
    if (id === maxLin) { while (maxLin >= 0 && !isSet(maxLin)) maxLin--; }
  };

  const seen = new Set<string>();
  const stack: { call: number; state: string }[] = [];
  let state = 'null';
  let entry = next[HEAD]!;
  let steps = 0;
  while (next[HEAD]! !== -1) {
    if (++steps > stepsMax) return { verdict: 'unknown', steps, reason: `search step limit (${stepsMax}) reached` };
    if ((steps & 0xfff) === 0 && Date.now() > deadline) return { verdict: 'unknown', steps, reason: 'search deadline reached' };
    if (entry < n) {
      const nextState = step(state, sorted[entry]!);
      if (nextState !== undefined) {
        set(entry);
        const k = memoKey(nextState);
        if (!seen.has(k)) {
          seen.add(k);
          stack.push({ call: entry, state });
          state = nextState;
          lift(entry);
          entry = next[HEAD]!;
          continue;
        }
        clear(entry);
      }
      entry = next[entry]!;
    } else {
      // A return whose call is not linearized yet: undo the latest linearization.
      const top = stack.pop();
      if (!top) return { verdict: 'not_linearizable', steps };
      state = top.state;
      clear(top.call);
      unlift(top.call);
      entry = next[top.call]!;
    }
  }
  return { verdict: 'linearizable', steps };
}

/**
 * Shrinks a non-linearizable operation list greedily: first to the shortest violating prefix
 * (by invocation), then by dropping one operation at a time while the rest still violates.
 * Returns the smallest list found and whether it is 1-minimal.
 */
function shrink(ops: SearchOp[], budgetMs: number, stepsMax: number): { ops: SearchOp[]; minimal: boolean } {
  const deadline = Date.now() + budgetMs;
  const violates = (xs: SearchOp[]) => search(xs, stepsMax, deadline).verdict === 'not_linearizable';
  // Never drop the write (or cas) that produced a value some kept operation observes: without
  // it the counterexample degenerates to "a read of a value nobody wrote", true but useless.
  const produced = (o: SearchOp) => (o.f === 'cas' ? o.b : o.f === 'write' ? o.a : undefined);
  const observes = (x: SearchOp, value: string | undefined) => (x.f === 'read' || x.f === 'cas') && x.a !== 'null' && x.a === value;
  const observed = (xs: SearchOp[], except: SearchOp) => xs.some((x) => x !== except && observes(x, produced(except)));
  let cur = [...ops].sort((x, y) => x.call - y.call || x.op.index - y.op.index);
  // The first k operations by invocation, plus the writers of values they observe (a writer
  // may be invoked after the read that sees it).
  const prefix = (k: number) => {
    const head = cur.slice(0, k);
    const extra = cur.slice(k).filter((w) => head.some((x) => observes(x, produced(w))));
    return head.concat(extra);
  };
  // Binary search for a short violating prefix (violation is usually monotone in the prefix;
  // every candidate is verified, so a non-monotone case only costs shrink quality).
  let lo = 1, hi = cur.length;
  while (lo < hi && Date.now() < deadline) {
    const mid = (lo + hi) >> 1;
    if (violates(prefix(mid))) hi = mid; else lo = mid + 1;
  }
  if (hi < cur.length) { const p = prefix(hi); if (violates(p)) cur = p; }
  // Passes until nothing more can go: a removal can make an earlier-kept operation removable.
  let minimal = true;
  for (let changed = true, pass = 0; changed && minimal && pass < 100; pass++) {
    changed = false;
    for (let i = cur.length - 1; i >= 0; i--) {
      if (Date.now() > deadline) { minimal = false; break; }
      const o = cur[i]!;
      if (o.f !== 'read' && observed(cur, o)) continue;
      const candidate = cur.slice(0, i).concat(cur.slice(i + 1));
      if (violates(candidate)) { cur = candidate; changed = true; }
    }
  }
  return { ops: cur, minimal };
}

/**
 * Drops indeterminate writes whose value no read observes, when the key has no cas.
 *
 * Exact for read/write registers: in any linearization, after such a write W sets the value to
 * w, no read can be linearized until another write replaces w (every read returns an observed
 * value, and w is not one), so deleting W from the linearization keeps it valid; and deleting
 * an operation from the history only removes constraints. The converse needs no argument.
 * This matters in practice: every request cut off by a crash or refused with a 5xx is an
 * indeterminate write that stays concurrent with the rest of the history, and the search is
 * exponential in how many of them are pending at once.
 */
function pruneUnobservedIndeterminateWrites(ops: SearchOp[]): SearchOp[] {
  if (ops.some((o) => o.f === 'cas')) return ops;
  const observed = new Set(ops.filter((o) => o.f === 'read').map((o) => o.a));
  return ops.filter((o) => o.f !== 'write' || o.known || observed.has(o.a));
}

/**
 * Checks a register history (events as recorded, or already paired operations) for
 * linearizability, key by key. Events with an `f` other than read/write/cas make it throw a
 * TypeError: register and set histories are checked by different checkers.
 */
export function checkRegister(history: readonly HistoryEvent[] | readonly Operation[], opts: RegisterCheckOptions = {}): RegisterCheckResult {
  const ops: readonly Operation[] = history.length > 0 && 'invokeTime' in history[0]! ? (history as Operation[]) : pairOperations(history as HistoryEvent[]);
  const stepsMax = opts.stepsMaxPerKey ?? 2_000_000;
  const deadline = Date.now() + (opts.deadlineMs ?? 60_000);
  const counts = { ok: 0, fail: 0, info: 0 };
  const byKey = new Map<string, Operation[]>();
  for (const op of ops) {
    counts[op.status]++;
    const k = op.key ?? '';
    let list = byKey.get(k);
    if (!list) byKey.set(k, (list = []));
    list.push(op);
  }
  const keys: KeyResult[] = [];
  for (const [key, keyOps] of byKey) {
    const sops = pruneUnobservedIndeterminateWrites(toSearchOps(keyOps));
    if (Date.now() > deadline) { keys.push({ key, verdict: 'unknown', ops: sops.length, steps: 0, reason: 'check deadline reached before this key' }); continue; }
    const r = search(sops, stepsMax, deadline);
    const kr: KeyResult = { key, verdict: r.verdict, ops: sops.length, steps: r.steps, ...(r.reason && { reason: r.reason }) };
    if (r.verdict === 'not_linearizable') {
      if (opts.shrink ?? true) {
        const s = shrink(sops, opts.shrinkBudgetMs ?? 10_000, stepsMax);
        kr.counterexample = eventsOf(s.ops.map((o) => o.op));
        kr.counterexampleMinimal = s.minimal;
      } else {
        kr.counterexample = eventsOf(sops.map((o) => o.op));
        kr.counterexampleMinimal = false;
      }
    }
    keys.push(kr);
  }
  const verdict: Verdict = keys.some((k) => k.verdict === 'not_linearizable') ? 'not_linearizable'
    : keys.some((k) => k.verdict === 'unknown') ? 'unknown' : 'linearizable';
  return { verdict, keys, counts };
}

/** A key whose final read does not show the latest acknowledged write. */
export interface LostWrite {
  key: string;
  /** The value the final read returned (null: absent). */
  read: unknown;
  /** Values that could legitimately be last (acknowledged or indeterminate writes). */
  expectedOneOf: unknown[];
}

/**
 * "No acknowledged write lost", stated directly for registers: for each key, take the last `ok`
 * read invoked after every acknowledged write of the key completed (the final read). It must
 * return the value of a write that may be last: one not followed, in real time, by another
 * acknowledged write completed before the read began. Indeterminate writes may be last too.
 * Keys without such a read are not judged here. A `cas` that may have swapped counts as a
 * write of its new value. Every loss is also a linearizability violation; this count makes the
 * common failure ("the data is gone") obvious in a report.
 */
export function lostRegisterWrites(history: readonly HistoryEvent[]): LostWrite[] {
  const byKey = new Map<string, Operation[]>();
  for (const op of pairOperations(history)) {
    if (op.status === 'fail') continue;
    const k = op.key ?? '';
    let l = byKey.get(k);
    if (!l) byKey.set(k, (l = []));
    l.push(op);
  }
  const lost: LostWrite[] = [];
  for (const [key, ops] of byKey) {
    const writes = ops.filter((o) => o.f === 'write' || o.f === 'cas').map((o) => (o.f === 'cas' ? { ...o, input: (o.input as [unknown, unknown])[1] } : o));
    const acked = writes.filter((o) => o.status === 'ok');
    if (acked.length === 0) continue;
    const lastAck = acked.reduce((m, o) => Math.max(m, o.completeTime), -Infinity);
    const finals = ops.filter((o) => o.f === 'read' && o.status === 'ok' && o.invokeTime > lastAck);
    const final = finals.at(-1);
    if (!final) continue;
    const candidates = writes.filter((w) => w.invokeTime < final.completeTime
      && !acked.some((w2) => w2.invokeTime > w.completeTime && w2.completeTime < final.invokeTime));
    if (!candidates.some((w) => canon(w.input) === canon(final.output))) {
      lost.push({ key, read: final.output ?? null, expectedOneOf: candidates.map((w) => w.input) });
    }
  }
  return lost;
}
