/**
 * Checker for the lease workload (workload/lease.ts): leases with short TTLs, keys attached to
 * them, keep-alives, and watchers on the key prefix that record every event they see.
 *
 * ## The history (JSONL, the common format of docs/fault-testing.md)
 *
 * Every line is an `invoke` or a completion of the same process, so the usual pairing applies.
 * Lease ids are decimal strings chosen by the client (an indeterminate grant is still
 * identifiable). Times are the recorder's monotonic nanoseconds.
 *
 *   f             process     key       invoke value                 ok value
 *   ────────────  ──────────  ────────  ───────────────────────────  ─────────────────────────────────────────
 *   grant         worker      –         {lease, ttl}  (requested s)  {lease, ttl}  (granted s)
 *   put           worker      etcd key  {lease}                      {lease, revision}
 *   keepalive     worker      –         {lease}                      {lease, ttl}  (ttl 0: the lease is gone)
 *   read          "setup"     prefix    null                         {keys: [etcd key…], revision}  (before the run)
 *   final-read    "final"     prefix    null                         {keys: [etcd key…], revision}
 *   watch         "watch-<i>" prefix    {fromRevision, endpoint}     {watchId}          (created / re-created)
 *   watch-event   "watch-<i>" –         null                         {revision, events: [{type, key, rev, lease?}],
 *                                                                      progress?: true}
 *   watch-broken  "watch-<i>" –         null                         {reason, compactRevision?}
 *
 * - A `watch-event` is recorded when a WatchResponse arrives: invoke and ok back to back, so its
 *   invocation time is the time of receipt. `type` is PUT or DELETE, `rev` the event's
 *   mod_revision, `lease` the PUT's lease. A progress notification is a `watch-event` with no
 *   events and `progress: true`; its `revision` says the watcher has seen everything up to there.
 * - A watch stream that breaks is recorded `watch-broken` and re-created (`watch`) from the
 *   revision after the last one the watcher covered. A start revision that was compacted away is
 *   a `watch` that completes `fail` with error `compacted` and value {compactRevision}, or a
 *   `watch-broken` with a `compactRevision`: the watcher lost events and is not judged (the
 *   verdict becomes undecided, never silently clean).
 * - The workload never deletes keys or revokes leases, so every DELETE under the prefix is an
 *   expiry, and each key is put at most once, attached to one lease.
 *
 * ## What is checked
 *
 * (a) Order. Each watcher sees revisions in non-decreasing order and never the same (revision,
 *     key) twice; all watchers see the same events in the same order over the revisions they all
 *     covered (so expiry deletes are never observed out of order, and none is skipped); every
 *     acknowledged put appears, at its revision, in every watcher that covered that revision;
 *     a watcher never sees a PUT of a key whose put failed or was never made.
 * (b) No early expiry. Let E(L) be the earliest time any watcher received a DELETE of a key of
 *     lease L. The lease was renewed at or after the invocation of each successful grant or
 *     keep-alive (ttl > 0), so E(L) ≥ max(invocation + ttl) − margin over those invoked before
 *     E(L). Both sides are the recorder's clock, so only `marginMs` of slack is needed.
 * (c) Expiry is final. No keep-alive invoked after E(L) returns ttl > 0; no keep-alive returns
 *     ttl > 0 after an earlier one returned 0 (the lease said it was gone); no watcher sees a PUT
 *     of a key after its DELETE; the final read holds no key whose expiry was observed.
 * (d) Expiry happens. The final read (after the workload's final wait) holds no key of any lease;
 *     every watcher that caught up to the final read's revision saw the DELETE of every key it
 *     saw put, and of every acknowledged put. A watcher that did not catch up is a violation.
 */
import { pairOperations, type HistoryEvent, type Operation } from './history.js';

/** Kinds of violation, by the property they break. */
export type LeaseViolationKind =
  | 'revision-order'          // (a) a watcher saw revisions go back, or an event twice
  | 'watchers-disagree'       // (a) two watchers saw different events over revisions both covered
  | 'missed-put'              // (a) an acknowledged put missing from a watcher that covered it
  | 'phantom-put'             // (a) a PUT of a key whose put failed, was never made, or with another lease
  | 'watch-gap'               // (a) a watch re-created past the revision it had covered
  | 'early-expiry'            // (b)
  | 'renewed-after-expiry'    // (c) keep-alive ttl > 0 invoked after the expiry was observed
  | 'revived'                 // (c) keep-alive ttl > 0 after one returned 0
  | 'key-reappeared'          // (c) a key seen again after its expiry
  | 'never-expired'           // (d) a lease key still present in the final read
  | 'expiry-not-observed'     // (d) a watcher that caught up never saw a key's DELETE
  | 'watcher-behind';         // (d) a watcher never caught up to the final read's revision

