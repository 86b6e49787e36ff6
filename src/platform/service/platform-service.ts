/**
 * PlatformService: the domain behind the API. Handlers decode a request, call one method here
 * with the caller's Principal, and encode the answer; every rule lives here.
 *
 * - Auth: the admin token (compared in constant time) or a tenant token, looked up by its
 *   SHA-256 under `tokens/<hash>` (tokens are shown once, at tenant creation, never stored).
 * - Isolation: a tenant sees only its own databases, operations, backups and events; anything
 *   else is `not_found`, exactly as if it did not exist.
 * - Mutations are operations (OperationService.submit): the desired state (spec with
 *   generation + 1, `halted`, `deleting`, a new key) is written in the SAME txn as the operation,
 *   guarded by the record's mod revision, so the operation converges to what the record says.
 *
 * Errors (ConureErrors, mapped to HTTP in api/): invalid_argument (400), unauthenticated (401),
 * permission_denied (403), not_found (404), conflict (409), unprocessable (422: DoNotTerminate,
 * Idempotency-Key reuse), locked (423), resource_exhausted (429), unavailable (503).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { compare, op } from '../../client/index.js';
import { ConureError, InvalidArgumentError, UnauthenticatedError, UnprocessableError } from '../../util/index.js';
import {
  applyConureDbPatch, applyFluxionPatch, stepsFor, validateConureDbCreate, validateFluxionApiKey, validateFluxionCreate, validateUserId,
} from '../engines/index.js';
import { OperationLockedError, type OperationService, type SubmitResult } from '../operations/index.js';
import { type PlatformStore, StoreConflictError, type TenantRecord, type TokenRecord, type Versioned } from '../store/index.js';
import type { DatabaseCache } from './database-cache.js';
import type {
  BackupRecord, DatabaseRecord, DatabaseSpec, DeletionPolicy, EngineName, EventRecord, InstanceSecret, OperationRecord, OperationType,
} from '../types.js';

export type Principal = { kind: 'admin' } | { kind: 'tenant'; tenant: string };

/** What the API returns for a database: the record without internals, never the secret. */
export interface DatabaseView {
  id: string;
  name: string;
  engine: EngineName;
  tenant: string;
  spec: DatabaseSpec;
  status: DatabaseRecord['status'];
  endpoints: Record<string, string>;
  deletionPolicy: DeletionPolicy;
  generation: number;
  observedGeneration: number;
  halted: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface MutationResult { database: DatabaseView; operation: OperationRecord; created: boolean }

/** Idempotency inputs from a request: the header and a hash of method, path and body. */
export interface Idempotency { key?: string; bodyHash?: string }

export interface PlatformServiceOptions {
  store: PlatformStore;
  operations: OperationService;
  adminToken: string;
  /** How long a token lookup is cached, ms (default 5000; a deleted tenant's token lapses by then). */
  tokenCacheMs?: number;
  /** Serves database reads from memory while synced (reads fall back to the store otherwise). */
  cache?: DatabaseCache;
}

const DELETION_POLICIES: readonly DeletionPolicy[] = ['Halt', 'Delete', 'WipeOut', 'DoNotTerminate'];
const META_FIELDS = ['engine', 'tenant', 'name', 'deletionPolicy'];

export function sha256Hex(text: string): string { return createHash('sha256').update(text).digest('hex'); }

/** A new random bearer token (shown once). */
export function newToken(prefix: string): string { return `${prefix}_${randomBytes(24).toString('base64url')}`; }

export class PlatformService {
  readonly store: PlatformStore;
  private readonly ops: OperationService;
  private readonly adminHash: Buffer;
  private readonly tokenCacheMs: number;
  private readonly tokenCache = new Map<string, { tenant: string; until: number }>();
  private readonly cache: DatabaseCache | undefined;
  /** Database id → store revision of this replica's last write of it (read-your-writes over the cache). */
  private readonly written = new Map<string, number>();

  constructor(opts: PlatformServiceOptions) {
    if (!opts.adminToken || opts.adminToken.length < 16) throw new InvalidArgumentError('the admin token must be at least 16 characters');
    this.store = opts.store;
    this.ops = opts.operations;
    this.adminHash = createHash('sha256').update(opts.adminToken).digest();
    this.tokenCacheMs = opts.tokenCacheMs ?? 5000;
    this.cache = opts.cache;
  }

  // ---- auth -------------------------------------------------------------------------------------

