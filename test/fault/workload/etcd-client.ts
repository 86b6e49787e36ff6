/**
 * A minimal etcd v3 gRPC client for the fault workloads, on raw @grpc/grpc-js and the
 * repository's own .proto files (src/api/etcd/proto.ts), with every call classified the way a
 * history needs it:
 *
 *   ok     the server answered OK (a CAS Txn only when its compare held)
 *   fail   the operation certainly did not take effect: the channel had no connection when the
 *          call was picked (grpc-js "No connection established": nothing was sent), the server
 *          rejected the request (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, OUT_OF_RANGE,
 *          PERMISSION_DENIED, UNAUTHENTICATED, UNIMPLEMENTED), or a CAS Txn whose compare failed
 *   info   anything else: DEADLINE_EXCEEDED, UNAVAILABLE after sending (e.g. "etcdserver: not
 *          leader" after forwarding, a dropped connection), CANCELLED, INTERNAL, UNKNOWN,
 *          RESOURCE_EXHAUSTED (the quota check may race a proposal): the write may have applied
 *
 * NO RETRIES. A retried mutation can be applied twice and fake a violation, so channels are
 * created with `grpc.enable_retries: 0` (no transparent or configured retries) and every
 * method sends at most once. Reads never change state: fail and info mean the same for them.
 *
 * Ownership: one `EtcdChannels` per workload run; one channel per endpoint ("127.0.0.1:PORT"),
 * shared by the KV, Lease and Watch stubs and reused across operations. `close()` closes them.
 */
import { credentials, status, type ChannelOptions, type Client, type ClientDuplexStream, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { etcdProto } from '../../../src/api/etcd/proto/index.js';
import type { Outcome } from './http-kv.js';

/** A proto-loader message object (keepCase, int64 as decimal strings, bytes as Buffers). */
export type Msg = Record<string, unknown>;

/** Channel options: no retries, quick reconnects, large range responses. */
const CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.enable_retries': 0,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.min_reconnect_backoff_ms': 100,
  'grpc.max_receive_message_length': 256 * 1024 * 1024,
};

/** Server rejections that certainly did not change state. */
const REJECTED = new Set<number>([
  status.INVALID_ARGUMENT, status.NOT_FOUND, status.FAILED_PRECONDITION, status.OUT_OF_RANGE,
  status.PERMISSION_DENIED, status.UNAUTHENTICATED, status.UNIMPLEMENTED, status.ALREADY_EXISTS,
]);

/** Classifies a failed call (see the module comment). */
export function classifyGrpcError(err: unknown): { type: 'fail' | 'info'; error: string; code?: number } {
  const e = err as Partial<ServiceError>;
  if (typeof e.code !== 'number') return { type: 'info', error: (err as Error)?.message ?? String(err) };
  const name = status[e.code] ?? String(e.code);
  const details = (e.details ?? '').slice(0, 200);
  const error = `${name}${details ? `: ${details}` : ''}`;
  if (e.code === status.DEADLINE_EXCEEDED) return { type: 'info', error: 'timeout', code: e.code };
  // Picked with no transport: the call never left the client.
  if (e.code === status.UNAVAILABLE && /(^|: )No connection established/.test(e.details ?? '')) return { type: 'fail', error: 'no connection', code: e.code };
  if (REJECTED.has(e.code)) return { type: 'fail', error, code: e.code };
  return { type: 'info', error, code: e.code };
}

/** The end of the range of every key starting with `prefix` (etcd's `--prefix`). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1));
      end[i]!++;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** One key-value as returned by Range (only the fields the workloads use). */
export interface EtcdKv {
  key: string;
  value: string;
  modRevision: number;
  lease: string;
}

type Unary = (req: Msg, opts: { deadline: number }, cb: (err: ServiceError | null, res: Msg) => void) => unknown;

interface Stubs { channel: ReturnType<Client['getChannel']>; kv: Client; lease: Client; watch: Client }

/** Channels and stubs per endpoint, and the classified calls. */
export class EtcdChannels {
  private readonly stubs = new Map<string, Stubs>();
  private closed = false;

  private get(endpoint: string): Stubs {
    if (this.closed) throw new Error('EtcdChannels is closed');
    let s = this.stubs.get(endpoint);
    if (!s) {
      const pkg = etcdProto();
      const KV = pkg.KV as ServiceClientConstructor;
      const kv = new KV(endpoint, credentials.createInsecure(), CHANNEL_OPTIONS);
      const channel = kv.getChannel();
      const lease = new (pkg.Lease as ServiceClientConstructor)(endpoint, credentials.createInsecure(), { channelOverride: channel });
      const watch = new (pkg.Watch as ServiceClientConstructor)(endpoint, credentials.createInsecure(), { channelOverride: channel });
      s = { channel, kv, lease, watch };
      this.stubs.set(endpoint, s);
    }
    return s;
  }

