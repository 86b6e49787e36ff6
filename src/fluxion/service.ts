/**
 * The Fluxion service: authentication, scope checks, validation, the memory limit, and the
 * ordering rules between the transport and the engine. The WebSocket transport decodes a frame's
 * envelope, calls `handle` once, and encodes what it returns.
 *
 * Write path: validate → (memory check) → `CommitLog.append` → after the fsync, apply to the
 * store (in log order) → reply. So a write is visible to other connections exactly when it is
 * durable and acknowledged, and recovery (which replays the same log through `applyOp`) rebuilds
 * the same state.
 *
 * Ordering per session: replies leave in request order. A write that arrives while only writes
 * of the same session are in flight is validated and appended at once (so one connection's
 * pipelined writes share fsyncs); any other request waits until every earlier request of the
 * session is answered, so a read sees exactly the session's earlier writes. Requests of
 * different sessions do not wait for each other.
 *
 * Errors: `handle` returns protocol error replies (`{error}`) for permission problems, the memory
 * limit and WAL failure; it throws (or rejects with) `PayloadError` for an invalid payload and
 * `UnknownTypeError` for an unknown type, which the transport turns into replies or closes.
 */
import { ConureError, type Logger } from '../util/index.js';
import { MemoryLimitError } from './errors.js';
import { PatternError, QueryBudget, QueryBudgetError } from './pattern.js';
import { applyOp, checkKeys, decodeOp, isLoggedType, OP_CODES, type KeysOutcome, type LoggedOp } from './ops.js';
import type { CommitLog } from './persistence.js';
import {
  decodeCol, decodeKey, decodeKeys, decodeQdoc, decodeQry, ERR, errorText, isMessageType, PERMISSIONS, scopeAllows,
  type Scope,
} from './protocol.js';
import type { FluxionStore } from './store.js';

/** Writes that may be appended while earlier writes of the same session are still in flight. */
const BYPASS: ReadonlySet<string> = new Set(['ins', 'sval', 'ddoc', 'dcol', 'drec', 'dmrec', 'drrng', 'rval']);

/** The request's `type` is not part of the protocol. */
export class UnknownTypeError extends ConureError {
  constructor(type: string) { super('invalid_argument', `${ERR.unknownType}: ${JSON.stringify(type.slice(0, 64))}`); }
}

/** Handshake rejection; `message` is the HTTP 401 body the original server sends. */
export class AuthError extends ConureError {
  constructor(message: 'Missing API key parameter' | 'Unknown API key') { super('unauthenticated', message); }
}

/** A reply without its `id` (the transport adds it). */
export type Reply = Record<string, unknown>;

/** One open connection. Owned by the service between `openSession` and `closeSession`. */
export interface Session {
  readonly id: number;
  readonly ip: string;
  /** The handshake `name`, or null when absent or empty. */
  readonly name: string | null;
  readonly openedAtMs: number;
  /** The API key used at the handshake. */
  readonly key: string;
  readonly master: boolean;
  /** Current scope; changes live when the key is re-added or removed. */
  scope: Scope;
  /** Requests accepted but not yet answered. */
  inFlight: number;
  /** Completion of the newest in-flight request (undefined when idle). */
  tail: Promise<unknown> | undefined;
  /** In-flight requests that were queued behind earlier ones (reads, `keys`, unknown types). */
  readsPending: number;
}

export interface ServiceOptions {
  store: FluxionStore;
  log: CommitLog;
  /** The `--secret-key` master key. */
  masterKey: string;
  /** Soft memory limit in bytes for inserts (`ins`, `sval`); 0 or undefined = none. */
  memoryBytesMax?: number;
  /** Memory in use, compared against the limit (default: process RSS, sampled at most every 50 ms). */
  memoryUsedBytes?: () => number;
  /** Wall clock in ms (injected for tests). */
  now?: () => number;
  /** Called once per handled request, for metrics. */
  onRequest?: (type: string) => void;
  /**
   * Time budget of one `qry`, `qdoc` or `gvalues` scan in ms (default 1000; 0 = unlimited). A scan
   * past it stops and is answered with a `QueryBudgetError` reply, so one query cannot hold the
   * event loop (and every other connection) for long.
   */
  queryBudgetMs?: number;
  /** Monotonic clock in ms for query budgets (injected for tests; default `performance.now`). */
  queryClock?: () => number;
  /** Logs refused queries (`query_budget_exceeded`, `pattern_rejected`); optional. */
  logger?: Logger;
}

