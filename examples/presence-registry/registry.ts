/**
 * Presence registry (the IM chat etcd guide): which gateway holds each connected device of a user.
 *
 *   /registry/users/<userId>/<deviceId>  →  <gateway>      (under a lease, default 90 s)
 *
 * - `PresenceRegistry.register` grants a lease, puts the key under it and keeps the lease alive
 *   (LeaseKeeper) while the device stays connected; `unregister` revokes it, so the key goes at
 *   once. A device whose keep-alives stop (gateway crash, partition) vanishes after its TTL.
 * - `PresenceCache` lists the prefix, then watches from the listed revision + 1. The Watcher
 *   resumes from the last seen revision after a reconnect; when that revision was compacted it
 *   re-lists (and tells subscribers with a `reset` change). Subscribers see each change once, in
 *   revision order.
 *
 * Errors: `InvalidPresenceIdError` (code `INVALID_ARGUMENT`) for a bad user or device id; etcd
 * failures surface as the client's typed errors.
 */
import { EventEmitter } from 'node:events';
import type { EtcdClient, LeaseKeeper, WatchEvent } from '../../src/client/etcd-client.js';

export const REGISTRY_PREFIX = '/registry/users/';
/** The guide's lease TTL. */
export const DEFAULT_TTL_SECONDS = 90;
/** Longest user or device id, in bytes. */
export const ID_BYTES_MAX = 128;
/** Longest gateway address, in bytes. */
export const GATEWAY_BYTES_MAX = 256;

export class InvalidPresenceIdError extends Error {
  readonly code = 'INVALID_ARGUMENT';
  constructor(message: string) { super(message); this.name = 'InvalidPresenceIdError'; }
}

/** Throws unless `id` is 1..ID_BYTES_MAX bytes of printable ASCII-or-UTF-8 without `/`. */
export function validateId(kind: 'user' | 'device', id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) throw new InvalidPresenceIdError(`${kind} id must be a non-empty string`);
  if (Buffer.byteLength(id) > ID_BYTES_MAX) throw new InvalidPresenceIdError(`${kind} id is longer than ${ID_BYTES_MAX} bytes`);
  if (id.includes('/')) throw new InvalidPresenceIdError(`${kind} id must not contain '/'`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) throw new InvalidPresenceIdError(`${kind} id must not contain control characters`);
  if (id === '.' || id === '..') throw new InvalidPresenceIdError(`${kind} id must not be '.' or '..'`);
  return id;
}

function validateGateway(gateway: unknown): string {
  if (typeof gateway !== 'string' || gateway.length === 0) throw new InvalidPresenceIdError('gateway must be a non-empty string');
  if (Buffer.byteLength(gateway) > GATEWAY_BYTES_MAX) throw new InvalidPresenceIdError(`gateway is longer than ${GATEWAY_BYTES_MAX} bytes`);
  return gateway;
}

export function userPrefix(userId: string): string { return `${REGISTRY_PREFIX}${validateId('user', userId)}/`; }
export function deviceKey(userId: string, deviceId: string): string { return `${userPrefix(userId)}${validateId('device', deviceId)}`; }

/** Splits a registry key into its ids, or undefined for a key that is not a device entry. */
export function parseKey(key: string): { userId: string; deviceId: string } | undefined {
  if (!key.startsWith(REGISTRY_PREFIX)) return undefined;
  const parts = key.slice(REGISTRY_PREFIX.length).split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { userId: parts[0], deviceId: parts[1] };
}

export interface DeviceEntry { userId: string; deviceId: string; gateway: string; modRevision: number }

export interface PresenceRegistryOptions {
  /** Lease TTL, seconds (default 90; tests use a few). */
  ttlSeconds?: number;
  /** Keep-alive period, ms (default a third of the TTL). */
  keepAliveIntervalMs?: number;
}

/** A registration held by this process; `lost` fires if the lease could not be kept. */
export interface Registration extends EventEmitter {
  readonly userId: string;
  readonly deviceId: string;
  readonly leaseId: string;
  readonly revision: number;
}

