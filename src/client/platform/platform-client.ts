/**
 * PlatformClient: a typed client of the platform's REST API (docs/platform.md).
 *
 * Every call sends `Authorization: Bearer <token>`; a non-2xx answer throws PlatformApiError
 * (a ConureError with the server's `code`, plus the HTTP `status`). Mutations return
 * `{ database, operation }`; `waitOperation` polls until the operation is final.
 *
 * The Fluxion guide's calls are here too: `provision({ userId, ramSize, apiKey })` creates the
 * tenant's Fluxion database, `updateRam(userId, ramSize)` finds it by tenant and resizes it.
 */
import { ConureError, type ErrorCode } from '../../util/index.js';
import type { BackupRecord, DatabaseView, EventRecord, OperationRecord } from '../../platform/index.js';

export type { DatabaseView };

export class PlatformApiError extends ConureError {
  constructor(readonly status: number, code: ErrorCode, message: string) { super(code, message); }
}

export interface PlatformClientOptions {
  /** e.g. http://127.0.0.1:8000 */
  url: string;
  token: string;
  /** Per-request timeout, ms (default 30 s). */
  timeoutMs?: number;
}

export interface Accepted { database: DatabaseView; operation: OperationRecord }

export interface CreateFluxion { engine: 'fluxion'; tenant?: string; name?: string; ram: string; apiKey: string; deletionPolicy?: string }
export interface CreateConureDb { engine: 'conuredb'; tenant?: string; name?: string; voters: number; arbiter: 'auto' | 'always' | 'never'; storage: string; deletionPolicy?: string }

export interface WaitOptions {
  timeoutMs?: number;
  pollMs?: number;
  onProgress?: (op: OperationRecord) => void;
}

export class PlatformClient {
  readonly url: string;
  private readonly token: string;
  private readonly timeoutMs: number;