export class FluxionService {
  readonly store: FluxionStore;
  private readonly log: CommitLog;
  private readonly masterKey: string;
  private readonly memoryBytesMax: number;
  private readonly memoryUsedBytes: () => number;
  private readonly now: () => number;
  private readonly onRequest: ((type: string) => void) | undefined;
  private readonly queryBudgetMs: number;
  private readonly queryClock: () => number;
  private readonly logger: Logger | undefined;
  private readonly sessions = new Set<Session>();
  private nextSessionId = 1;

  constructor(opts: ServiceOptions) {
    if (opts.masterKey === '') throw new ConureError('invalid_argument', 'the master key must not be empty');
    this.store = opts.store;
    this.log = opts.log;
    this.masterKey = opts.masterKey;
    this.memoryBytesMax = opts.memoryBytesMax ?? 0;
    this.memoryUsedBytes = opts.memoryUsedBytes ?? sampledRss(50);
    this.now = opts.now ?? Date.now;
    this.onRequest = opts.onRequest;
    this.queryBudgetMs = opts.queryBudgetMs ?? 1000;
    this.queryClock = opts.queryClock ?? (() => performance.now());
    this.logger = opts.logger;
  }

  /** Number of open sessions. */
  get sessionCount(): number { return this.sessions.size; }

  /**
   * Checks a handshake's key without opening a session (the transport applies its connection
   * limits in between). Throws `AuthError` for a missing or unknown key.
   */
  authenticate(apiKey: string): { master: boolean; scope: Scope } {
    if (apiKey === '') throw new AuthError('Missing API key parameter');
    const master = apiKey === this.masterKey;
    const scope: Scope | undefined = master ? 'read_write_delete' : this.store.apiKeyScope(apiKey);
    if (scope === undefined) throw new AuthError('Unknown API key');
    return { master, scope };
  }

  /** Authenticates a handshake and registers its session. Throws `AuthError` for a missing or unknown key. */
  openSession(apiKey: string, ip: string, name: string): Session {
    const { master, scope } = this.authenticate(apiKey);
    const s: Session = {
      id: this.nextSessionId++, ip, name: name === '' ? null : name, openedAtMs: this.now(), key: apiKey, master, scope,
      inFlight: 0, tail: undefined, readsPending: 0,
    };
    this.sessions.add(s);
    return s;
  }

  closeSession(s: Session): void { this.sessions.delete(s); }

  /**
   * Handles one request of `session`. Returns the reply synchronously when nothing of this
   * session is in flight and the request is a read; otherwise a promise settled in request order.
   */
  handle(session: Session, type: string, data: string): Reply | Promise<Reply> {
    this.onRequest?.(type);
    if (session.tail === undefined) {
      const r = this.execute(session, type, data);
      if (r instanceof Promise) this.track(session, r, false);
      return r;
    }
    if (BYPASS.has(type) && session.readsPending === 0) {
      // A write behind only writes is appended at once (group commit needs that); the WAL keeps
      // the order, and its reply still waits for the earlier replies.
      let out: { ok: Reply | Promise<Reply> } | { err: unknown };
      try { out = { ok: this.execute(session, type, data) }; } catch (err) { out = { err }; }
      const reply = (): Reply | Promise<Reply> => ('err' in out ? Promise.reject(out.err) : out.ok);
      const p = session.tail.then(reply, reply);
      this.track(session, p, false);
      return p;
    }
    // Anything else waits until every earlier request of the session is answered, so it sees
    // their effects and none of the later ones.
    const run = (): Reply | Promise<Reply> => this.execute(session, type, data);
    const p = session.tail.then(run, run);
    this.track(session, p, true);
    return p;
  }

  private track(s: Session, p: Promise<Reply>, chainedRead: boolean): void {
    s.inFlight++;
    if (chainedRead) s.readsPending++;
    const settled = p.then(() => undefined, () => undefined);
    s.tail = settled;
    void settled.then(() => {
      s.inFlight--;
      if (chainedRead) s.readsPending--;
      if (s.tail === settled) s.tail = undefined;
    });
  }

