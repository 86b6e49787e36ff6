import {
  ResponderBuilder, Server, ServerCredentials, ServerInterceptingCall, ServerListenerBuilder, status,
  type ServerDuplexStream, type ServerInterceptor, type ServerUnaryCall, type ServerWritableStream,
  type ServiceClientConstructor, type ServiceDefinition, type UntypedServiceImplementation, type sendUnaryData,
} from '@grpc/grpc-js';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { MvccError } from '../../mvcc/index.js';
import { InvalidArgumentError, UnavailableError, splitHostPort, createLogger, type Logger } from '../../util/index.js';
import { decodeRange, type Msg } from './codec.js';
import { grpcStatusOf, toServiceError } from './grpc-status.js';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { authNotEnabled, leaseKeepAliveOnce, unaryOperations, type UnaryOperation } from './operations.js';
import type { EtcdGrpcMetrics } from './metrics.js';
import { etcdPackageDefinition, etcdProto } from './proto/index.js';
import { RangeBudget, RangeResponseBuilder } from './range-response.js';
import { acceptSchemeAuthority } from './scheme-authority.js';
import { WireError, checkWire, compressedWithoutEncoding, wireSchemas } from './wire-check.js';
import type { EtcdServices } from './services.js';
import { DEFAULT_WATCH_STREAM_LIMITS, WatchStream, type WatchStreamLimits } from './watch-stream.js';

export interface EtcdGrpcServerOptions {
  services: EtcdServices;
  log?: Logger;
  watch?: Partial<WatchStreamLimits>;
  /** Most concurrent streams (Watch, LeaseKeepAlive) per server. Default 10,000. */
  streamsMax?: number;
  /** Where to count requests and latency (e.g. on the HTTP server's /metrics registry). */
  metrics?: EtcdGrpcMetrics;
  /**
   * Streams opened with clientv3's `WithRequireLeader` (metadata `hasleader: true`) end with
   * "etcdserver: no leader" once the member has had no leader for this long (etcd: three
   * election timeouts). Default 3 s; checked every `leaderCheckMs` (default 500 ms).
   */
  requireLeaderGraceMs?: number;
  leaderCheckMs?: number;
}

/** clientv3's `WithRequireLeader` metadata key (rpctypes.MetadataRequireLeaderKey). */
const REQUIRE_LEADER_KEY = 'hasleader';
const requiresLeader = (md: Metadata): boolean => md.get(REQUIRE_LEADER_KEY)[0] === 'true';
const noLeader = (): UnavailableError => new UnavailableError('no leader', 1, { reason: 'no_leader' });

export interface EtcdGrpcServer {
  /** Binds `addr` (host:port; port 0 for an ephemeral port) and resolves with the bound port. */
  listen(addr: string): Promise<number>;
  /**
   * A sink for HTTP/2 connections accepted elsewhere (client-listener.ts, which terminates TLS
   * and shares the port with HTTP/1.1). May be used instead of, or besides, `listen`.
   */
  connectionInjector(): { injectConnection(connection: Duplex): void };
  /** Stops accepting calls, ends open streams, and resolves once the server is shut down. */
  close(): Promise<void>;
  /** Range response bytes built and not yet written, and Ranges waiting for the budget. */
  rangeBudget(): { bytesInFlight: number; waiting: number };
}

/** etcd's gRPC receive limit: the request limit plus 512 KiB of framing overhead. */
const GRPC_OVERHEAD_BYTES = 512 * 1024;

const RANGE_PATH = '/etcdserverpb.KV/Range';
/** Keep-alive requests of one stream waiting for their answer before the stream is paused. */
const KEEPALIVES_QUEUED_MAX = 64;

/**
 * A request the strict decoder refused (wire-check.ts): the deserializer returns this in place
 * of the message, because an exception thrown there becomes grpc-js's generic INTERNAL
 * "Error deserializing request". Handlers answer it with its own status and change nothing.
 */
class RejectedRequest {
  constructor(readonly code: status, readonly details: string) {}
}

function rejection(m: unknown): RejectedRequest | undefined {
  return m instanceof RejectedRequest ? m : undefined;
}

function rejectedError(r: RejectedRequest): Partial<ServiceError> {
  return { code: r.code, details: r.details, metadata: new Metadata(), name: 'Error', message: r.details };
}

