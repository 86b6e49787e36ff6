import { type WatchDelivery, type WatchHandle, type WatchHub, type WatchSink, type WatchSpec, MvccError } from '../../mvcc/index.js';
import { bytes, encodeEvent, eventBytes, saturated, type Header, type Msg } from './codec.js';

/** Limits of one Watch stream. */
export interface WatchStreamLimits {
  /** Most watches open on one stream. */
  watchesPerStreamMax: number;
  /** Bytes queued in the transport beyond which the stream's watchers fall back to catch-up. */
  bufferBytesMax: number;
  /** A fragmented watch response carries at most this many bytes of events. */
  fragmentBytesMax: number;
}

export const DEFAULT_WATCH_STREAM_LIMITS: WatchStreamLimits = {
  watchesPerStreamMax: 10_000,
  bufferBytesMax: 4 * 1024 * 1024,
  fragmentBytesMax: 1.5 * 1024 * 1024,
};

/** The transport under a watch stream: a gRPC duplex call or a gateway response. */
export interface WatchTransport {
  /** Sends one WatchResponse message (proto-loader object shape). */
  send(msg: Msg): void;
  /** Bytes queued and not yet flushed to the peer. */
  queuedBytes(): number;
}

/**
 * One client Watch stream: many watches multiplexed by watch id, each a hub watcher.
 * Implements etcd's stream protocol: a create is answered with `created` (header at the current
 * revision) before any event; ids are chosen by the client (`watch_id` > 0) or allocated from 0;
 * cancel answers `canceled`; a progress request is answered with watch id -1 at the current
 * revision once every watcher is synced; a compacted start revision cancels with
 * `compact_revision`. Deliveries larger than `fragmentBytesMax` are split when the watch asked
 * for `fragment`.
 * Ownership: created by the transport per stream; `close()` cancels every watch (on stream end).
 */
export class WatchStream {
  private readonly watches = new Map<number, WatchHandle>();
  private readonly fragment = new Set<number>();
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly hub: WatchHub,
    private readonly transport: WatchTransport,
    private readonly header: (revision?: number) => Header,
    private readonly limits: WatchStreamLimits = DEFAULT_WATCH_STREAM_LIMITS,
  ) {}

  /** Handles one WatchRequest message. Never throws: failures are reported on the stream. */
  handle(req: Msg): void {
    if (this.closed) return;
    try {
      if (req.create_request) this.create(req.create_request as Msg);
      else if (req.cancel_request) this.cancel(saturated((req.cancel_request as Msg).watch_id, 'watch_id'));
      else if (req.progress_request) this.progress();
    } catch {
      // Only a gateway client can send a malformed int64 (gRPC's decoder yields decimals): ignored.
    }
  }

  /** The transport drained: let backed-up watchers catch up. */
  drained(): void {
    this.hub.kick();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.watches.values()) h.cancel();
    this.watches.clear();
  }

  private create(m: Msg): void {
    const requested = saturated(m.watch_id, 'watch_id');
    let id: number;
    if (requested > 0) {
      id = requested;
    } else {
      while (this.watches.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    }
    const fail = (reason: string): void =>
      this.transport.send({ header: this.header(), watch_id: String(id), created: true, canceled: true, cancel_reason: reason });
    if (this.watches.has(id)) return fail('mvcc: duplicate watch ID provided on the WatchStream');
    if (this.watches.size >= this.limits.watchesPerStreamMax) return fail(`too many watches on one stream (limit ${this.limits.watchesPerStreamMax})`);
    const filters = Array.isArray(m.filters) ? (m.filters as unknown[]).map(String) : [];
    const spec: WatchSpec = {
      key: bytes(m.key),
      rangeEnd: bytes(m.range_end),
      startRevision: Math.max(0, saturated(m.start_revision, 'start_revision')),
      prevKv: m.prev_kv === true,
      noPut: filters.includes('NOPUT') || filters.includes('0'),
      noDelete: filters.includes('NODELETE') || filters.includes('1'),
      progressNotify: m.progress_notify === true,
    };
    if (m.fragment === true) this.fragment.add(id);
    // `created` goes out before registration so it precedes every event of this watch.
    this.transport.send({ header: this.header(), watch_id: String(id), created: true });
    try {
      this.watches.set(id, this.hub.watch(spec, this.sink(id)));
    } catch (err) {
      this.transport.send({ header: this.header(), watch_id: String(id), canceled: true, cancel_reason: err instanceof MvccError ? err.message : 'watch failed' });
    }
  }

  private cancel(id: number): void {
    const h = this.watches.get(id);
    if (!h) return;
    h.cancel();
    this.watches.delete(id);
    this.fragment.delete(id);
    this.transport.send({ header: this.header(), watch_id: String(id), canceled: true });
  }

  private progress(): void {
    for (const h of this.watches.values()) if (!h.synced()) return;
    this.transport.send({ header: this.header(), watch_id: '-1' });
  }

  private sink(id: number): WatchSink {
    return {
      ready: () => !this.closed && this.transport.queuedBytes() < this.limits.bufferBytesMax,
      deliver: (d: WatchDelivery) => {
        if (this.closed) return;
        if (d.canceled) {
          this.watches.delete(id);
          this.transport.send({
            header: this.header(d.revision), watch_id: String(id), canceled: true,
            compact_revision: String(d.compactRevision ?? 0), cancel_reason: d.cancelReason ?? '',
          });
          return;
        }
        const header = this.header(d.revision);
        if (!this.fragment.has(id)) {
          this.transport.send({ header, watch_id: String(id), events: d.events.map(encodeEvent) });
          return;
        }
        // Split into pieces of at most fragmentBytesMax; all but the last carry `fragment`.
        let piece: Msg[] = [];
        let size = 0;
        const pieces: Msg[][] = [];
        for (const e of d.events) {
          const n = eventBytes(e);
          if (piece.length > 0 && size + n > this.limits.fragmentBytesMax) {
            pieces.push(piece);
            piece = [];
            size = 0;
          }
          piece.push(encodeEvent(e));
          size += n;
        }
        pieces.push(piece);
        pieces.forEach((events, i) => this.transport.send({ header, watch_id: String(id), events, fragment: i < pieces.length - 1 }));
      },
    };
  }
}
