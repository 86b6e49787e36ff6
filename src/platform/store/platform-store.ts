/**
 * PlatformStore: typed JSON records over the etcd v3 client, with optimistic concurrency.
 * The key layout is documented in keys.ts.
 *
 * Every write can be guarded by the mod revision it was read at (`expectModRevision`):
 *   expectModRevision = r  → written only if the key's mod revision is still r
 *   expectModRevision = 0  → written only if the key does not exist (create)
 *   undefined              → unconditional
 * A failed guard throws StoreConflictError (`conflict`, HTTP 409) naming the key; the caller
 * re-reads and retries or gives up. Store failures are the client's ConureErrors
 * (`unavailable` when unreachable). Values that are not JSON throw `invalid_argument`.
 */
import { type EtcdClient, compare, op, valueJson, type Compare, type KeyValue, type TxnOp } from '../../client/index.js';
import { ConureError } from '../../util/index.js';
import type { BackupRecord, DatabaseRecord, EventRecord, InstanceSecret, OperationRecord } from '../types.js';
import { KeyLayout, DEFAULT_PREFIX } from './keys.js';
import type { TenantRecord, Versioned } from './records.js';

/** A guarded write lost the race (or a create found the key already there). */
export class StoreConflictError extends ConureError {
  constructor(readonly key: string, message = `${key} changed since it was read`) { super('conflict', message); }
}

export interface PlatformStoreOptions {
  /** Root of every platform key; must end with '/'. Default `/conure-platform/`. */
  prefix?: string;
  /** Clock for event sequence numbers (tests inject one). */
  now?: () => number;
}

export interface WriteOptions {
  /** Guard: see the file header. */
  expectModRevision?: number;
  /** Lease id to bind the key to. */
  lease?: string;
}

export class PlatformStore {
  readonly keys: KeyLayout;
  private readonly now: () => number;
  private eventCounter = 0;

  constructor(readonly client: EtcdClient, opts: PlatformStoreOptions = {}) {
    this.keys = new KeyLayout(opts.prefix ?? DEFAULT_PREFIX);
    this.now = opts.now ?? Date.now;
  }

  /** The guard compare for `expectModRevision` (none when undefined). */
  static guard(key: string, expectModRevision: number | undefined): Compare[] {
    if (expectModRevision === undefined) return [];
    return [expectModRevision === 0 ? compare.absent(key) : compare.modRevision(key, '==', expectModRevision)];
  }

  /** Decodes a key-value holding JSON. */
  static versioned<T>(kv: KeyValue): Versioned<T> {
    return { value: valueJson<T>(kv), key: kv.key, modRevision: kv.modRevision, createRevision: kv.createRevision };
  }

  // ---- generic ----

  async read<T>(key: string): Promise<Versioned<T> | undefined> {
    const kv = await this.client.get(key);
    return kv ? PlatformStore.versioned<T>(kv) : undefined;
  }

  /** Every record under `prefix`, in key order, read at one revision. */
  async list<T>(prefix: string, opts: { limit?: number } = {}): Promise<{ items: Versioned<T>[]; revision: number; more: boolean }> {
    const r = await this.client.range(prefix, { prefix: true, limit: opts.limit ?? 0 });
    return { items: r.kvs.map((kv) => PlatformStore.versioned<T>(kv)), revision: r.revision, more: r.more };
  }

  /** Keys under `prefix` (no values). */
  async listKeys(prefix: string): Promise<string[]> {
    return (await this.client.range(prefix, { prefix: true, keysOnly: true })).kvs.map((kv) => kv.key);
  }

  /** How many keys are under `prefix`. */
  async count(prefix: string): Promise<number> {
    return (await this.client.range(prefix, { prefix: true, countOnly: true })).count;
  }

  /** Writes `value` as JSON; returns the new mod revision. Throws StoreConflictError on a failed guard. */
  async write<T>(key: string, value: T, opts: WriteOptions = {}): Promise<number> {
    const put = op.putJson(key, value, opts.lease ? { lease: opts.lease } : undefined);
    if (opts.expectModRevision === undefined) return (await this.client.putJson(key, value, opts.lease ? { lease: opts.lease } : {})).revision;
    const r = await this.client.runTxn({ compare: PlatformStore.guard(key, opts.expectModRevision), success: [put] });
    if (!r.succeeded) throw new StoreConflictError(key, opts.expectModRevision === 0 ? `${key} already exists` : undefined);
    return r.revision;
  }

  /** Deletes `key`; false when it was absent. Throws StoreConflictError on a failed guard. */
  async remove(key: string, opts: { expectModRevision?: number } = {}): Promise<boolean> {
    if (opts.expectModRevision === undefined) return (await this.client.delete(key)).deleted > 0;
    const r = await this.client.runTxn({ compare: PlatformStore.guard(key, opts.expectModRevision), success: [op.delete(key)] });
    if (!r.succeeded) throw new StoreConflictError(key);
    const d = r.responses[0];
    return d?.type === 'delete' && d.deleted > 0;
  }