  constructor(opts: PlatformClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** One request; `idempotencyKey` sets the Idempotency-Key header. */
  async request<T>(method: string, path: string, body?: unknown, opts: { idempotencyKey?: string } = {}): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }), signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new ConureError('unavailable', `${method} ${this.url}${path}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`, { cause: err });
    }
    const text = await res.text();
    let json: unknown;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
    if (!res.ok) {
      const e = (json ?? {}) as { error?: string; code?: ErrorCode };
      throw new PlatformApiError(res.status, e.code ?? 'internal', e.error ?? `${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`);
    }
    return json as T;
  }

  // ---- tenants ----
  createTenant(id: string, name?: string): Promise<{ tenant: { id: string; name: string }; token: string }> {
    return this.request('POST', '/v1/tenants', { id, ...(name && { name }) });
  }
  async listTenants(): Promise<Array<{ id: string; name: string }>> { return (await this.request<{ tenants: Array<{ id: string; name: string }> }>('GET', '/v1/tenants')).tenants; }

  // ---- databases ----
  createDatabase(spec: CreateFluxion | CreateConureDb, idempotencyKey?: string): Promise<Accepted> {
    return this.request('POST', '/v1/databases', spec, idempotencyKey ? { idempotencyKey } : {});
  }
  async listDatabases(filter: { tenant?: string; engine?: string } = {}): Promise<DatabaseView[]> {
    const q = new URLSearchParams(Object.entries(filter).filter(([, v]) => v !== undefined) as Array<[string, string]>).toString();
    return (await this.request<{ databases: DatabaseView[] }>('GET', `/v1/databases${q ? `?${q}` : ''}`)).databases;
  }
  getDatabase(id: string): Promise<DatabaseView> { return this.request('GET', `/v1/databases/${encodeURIComponent(id)}`); }
  patchDatabase(id: string, patch: { ram?: string; voters?: number; storage?: string }, idempotencyKey?: string): Promise<Accepted> {
    return this.request('PATCH', `/v1/databases/${encodeURIComponent(id)}`, patch, idempotencyKey ? { idempotencyKey } : {});
  }
  deleteDatabase(id: string, policy?: 'Delete' | 'WipeOut' | 'Halt'): Promise<Accepted> {
    return this.request('DELETE', `/v1/databases/${encodeURIComponent(id)}${policy ? `?policy=${policy}` : ''}`);
  }
  backup(id: string): Promise<Accepted> { return this.request('POST', `/v1/databases/${encodeURIComponent(id)}/backups`); }
  async listBackups(id?: string): Promise<BackupRecord[]> {
    return (await this.request<{ backups: BackupRecord[] }>('GET', id ? `/v1/databases/${encodeURIComponent(id)}/backups` : '/v1/backups')).backups;
  }
  restore(id: string, backupId: string): Promise<Accepted> { return this.request('POST', `/v1/databases/${encodeURIComponent(id)}/restore`, { backupId }); }
  halt(id: string): Promise<Accepted> { return this.request('POST', `/v1/databases/${encodeURIComponent(id)}/halt`); }
  resume(id: string): Promise<Accepted> { return this.request('POST', `/v1/databases/${encodeURIComponent(id)}/resume`); }
  rotateKey(id: string, apiKey: string): Promise<Accepted> { return this.request('POST', `/v1/databases/${encodeURIComponent(id)}/rotate-key`, { apiKey }); }
  async events(id: string): Promise<EventRecord[]> { return (await this.request<{ events: EventRecord[] }>('GET', `/v1/databases/${encodeURIComponent(id)}/events`)).events; }

  // ---- operations ----
  getOperation(id: string): Promise<OperationRecord> { return this.request('GET', `/v1/operations/${encodeURIComponent(id)}`); }
  async listOperations(database?: string): Promise<OperationRecord[]> {
    return (await this.request<{ operations: OperationRecord[] }>('GET', `/v1/operations${database ? `?database=${encodeURIComponent(database)}` : ''}`)).operations;
  }

  /** Polls until the operation succeeds (resolves), fails or is cancelled (throws with its error), or `timeoutMs` passes. */
  async waitOperation(id: string, opts: WaitOptions = {}): Promise<OperationRecord> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
    for (;;) {
      let op: OperationRecord | undefined;
      try { op = await this.getOperation(id); } catch (err) {
        // The store or the platform may be restarting: keep polling until the deadline.
        if (!(err instanceof ConureError) || (err.code !== 'unavailable' && err.code !== 'internal')) throw err;
      }
      if (op) {
        opts.onProgress?.(op);
        if (op.state === 'succeeded') return op;
        if (op.state === 'failed' || op.state === 'cancelled') {
          throw new ConureError((op.error?.code as ErrorCode | undefined) ?? 'internal', `operation ${id} (${op.type}) ${op.state}: ${op.error?.message ?? ''}`);
        }
      }
      if (Date.now() > deadline) throw new ConureError('timeout', `operation ${id} did not finish in time (state ${op?.state ?? 'unknown'})`);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
    }
  }

  // ---- the Fluxion guide ----
  /** Provision(userId, ramSize, apiKey): the tenant's Fluxion database (admin token, or the tenant's own). */
  provision(req: { userId: string; ramSize: string; apiKey: string }): Promise<Accepted> {
    // Named after the user: on Kubernetes the release is then the guide's db-<user>.
    return this.createDatabase({ engine: 'fluxion', tenant: req.userId, name: req.userId, ram: req.ramSize, apiKey: req.apiKey });
  }

  /** UpdateRAM(userId, ramSize): resizes the tenant's Fluxion database (found by tenant). */
  async updateRam(userId: string, ramSize: string): Promise<Accepted> {
    const dbs = (await this.listDatabases({ tenant: userId, engine: 'fluxion' })).filter((d) => d.tenant === userId && d.engine === 'fluxion');
    if (dbs.length === 0) throw new ConureError('not_found', `tenant ${userId} has no Fluxion database`);
    if (dbs.length > 1) throw new ConureError('invalid_argument', `tenant ${userId} has ${dbs.length} Fluxion databases (${dbs.map((d) => d.id).join(', ')}); resize one with patchDatabase`);
    return this.patchDatabase(dbs[0]!.id, { ram: ramSize });
  }
}
