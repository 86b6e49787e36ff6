/**
 * EtcdClient: our own etcd v3 client over @grpc/grpc-js and the project's protos. It talks to
 * ConureDB and to a real etcd alike (the contract suite runs against both).
 *
 * ```
 *   endpoints ["a:2379","b:2379","c:2379"]      current ──► one channel per endpoint (lazy)
 *        unary call ──► current endpoint ──ok──► answer
 *                            │ unavailable (refused, reset, not leader, channel not READY at deadline)
 *                            ▼
 *                      next endpoint … each endpoint at most once per call, then UnavailableError
 * ```
 *
 * Invariants and errors:
 * - Every unary call has a deadline (`callTimeoutMs`, default 5 s; per call `timeoutMs`).
 * - Every failure is a ConureError (see errors.ts for the mapping); an unreachable store is
 *   `unavailable` (UnavailableError). A deadline on a connected channel is `timeout`: the
 *   request may have been applied, so it is not retried on another endpoint.
 * - Writes retried on another endpoint after `unavailable` were not answered by the first; with
 *   gRPC that almost always means they were not sent. Callers that need exactly-once effects
 *   guard their writes with txn compares (as the platform does).
 * - Streams (watch, lease keep-alive) are owned by Watcher and LeaseKeeper, which reconnect by
 *   themselves; `close()` ends them all and fails later calls with `closed`.
 * - TLS: `tls` (CA, and a client certificate and key for servers that ask for one), or an
 *   `https://` endpoint (then the system CAs). Plain text otherwise.
 */
import { credentials, type ChannelCredentials, type Client, type ClientDuplexStream, type GrpcObject, type ServiceClientConstructor, connectivityState, loadPackageDefinition, Metadata } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoDir, LOADER_OPTIONS } from '../../api/etcd/proto/index.js';
import { ClosedError, ConureError, InvalidArgumentError, UnavailableError } from '../../util/index.js';
import { jsonBytes, leaseId, safeInt, toBuffer, valueJson } from './bytes.js';
import { fromGrpcError, isRetryable } from './errors.js';
import { Txn } from './txn.js';
import type { Bytes, DeleteOptions, DeleteResult, KeyValue, LeaseGrantResult, LeaseTimeToLiveResult, PutOptions, PutResult, RangeOptions, RangeResult, TxnRequest, TxnResult } from './types.js';
import { decodeDelete, decodePut, decodeRange, decodeTxn, encodeDelete, encodePut, encodeRange, encodeTxn, type Wire } from './wire.js';
import { LeaseKeeper, type LeaseKeeperOptions } from './lease-keeper.js';
import { Watcher, type WatchHandler, type WatchOptions } from './watch.js';

let proto: GrpcObject | undefined;
function etcdPackage(): GrpcObject {
  if (!proto) {
    const def = loadSync('rpc.proto', { ...LOADER_OPTIONS, includeDirs: [protoDir()] });
    proto = loadPackageDefinition(def).etcdserverpb as GrpcObject;
  }
  return proto;
}

export interface EtcdClientOptions {
  /** `host:port` (an `http://` prefix is accepted and dropped); tried in order, at least one. */
  endpoints: string[];
  /** Deadline of each unary call, ms (default 5000). */
  callTimeoutMs?: number;
  /**
   * TLS for every endpoint: `ca` (PEM) the server certificates must chain to (default: the
   * system CAs), `cert` and `key` (PEM, together) a client certificate. Implied, with the system
   * CAs, by an `https://` endpoint.
   */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

type ServiceName = 'KV' | 'Lease' | 'Watch';

interface Connection {
  endpoint: string;
  channel: ReturnType<Client['getChannel']>;
  clients: Record<ServiceName, Client>;
}

/** Channel settings: reconnect quickly after a restart; detect a dead peer on idle streams. */
const CHANNEL_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.min_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
};

export class EtcdClient {
  readonly endpoints: readonly string[];
  readonly callTimeoutMs: number;
  private readonly conns: Array<Connection | undefined>;
  private current = 0;
  private closed = false;
  private readonly streams = new Set<{ close(): void }>();
  private readonly creds: ChannelCredentials;