  /** Runs guarded ops atomically; throws StoreConflictError (naming `what`) when a compare fails. */
  async atomically(compares: Compare[], ops: TxnOp[], what = 'records'): Promise<number> {
    const r = await this.client.runTxn({ compare: compares, success: ops });
    if (!r.succeeded) throw new StoreConflictError(what, `${what} changed concurrently`);
    return r.revision;
  }

  // ---- tenants ----
  getTenant(id: string) { return this.read<TenantRecord>(this.keys.tenant(id)); }
  async listTenants(): Promise<Versioned<TenantRecord>[]> { return (await this.list<TenantRecord>(this.keys.kind('tenants'))).items; }
  putTenant(t: TenantRecord, expectModRevision?: number) { return this.write(this.keys.tenant(t.id), t, { expectModRevision }); }
  deleteTenant(id: string, expectModRevision?: number) { return this.remove(this.keys.tenant(id), { expectModRevision }); }

  // ---- databases ----
  getDatabase(id: string) { return this.read<DatabaseRecord>(this.keys.database(id)); }
  /** Every database, or only `tenant`'s (filtered after one range read). */
  async listDatabases(opts: { tenant?: string } = {}): Promise<Versioned<DatabaseRecord>[]> {
    const { items } = await this.list<DatabaseRecord>(this.keys.kind('databases'));
    return opts.tenant === undefined ? items : items.filter((d) => d.value.tenant === opts.tenant);
  }
  putDatabase(db: DatabaseRecord, expectModRevision?: number) { return this.write(this.keys.database(db.id), db, { expectModRevision }); }
  deleteDatabase(id: string, expectModRevision?: number) { return this.remove(this.keys.database(id), { expectModRevision }); }

  // ---- secrets ----
  getSecret(dbId: string) { return this.read<InstanceSecret>(this.keys.secret(dbId)); }
  putSecret(dbId: string, s: InstanceSecret, expectModRevision?: number) { return this.write(this.keys.secret(dbId), s, { expectModRevision }); }
  deleteSecret(dbId: string) { return this.remove(this.keys.secret(dbId)); }

  // ---- operations ----
  getOperation(id: string) { return this.read<OperationRecord>(this.keys.operation(id)); }
  async listOperations(opts: { databaseId?: string; tenant?: string } = {}): Promise<Versioned<OperationRecord>[]> {
    const { items } = await this.list<OperationRecord>(this.keys.kind('operations'));
    return items.filter((o) => (opts.databaseId === undefined || o.value.databaseId === opts.databaseId) && (opts.tenant === undefined || o.value.tenant === opts.tenant));
  }
  putOperation(o: OperationRecord, expectModRevision?: number) { return this.write(this.keys.operation(o.id), o, { expectModRevision }); }

  // ---- backups ----
  getBackup(dbId: string, id: string) { return this.read<BackupRecord>(this.keys.backup(dbId, id)); }
  async listBackups(dbId: string): Promise<Versioned<BackupRecord>[]> { return (await this.list<BackupRecord>(this.keys.backups(dbId))).items; }
  putBackup(b: BackupRecord, expectModRevision?: number) { return this.write(this.keys.backup(b.databaseId, b.id), b, { expectModRevision }); }
  deleteBackup(dbId: string, id: string) { return this.remove(this.keys.backup(dbId, id)); }

  // ---- events ----
  /** Appends an event under a fresh, time-ordered sequence key; returns the seq. */
  async appendEvent(ev: EventRecord): Promise<string> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const seq = `${String(this.now()).padStart(15, '0')}-${String(this.eventCounter++ % 1_000_000).padStart(6, '0')}`;
      try {
        await this.write(this.keys.event(ev.databaseId, seq), ev, { expectModRevision: 0 });
        return seq;
      } catch (err) {
        if (!(err instanceof StoreConflictError)) throw err;
      }
    }
    throw new StoreConflictError(this.keys.events(ev.databaseId), 'could not find a free event sequence number');
  }
  /** A database's events, oldest first; with `limit`, the newest `limit` of them. */
  async listEvents(dbId: string, opts: { limit?: number } = {}): Promise<EventRecord[]> {
    const all = (await this.list<EventRecord>(this.keys.events(dbId))).items.map((i) => i.value);
    return opts.limit === undefined ? all : all.slice(Math.max(0, all.length - opts.limit));
  }
  /** Deletes every event of a database. */
  async deleteEvents(dbId: string): Promise<void> { await this.client.delete(this.keys.events(dbId), { prefix: true }); }
}