  private execute(s: Session, type: string, data: string): Reply | Promise<Reply> {
    if (type === 'auth') return { error: ERR.auth };
    if (!isMessageType(type)) throw new UnknownTypeError(type);
    const perm = PERMISSIONS[type];
    if (!scopeAllows(s.scope, perm)) return { error: ERR.permissionDenied };
    if (perm === 'M' && !s.master) return { error: ERR.masterOnly };
    const store = this.store;
    switch (type) {
      case 'qry': { const q = decodeQry(data); return this.scan(s, type, (b) => ({ records: store.latest(q, b) })); }
      case 'qdoc': { const q = decodeQdoc(data); return this.scan(s, type, (b) => ({ records: store.history(q, b) })); }
      case 'cols': return { collections: store.collectionNames() };
      case 'gval': { const r = decodeKey('gval', data); return { value: store.getValue(r.col, r.key) }; }
      case 'gvalues': {
        const r = decodeKey('gvalues', data);
        return this.scan(s, type, (b) => ({ values: store.getValues(r.col, r.key, b) }));
      }
      case 'gvals': return { values: store.getAllValues(decodeCol('gvals', data).col) };
      case 'gkeys': return { keys: store.getKeys(decodeCol('gkeys', data).col) };
      case 'conn': return { connections: this.connections(s) };
      case 'keys': return this.keys(data);
      default: {
        if (!isLoggedType(type)) throw new UnknownTypeError(type);
        const op = decodeOp(type, data);
        if ((type === 'ins' || type === 'sval') && this.memoryBytesMax > 0) {
          const used = this.memoryUsedBytes();
          if (used >= this.memoryBytesMax) return { error: new MemoryLimitError(used, this.memoryBytesMax).message };
        }
        return this.commit(OP_CODES[type], data, op);
      }
    }
  }

  /**
   * Runs a pattern-matching scan under the query budget. An unusable regex or an exhausted budget
   * is answered with an error reply (the socket stays open, nothing partial is returned).
   */
  private scan(s: Session, type: string, run: (budget: QueryBudget) => Reply): Reply {
    const t0 = this.queryClock();
    try {
      return run(new QueryBudget(type, this.queryBudgetMs, this.queryClock));
    } catch (err) {
      if (err instanceof QueryBudgetError) {
        this.logger?.warn({ type, session: s.id, key: s.master ? 'master' : 'scoped', budgetMs: err.budgetMs, ms: Math.round(this.queryClock() - t0) }, 'query_budget_exceeded');
        return { error: err.message };
      }
      if (err instanceof PatternError) {
        this.logger?.info({ type, session: s.id, reason: err.message }, 'pattern_rejected');
        return { error: err.message };
      }
      throw err;
    }
  }

  private keys(data: string): Reply | Promise<Reply> {
    const req = decodeKeys(data);
    if (req.action === 'list') {
      const keys: Array<{ key: string; scope: Scope; deletable: boolean }> = [
        { key: this.masterKey, scope: 'read_write_delete', deletable: false },
      ];
      for (const [key, scope] of this.store.listApiKeys()) keys.push({ key, scope, deletable: true });
      return { status: 'ok', keys };
    }
    const invalid = checkKeys(this.masterKey, req);
    if (invalid !== undefined) return { error: invalid };
    return this.commit(OP_CODES.keys, data, { type: 'keys', req });
  }

  /** Logs `op`, and once it is durable applies it and builds the reply. */
  private commit(code: number, data: string, op: LoggedOp): Promise<Reply> {
    return new Promise<Reply>((resolve) => {
      try {
        this.log.append(code, data, (err) => {
          if (err !== null) { resolve({ error: errorText(err) }); return; }
          // Runs synchronously inside the log's callback, so records are applied in log order.
          const outcome = applyOp(this.store, this.masterKey, op);
          resolve(outcome === undefined ? {} : this.keysReply(outcome));
        });
      } catch (err) {
        resolve({ error: errorText(err) });
      }
    });
  }

  private keysReply(o: KeysOutcome): Reply {
    switch (o.kind) {
      case 'error': return { error: o.error };
      case 'added':
        if (o.key !== this.masterKey) for (const s of this.sessions) if (s.key === o.key) s.scope = o.scope;
        return { status: 'ok', scope: o.requested };
      case 'removed':
        for (const s of this.sessions) if (s.key === o.key) s.scope = 'readonly';
        return { status: 'ok' };
    }
  }

  private connections(self: Session): Array<{ ip: string; since: number; name: string | null; self: boolean }> {
    const now = this.now();
    return [...this.sessions].map((s) => ({ ip: s.ip, since: Math.max(0, now - s.openedAtMs), name: s.name, self: s === self }));
  }
}

/** Process RSS, re-read at most every `intervalMs` (reading it costs a system call). */
function sampledRss(intervalMs: number): () => number {
  let at = 0;
  let value = 0;
  return () => {
    const now = performance.now();
    if (now - at >= intervalMs) { value = process.memoryUsage.rss(); at = now; }
    return value;
  };
}