  private unary(endpoint: string, service: 'kv' | 'lease', method: string, req: Msg, timeoutMs: number): Promise<{ ok: true; res: Msg } | { ok: false; err: ServiceError }> {
    const client = this.get(endpoint)[service];
    const fn = (client as unknown as Record<string, Unary>)[method]!;
    return new Promise((resolve) => {
      fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err, res) => resolve(err ? { ok: false, err } : { ok: true, res }));
    });
  }

  /**
   * Range over [key, rangeEnd) (a single key without rangeEnd). Linearizable (never
   * `serializable`). Resolves with the key-values and the header revision.
   */
  async range(endpoint: string, req: { key: string | Buffer; rangeEnd?: Buffer; keysOnly?: boolean }, timeoutMs: number): Promise<Outcome<{ kvs: EtcdKv[]; revision: number }>> {
    const r = await this.unary(endpoint, 'kv', 'Range', {
      key: Buffer.from(req.key), ...(req.rangeEnd && { range_end: req.rangeEnd }), ...(req.keysOnly && { keys_only: true }),
    }, timeoutMs);
    if (!r.ok) return classifyGrpcError(r.err);
    return { type: 'ok', value: { kvs: ((r.res.kvs as Msg[] | undefined) ?? []).map(toKv), revision: revisionOf(r.res) } };
  }

  /** Put; resolves with the revision of the write. `lease`: decimal lease id to attach. */
  async put(endpoint: string, key: string, value: string, timeoutMs: number, lease?: string): Promise<Outcome<{ revision: number }>> {
    const r = await this.unary(endpoint, 'kv', 'Put', { key: Buffer.from(key), value: Buffer.from(value), ...(lease && { lease }) }, timeoutMs);
    if (!r.ok) return classifyGrpcError(r.err);
    return { type: 'ok', value: { revision: revisionOf(r.res) } };
  }

  /**
   * Compare-and-set as one Txn: `value(key) == expected` → put `next`, else nothing. A Txn whose
   * compare failed is `fail` (nothing was written), with error `compare failed`.
   */
  async cas(endpoint: string, key: string, expected: string, next: string, timeoutMs: number): Promise<Outcome<{ revision: number }>> {
    const k = Buffer.from(key);
    const r = await this.unary(endpoint, 'kv', 'Txn', {
      compare: [{ result: 'EQUAL', target: 'VALUE', key: k, value: Buffer.from(expected) }],
      success: [{ request_put: { key: k, value: Buffer.from(next) } }],
      failure: [],
    }, timeoutMs);
    if (!r.ok) return classifyGrpcError(r.err);
    if (r.res.succeeded !== true) return { type: 'fail', error: 'compare failed' };
    return { type: 'ok', value: { revision: revisionOf(r.res) } };
  }

  /** LeaseGrant with a client-chosen id (so an indeterminate grant is still identifiable). */
  async leaseGrant(endpoint: string, id: string, ttlSeconds: number, timeoutMs: number): Promise<Outcome<{ id: string; ttl: number }>> {
    const r = await this.unary(endpoint, 'lease', 'LeaseGrant', { ID: id, TTL: String(ttlSeconds) }, timeoutMs);
    if (!r.ok) return classifyGrpcError(r.err);
    if (typeof r.res.error === 'string' && r.res.error !== '') return { type: 'fail', error: r.res.error };
    return { type: 'ok', value: { id: String(r.res.ID), ttl: Number(r.res.TTL) } };
  }

  /**
   * One keep-alive on a fresh LeaseKeepAlive stream (as `etcdctl lease keep-alive --once`): sends
   * one request, waits for one response, then cancels the stream. `ttl` 0 means the lease is
   * gone (etcd answers TTL 0 for a lease it does not know).
   */
  leaseKeepAliveOnce(endpoint: string, id: string, timeoutMs: number): Promise<Outcome<{ ttl: number }>> {
    const client = this.get(endpoint).lease as unknown as { LeaseKeepAlive(opts: { deadline: number }): ClientDuplexStream<Msg, Msg> };
    return new Promise((resolve) => {
      let done = false;
      const call = client.LeaseKeepAlive({ deadline: Date.now() + timeoutMs });
      const finish = (o: Outcome<{ ttl: number }>) => {
        if (done) return;
        done = true;
        resolve(o);
        call.cancel();
      };
      call.on('data', (m: Msg) => finish({ type: 'ok', value: { ttl: Number(m.TTL) } }));
      call.on('error', (err: ServiceError) => finish(classifyGrpcError(err)));
      call.on('end', () => finish({ type: 'info', error: 'stream ended without a response' }));
      call.write({ ID: id });
    });
  }

  /** A raw Watch stream on `endpoint` (see watch.ts for the protocol handling). */
  watchStream(endpoint: string): ClientDuplexStream<Msg, Msg> {
    const client = this.get(endpoint).watch as unknown as { Watch(): ClientDuplexStream<Msg, Msg> };
    return client.Watch();
  }

  /** Closes every channel (open calls end CANCELLED). */
  close(): void {
    this.closed = true;
    for (const s of this.stubs.values()) {
      s.lease.close();
      s.watch.close();
      s.kv.close();
    }
    this.stubs.clear();
  }
}

function revisionOf(res: Msg): number {
  return Number((res.header as Msg | undefined)?.revision ?? 0);
}

function toKv(m: Msg): EtcdKv {
  return {
    key: Buffer.from(m.key as Buffer).toString(),
    value: m.value ? Buffer.from(m.value as Buffer).toString() : '',
    modRevision: Number(m.mod_revision ?? 0),
    lease: String(m.lease ?? '0'),
  };
}

/** One event of a watch response, as the lease history records it. */
export interface WatchedEvent {
  type: 'PUT' | 'DELETE';
  key: string;
  /** The event's mod_revision (for a DELETE: the revision of the deletion). */
  rev: number;
  /** Decimal lease id of a PUT's key-value ("0" = none). */
  lease?: string;
}

/** Decodes the events of a WatchResponse. */
export function watchedEvents(m: Msg): WatchedEvent[] {
  return ((m.events as Msg[] | undefined) ?? []).map((e) => {
    const kv = (e.kv ?? {}) as Msg;
    const type = e.type === 'DELETE' || e.type === 1 ? 'DELETE' : 'PUT';
    return {
      type, key: Buffer.from((kv.key as Buffer | undefined) ?? []).toString(), rev: Number(kv.mod_revision ?? 0),
      ...(type === 'PUT' && { lease: String(kv.lease ?? '0') }),
    };
  });
}

/** Header revision of a response. */
export { revisionOf };