  /** The principal of an `Authorization` header value; `unauthenticated` when missing or wrong. */
  async authenticate(header: string | undefined): Promise<Principal> {
    const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(header ?? '');
    if (!m) throw new UnauthenticatedError('missing bearer token: send Authorization: Bearer <token>');
    const token = m[1]!;
    const digest = createHash('sha256').update(token).digest();
    if (timingSafeEqual(digest, this.adminHash)) return { kind: 'admin' };
    const hash = digest.toString('hex');
    const cached = this.tokenCache.get(hash);
    if (cached && cached.until > Date.now()) return { kind: 'tenant', tenant: cached.tenant };
    const rec = await this.store.read<TokenRecord>(this.store.keys.token(hash));
    if (!rec) throw new UnauthenticatedError('the bearer token is not valid');
    if (this.tokenCache.size > 10_000) this.tokenCache.clear();
    this.tokenCache.set(hash, { tenant: rec.value.tenant, until: Date.now() + this.tokenCacheMs });
    return { kind: 'tenant', tenant: rec.value.tenant };
  }

  // ---- tenants ----------------------------------------------------------------------------------

  /** Admin: creates a tenant and its first token (returned once). */
  async createTenant(p: Principal, body: unknown): Promise<{ tenant: TenantRecord; token: string }> {
    requireAdmin(p);
    const o = asObject(body, 'a tenant create request');
    refuse(o, ['id', 'name'], 'a tenant create request');
    const id = validateUserId(o.id);
    const name = o.name === undefined ? id : stringField(o.name, 'name', 128);
    const token = newToken('cpt');
    const hash = sha256Hex(token);
    const tenant: TenantRecord = { id, name, tokenHashes: [hash], createdAt: new Date().toISOString() };
    const k = this.store.keys;
    const existing = await this.store.getTenant(id);
    if (existing && existing.value.tokenHashes.length > 0) throw new ConureError('conflict', `tenant ${id} already exists`);
    // A tenant an admin provisioned for implicitly (no token yet) gets its first token now.
    const guard = existing ? compare.modRevision(k.tenant(id), '==', existing.modRevision) : compare.absent(k.tenant(id));
    const tokenRec: TokenRecord = { tenant: id, createdAt: tenant.createdAt };
    const r = await this.store.client.runTxn({ compare: [guard], success: [op.putJson(k.tenant(id), { ...tenant, createdAt: existing?.value.createdAt ?? tenant.createdAt }), op.putJson(k.token(hash), tokenRec)] });
    if (!r.succeeded) throw new ConureError('conflict', `tenant ${id} already exists`);
    return { tenant: publicTenant(tenant), token };
  }

  async listTenants(p: Principal): Promise<TenantRecord[]> {
    requireAdmin(p);
    return (await this.store.listTenants()).map((t) => publicTenant(t.value));
  }

  // ---- databases --------------------------------------------------------------------------------

  async createDatabase(p: Principal, body: unknown, idem: Idempotency = {}): Promise<MutationResult> {
    const o = asObject(body, 'a database create request');
    const engine = o.engine;
    if (engine !== 'fluxion' && engine !== 'conuredb') {
      throw new InvalidArgumentError(`unknown engine ${JSON.stringify(typeof engine === 'string' ? engine.slice(0, 40) : engine ?? null)}; use fluxion or conuredb`);
    }
    const tenant = this.tenantFor(p, o.tenant);
    const name = o.name === undefined ? undefined : validateUserId(o.name);
    const deletionPolicy = o.deletionPolicy === undefined ? 'Delete' : deletionPolicyOf(o.deletionPolicy);
    const engineBody = Object.fromEntries(Object.entries(o).filter(([k]) => !META_FIELDS.includes(k)));
    let spec: DatabaseSpec;
    let secret: InstanceSecret | undefined;
    if (engine === 'fluxion') {
      const v = validateFluxionCreate(engineBody);
      spec = v.spec;
      secret = { apiKey: v.apiKey };
    } else {
      spec = validateConureDbCreate(engineBody);
    }
    const now = new Date().toISOString();
    const id = `${engine === 'fluxion' ? 'flx' : 'cdb'}-${name ?? tenant}-${randomBytes(3).toString('hex')}`;
    const db: DatabaseRecord = {
      id, tenant, name: name ?? id, engine, spec,
      status: { phase: 'Provisioning', message: 'create queued', observedAt: now },
      endpoints: {}, deletionPolicy, generation: 1, observedGeneration: 0, createdAt: now, updatedAt: now,
    };
    const k = this.store.keys;
    const tenantRec = await this.store.getTenant(tenant);
    const ops = [op.putJson(k.database(id), db), ...(secret ? [op.putJson(k.secret(id), secret)] : [])];
    const compares = [compare.absent(k.database(id))];
    if (!tenantRec) {
      if (p.kind !== 'admin') throw new ConureError('not_found', `tenant ${tenant} does not exist`);
      // An admin provisioning for a new user id creates the tenant (without a token) in the same txn.
      const t: TenantRecord = { id: tenant, name: tenant, tokenHashes: [], createdAt: now };
      ops.push(op.putJson(k.tenant(tenant), t));
      compares.push(compare.absent(k.tenant(tenant)));
    }
    const r = await this.ops.submit({
      databaseId: id, tenant, type: 'create', params: { engine }, steps: stepsFor(engine, 'create'),
      ...idemFields(idem), extra: { compares, ops },
    });
    if (r.created) this.wrote(id, r.revision);
    return this.result(r, r.created ? db : undefined);
  }

