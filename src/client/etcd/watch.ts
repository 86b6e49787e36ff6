/**
 * Watcher: one watch (a key or a prefix) on its own bidi stream, delivered in revision order,
 * that survives stream failures.
 *
 * ```
 *   create(start = next) ──► created ──► events … (next = last event's mod_revision + 1)
 *        ▲                                   │ stream error / end / endpoint down
 *        └──────── backoff 100 ms … 2 s ◄────┘ (next endpoint on unavailable)
 *
 *   canceled with compact_revision C (next < C was compacted away):
 *        onCompacted(C), then watch again from C. Events before C are lost: the caller relists
 *        (reading at some revision R) and ignores later events whose mod_revision ≤ R.
 * ```
 *
 * Invariants: events reach the handler at most once each and in order, as long as no
 * compaction intervenes; handlers run one batch at a time (an async handler is awaited before
 * the next batch). A revision's events arrive in one batch (etcd sends them together). When
 * `pendingBatchesMax` batches wait for a slow handler, the stream is paused (HTTP/2 flow control
 * holds the server back) until they are handled, so memory stays bounded. Transient failures
 * are reported to `onError` and retried forever until `close()`.
 */
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { ConureError } from '../../util/index.js';
import { fromWireKv, prefixEnd, safeInt, toBuffer } from './bytes.js';
import type { EtcdClient } from './client.js';
import type { Bytes, WatchEvent } from './types.js';
import type { Wire } from './wire.js';

export interface WatchOptions {
  /** Every key under `key`. */
  prefix?: boolean;
  /** Explicit end of the watched range (exclusive; "\0" = every key ≥ `key`); overrides `prefix`. */
  rangeEnd?: Bytes;
  /** Batches waiting for the handler before the stream is paused (default 64). */
  pendingBatchesMax?: number;
  /** First revision to deliver (0 = changes after now). */
  fromRevision?: number;
  /** Include each event's previous key-value. */
  prevKv?: boolean;
}

export type WatchHandler =
  | ((events: WatchEvent[], revision: number) => void | Promise<void>)
  | {
    onEvents(events: WatchEvent[], revision: number): void | Promise<void>;
    /** Revisions below `compactRevision` were compacted before they were delivered: relist. */
    onCompacted?(compactRevision: number): void | Promise<void>;
    /** A transient stream failure (the watcher retries by itself). */
    onError?(err: ConureError): void;
  };

export class Watcher {
  private stream: ClientDuplexStream<Wire, Wire> | undefined;
  private next: number;
  private closed = false;
  private backoffMs = 100;
  private retryTimer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  private paused = false;
  private progressWaiters: Array<(revision: number) => void> = [];
  private untrack: (() => void) | undefined;
  private resolveReady!: () => void;
  /** Resolves once the first stream is created on the server (events from then on are seen). */
  readonly ready: Promise<void>;

  constructor(private readonly client: EtcdClient, private readonly key: Bytes, private readonly opts: WatchOptions, private readonly handler: WatchHandler) {
    this.next = opts.fromRevision ?? 0;
    this.ready = new Promise((r) => { this.resolveReady = r; });
  }

  /** The next revision this watcher expects (0 before the first answer of a from-now watch). */
  nextRevision(): number { return this.next; }

  /** @internal Called by EtcdClient.watch. */
  start(): void {
    this.untrack = this.client.track(this);
    this.open();
  }