/**
 * Registers devices. Owns its LeaseKeepers (one lease per device, so a device's TTL is its own);
 * does not own the client. `close()` stops keep-alives without revoking (entries then expire).
 */
export class PresenceRegistry {
  readonly ttlSeconds: number;
  private readonly held = new Map<string, { keeper: LeaseKeeper; reg: Registration }>();

  constructor(private readonly client: EtcdClient, private readonly opts: PresenceRegistryOptions = {}) {
    this.ttlSeconds = opts.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isSafeInteger(this.ttlSeconds) || this.ttlSeconds < 1) throw new InvalidPresenceIdError('ttlSeconds must be a positive integer');
  }

  /**
   * Puts userId/deviceId → gateway under a fresh lease kept alive until `unregister` or `close`.
   * Re-registering a held device replaces its entry (new lease; the old one is revoked).
   * Resolves once the put is acknowledged (committed by a quorum).
   */
  async register(userId: string, deviceId: string, gateway: string): Promise<Registration> {
    const key = deviceKey(userId, deviceId);
    validateGateway(gateway);
    const keeper = await this.client.grantAndKeep(this.ttlSeconds, this.opts.keepAliveIntervalMs ? { intervalMs: this.opts.keepAliveIntervalMs } : {});
    let put;
    try {
      put = await this.client.put(key, gateway, { lease: keeper.id });
    } catch (err) {
      await keeper.stop(true).catch(() => undefined);
      throw err;
    }
    const previous = this.held.get(key);
    const reg = Object.assign(new EventEmitter(), { userId, deviceId, leaseId: keeper.id, revision: put.revision }) as Registration;
    keeper.on('lost', (reason: unknown) => {
      if (this.held.get(key)?.reg === reg) this.held.delete(key);
      reg.emit('lost', reason);
    });
    this.held.set(key, { keeper, reg });
    if (previous) await previous.keeper.stop(previous.keeper.id !== keeper.id).catch(() => undefined);
    return reg;
  }

  /** Stops keeping the device's lease alive and revokes it (the entry is deleted now). */
  async unregister(userId: string, deviceId: string): Promise<boolean> {
    const key = deviceKey(userId, deviceId);
    const h = this.held.get(key);
    if (h) {
      this.held.delete(key);
      await h.keeper.stop(true);
      return true;
    }
    // Not held here (another process, or after a restart): delete the key itself.
    return (await this.client.delete(key)).deleted > 0;
  }

  /** Stops keep-alives for the device only (a simulated crash); its entry expires after the TTL. */
  async abandon(userId: string, deviceId: string): Promise<void> {
    const key = deviceKey(userId, deviceId);
    const h = this.held.get(key);
    this.held.delete(key);
    await h?.keeper.stop(false);
  }

  /** Every device of `userId`, read linearizably from the cluster. */
  async lookup(userId: string): Promise<DeviceEntry[]> {
    const r = await this.client.range(userPrefix(userId), { prefix: true });
    return r.kvs.flatMap((kv) => {
      const ids = parseKey(kv.key);
      return ids ? [{ ...ids, gateway: kv.value.toString(), modRevision: kv.modRevision }] : [];
    });
  }

  /** Devices registered (and kept alive) by this process. */
  heldCount(): number { return this.held.size; }

  /** Stops every keep-alive; `revoke` deletes the entries now instead of after the TTL. */
  async close(revoke = false): Promise<void> {
    const all = [...this.held.values()];
    this.held.clear();
    await Promise.all(all.map((h) => h.keeper.stop(revoke).catch(() => undefined)));
  }
}

/** One change a cache subscriber sees. `reset` follows a re-list after compaction. */
export type PresenceChange =
  | { type: 'put'; userId: string; deviceId: string; gateway: string; revision: number }
  | { type: 'delete'; userId: string; deviceId: string; revision: number }
  | { type: 'reset'; revision: number };

