/**
 * The Time Service's SQLite store (better-sqlite3).
 *
 *   writer: one connection on the main thread (SQLite allows one writer at a time anyway)
 *   readers: up to DB_MAX_OPEN_CONNS - 1 read-only connections, each in a worker thread,
 *            created on demand; at most DB_MAX_IDLE_CONNS are kept open while idle.
 *
 * WAL mode (DB_WAL_MODE, default on) lets readers run beside the writer; synchronous=FULL makes
 * every acknowledged write durable. Migrations run on open; `close()` checkpoints (TRUNCATE) so
 * the main file is complete, then closes every connection.
 *
 * Errors: `DuplicateLocationError` (code `ALREADY_EXISTS`); SQLite errors pass through and are
 * counted in timeservice_db_errors_total.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface DbConfig {
  path: string;
  walMode: boolean;
  cacheSizeKb: number;
  maxOpenConns: number;
  maxIdleConns: number;
}

export function dbConfigFromEnv(env: NodeJS.ProcessEnv = process.env): DbConfig {
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in ${min}..${max}, got ${raw}`);
    return n;
  };
  const wal = (env.DB_WAL_MODE ?? 'true').toLowerCase();
  if (!['true', 'false', '1', '0', 'yes', 'no'].includes(wal)) throw new Error(`DB_WAL_MODE must be true or false, got ${env.DB_WAL_MODE}`);
  const maxOpenConns = int('DB_MAX_OPEN_CONNS', 4, 1, 64);
  return {
    path: env.DB_PATH || '/app/data/timeservice.db',
    walMode: ['true', '1', 'yes'].includes(wal),
    cacheSizeKb: int('DB_CACHE_SIZE_KB', 2000, 64, 1_048_576),
    maxOpenConns,
    maxIdleConns: Math.min(int('DB_MAX_IDLE_CONNS', 2, 0, 64), maxOpenConns),
  };
}

export interface Location { name: string; timezone: string; description: string; createdAt: string }

/** What the HTTP layer needs from a store (SQLite here; ConureDB in conuredb-store.ts). */
export interface LocationStore {
  /** Throws DuplicateLocationError when the name is taken. Resolves once durable. */
  createLocation(l: Omit<Location, 'createdAt'>): Promise<Location> | Location;
  deleteLocation(name: string): Promise<boolean> | boolean;
  getLocation(name: string): Promise<Location | undefined>;
  listLocations(limit?: number): Promise<Location[]>;
  close(): Promise<void>;
}

export class DuplicateLocationError extends Error {
  readonly code = 'ALREADY_EXISTS';
  constructor(name: string, options?: { cause?: unknown }) { super(`location ${JSON.stringify(name)} already exists`, options); this.name = 'DuplicateLocationError'; }
}

const MIGRATIONS: string[] = [
  `CREATE TABLE locations (
     name TEXT PRIMARY KEY NOT NULL,
     timezone TEXT NOT NULL,
     description TEXT NOT NULL DEFAULT '',
     created_at TEXT NOT NULL
   ) WITHOUT ROWID`,
];

interface Reader { worker: Worker; busy: boolean; pending: Map<number, { resolve(rows: unknown[]): void; reject(e: Error): void }> }

export class TimeDb implements LocationStore {
  private readonly writer: Database.Database;
  private readonly readers: Reader[] = [];
  private readonly waiting: Array<(r: Reader) => void> = [];
  private nextId = 1;
  private closed = false;
  private readonly queryDuration: Histogram<'operation'>;
  private readonly queries: Counter<'operation'>;
  private readonly errors: Counter<'operation'>;