export interface LeaseViolation {
  kind: LeaseViolationKind;
  detail: string;
  lease?: string;
  key?: string;
  watcher?: string;
}

export interface LeaseCheckOptions {
  /** Slack for (b), in ms: an expiry observed up to this much before its bound is tolerated. Default 50. */
  marginMs?: number;
}

/** The verdict of a lease history. */
export interface LeaseCheckResult {
  /** False on any violation, when there is no final read, or when the history is undecided. */
  valid: boolean;
  /** Why `valid` is false (the first violation, or what is missing). */
  reason?: string;
  /** True when the checker could not judge (a watcher lost events to compaction; no final read). */
  undecided: boolean;
  /** Violations, at most 100 listed; `violationCount` is exact. */
  violations: LeaseViolation[];
  violationCount: number;
  /** Leases granted; renewed by at least one keep-alive (ttl > 0); with an expiry observed by a watcher. */
  leases: { granted: number; kept: number; expiriesObserved: number };
  keys: { put: number; acknowledged: number };
  watchers: { count: number; events: number; recreated: number; compacted: number };
  /** Smallest observed (expiry time − bound) in ms over all expired leases: how close (b) came. */
  closestExpiryMarginMs?: number;
  finalReadRevision?: number;
}

const LIST_MAX = 100;
const NS_PER_MS = 1e6;

interface LeaseState {
  id: string;
  grantOk: boolean;
  keys: Set<string>;
  /** Successful renewals (grant ok, keep-alive ttl > 0): invocation time and ttl (s). */
  renewals: { invoke: number; ttl: number; op: Operation }[];
  /** Completion times of keep-alives that returned ttl 0. */
  gone: number[];
  kept: boolean;
  /** Earliest receipt time of a DELETE of one of its keys. */
  expiredAt?: number;
}

interface Watched { type: string; key: string; rev: number; lease?: string; time: number; response: number }

interface WatcherState {
  name: string;
  from?: number;
  covered: number;
  events: Watched[];
  recreated: number;
  compacted?: number;
  deleted: Map<string, number>;
}

const obj = (v: unknown, what: string): Record<string, unknown> => {
  if (typeof v !== 'object' || v === null) throw new TypeError(`${what}: value must be an object`);
  return v as Record<string, unknown>;
};
const leaseOf = (o: Operation): string => {
  const id = obj(o.input, `${o.f} ${o.index}`).lease;
  if (typeof id !== 'string' || id === '') throw new TypeError(`${o.f} ${o.index}: value.lease must be a non-empty string`);
  return id;
};