  /**
   * Asks the server for a progress notification (etcd 3.4's WatchProgressRequest) and resolves
   * with its revision once every batch received before it has been handled. On ConureDB and
   * etcd ≥ 3.4.31 the server sends it only when the watch is synced, so every event up to that
   * revision has then been handled; older etcd 3.4 may answer ahead of events still in flight
   * (callers that need certainty look for later events at or below the revision). Rejects with
   * `timeout` when no answer comes in `timeoutMs` (the stream may be reconnecting: ask again).
   */
  requestProgress(timeoutMs: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const stream = this.stream;
      if (this.closed) { reject(new ConureError('closed', 'the watcher is closed')); return; }
      if (!stream) { reject(new ConureError('unavailable', 'the watch stream is reconnecting; ask again')); return; }
      let timer: NodeJS.Timeout | undefined;
      const waiter = (rev: number) => { clearTimeout(timer); resolve(rev); };
      timer = setTimeout(() => {
        this.progressWaiters = this.progressWaiters.filter((w) => w !== waiter);
        reject(new ConureError('timeout', `no watch progress answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.progressWaiters.push(waiter);
      stream.write({ progress_request: {} });
    });
  }

  /** Batches received and not yet handled. */
  pendingBatches(): number { return this.pending; }

  /** Stops the watch; no handler runs after the current one. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.endStream();
    this.untrack?.();
  }

  private open(): void {
    this.retryTimer = undefined;
    if (this.closed) return;
    let opened: ReturnType<EtcdClient['openStream']>;
    try { opened = this.client.openStream('Watch', 'Watch'); } catch { return; }
    const { stream, endpoint, index } = opened;
    this.stream = stream;
    const key = toBuffer(this.key);
    const create: Wire = { key, start_revision: String(this.next), prev_kv: this.opts.prevKv ?? false, progress_notify: false };
    if (this.opts.rangeEnd !== undefined) create.range_end = toBuffer(this.opts.rangeEnd);
    else if (this.opts.prefix) create.range_end = prefixEnd(key);
    stream.on('data', (res: Wire) => { if (this.stream === stream) this.onResponse(res); });
    const failed = (err?: unknown) => {
      if (this.stream !== stream || this.closed) return;
      this.stream = undefined;
      if (err !== undefined) {
        const e = this.client.mapError(err, endpoint);
        if (e.code === 'unavailable') this.client.failedOver(index);
        if (typeof this.handler !== 'function') this.handler.onError?.(e);
      }
      this.retry();
    };
    stream.on('error', failed);
    stream.on('end', () => failed());
    stream.write({ create_request: create });
  }

  private retry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(2000, this.backoffMs * 2);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  private onResponse(res: Wire): void {
    let revision: number;
    try { revision = safeInt(res.header?.revision, 'header.revision'); } catch { return; }
    const compact = safeInt(res.compact_revision ?? 0, 'compact_revision');
    if (res.canceled) {
      this.endStream();
      if (compact > 0) {
        this.next = compact;
        this.enqueue(async () => { if (typeof this.handler !== 'function') await this.handler.onCompacted?.(compact); });
        this.enqueue(async () => { this.open(); });
      } else {
        this.retry();
      }
      return;
    }
    if (res.created) {
      this.backoffMs = 100;
      if (this.next === 0) this.next = revision + 1;
      this.resolveReady();
    }
    const raw = (res.events ?? []) as Wire[];
    if (!raw.length) {
      // A progress answer (watch id -1, no events): resolved after the batches before it.
      if (!res.created && this.progressWaiters.length && String(res.watch_id) === '-1') {
        const waiters = this.progressWaiters;
        this.progressWaiters = [];
        this.enqueue(async () => { for (const w of waiters) w(revision); });
      }
      return;
    }
    const events: WatchEvent[] = [];
    for (const ev of raw) {
      const kv = fromWireKv(ev.kv ?? {});
      if (kv.modRevision < this.next) continue; // already delivered before a reconnect
      const e: WatchEvent = { type: ev.type === 'DELETE' ? 'delete' : 'put', kv };
      if (ev.prev_kv && ev.prev_kv.key?.length) e.prevKv = fromWireKv(ev.prev_kv);
      events.push(e);
    }
    if (!events.length) return;
    this.next = events[events.length - 1]!.kv.modRevision + 1;
    const fn = typeof this.handler === 'function' ? this.handler : this.handler.onEvents.bind(this.handler);
    this.pending++;
    if (this.pending >= (this.opts.pendingBatchesMax ?? 64) && this.stream && !this.paused) {
      this.paused = true;
      this.stream.pause();
    }
    this.enqueue(async () => { await fn(events, revision); }, () => {
      this.pending--;
      if (this.paused && this.pending === 0) {
        this.paused = false;
        this.stream?.resume();
      }
    });
  }

  private enqueue(fn: () => Promise<void>, after?: () => void): void {
    this.chain = this.chain.then(async () => { if (!this.closed) await fn(); }).catch(() => { /* handler errors are the handler's */ }).finally(after);
  }

  private endStream(): void {
    const s = this.stream;
    this.stream = undefined;
    this.paused = false;
    if (s) { s.removeAllListeners('data'); s.on('error', () => {}); s.cancel(); }
  }
}