  constructor(readonly config: DbConfig, registry: Registry) {
    if (config.path !== ':memory:') mkdirSync(dirname(config.path), { recursive: true });
    this.writer = new Database(config.path);
    this.writer.pragma('busy_timeout = 5000');
    this.writer.pragma(`journal_mode = ${config.walMode ? 'WAL' : 'DELETE'}`);
    this.writer.pragma('synchronous = FULL');
    this.writer.pragma(`cache_size = -${config.cacheSizeKb}`);
    this.migrate();
    this.queryDuration = new Histogram({ name: 'timeservice_db_query_duration_seconds', help: 'SQLite query duration', labelNames: ['operation'], buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1], registers: [registry] });
    this.queries = new Counter({ name: 'timeservice_db_queries_total', help: 'SQLite queries run', labelNames: ['operation'], registers: [registry] });
    this.errors = new Counter({ name: 'timeservice_db_errors_total', help: 'SQLite queries that failed', labelNames: ['operation'], registers: [registry] });
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const db = this;
    new Gauge({ name: 'timeservice_db_connections_open', help: 'Open SQLite connections (writer + readers)', registers: [registry], collect() { this.set(db.openConnections()); } });
    new Gauge({ name: 'timeservice_db_connections_idle', help: 'Open SQLite read connections not running a query', registers: [registry], collect() { this.set(db.idleConnections()); } });
  }

  private migrate(): void {
    this.writer.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const done = new Set((this.writer.prepare('SELECT version FROM schema_migrations').all() as Array<{ version: number }>).map((r) => r.version));
    MIGRATIONS.forEach((sql, i) => {
      if (done.has(i + 1)) return;
      this.writer.transaction(() => {
        this.writer.exec(sql);
        this.writer.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(i + 1, new Date().toISOString());
      })();
    });
  }

  /** Writer plus live reader connections. */
  openConnections(): number { return (this.closed ? 0 : 1) + this.readers.length; }
  idleConnections(): number { return this.readers.filter((r) => !r.busy).length; }
  private readersMax(): number { return Math.max(0, this.config.maxOpenConns - 1); }

  private timed<T>(operation: string, fn: () => T): T {
    const end = this.queryDuration.startTimer({ operation });
    this.queries.inc({ operation });
    try { return fn(); } catch (err) { this.errors.inc({ operation }); throw err; } finally { end(); }
  }

  private async timedAsync<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const end = this.queryDuration.startTimer({ operation });
    this.queries.inc({ operation });
    try { return await fn(); } catch (err) { this.errors.inc({ operation }); throw err; } finally { end(); }
  }

  /** Runs a read on a pooled reader (or on the writer when the pool has no readers). */
  private async read<T>(sql: string, params: unknown[]): Promise<T[]> {
    if (this.closed) throw new Error('database is closed');
    if (this.readersMax() === 0) return this.writer.prepare(sql).all(...params) as T[];
    const r = await this.acquire();
    try {
      const id = this.nextId++;
      return await new Promise<T[]>((resolve, reject) => {
        r.pending.set(id, { resolve: resolve as (rows: unknown[]) => void, reject });
        r.worker.postMessage({ id, sql, params });
      });
    } finally { this.release(r); }
  }

  private acquire(): Promise<Reader> {
    const free = this.readers.find((r) => !r.busy);
    if (free) { free.busy = true; return Promise.resolve(free); }
    if (this.readers.length < this.readersMax()) {
      const r = this.spawnReader();
      r.busy = true;
      return Promise.resolve(r);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(r: Reader): void {
    const next = this.waiting.shift();
    if (next && this.readers.includes(r)) { next(r); return; }
    r.busy = false;
    if (this.idleConnections() > this.config.maxIdleConns) this.retire(r);
  }

  private spawnReader(): Reader {
    const worker = new Worker(new URL('./reader-worker.js', import.meta.url), { workerData: { path: this.config.path, cacheSizeKb: this.config.cacheSizeKb } });
    const r: Reader = { worker, busy: false, pending: new Map() };
    worker.on('message', (m: { id: number; rows?: unknown[]; error?: string }) => {
      const p = r.pending.get(m.id);
      if (!p) return;
      r.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error)); else p.resolve(m.rows ?? []);
    });
    const fail = (err: Error): void => {
      for (const p of r.pending.values()) p.reject(err);
      r.pending.clear();
      const i = this.readers.indexOf(r);
      if (i >= 0) this.readers.splice(i, 1);
    };
    worker.on('error', fail);
    worker.on('exit', () => fail(new Error('reader connection closed')));
    this.readers.push(r);
    return r;
  }

  private retire(r: Reader): void {
    const i = this.readers.indexOf(r);
    if (i >= 0) this.readers.splice(i, 1);
    r.worker.postMessage({ close: true });
  }

  createLocation(l: Omit<Location, 'createdAt'>): Location {
    const loc: Location = { ...l, createdAt: new Date().toISOString() };
    return this.timed('insert_location', () => {
      try {
        this.writer.prepare('INSERT INTO locations (name, timezone, description, created_at) VALUES (?, ?, ?, ?)').run(loc.name, loc.timezone, loc.description, loc.createdAt);
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new DuplicateLocationError(loc.name, { cause: err });
        throw err;
      }
      return loc;
    });
  }

  deleteLocation(name: string): boolean {
    return this.timed('delete_location', () => this.writer.prepare('DELETE FROM locations WHERE name = ?').run(name).changes > 0);
  }

  async getLocation(name: string): Promise<Location | undefined> {
    const rows = await this.timedAsync('get_location', () => this.read<Record<string, string>>('SELECT name, timezone, description, created_at FROM locations WHERE name = ?', [name]));
    return rows[0] ? toLocation(rows[0]) : undefined;
  }

  /** At most `limit` locations in name order. */
  async listLocations(limit = 1000): Promise<Location[]> {
    const rows = await this.timedAsync('list_locations', () => this.read<Record<string, string>>('SELECT name, timezone, description, created_at FROM locations ORDER BY name LIMIT ?', [limit]));
    return rows.map(toLocation);
  }

  /** Checkpoints the WAL into the main file and closes every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.readers.splice(0).map((r) => new Promise<void>((resolve) => { r.worker.once('exit', () => resolve()); r.worker.postMessage({ close: true }); })));
    if (this.config.walMode) this.writer.pragma('wal_checkpoint(TRUNCATE)');
    this.writer.close();
  }
}

function toLocation(r: Record<string, string>): Location {
  return { name: r.name!, timezone: r.timezone!, description: r.description!, createdAt: r.created_at! };
}