/**
 * The service definitions with strict request decoding: before proto-loader decodes a request,
 * its bytes are checked against the message's descriptor (a wrong wire type is
 * INVALID_ARGUMENT), and a frame with the compressed flag but no negotiated grpc-encoding is
 * refused with grpc-go's INTERNAL "grpc: compressed flag set with identity or empty encoding".
 * KV.Range responses may be pre-encoded Buffers (range-response.ts), passed through as they are.
 */
function strictService(def: ServiceDefinition, schemaOf: ReturnType<typeof wireSchemas>): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [method, m] of Object.entries(def)) {
    const typeName = (m as unknown as { requestType: { type: { name: string } } }).requestType.type.name;
    const schema = schemaOf(`etcdserverpb.${typeName}`);
    const deserialize = m.requestDeserialize;
    const serialize = m.responseSerialize;
    out[method] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        if (compressedWithoutEncoding(buf)) return new RejectedRequest(status.INTERNAL, 'grpc: compressed flag set with identity or empty encoding');
        try {
          checkWire(buf, schema);
        } catch (err) {
          if (err instanceof WireError) return new RejectedRequest(status.INVALID_ARGUMENT, `grpc: failed to unmarshal the received message: ${err.message}`);
          throw err;
        }
        return deserialize(buf);
      },
      ...(m.path === RANGE_PATH && { responseSerialize: (v: unknown) => (Buffer.isBuffer(v) ? v : serialize(v)) }),
    };
  }
  return out as ServiceDefinition;
}

/**
 * The etcd v3 gRPC API (KV, Watch, Lease, Cluster, Maintenance, Auth) over EtcdServices.
 * Handlers are thin: decode the message (codec.ts), call one service method, encode the result;
 * errors become gRPC statuses in grpc-status.ts only.
 * Limits: receive size = `requestBytesMax` + 512 KiB (larger messages get RESOURCE_EXHAUSTED from
 * grpc-js; commands above `requestBytesMax` get "etcdserver: request is too large"), streams per
 * server `streamsMax`, watch limits per stream (watch-stream.ts).
 */
