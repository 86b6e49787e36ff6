/**
 * DatabaseCache: an in-memory copy of `databases/`, kept by one list plus a watch (an informer),
 * so API reads need no store round trip.
 *
 * ```
 *  sync: range databases/ at revision R → map; watch databases/ from R + 1 → apply events
 *  any watch failure or compaction → not synced (readers go to the store) → resync with backoff
 * ```
 *
 * Readers must check `synced` and fall back to the store when it is false, so a store outage is
 * seen as one (503), not hidden behind stale data. Read-your-writes is the caller's part: it
 * compares an entry's modRevision with the revision of its own last write (PlatformService).
 */
import type { Watcher } from '../../client/index.js';
import { createLogger, type Logger } from '../../util/index.js';
import { PlatformStore, type Versioned } from '../store/index.js';
import type { DatabaseRecord } from '../types.js';

export class DatabaseCache {
  private readonly store: PlatformStore;
  private readonly log: Logger;
  private map = new Map<string, Versioned<DatabaseRecord>>();
  private watcher: Watcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private generation = 0;
  private backoffMs = 100;
  /** True while the map follows the store. */
  synced = false;

  constructor(store: PlatformStore, log?: Logger) {
    this.store = store;
    this.log = log ?? createLogger('database-cache');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.sync();
  }

  stop(): void {
    this.running = false;
    this.synced = false;
    if (this.timer) clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** The cached record (only meaningful while `synced`). */
  get(id: string): Versioned<DatabaseRecord> | undefined { return this.map.get(id); }

  /** Every cached record, in id order. */
  list(): Versioned<DatabaseRecord>[] { return [...this.map.values()].sort((a, b) => (a.value.id < b.value.id ? -1 : a.value.id > b.value.id ? 1 : 0)); }

  private unsync(reason: string): void {
    if (!this.running) return;
    const was = this.synced;
    this.synced = false;
    this.watcher?.close();
    this.watcher = undefined;
    const gen = ++this.generation;
    if (was) this.log.warn({ reason }, 'database_cache_unsynced');
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => { if (gen === this.generation) void this.sync(); }, this.backoffMs);
    this.backoffMs = Math.min(2000, this.backoffMs * 2);
  }

  private async sync(): Promise<void> {
    if (!this.running) return;
    const gen = ++this.generation;
    let listed;
    try {
      listed = await this.store.list<DatabaseRecord>(this.store.keys.kind('databases'));
    } catch (err) {
      if (gen === this.generation) this.unsync(`list failed: ${(err as Error).message}`);
      return;
    }
    if (gen !== this.generation || !this.running) return;
    const map = new Map<string, Versioned<DatabaseRecord>>();
    for (const item of listed.items) map.set(item.value.id, item);
    this.map = map;
    const k = this.store.keys;
    const w = this.store.client.watch(k.kind('databases'), { prefix: true, fromRevision: listed.revision + 1 }, {
      onEvents: (events) => {
        if (gen !== this.generation) return;
        for (const e of events) {
          const id = k.idOf(e.kv.key);
          if (e.type === 'delete') { this.map.delete(id); continue; }
          try { this.map.set(id, PlatformStore.versioned<DatabaseRecord>(e.kv)); } catch { this.map.delete(id); }
        }
      },
      onCompacted: () => { if (gen === this.generation) this.unsync('compacted'); },
      onError: (err) => { if (gen === this.generation) this.unsync(err.message); },
    });
    this.watcher = w;
    try { await w.ready; } catch { /* onError handles it */ }
    if (gen !== this.generation || !this.running) return;
    this.synced = true;
    this.backoffMs = 100;
  }
}
