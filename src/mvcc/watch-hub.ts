import { MvccError } from './errors.js';
import type { MvccStateMachine } from './mvcc-state-machine.js';
import { bytesToKey, resolveRange, type KeyBounds } from './ordered-keys.js';
import type { KeyValue, MvccEvent } from './types.js';

/** What a watcher asks for (etcd's WatchCreateRequest without the stream-level fields). */
export interface WatchSpec {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  /** First revision to report; 0 = changes after the current revision. */
  startRevision?: number;
  prevKv?: boolean;
  noPut?: boolean;
  noDelete?: boolean;
  progressNotify?: boolean;
}

/** An event as delivered, with `prevKv` resolved when the watcher asked for it. */
export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** One delivery to a watcher. `events` is empty for progress notifications and cancellations. */
export interface WatchDelivery {
  events: WatchEvent[];
  /** The store revision the delivery is current to (the response header's revision). */
  revision: number;
  /** Set when the watcher is cancelled because its start revision was compacted. */
  compactRevision?: number;
  canceled?: boolean;
  cancelReason?: string;
}

/**
 * Where a watcher's deliveries go (one per watcher; a gRPC stream hands out one per watch).
 * `ready()` false means the consumer is backed up: the hub then stops delivering live events to
 * that watcher and replays them later from the store, so a slow consumer never blocks writers
 * and never holds more than its transport buffer in memory. The sink must call
 * `WatchHub.kick()` when it becomes ready again (or rely on the hub's periodic sync).
 */
export interface WatchSink {
  ready(): boolean;
  deliver(d: WatchDelivery): void;
}

export interface WatchHubOptions {
  /** Period of the loop that catches up unsynced watchers (etcd: 100 ms). */
  syncIntervalMs?: number;
  /** History events read per catch-up batch. */
  historyBatchEventsMax?: number;
  /** Period of progress notifications for watchers that asked (etcd: 10 min). */
  progressIntervalMs?: number;
  /** Most watchers in the hub at once. */
  watchersMax?: number;
}

/** A registered watcher; `cancel()` removes it (idempotent). */
export interface WatchHandle {
  cancel(): void;
  /** True while the watcher delivers live events (not catching up from history). */
  synced(): boolean;
}

interface Watcher {
  spec: WatchSpec;
  bounds: KeyBounds;
  sink: WatchSink;
  /** Next revision this watcher has not yet seen. */
  nextRev: number;
  synced: boolean;
  canceled: boolean;
  /** A delivery happened since the last progress tick. */
  active: boolean;
}

/**
 * The watchable side of the MVCC store.
 *
 * ```
 *            apply ──events(rev)──►  synced watchers ──► sink.deliver   (sink ready)
 *                                        │ sink not ready
 *                                        ▼
 *   store history ──catch-up loop──► unsynced watchers (nextRev) ──► synced when caught up
 * ```
 *
 * A watcher created at a past revision starts unsynced and is fed from the store in bounded
 * batches; once it reaches the current revision it joins the synced set and is fed by apply.
 * Because apply and the catch-up loop run on the same JavaScript thread, no event is lost or
 * delivered twice across the switch: `nextRev` is the single cursor.
 * A watcher whose `nextRev` falls below the compacted revision is cancelled with
 * `compactRevision` set (etcd's behaviour); the client resumes from there.
 * Ownership: one hub per MvccStateMachine; it subscribes in the constructor; `close()` detaches.
 * Errors: `watch()` throws MvccError('invalid') when the hub is full.
 */