  /** The Fluxion guide's Provision(userId, ramSize, apiKey): the user's Fluxion database. */
  provisionFluxion(p: Principal, userId: string, ramSize: string, apiKey: string, idem: Idempotency = {}): Promise<MutationResult> {
    return this.createDatabase(p, { engine: 'fluxion', tenant: userId, ram: ramSize, apiKey }, idem);
  }

  /** The Fluxion guide's UpdateRAM(userId, ramSize): resizes the user's (only) Fluxion database. */
  async updateFluxionRam(p: Principal, userId: string, ramSize: string, idem: Idempotency = {}): Promise<MutationResult> {
    const dbs = (await this.listDatabases(p, { tenant: userId, engine: 'fluxion' })).filter((d) => d.tenant === userId);
    if (dbs.length === 0) throw new ConureError('not_found', `user ${userId} has no Fluxion database`);
    if (dbs.length > 1) throw new InvalidArgumentError(`user ${userId} has ${dbs.length} Fluxion databases; resize one by id`);
    const r = await this.patchDatabase(p, dbs[0]!.id, { ram: ramSize }, idem);
    if (!('operation' in r)) throw new ConureError('internal', 'a resize must be an operation');
    return r as MutationResult;
  }

  async listDatabases(p: Principal, filter: { tenant?: string; engine?: string } = {}): Promise<DatabaseView[]> {
    const tenant = p.kind === 'tenant' ? p.tenant : filter.tenant;
    const all = this.fresh()
      ? this.cache!.list().filter((d) => tenant === undefined || d.value.tenant === tenant)
      : await this.store.listDatabases(tenant === undefined ? {} : { tenant });
    return all.map((d) => view(d.value)).filter((d) => filter.engine === undefined || d.engine === filter.engine);
  }

  async getDatabase(p: Principal, id: string): Promise<DatabaseView> {
    return view((await this.visible(p, id, true)).value);
  }

  /**
   * `{ram}` (Fluxion resize), `{voters}` (ConureDB scale) and/or `{storage}` (ConureDB resize):
   * an operation. `{deletionPolicy}` alone is a plain guarded write (200, no operation).
   */
  async patchDatabase(p: Principal, id: string, body: unknown, idem: Idempotency = {}): Promise<MutationResult | { database: DatabaseView }> {
    const o = asObject(body, 'a database patch');
    if ('deletionPolicy' in o) {
      if (Object.keys(o).length !== 1) throw new InvalidArgumentError('change deletionPolicy on its own, not with a spec change');
      const policy = deletionPolicyOf(o.deletionPolicy);
      const d = await this.mutateRecord(p, id, (rec) => { rec.deletionPolicy = policy; });
      return { database: view(d) };
    }
    return this.withRecord(p, id, async (cur) => {
      const db = cur.value;
      // apply would start a halted instance: the record would say halted while it runs.
      if (db.halted) throw new ConureError('conflict', `database ${id} is halted; resume it before changing its spec`);
      let spec: DatabaseSpec;
      let type: OperationType;
      if (db.spec.engine === 'fluxion') {
        spec = applyFluxionPatch(db.spec, o);
        type = 'resize';
      } else {
        spec = applyConureDbPatch(db.spec, o);
        type = spec.voters !== db.spec.voters ? 'scale' : 'resize';
      }
      const next: DatabaseRecord = { ...db, spec, generation: db.generation + 1, updatedAt: new Date().toISOString() };
      return { type, next, params: { engine: db.engine, generation: next.generation } };
    }, idem);
  }