export function createEtcdGrpcServer(opts: EtcdGrpcServerOptions): EtcdGrpcServer {
  const svc = opts.services;
  const log = opts.log ?? createLogger('etcd-grpc');
  const watchLimits = { ...DEFAULT_WATCH_STREAM_LIMITS, ...opts.watch };
  const streamsMax = opts.streamsMax ?? 10_000;
  const streams = new Set<{ end(): void; noLeader?: () => void }>();
  // WithRequireLeader streams end once the member has been without a leader for the grace time.
  const graceMs = opts.requireLeaderGraceMs ?? 3000;
  let leaderlessSince: number | undefined;
  const leaderWatch = setInterval(() => {
    if (svc.hasLeader()) { leaderlessSince = undefined; return; }
    leaderlessSince ??= Date.now();
    if (Date.now() - leaderlessSince < graceMs) return;
    for (const s of streams) if (s.noLeader) { streams.delete(s); s.noLeader(); }
  }, opts.leaderCheckMs ?? 500);
  leaderWatch.unref();
  /**
   * Range responses hold their bytes in the budget until grpc-js has written them (its
   * sendStatus follows the message write) or the call is cancelled.
   */
  const rangeAccounting: ServerInterceptor = (method, call) => {
    if (method.path !== RANGE_PATH) return new ServerInterceptingCall(call);
    let held = 0;
    let ended = false;
    const release = (): void => {
      ended = true;
      budget.release(held);
      held = 0;
    };
    return new ServerInterceptingCall(call, new ResponderBuilder()
      .withStart((next) => next(new ServerListenerBuilder().withOnCancel(release).build()))
      .withSendMessage((message, next) => {
        if (Buffer.isBuffer(message)) held += message.length;
        if (ended) release(); // cancelled before the answer was ready: nothing will be sent
        next(message);
      })
      .withSendStatus((st, next) => {
        release();
        next(st);
      })
      .build());
  };
  const server = new Server({
    'grpc.max_receive_message_length': svc.mvcc.limits.requestBytesMax + GRPC_OVERHEAD_BYTES,
    'grpc.max_send_message_length': -1,
    'grpc.keepalive_permit_without_calls': 1,
    interceptors: [rangeAccounting],
  });
  const pkg = etcdProto();
  const schemaOf = wireSchemas(etcdPackageDefinition());
  const service = (name: string) => (pkg[name] as ServiceClientConstructor).service;
  const budget = new RangeBudget(svc.mvcc.limits.rangeBytesInFlightMax);

  /** Wraps a unary operation as a grpc-js handler; errors are mapped in grpc-status.ts. */
  const unary = (name: string, fn: UnaryOperation) =>
    (call: ServerUnaryCall<Msg, Msg>, cb: sendUnaryData<Msg>): void => {
      const started = performance.now();
      const bad = rejection(call.request);
      if (bad) {
        opts.metrics?.record(name, bad.code, (performance.now() - started) / 1000);
        cb(rejectedError(bad));
        return;
      }
      // WithRequireLeader: fail at once instead of waiting for a leader (etcd's interceptor).
      if (requiresLeader(call.metadata) && !svc.hasLeader()) {
        opts.metrics?.record(name, status.UNAVAILABLE, (performance.now() - started) / 1000);
        cb(toServiceError(noLeader()));
        return;
      }
      fn(call.request).then((res) => {
        opts.metrics?.record(name, status.OK, (performance.now() - started) / 1000);
        cb(null, res);
      }, (err: unknown) => {
        const { code } = grpcStatusOf(err);
        opts.metrics?.record(name, code, (performance.now() - started) / 1000);
        if (code === status.INTERNAL) log.error({ err }, 'etcd request failed');
        cb(toServiceError(err));
      });
    };

  const ops = unaryOperations(svc);
  const impls: Record<string, UntypedServiceImplementation> = { KV: {}, Watch: {}, Lease: {}, Cluster: {}, Maintenance: {}, Auth: {} };
  for (const [name, fn] of Object.entries(ops)) {
    const [serviceName, method] = name.split('.') as [string, string];
    impls[serviceName]![method] = unary(name, fn);
  }
  for (const method of Object.keys(service('Auth'))) if (!impls.Auth![method]) impls.Auth![method] = unary(`Auth.${method}`, authNotEnabled);

  /**
   * KV.Range, encoded row by row into protobuf bytes (range-response.ts) under the response size
   * limit and the bytes-in-flight budget; the JSON gateway keeps the general path.
   */
  impls.KV!.Range = unary('KV.Range', async (m) => {
    // Bytes enter the budget as they are encoded (so a Range woken next sees them); the
    // interceptor releases them once sent. On failure nothing is sent: release here.
    let accounted = 0;
    const builder = new RangeResponseBuilder(svc.mvcc.limits.rangeResponseBytesMax, (n) => {
      accounted += n;
      budget.add(n);
    });
    try {
      const r = await svc.mvcc.rangeEach(decodeRange(m), (kv) => builder.kv(kv), budget);
      return builder.finish(svc.header(r.revision), r.more, r.count) as unknown as Msg;
    } catch (err) {
      budget.release(accounted);
      throw err;
    }
  });

  /**
   * Keep-alives are answered one at a time, in order, as etcd's receive loop does; a client that
   * half-closes gets the answers to everything it sent before the stream ends (etcd answers, then
   * sees EOF). At most KEEPALIVES_QUEUED_MAX wait: beyond that the stream is paused (HTTP/2 flow
   * control pushes back on the client).
   */
  impls.Lease!.LeaseKeepAlive = (call: ServerDuplexStream<Msg, Msg>) => {
    let queued = 0;
    let chain = Promise.resolve();
    let failed = false;
    if (!admitStream(call, 'Lease.LeaseKeepAlive', () => { void chain.then(() => { if (!failed) call.end(); }); })) return;
    call.on('data', (m: Msg) => {
      const bad = rejection(m);
      if (bad) {
        call.emit('error', rejectedError(bad));
        return;
      }
      if (++queued >= KEEPALIVES_QUEUED_MAX) call.pause();
      chain = chain.then(() => leaseKeepAliveOnce(svc, m).then((res) => { if (!failed) call.write(res); }, (err: unknown) => {
        failed = true;
        endWithError(call, err);
      })).finally(() => {
        if (queued-- === KEEPALIVES_QUEUED_MAX) call.resume();
      });
    });
  };

  impls.Watch!.Watch = (call: ServerDuplexStream<Msg, Msg>) => {
    // A client that half-closes keeps its watches: etcd's recvLoop ends on EOF, the send side
    // runs until the client cancels (or the server stops).
    if (!admitStream(call, 'Watch.Watch', () => undefined)) return;
    const ws = new WatchStream(svc.hub, {
      send: (msg) => { call.write(msg); },
      queuedBytes: () => call.writableLength,
    }, (rev) => svc.header(rev), watchLimits);
    call.on('data', (m: Msg) => {
      const bad = rejection(m);
      if (bad) call.emit('error', rejectedError(bad));
      else ws.handle(m);
    });
    call.on('drain', () => ws.drained());
    const done = () => ws.close();
    call.on('cancelled', done);
    call.on('error', done);
    call.on('close', done);
  };

  impls.Maintenance!.Snapshot = (call: ServerWritableStream<Msg, Msg>) => {
    countStream(call, 'server_stream', 'Maintenance.Snapshot');
    try {
      const header = svc.header();
      const chunks = svc.snapshot();
      const pump = (): void => {
        for (;;) {
          const next = chunks.next();
          if (next.done) {
            call.end();
            return;
          }
          if (!call.write({ header, remaining_bytes: String(next.value.remainingBytes), blob: next.value.blob })) {
            call.once('drain', pump);
            return;
          }
        }
      };
      pump();
    } catch (err) {
      endWithError(call, err);
    }
  };

  for (const [name, impl] of Object.entries(impls)) server.addService(strictService(service(name), schemaOf), impl);

  /** Counts a stream's outcome once in grpc_server_handled_total: OK, its error's code, or Canceled. */
  function countStream(call: ServerWritableStream<Msg, Msg> | ServerDuplexStream<Msg, Msg>, type: 'server_stream' | 'bidi_stream', method: string): void {
    const metrics = opts.metrics;
    if (!metrics) return;
    let counted = false;
    const count = (code: status) => {
      if (counted) return;
      counted = true;
      metrics.finished(type, method, code);
    };
    call.on('finish', () => count(status.OK));
    call.on('error', (err: { code?: status }) => count(err.code ?? status.UNKNOWN));
    call.on('cancelled', () => count(status.CANCELLED));
  }

  /**
   * Counts the stream against `streamsMax` (and in the metrics as `method`) until it ends;
   * `onHalfClose` runs when the client ends its side (default: end ours).
   */
  function admitStream(call: ServerDuplexStream<Msg, Msg>, method: string, onHalfClose: () => void = () => { call.end(); }): boolean {
    countStream(call, 'bidi_stream', method);
    if (streams.size >= streamsMax) {
      endWithError(call, new MvccError('invalid', `too many streams (limit ${streamsMax})`));
      return false;
    }
    const leaderBound = requiresLeader(call.metadata);
    if (leaderBound && !svc.hasLeader()) {
      endWithError(call, noLeader());
      return false;
    }
    const entry = { end: () => call.end(), ...(leaderBound && { noLeader: () => endWithError(call, noLeader()) }) };
    streams.add(entry);
    const drop = () => streams.delete(entry);
    call.on('close', drop);
    call.on('finish', drop);
    call.on('cancelled', drop);
    call.on('error', drop);
    call.on('end', onHalfClose);
    return true;
  }

  let listener: NetServer | undefined;
  let injected = false;
  // Every HTTP/2 connection goes through scheme-authority.ts first, so that a request whose
  // :authority carries a scheme (etcdctl 3.4 with http:// endpoints) is repaired before grpc-js.
  const injector = (): { injectConnection(connection: Duplex): void } => {
    injected = true;
    const inner = server.createConnectionInjector(ServerCredentials.createInsecure());
    return { injectConnection: (c) => { void acceptSchemeAuthority(c as Socket).then((d) => inner.injectConnection(d)); } };
  };
  return {
    rangeBudget: () => ({ bytesInFlight: budget.bytesInFlight, waiting: budget.waiting }),
    connectionInjector: injector,
    listen(addr: string): Promise<number> {
      const hp = splitHostPort(addr);
      if (!hp) return Promise.reject(new InvalidArgumentError(`${JSON.stringify(addr)} is not host:port`));
      const sink = injector();
      const tcp = createServer((socket) => sink.injectConnection(socket));
      return new Promise((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(hp.port, hp.host || '0.0.0.0', () => {
          tcp.off('error', reject);
          listener = tcp;
          const port = (tcp.address() as AddressInfo).port;
          log.info({ addr, port }, 'etcd gRPC API listening');
          resolve(port);
        });
      });
    },
    close(): Promise<void> {
      clearInterval(leaderWatch);
      for (const s of streams) s.end();
      streams.clear();
      listener?.close();
      if (!injected) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), 2000);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

function endWithError(call: { emit(event: 'error', err: unknown): boolean; destroy?(err?: Error): void }, err: unknown): void {
  call.emit('error', toServiceError(err));
}