/**
 * A watch-driven, in-memory copy of the registry (or of one user's entries). Events are applied
 * in revision order; an event at or below the revision already applied is dropped, so a change
 * is applied and emitted once even if a resumed stream repeats it.
 *
 *   list(prefix) @rev R ──► watch(prefix, from R+1) ──► apply, emit 'change'
 *                 ▲                                      │ compacted
 *                 └──────────── re-list, emit 'reset' ◄──┘
 */
export class PresenceCache extends EventEmitter {
  private readonly users = new Map<string, Map<string, { gateway: string; modRevision: number }>>();
  private applied = 0;
  private watcher: ReturnType<EtcdClient['watch']> | undefined;
  private closed = false;
  private relisting: Promise<void> | undefined;
  /** Re-lists done after compaction (for tests and metrics). */
  relists = 0;

  constructor(private readonly client: EtcdClient, private readonly prefix: string = REGISTRY_PREFIX) { super(); }

  /** Lists and starts watching; resolves once the watch stream is established. */
  async start(): Promise<void> {
    await this.list();
    this.watch();
    await this.watcher!.ready;
  }

  private async list(): Promise<void> {
    const r = await this.client.range(this.prefix, { prefix: true });
    this.users.clear();
    for (const kv of r.kvs) {
      const ids = parseKey(kv.key);
      if (ids) this.entryMap(ids.userId).set(ids.deviceId, { gateway: kv.value.toString(), modRevision: kv.modRevision });
    }
    this.applied = r.revision;
  }

  private watch(): void {
    this.watcher?.close();
    this.watcher = this.client.watch(this.prefix, { prefix: true, fromRevision: this.applied + 1 }, {
      onEvents: (events: WatchEvent[]) => { this.apply(events); },
      onCompacted: async () => { await this.relist(); },
      onError: (err) => { this.emit('watch-error', err); },
    });
  }

  private relist(): Promise<void> {
    if (this.relisting) return this.relisting;
    this.relisting = (async () => {
      this.watcher?.close();
      for (let attempt = 0; !this.closed; attempt++) {
        try { await this.list(); break; } catch (err) {
          this.emit('watch-error', err);
          await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
        }
      }
      if (this.closed) return;
      this.relists++;
      this.emit('change', { type: 'reset', revision: this.applied } satisfies PresenceChange);
      this.watch();
    })().finally(() => { this.relisting = undefined; });
    return this.relisting;
  }

  private apply(events: WatchEvent[]): void {
    for (const ev of events) {
      const rev = ev.kv.modRevision;
      if (rev <= this.applied) continue; // already seen (listed, or repeated by a resumed stream)
      this.applied = rev;
      const ids = parseKey(ev.kv.key);
      if (!ids) continue;
      if (ev.type === 'put') {
        const gateway = ev.kv.value.toString();
        this.entryMap(ids.userId).set(ids.deviceId, { gateway, modRevision: rev });
        this.emit('change', { type: 'put', ...ids, gateway, revision: rev } satisfies PresenceChange);
      } else {
        const m = this.users.get(ids.userId);
        m?.delete(ids.deviceId);
        if (m && m.size === 0) this.users.delete(ids.userId);
        this.emit('change', { type: 'delete', ...ids, revision: rev } satisfies PresenceChange);
      }
    }
  }

  private entryMap(userId: string): Map<string, { gateway: string; modRevision: number }> {
    let m = this.users.get(userId);
    if (!m) { m = new Map(); this.users.set(userId, m); }
    return m;
  }

  /** The cached devices of `userId` (no round trip). */
  lookup(userId: string): DeviceEntry[] {
    const m = this.users.get(validateId('user', userId));
    return m ? [...m].map(([deviceId, e]) => ({ userId, deviceId, gateway: e.gateway, modRevision: e.modRevision })) : [];
  }

  /** Every cached entry, sorted by key. */
  snapshot(): DeviceEntry[] {
    return [...this.users.keys()].sort().flatMap((u) => this.lookup(u).sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1)));
  }

  /** The revision the cache reflects. */
  revision(): number { return this.applied; }

  close(): void { this.closed = true; this.watcher?.close(); }
}