  /** Delete (policy Delete | WipeOut), or Halt (keeps the data); DoNotTerminate refuses (422). */
  async deleteDatabase(p: Principal, id: string, policyParam: unknown, idem: Idempotency = {}): Promise<MutationResult> {
    return this.withRecord(p, id, async (cur) => {
      const db = cur.value;
      const policy = policyParam === undefined || policyParam === '' ? db.deletionPolicy : deletionPolicyOf(policyParam);
      if (db.deletionPolicy === 'DoNotTerminate' || policy === 'DoNotTerminate') {
        throw new UnprocessableError(`database ${id} has deletionPolicy DoNotTerminate: it cannot be deleted; PATCH {"deletionPolicy":"Delete"} first`);
      }
      if (policy === 'Halt') return { type: 'halt', next: { ...db, halted: true }, params: { engine: db.engine, policy } };
      const next: DatabaseRecord = { ...db, deleting: true, status: { ...db.status, phase: 'Deleting', message: `delete (${policy}) queued`, observedAt: new Date().toISOString() } };
      return { type: 'delete', next, params: { engine: db.engine, policy } };
    }, idem);
  }

  async backup(p: Principal, id: string, idem: Idempotency = {}): Promise<MutationResult> {
    return this.withRecord(p, id, async (cur) => {
      if (cur.value.halted) throw new ConureError('conflict', `database ${id} is halted; resume it before a backup`);
      const backupId = `bk-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      return { type: 'backup', next: undefined, params: { engine: cur.value.engine, backupId } };
    }, idem);
  }

  async listBackups(p: Principal, id: string): Promise<BackupRecord[]> {
    await this.visible(p, id, true);
    return (await this.store.listBackups(id)).map((b) => b.value);
  }

  /** Every backup the caller can see, including those of deleted databases (policy Delete keeps them). */
  async listAllBackups(p: Principal): Promise<BackupRecord[]> {
    const { items } = await this.store.list<BackupRecord>(this.store.keys.kind('backups'));
    return items.map((b) => b.value).filter((b) => p.kind === 'admin' || b.tenant === p.tenant);
  }

  /**
   * Restores backup `backupId` (of this database, or of another — possibly deleted — database of
   * the same tenant and engine) into database `id`, replacing its data.
   */
  async restore(p: Principal, id: string, body: unknown, idem: Idempotency = {}): Promise<MutationResult> {
    const o = asObject(body, 'a restore request');
    refuse(o, ['backupId'], 'a restore request');
    const backupId = stringField(o.backupId, 'backupId', 128);
    return this.withRecord(p, id, async (cur) => {
      const db = cur.value;
      const b = (await this.listAllBackups({ kind: 'tenant', tenant: db.tenant })).find((x) => x.id === backupId);
      if (!b) throw new ConureError('not_found', `backup ${backupId} does not exist`);
      if (b.engine !== db.engine) throw new InvalidArgumentError(`backup ${backupId} is of a ${b.engine} database; ${id} is ${db.engine}`);
      return { type: 'restore', next: { ...db, halted: false }, params: { engine: db.engine, backupId, sourceDatabaseId: b.databaseId } };
    }, idem);
  }

  async halt(p: Principal, id: string, idem: Idempotency = {}): Promise<MutationResult> {
    return this.withRecord(p, id, async (cur) => ({ type: 'halt', next: { ...cur.value, halted: true }, params: { engine: cur.value.engine } }), idem);
  }

  async resume(p: Principal, id: string, idem: Idempotency = {}): Promise<MutationResult> {
    return this.withRecord(p, id, async (cur) => {
      const db = cur.value;
      const next: DatabaseRecord = { ...db, halted: false, status: { ...db.status, phase: 'Provisioning', message: 'resume queued', observedAt: new Date().toISOString() } };
      return { type: 'resume', next, params: { engine: db.engine } };
    }, idem);
  }

  /** Fluxion: a new master key (written to the secret with the operation; the instance restarts with it). */
  async rotateKey(p: Principal, id: string, body: unknown, idem: Idempotency = {}): Promise<MutationResult> {
    const o = asObject(body, 'a rotate-key request');
    refuse(o, ['apiKey'], 'a rotate-key request');
    const apiKey = validateFluxionApiKey(o.apiKey);
    return this.withRecord(p, id, async (cur) => {
      const db = cur.value;
      if (db.engine !== 'fluxion') throw new InvalidArgumentError('ConureDB has no platform-managed API key to rotate');
      if (db.halted) throw new ConureError('conflict', `database ${id} is halted; resume it before rotating its key`);
      return { type: 'rotate-key', next: undefined, params: { engine: db.engine }, secret: { apiKey } };
    }, idem);
  }

  async events(p: Principal, id: string, limit?: number): Promise<EventRecord[]> {
    await this.visible(p, id, true);
    return this.store.listEvents(id, limit === undefined ? {} : { limit });
  }

  // ---- operations -------------------------------------------------------------------------------

  async getOperation(p: Principal, id: string): Promise<OperationRecord> {
    let rec: Versioned<OperationRecord> | undefined;
    try { rec = await this.store.getOperation(id); } catch (err) {
      if ((err as ConureError).code === 'invalid_argument') throw new ConureError('not_found', `operation ${String(id).slice(0, 64)} does not exist`);
      throw err;
    }
    if (!rec || (p.kind === 'tenant' && rec.value.tenant !== p.tenant)) throw new ConureError('not_found', `operation ${id} does not exist`);
    return rec.value;
  }

  async listOperations(p: Principal, filter: { database?: string } = {}): Promise<OperationRecord[]> {
    const all = await this.store.listOperations({
      ...(filter.database !== undefined && { databaseId: filter.database }),
      ...(p.kind === 'tenant' && { tenant: p.tenant }),
    });
    return all.map((o) => o.value);
  }

  // ---- helpers ----------------------------------------------------------------------------------

  /** The cache can answer a list: synced, and every write of this replica already in it. */
  private fresh(): boolean {
    if (!this.cache?.synced) return false;
    for (const [id, rev] of this.written) {
      const c = this.cache.get(id);
      if (!c || c.modRevision < rev) return false;
      this.written.delete(id);
    }
    return true;
  }

  private wrote(id: string, revision: number | undefined): void {
    if (revision === undefined || !this.cache) return;
    if (this.written.size > 10_000) this.written.clear();
    this.written.set(id, Math.max(revision, this.written.get(id) ?? 0));
  }

  private tenantFor(p: Principal, requested: unknown): string {
    if (p.kind === 'tenant') {
      if (requested !== undefined && requested !== p.tenant) throw new ConureError('permission_denied', `a tenant token can only create databases of its own tenant (${p.tenant})`);
      return p.tenant;
    }
    if (requested === undefined) throw new InvalidArgumentError('tenant is required when the admin token creates a database');
    return validateUserId(requested);
  }

  /** The record if the caller may see it; `not_found` otherwise (also for another tenant's). */
  private async visible(p: Principal, id: string, cached = false): Promise<Versioned<DatabaseRecord>> {
    let rec: Versioned<DatabaseRecord> | undefined;
    if (cached && this.cache?.synced) {
      const c = this.cache.get(id);
      const mine = this.written.get(id);
      if (mine === undefined || (c && c.modRevision >= mine)) {
        if (mine !== undefined) this.written.delete(id);
        if (!c || (p.kind === 'tenant' && c.value.tenant !== p.tenant)) throw new ConureError('not_found', `database ${String(id).slice(0, 64)} does not exist`);
        return c;
      }
    }
    try { rec = await this.store.getDatabase(id); } catch (err) {
      if ((err as ConureError).code === 'invalid_argument') throw new ConureError('not_found', `database ${String(id).slice(0, 64)} does not exist`);
      throw err;
    }
    if (!rec || (p.kind === 'tenant' && rec.value.tenant !== p.tenant)) throw new ConureError('not_found', `database ${id} does not exist`);
    return rec;
  }

  private async mutateRecord(p: Principal, id: string, mutate: (d: DatabaseRecord) => void): Promise<DatabaseRecord> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.visible(p, id);
      const next = structuredClone(cur.value);
      mutate(next);
      next.updatedAt = new Date().toISOString();
      try {
        this.wrote(id, await this.store.putDatabase(next, cur.modRevision));
        return next;
      } catch (err) {
        if (!(err instanceof StoreConflictError) || attempt >= 10) throw err;
      }
    }
  }

  /**
   * Submits an operation on a database: `plan` sees the record and returns the operation and the
   * new desired record (written in the same txn, guarded by the record's mod revision; retried
   * when status sync raced the read).
   */
  private async withRecord(
    p: Principal, id: string,
    plan: (cur: Versioned<DatabaseRecord>) => Promise<{ type: OperationType; next: DatabaseRecord | undefined; params: Record<string, unknown>; secret?: InstanceSecret }>,
    idem: Idempotency,
  ): Promise<MutationResult> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.visible(p, id);
      const db = cur.value;
      if (db.deleting) throw new ConureError('conflict', `database ${id} is being deleted`);
      const lock = await this.store.read<{ operationId: string }>(this.store.keys.lock(id));
      // An Idempotency-Key replay must win over the lock its own operation holds.
      if (lock && idem.key === undefined) throw new OperationLockedError(id, lock.value.operationId);
      const { type, next, params, secret } = await plan(cur);
      const k = this.store.keys;
      const ops = [];
      if (next) ops.push(op.putJson(k.database(id), { ...next, updatedAt: new Date().toISOString() }));
      if (secret) ops.push(op.putJson(k.secret(id), secret));
      try {
        const r = await this.ops.submit({
          databaseId: id, tenant: db.tenant, type, params, steps: stepsFor(db.engine, type),
          ...idemFields(idem), extra: { compares: [compare.modRevision(k.database(id), '==', cur.modRevision)], ops },
        });
        if (r.created && next) this.wrote(id, r.revision);
        return this.result(r, r.created ? next ?? db : undefined);
      } catch (err) {
        if (!(err instanceof StoreConflictError) || attempt >= 10) throw err;
      }
    }
  }

  private async result(r: SubmitResult, db: DatabaseRecord | undefined): Promise<MutationResult> {
    const rec = db ?? (await this.store.getDatabase(r.operation.databaseId))?.value;
    const database = rec ? view(rec) : tombstone(r.operation);
    return { database, operation: r.operation, created: r.created };
  }
}

export function view(d: DatabaseRecord): DatabaseView {
  return {
    id: d.id, name: d.name, engine: d.engine, tenant: d.tenant, spec: d.spec, status: d.status, endpoints: d.endpoints,
    deletionPolicy: d.deletionPolicy, generation: d.generation, observedGeneration: d.observedGeneration, halted: d.halted === true,
    createdAt: d.createdAt, updatedAt: d.updatedAt,
  };
}

/** An idempotent replay of an operation whose database has since been deleted. */
function tombstone(o: OperationRecord): DatabaseView {
  return {
    id: o.databaseId, name: o.databaseId, engine: (o.params.engine as EngineName) ?? 'fluxion', tenant: o.tenant, spec: {} as DatabaseSpec,
    status: { phase: 'Deleting', message: 'deleted', observedAt: o.updatedAt }, endpoints: {}, deletionPolicy: 'Delete',
    generation: 0, observedGeneration: 0, halted: false, createdAt: o.createdAt, updatedAt: o.updatedAt,
  };
}

function publicTenant(t: TenantRecord): TenantRecord & { tokens: number } {
  return { id: t.id, name: t.name, tokenHashes: [], tokens: t.tokenHashes.length, createdAt: t.createdAt };
}

function idemFields(idem: Idempotency): { idempotencyKey?: string; bodyHash?: string } {
  return idem.key === undefined ? {} : { idempotencyKey: idem.key, bodyHash: idem.bodyHash ?? '' };
}

function requireAdmin(p: Principal): void {
  if (p.kind !== 'admin') throw new ConureError('permission_denied', 'this needs the admin token');
}

function asObject(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidArgumentError(`${what} must be a JSON object`);
  return body as Record<string, unknown>;
}

function refuse(o: Record<string, unknown>, allowed: string[], what: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new InvalidArgumentError(`${what} has an unknown field ${JSON.stringify(k.slice(0, 40))}; allowed: ${allowed.join(', ')}`);
}

function stringField(v: unknown, name: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new InvalidArgumentError(`${name} must be a string of 1 to ${max} characters`);
  return v;
}

function deletionPolicyOf(v: unknown): DeletionPolicy {
  if (typeof v === 'string' && (DELETION_POLICIES as readonly string[]).includes(v)) return v as DeletionPolicy;
  throw new InvalidArgumentError(`deletionPolicy must be one of ${DELETION_POLICIES.join(', ')}; got ${JSON.stringify(String(v).slice(0, 40))}`);
}