/** Checks a lease-workload history. Throws InvalidArgumentError on malformed pairing, TypeError on malformed values. */
export function checkLease(events: readonly HistoryEvent[], options: LeaseCheckOptions = {}): LeaseCheckResult {
  const marginNs = (options.marginMs ?? 50) * NS_PER_MS;
  const ops = pairOperations(events);
  const violations: LeaseViolation[] = [];
  let violationCount = 0;
  const flag = (v: LeaseViolation) => { violationCount++; if (violations.length < LIST_MAX) violations.push(v); };

  const leases = new Map<string, LeaseState>();
  const lease = (id: string): LeaseState => {
    let l = leases.get(id);
    if (!l) leases.set(id, (l = { id, grantOk: false, keys: new Set(), renewals: [], gone: [], kept: false }));
    return l;
  };
  /** Key → lease and the put's outcome. */
  const puts = new Map<string, { lease: string; status: Operation['status']; revision?: number }>();
  const watchers = new Map<string, WatcherState>();
  const watcher = (p: string | number): WatcherState => {
    const name = String(p);
    let w = watchers.get(name);
    if (!w) watchers.set(name, (w = { name, covered: 0, events: [], recreated: 0, deleted: new Map() }));
    return w;
  };
  const finals: Operation[] = [];

  // Pass 1: lease operations and puts.
  for (const o of ops) {
    if (o.f === 'grant') {
      const l = lease(leaseOf(o));
      if (o.status === 'ok') {
        const ttl = Number(obj(o.output, `grant ${o.index}`).ttl);
        l.grantOk = true;
        if (ttl > 0) l.renewals.push({ invoke: o.invokeTime, ttl, op: o });
      }
    } else if (o.f === 'keepalive') {
      const l = lease(leaseOf(o));
      if (o.status !== 'ok') continue;
      const ttl = Number(obj(o.output, `keepalive ${o.index}`).ttl);
      if (ttl > 0) { l.renewals.push({ invoke: o.invokeTime, ttl, op: o }); l.kept = true; }
      else l.gone.push(o.completeTime);
    } else if (o.f === 'put') {
      const id = leaseOf(o);
      if (o.key === undefined) throw new TypeError(`put ${o.index}: key is required`);
      if (puts.has(o.key)) throw new TypeError(`key ${o.key} is put twice; the lease workload puts each key once`);
      const revision = o.status === 'ok' ? Number(obj(o.output, `put ${o.index}`).revision) : undefined;
      puts.set(o.key, { lease: id, status: o.status, ...(revision !== undefined && { revision }) });
      if (o.status !== 'fail') lease(id).keys.add(o.key);
    } else if (o.f === 'final-read' && o.status === 'ok') {
      finals.push(o);
    }
  }

  // Pass 2: watchers, in the order their events were received.
  let watchEvents = 0;
  for (const o of ops) {
    if (o.f === 'watch') {
      const w = watcher(o.process);
      const from = Number(obj(o.input, `watch ${o.index}`).fromRevision);
      if (o.status === 'fail' && o.events[1]?.error === 'compacted') {
        const cr = Number((o.events[1].value as Record<string, unknown> | undefined)?.compactRevision ?? 0);
        w.compacted = Math.max(w.compacted ?? 0, cr || from);
        continue;
      }
      if (o.status !== 'ok') continue;
      if (w.from === undefined) { w.from = from; w.covered = from - 1; continue; }
      w.recreated++;
      if (from > w.covered + 1) flag({ kind: 'watch-gap', watcher: w.name, detail: `${w.name} re-created its watch from revision ${from} after covering only up to ${w.covered}` });
    } else if (o.f === 'watch-broken' && o.status === 'ok') {
      const cr = Number(obj(o.output, `watch-broken ${o.index}`).compactRevision ?? 0);
      if (cr > 0) { const w = watcher(o.process); w.compacted = Math.max(w.compacted ?? 0, cr); }
    } else if (o.f === 'watch-event' && o.status === 'ok') {
      const w = watcher(o.process);
      const v = obj(o.output, `watch-event ${o.index}`);
      const evs = v.events;
      if (!Array.isArray(evs)) throw new TypeError(`watch-event ${o.index}: value.events must be an array`);
      if (v.progress === true) { w.covered = Math.max(w.covered, Number(v.revision)); continue; }
      for (const raw of evs) {
        const e = obj(raw, `watch-event ${o.index}`);
        const ev: Watched = { type: String(e.type), key: String(e.key), rev: Number(e.rev), time: o.invokeTime, response: o.index, ...(typeof e.lease === 'string' && { lease: e.lease }) };
        watchEvents++;
        const prev = w.events.at(-1);
        if (prev && (ev.rev < prev.rev || (ev.rev === prev.rev && sameRevision(w.events, ev.rev).some((x) => x.key === ev.key)))) {
          flag({ kind: 'revision-order', watcher: w.name, key: ev.key, detail: `${w.name} saw ${ev.type} ${ev.key}@${ev.rev} after ${prev.type} ${prev.key}@${prev.rev}` });
        }
        w.events.push(ev);
        w.covered = Math.max(w.covered, ev.rev);
        const put = puts.get(ev.key);
        if (ev.type === 'PUT') {
          if (!put || put.status === 'fail' || (ev.lease !== undefined && ev.lease !== put.lease)) {
            flag({ kind: 'phantom-put', watcher: w.name, key: ev.key, detail: `${w.name} saw PUT ${ev.key}@${ev.rev}${ev.lease ? ` (lease ${ev.lease})` : ''}, but ${!put ? 'no such put was made' : put.status === 'fail' ? 'its put failed' : `it was put with lease ${put.lease}`}` });
          }
          if (put && put.status !== 'fail') lease(put.lease).keys.add(ev.key);
          const del = w.deleted.get(ev.key);
          if (del !== undefined) flag({ kind: 'key-reappeared', watcher: w.name, key: ev.key, ...(put && { lease: put.lease }), detail: `${w.name} saw PUT ${ev.key}@${ev.rev} after its expiry DELETE@${del}` });
        } else if (ev.type === 'DELETE') {
          if (!w.deleted.has(ev.key)) w.deleted.set(ev.key, ev.rev);
          if (!put) { flag({ kind: 'phantom-put', watcher: w.name, key: ev.key, detail: `${w.name} saw DELETE ${ev.key}@${ev.rev} of a key never put` }); continue; }
          const l = lease(put.lease);
          if (l.expiredAt === undefined || ev.time < l.expiredAt) l.expiredAt = ev.time;
        }
      }
    }
  }

  // (a) every acknowledged put appears in every watcher that covered its revision.
  const judged = [...watchers.values()].filter((w) => w.from !== undefined && w.compacted === undefined);
  const putsSeen = new Map(judged.map((w) => [w, new Set(w.events.filter((e) => e.type === 'PUT').map((e) => `${e.rev}:${e.key}`))]));
  for (const [key, p] of puts) {
    if (p.status !== 'ok' || p.revision === undefined) continue;
    for (const w of judged) {
      if (p.revision < w.from! || p.revision > w.covered) continue;
      if (!putsSeen.get(w)!.has(`${p.revision}:${key}`)) {
        flag({ kind: 'missed-put', watcher: w.name, key, lease: p.lease, detail: `${w.name} covered revision ${p.revision} but never saw the acknowledged PUT ${key}@${p.revision}` });
      }
    }
  }
  // (a) all watchers agree over the revisions they all covered.
  for (let i = 0; i < judged.length; i++) {
    for (let j = i + 1; j < judged.length; j++) {
      const a = judged[i]!, b = judged[j]!;
      const lo = Math.max(a.from!, b.from!), hi = Math.min(a.covered, b.covered);
      const sa = a.events.filter((e) => e.rev >= lo && e.rev <= hi);
      const sb = b.events.filter((e) => e.rev >= lo && e.rev <= hi);
      const n = Math.max(sa.length, sb.length);
      for (let k = 0; k < n; k++) {
        const x = sa[k], y = sb[k];
        if (x && y && x.type === y.type && x.key === y.key && x.rev === y.rev) continue;
        const show = (e: Watched | undefined) => (e ? `${e.type} ${e.key}@${e.rev}` : 'nothing');
        flag({ kind: 'watchers-disagree', detail: `over revisions ${lo}..${hi}, event ${k}: ${a.name} saw ${show(x)}, ${b.name} saw ${show(y)}` });
        break;
      }
    }
  }

  // (b) and (c) per lease.
  let closest: number | undefined;
  let expiries = 0;
  for (const l of leases.values()) {
    const sorted = [...l.renewals].sort((x, y) => x.invoke - y.invoke);
    for (const r of sorted) {
      const zero = l.gone.find((t) => t < r.invoke);
      if (zero !== undefined && r.op.f === 'keepalive') {
        flag({ kind: 'revived', lease: l.id, detail: `lease ${l.id}: keep-alive invoked at ${ms(r.invoke)} ms returned ttl ${r.ttl} after one completed at ${ms(zero)} ms returned 0 (gone)` });
        break;
      }
    }
    if (l.expiredAt === undefined) continue;
    expiries++;
    const E = l.expiredAt;
    const before = sorted.filter((r) => r.invoke < E);
    const after = sorted.filter((r) => r.invoke >= E && r.op.f === 'keepalive');
    if (before.length > 0) {
      const last = before.reduce((m, r) => (r.invoke + r.ttl * 1e9 > m.invoke + m.ttl * 1e9 ? r : m));
      const bound = last.invoke + last.ttl * 1e9;
      const slackMs = (E - bound) / NS_PER_MS;
      closest = closest === undefined ? slackMs : Math.min(closest, slackMs);
      if (E < bound - marginNs) {
        flag({ kind: 'early-expiry', lease: l.id, detail: `lease ${l.id}: expiry observed at ${ms(E)} ms, ${(-slackMs).toFixed(0)} ms before ${last.op.f} invoked at ${ms(last.invoke)} ms + ttl ${last.ttl} s` });
      }
    }
    if (after.length > 0) {
      flag({ kind: 'renewed-after-expiry', lease: l.id, detail: `lease ${l.id}: keep-alive invoked at ${ms(after[0]!.invoke)} ms returned ttl ${after[0]!.ttl} after its expiry was observed at ${ms(E)} ms` });
    }
  }

  // (c), (d) against the final read and the watchers' coverage.
  const final = finals.at(-1);
  let undecided = false;
  let reason: string | undefined;
  if (!final) {
    undecided = true;
    reason = 'no successful final read';
  } else {
    const fv = obj(final.output, `final-read ${final.index}`);
    if (!Array.isArray(fv.keys)) throw new TypeError(`final-read ${final.index}: value.keys must be an array`);
    const finalRev = Number(fv.revision);
    for (const key of fv.keys.map(String)) {
      const p = puts.get(key);
      const l = p && leases.get(p.lease);
      if (l?.expiredAt !== undefined) flag({ kind: 'key-reappeared', key, lease: l.id, detail: `${key} is in the final read although its lease ${l.id} was observed expired at ${ms(l.expiredAt)} ms` });
      else flag({ kind: 'never-expired', key, ...(p && { lease: p.lease }), detail: `${key}${p ? ` (lease ${p.lease})` : ''} is still present in the final read at revision ${finalRev}` });
    }
    for (const w of watchers.values()) {
      if (w.from === undefined && w.compacted === undefined) flag({ kind: 'watcher-behind', watcher: w.name, detail: `${w.name} never had a watch created` });
    }
    for (const w of judged) {
      if (w.covered < finalRev) {
        flag({ kind: 'watcher-behind', watcher: w.name, detail: `${w.name} covered revisions only up to ${w.covered}, short of the final read's ${finalRev}` });
        continue;
      }
      const seenPut = new Set(w.events.filter((e) => e.type === 'PUT').map((e) => e.key));
      for (const [key, p] of puts) {
        if (!(seenPut.has(key) || (p.status === 'ok' && p.revision !== undefined && p.revision >= w.from!))) continue;
        if (!w.deleted.has(key)) flag({ kind: 'expiry-not-observed', watcher: w.name, key, lease: p.lease, detail: `${w.name} caught up to revision ${finalRev} but never saw the expiry DELETE of ${key} (lease ${p.lease})` });
      }
    }
  }
  const compacted = [...watchers.values()].filter((w) => w.compacted !== undefined);
  if (compacted.length > 0) {
    undecided = true;
    reason ??= `watcher(s) lost events to compaction: ${compacted.map((w) => `${w.name} (compact revision ${w.compacted})`).join(', ')}`;
  }
  if (violations.length > 0) reason = `${violations[0]!.kind}: ${violations[0]!.detail}`;
  const acknowledged = [...puts.values()].filter((p) => p.status === 'ok').length;
  return {
    valid: violationCount === 0 && !undecided,
    ...(reason !== undefined && { reason }),
    undecided: undecided && violationCount === 0,
    violations, violationCount,
    leases: { granted: [...leases.values()].filter((l) => l.grantOk).length, kept: [...leases.values()].filter((l) => l.kept).length, expiriesObserved: expiries },
    keys: { put: puts.size, acknowledged },
    watchers: { count: watchers.size, events: watchEvents, recreated: [...watchers.values()].reduce((s, w) => s + w.recreated, 0), compacted: compacted.length },
    ...(closest !== undefined && { closestExpiryMarginMs: Math.round(closest) }),
    ...(final && { finalReadRevision: Number(obj(final.output, 'final-read').revision) }),
  };
}

const ms = (ns: number) => (ns / NS_PER_MS).toFixed(0);

/** The trailing events of `events` at revision `rev`. */
function sameRevision(events: readonly Watched[], rev: number): Watched[] {
  const out: Watched[] = [];
  for (let i = events.length - 1; i >= 0 && events[i]!.rev === rev; i--) out.push(events[i]!);
  return out;
}