  constructor(opts: EtcdClientOptions) {
    if (!opts.endpoints.length) throw new InvalidArgumentError('EtcdClient needs at least one endpoint');
    const tls = opts.tls ?? (opts.endpoints.some((e) => /^https:\/\//i.test(e)) ? {} : undefined);
    if (tls && !tls.cert !== !tls.key) throw new InvalidArgumentError('a TLS client certificate needs its key, and a key its certificate');
    this.creds = tls ? credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null) : credentials.createInsecure();
    this.endpoints = opts.endpoints.map((e) => e.replace(/^https?:\/\//i, '').replace(/\/+$/, ''));
    this.callTimeoutMs = opts.callTimeoutMs ?? 5000;
    this.conns = this.endpoints.map(() => undefined);
  }

  /** The endpoint calls go to now. */
  currentEndpoint(): string { return this.endpoints[this.current]!; }

  /** The value at `key`, or undefined when absent. */
  async get(key: Bytes, opts: { revision?: number; serializable?: boolean; timeoutMs?: number } = {}): Promise<KeyValue | undefined> {
    const r = await this.range(key, { revision: opts.revision ?? 0, serializable: opts.serializable ?? false }, opts.timeoutMs);
    return r.kvs[0];
  }

  /** The JSON value at `key` with its key-value, or undefined when absent. */
  async getJson<T>(key: Bytes): Promise<{ value: T; kv: KeyValue } | undefined> {
    const kv = await this.get(key);
    return kv ? { value: valueJson<T>(kv), kv } : undefined;
  }

  /** Keys in a range (or under a prefix). Throws `compacted` for a revision below compaction. */
  async range(key: Bytes, opts: RangeOptions = {}, timeoutMs?: number): Promise<RangeResult> {
    return decodeRange(await this.unary('KV', 'Range', encodeRange(key, opts), timeoutMs));
  }

  async put(key: Bytes, value: Bytes, opts: PutOptions = {}, timeoutMs?: number): Promise<PutResult> {
    return decodePut(await this.unary('KV', 'Put', encodePut(key, value, opts), timeoutMs));
  }

  /** Puts `JSON.stringify(value)`. */
  putJson(key: Bytes, value: unknown, opts: PutOptions = {}): Promise<PutResult> {
    return this.put(key, jsonBytes(value), opts);
  }

  async delete(key: Bytes, opts: DeleteOptions = {}, timeoutMs?: number): Promise<DeleteResult> {
    return decodeDelete(await this.unary('KV', 'DeleteRange', encodeDelete(key, opts), timeoutMs));
  }

  /** A txn builder; `.commit()` sends it. */
  txn(): Txn { return new Txn((req) => this.runTxn(req)); }

  /** Runs a txn request as a whole: compares, then the success or the failure ops, atomically. */
  async runTxn(req: TxnRequest, timeoutMs?: number): Promise<TxnResult> {
    return decodeTxn(await this.unary('KV', 'Txn', encodeTxn(req), timeoutMs));
  }

  /** Compacts the store's history up to `revision` (reads and watches below it fail with `compacted`). */
  async compact(revision: number, physical = false): Promise<void> {
    if (!Number.isSafeInteger(revision) || revision <= 0) throw new InvalidArgumentError(`compaction revision must be a positive integer, got ${revision}`);
    await this.unary('KV', 'Compact', { revision: String(revision), physical });
  }

  /**
   * Grants a lease; the server may round the TTL up to its minimum. `id` (a positive decimal
   * int64) asks for that id, as a migration does; an id in use is `conflict` (etcd's
   * FailedPrecondition "lease already exists").
   */
  async leaseGrant(ttlSeconds: number, opts: { id?: string; timeoutMs?: number } = {}): Promise<LeaseGrantResult> {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) throw new InvalidArgumentError(`lease TTL must be a positive integer of seconds, got ${ttlSeconds}`);
    const id = opts.id ?? '0';
    if (!/^\d+$/.test(id) || BigInt(id) > 2n ** 63n - 1n) throw new InvalidArgumentError(`lease id must be a positive int64, got ${id}`);
    const res = await this.unary('Lease', 'LeaseGrant', { TTL: String(ttlSeconds), ID: id }, opts.timeoutMs);
    if (res.error) throw new ConureError('internal', `lease grant: ${String(res.error)}`);
    return { id: leaseId(res.ID), ttlSeconds: safeInt(res.TTL, 'TTL') };
  }

  /** The ids of every lease the server holds (LeaseLeases), as decimal strings. */
  async leaseLeases(timeoutMs?: number): Promise<string[]> {
    const res = await this.unary('Lease', 'LeaseLeases', {}, timeoutMs);
    return ((res.leases ?? []) as Wire[]).map((l) => leaseId(l.ID));
  }

  /** Revokes a lease, deleting its keys. Throws `not_found` when the lease is unknown or expired. */
  async leaseRevoke(id: string): Promise<void> {
    await this.unary('Lease', 'LeaseRevoke', { ID: id });
  }

  /** Remaining TTL of a lease in seconds (-1 when expired or unknown); with `keys`, its keys. */
  async leaseTimeToLive(id: string, opts: { keys?: boolean; timeoutMs?: number } = {}): Promise<LeaseTimeToLiveResult> {
    const res = await this.unary('Lease', 'LeaseTimeToLive', { ID: id, keys: opts.keys ?? false }, opts.timeoutMs);
    return {
      ttlSeconds: safeInt(res.TTL, 'TTL'),
      grantedTtlSeconds: safeInt(res.grantedTTL, 'grantedTTL'),
      keys: ((res.keys ?? []) as Buffer[]).map((k) => toBuffer(k)),
    };
  }

  /**
   * One keep-alive of lease `id` (etcdctl's `lease keep-alive --once`) on a short-lived
   * LeaseKeepAlive stream: resolves with the renewed TTL in seconds, 0 when the lease is gone.
   * Bounded by the call timeout. For many leases at a steady pace, a LeaseKeeper per lease is
   * the better tool; this is for callers that renew on their own schedule (a mirror).
   */
  async leaseKeepAliveOnce(id: string, timeoutMs?: number): Promise<number> {
    const want = leaseId(id);
    const { stream, endpoint, index } = this.openStream('Lease', 'LeaseKeepAlive');
    const ms = timeoutMs ?? this.callTimeoutMs;
    return new Promise<number>((resolve, reject) => {
      let done = false;
      const finish = (err: ConureError | undefined, ttl?: number) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        stream.removeAllListeners('data');
        stream.on('error', () => {});
        stream.cancel();
        if (err) {
          if (err.code === 'unavailable') this.failedOver(index);
          reject(err);
        } else {
          resolve(ttl!);
        }
      };
      const timer = setTimeout(() => finish(new ConureError('timeout', `etcd ${endpoint}: no keep-alive answer within ${ms} ms`)), ms);
      stream.on('data', (res: Wire) => {
        try {
          if (leaseId(res.ID) !== want) return;
          const ttl = safeInt(res.TTL, 'TTL');
          finish(undefined, Math.max(0, ttl));
        } catch (err) {
          finish(this.mapError(err, endpoint));
        }
      });
      stream.on('error', (err) => finish(this.mapError(err, endpoint)));
      stream.on('end', () => finish(new UnavailableError(`etcd ${endpoint}: keep-alive stream ended without an answer`)));
      stream.write({ ID: want });
    });
  }

  /**
   * A LeaseKeeper for an existing lease (or, with `lease` omitted in `grantAndKeep`, a new one).
   * Call `start()` on it; it emits `lost` once the lease cannot be trusted any more.
   */
  keeper(lease: LeaseGrantResult, opts: LeaseKeeperOptions = {}): LeaseKeeper {
    return new LeaseKeeper(this, lease, opts);
  }

  /** Grants a lease of `ttlSeconds` and starts keeping it alive. */
  async grantAndKeep(ttlSeconds: number, opts: LeaseKeeperOptions = {}): Promise<LeaseKeeper> {
    const keeper = this.keeper(await this.leaseGrant(ttlSeconds), opts);
    keeper.start();
    return keeper;
  }

  /**
   * Watches `key` (or every key under it with `prefix`) from `fromRevision` (0 = now). The
   * watcher reconnects by itself from last-seen revision + 1; see Watcher for compaction.
   */
  watch(key: Bytes, opts: WatchOptions, handler: WatchHandler): Watcher {
    const w = new Watcher(this, key, opts, handler);
    w.start();
    return w;
  }

  /** Ends every stream and channel; later calls fail with `closed`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.streams]) s.close();
    for (const c of this.conns) c?.channel.close();
  }

  isClosed(): boolean { return this.closed; }

  // ---- internals shared with Watcher and LeaseKeeper ----

  /** @internal Registers a stream owner so close() ends it. */
  track(s: { close(): void }): () => void {
    this.streams.add(s);
    return () => this.streams.delete(s);
  }

  /** @internal Opens a bidi stream on the current endpoint. */
  openStream(service: 'Watch' | 'Lease', method: 'Watch' | 'LeaseKeepAlive'): { stream: ClientDuplexStream<Wire, Wire>; endpoint: string; index: number } {
    if (this.closed) throw new ClosedError('etcd client');
    const index = this.current;
    const conn = this.conn(index);
    const client = conn.clients[service] as unknown as Record<string, (md: Metadata) => ClientDuplexStream<Wire, Wire>>;
    return { stream: client[method]!.call(client, new Metadata()), endpoint: conn.endpoint, index };
  }

  /** @internal The stream on endpoint `index` failed as unavailable: move on if still current. */
  failedOver(index: number): void {
    if (this.current === index) this.current = (index + 1) % this.endpoints.length;
  }

  /** @internal Maps a stream failure on `endpoint`. */
  mapError(err: unknown, endpoint: string): ConureError {
    return fromGrpcError(err, endpoint, this.closed);
  }

  private conn(i: number): Connection {
    let c = this.conns[i];
    if (!c) {
      const pkg = etcdPackage();
      const endpoint = this.endpoints[i]!;
      const kv = new (pkg.KV as ServiceClientConstructor)(endpoint, this.creds, CHANNEL_OPTIONS);
      const channel = kv.getChannel();
      const mk = (name: ServiceName) => new (pkg[name] as ServiceClientConstructor)(endpoint, this.creds, { ...CHANNEL_OPTIONS, channelOverride: channel as never });
      c = { endpoint, channel, clients: { KV: kv, Lease: mk('Lease'), Watch: mk('Watch') } };
      this.conns[i] = c;
    }
    return c!;
  }

  private async unary(service: ServiceName, method: string, req: Wire, timeoutMs?: number): Promise<Wire> {
    let last: ConureError | undefined;
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      if (this.closed) throw new ClosedError('etcd client');
      const index = this.current;
      const conn = this.conn(index);
      try {
        return await this.callOnce(conn, service, method, req, timeoutMs ?? this.callTimeoutMs);
      } catch (err) {
        let e = fromGrpcError(err, conn.endpoint, this.closed);
        // A deadline on a channel that never got connected is an unreachable store, not a slow one.
        if (e.code === 'timeout' && conn.channel.getConnectivityState(false) !== connectivityState.READY) {
          e = new UnavailableError(`etcd ${conn.endpoint}: not reachable (${e.message})`, 1, { cause: err });
        }
        if (e.code === 'timeout') { this.failedOver(index); throw e; }
        if (!isRetryable(e)) throw e;
        last = e;
        this.failedOver(index);
      }
    }
    throw last ?? new UnavailableError('etcd: no endpoint answered');
  }

  private callOnce(conn: Connection, service: ServiceName, method: string, req: Wire, timeoutMs: number): Promise<Wire> {
    const client = conn.clients[service] as unknown as Record<string, (r: Wire, md: Metadata, o: { deadline: number }, cb: (err: unknown, res: Wire) => void) => void>;
    return new Promise((resolve, reject) => {
      client[method]!.call(client, req, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }
}