export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranged = new Set<Watcher>();
  private readonly unsynced = new Set<Watcher>();
  private readonly detach: () => void;
  private readonly syncTimer: NodeJS.Timeout;
  private readonly progressTimer: NodeJS.Timeout;
  private kickScheduled = false;
  private closed = false;
  private readonly batchMax: number;
  private readonly watchersMax: number;

  constructor(private readonly sm: MvccStateMachine, opts: WatchHubOptions = {}) {
    this.batchMax = opts.historyBatchEventsMax ?? 1000;
    this.watchersMax = opts.watchersMax ?? 100_000;
    this.detach = sm.addObserver({
      events: (rev, events) => this.onEvents(rev, events),
      compacted: () => this.kick(),
    });
    this.syncTimer = setInterval(() => this.syncUnsynced(), opts.syncIntervalMs ?? 100);
    this.syncTimer.unref();
    this.progressTimer = setInterval(() => this.progressTick(), opts.progressIntervalMs ?? 600_000);
    this.progressTimer.unref();
  }

  /** Number of registered watchers. */
  get size(): number { return this.watchers.size; }

  watch(spec: WatchSpec, sink: WatchSink): WatchHandle {
    if (this.closed) throw new MvccError('invalid', 'watch hub is closed');
    if (this.watchers.size >= this.watchersMax) throw new MvccError('invalid', `too many watchers (limit ${this.watchersMax})`);
    const current = this.sm.currentRevision();
    const start = spec.startRevision ?? 0;
    const w: Watcher = {
      spec,
      bounds: resolveRange(spec.key, spec.rangeEnd),
      sink,
      nextRev: start > 0 ? start : current + 1,
      synced: true,
      canceled: false,
      active: false,
    };
    this.watchers.add(w);
    if (w.bounds.single) {
      let set = this.byKey.get(w.bounds.start);
      if (!set) this.byKey.set(w.bounds.start, (set = new Set()));
      set.add(w);
    } else {
      this.ranged.add(w);
    }
    if (w.nextRev <= current) this.unsync(w);
    return { cancel: () => this.remove(w), synced: () => w.synced && !w.canceled };
  }

  /** Asks the catch-up loop to run soon (a sink became ready, a watcher fell behind). */
  kick(): void {
    if (this.kickScheduled || this.closed) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      this.syncUnsynced();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    clearInterval(this.syncTimer);
    clearInterval(this.progressTimer);
    for (const w of [...this.watchers]) this.remove(w);
  }

  private remove(w: Watcher): void {
    if (w.canceled) return;
    w.canceled = true;
    this.watchers.delete(w);
    this.unsynced.delete(w);
    if (w.bounds.single) {
      const set = this.byKey.get(w.bounds.start);
      set?.delete(w);
      if (set && set.size === 0) this.byKey.delete(w.bounds.start);
    } else {
      this.ranged.delete(w);
    }
  }

  private unsync(w: Watcher): void {
    w.synced = false;
    this.unsynced.add(w);
    this.kick();
  }

  private onEvents(rev: number, events: MvccEvent[]): void {
    const per = new Map<Watcher, MvccEvent[]>();
    const add = (w: Watcher, ev: MvccEvent): void => {
      if (!w.synced || w.nextRev > rev) return;
      let list = per.get(w);
      if (!list) per.set(w, (list = []));
      list.push(ev);
    };
    for (const ev of events) {
      const k = bytesToKey(ev.kv.key);
      const exact = this.byKey.get(k);
      if (exact) for (const w of exact) add(w, ev);
      for (const w of this.ranged) if (inBounds(k, w.bounds)) add(w, ev);
    }
    for (const [w, evs] of per) {
      if (!w.sink.ready()) {
        // Backed up: replay this revision (and later ones) from the store when it drains.
        w.nextRev = rev;
        this.unsync(w);
        continue;
      }
      w.nextRev = rev + 1;
      this.deliver(w, evs, rev);
    }
  }

  private deliver(w: Watcher, evs: MvccEvent[], revision: number): void {
    const out: WatchEvent[] = [];
    for (const ev of evs) {
      if (ev.type === 'put' ? w.spec.noPut : w.spec.noDelete) continue;
      const e: WatchEvent = { type: ev.type, kv: ev.kv };
      if (w.spec.prevKv && ev.prev) {
        const prev = this.sm.kvAt(ev.prev);
        if (prev) e.prevKv = prev;
      }
      out.push(e);
    }
    if (out.length === 0) return;
    w.active = true;
    w.sink.deliver({ events: out, revision });
  }

  /** One catch-up step for every unsynced watcher whose sink is ready. */
  private syncUnsynced(): void {
    if (this.closed) return;
    let more = false;
    const current = this.sm.currentRevision();
    const compacted = this.sm.compactedRevision();
    for (const w of [...this.unsynced]) {
      if (w.canceled) continue;
      if (w.nextRev < compacted) {
        this.remove(w);
        w.sink.deliver({ events: [], revision: current, compactRevision: compacted, canceled: true, cancelReason: 'mvcc: required revision has been compacted' });
        continue;
      }
      if (!w.sink.ready()) continue;
      if (w.nextRev <= current) {
        // A single key's history comes from the key index; a range scans the revisions.
        const { events, nextRev } = w.bounds.single
          ? this.sm.keyHistory(w.spec.key, w.nextRev, current, this.batchMax)
          : this.sm.history(w.nextRev, current, this.batchMax);
        const matching = w.bounds.single ? events : events.filter((ev) => inBounds(bytesToKey(ev.kv.key), w.bounds));
        w.nextRev = nextRev;
        this.deliver(w, matching, current);
      }
      if (w.nextRev > current) {
        w.synced = true;
        this.unsynced.delete(w);
      } else {
        more = true;
      }
    }
    if (more) this.kick();
  }

  private progressTick(): void {
    const rev = this.sm.currentRevision();
    for (const w of this.watchers) {
      if (!w.spec.progressNotify || !w.synced) continue;
      if (!w.active && w.sink.ready()) w.sink.deliver({ events: [], revision: rev });
      w.active = false;
    }
  }
}

function inBounds(k: string, b: KeyBounds): boolean {
  if (b.single) return k === b.start;
  return k >= b.start && (b.end === undefined || k < b.end);
}
