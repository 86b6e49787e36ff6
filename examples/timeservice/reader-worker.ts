/**
 * A read connection of the Time Service pool: one better-sqlite3 connection, opened read-only,
 * in its own worker thread. Messages: { id, sql, params } → { id, rows } | { id, error }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { path, cacheSizeKb } = workerData as { path: string; cacheSizeKb: number };
const db = new Database(path, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
db.pragma(`cache_size = -${cacheSizeKb}`);
const statements = new Map<string, Database.Statement>();

parentPort!.on('message', (m: { id: number; sql: string; params: unknown[] } | { close: true }) => {
  if ('close' in m) { db.close(); parentPort!.close(); return; }
  try {
    let st = statements.get(m.sql);
    if (!st) { st = db.prepare(m.sql); if (statements.size < 64) statements.set(m.sql, st); }
    parentPort!.postMessage({ id: m.id, rows: st.all(...m.params) });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: (err as Error).message });
  }
});
