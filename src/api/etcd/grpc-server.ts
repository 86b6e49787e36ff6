import {
  Server, ServerCredentials, type GrpcObject, type ServerDuplexStream, type ServerUnaryCall, type ServerWritableStream,
  type ServiceClientConstructor, type UntypedServiceImplementation, type sendUnaryData,
} from '@grpc/grpc-js';
import { MvccError } from '../../mvcc/errors.js';
import { createLogger, type Logger } from '../../util/log.js';
import {
  decodeDeleteRange, decodePut, decodeRange, decodeTxn, encodeDeleteRangeResult, encodePutResult, encodeRangeResult,
  encodeTxnResult, int, type Msg,
} from './codec.js';
import { grpcStatusOf, toServiceError } from './grpc-status.js';
import { etcdProto } from './proto.js';
import type { EtcdMember, EtcdServices } from './services.js';
import { DEFAULT_WATCH_STREAM_LIMITS, WatchStream, type WatchStreamLimits } from './watch-stream.js';

export interface EtcdGrpcServerOptions {
  services: EtcdServices;
  log?: Logger;
  watch?: Partial<WatchStreamLimits>;
  /** Most concurrent streams (Watch, LeaseKeepAlive) per server. Default 10,000. */
  streamsMax?: number;
}

export interface EtcdGrpcServer {
  /** Binds `addr` (host:port; port 0 for an ephemeral port) and resolves with the bound port. */
  listen(addr: string): Promise<number>;
  /** Stops accepting calls, ends open streams, and resolves once the server is shut down. */
  close(): Promise<void>;
}

/** etcd's gRPC receive limit: the request limit plus 512 KiB of framing overhead. */
const GRPC_OVERHEAD_BYTES = 512 * 1024;

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
  const streams = new Set<{ end(): void }>();
  const server = new Server({
    'grpc.max_receive_message_length': svc.mvcc.limits.requestBytesMax + GRPC_OVERHEAD_BYTES,
    'grpc.max_send_message_length': -1,
    'grpc.keepalive_permit_without_calls': 1,
  });
  const pkg = etcdProto();
  const service = (name: string) => (pkg[name] as ServiceClientConstructor).service;
  const h = (rev?: number) => svc.header(rev);

  /** Wraps a unary handler: one service call, errors mapped in one place. */
  const unary = (fn: (req: Msg) => Promise<Msg> | Msg) =>
    (call: ServerUnaryCall<Msg, Msg>, cb: sendUnaryData<Msg>): void => {
      Promise.resolve()
        .then(() => fn(call.request))
        .then((res) => cb(null, res), (err: unknown) => {
          const { code } = grpcStatusOf(err);
          if (code === 13) log.error({ err }, 'etcd request failed');
          cb(toServiceError(err));
        });
    };

  const members = (list: EtcdMember[]) => list.map((m) => ({ ...m }));

  const kv: UntypedServiceImplementation = {
    Range: unary(async (m) => {
      const r = await svc.mvcc.range(decodeRange(m));
      return encodeRangeResult(r, h(r.revision));
    }),
    Put: unary(async (m) => {
      const r = await svc.mvcc.put(decodePut(m));
      return encodePutResult(r, h(r.revision));
    }),
    DeleteRange: unary(async (m) => {
      const r = await svc.mvcc.deleteRange(decodeDeleteRange(m));
      return encodeDeleteRangeResult(r, h(r.revision));
    }),
    Txn: unary(async (m) => {
      const r = await svc.mvcc.txn(decodeTxn(m));
      return encodeTxnResult(r, h(r.revision));
    }),
    Compact: unary(async (m) => {
      const r = await svc.mvcc.compact(int(m.revision));
      return { header: h(r.revision) };
    }),
  };

  const lease: UntypedServiceImplementation = {
    LeaseGrant: unary(async (m) => {
      const r = await svc.mvcc.leaseGrant(int(m.TTL), int(m.ID));
      return { header: h(r.revision), ID: String(r.id), TTL: String(r.ttlSeconds), error: '' };
    }),
    LeaseRevoke: unary(async (m) => {
      const r = await svc.mvcc.leaseRevoke(int(m.ID));
      return { header: h(r.revision) };
    }),
    LeaseTimeToLive: unary(async (m) => {
      const id = int(m.ID);
      try {
        const r = await svc.mvcc.leaseTimeToLive(id);
        return { header: h(), ID: String(id), TTL: String(r.remainingSeconds), grantedTTL: String(r.grantedSeconds), keys: m.keys === true ? r.keys : [] };
      } catch (err) {
        // etcd answers an unknown lease with TTL -1 rather than an error.
        if (err instanceof MvccError && err.reason === 'lease_not_found') return { header: h(), ID: String(id), TTL: '-1', grantedTTL: '0', keys: [] };
        throw err;
      }
    }),
    LeaseLeases: unary(async () => ({ header: h(), leases: (await svc.mvcc.leaseLeases()).map((id) => ({ ID: String(id) })) })),
    LeaseKeepAlive: (call: ServerDuplexStream<Msg, Msg>) => {
      if (!admitStream(call)) return;
      call.on('data', (m: Msg) => {
        const id = int(m.ID);
        try {
          const ttl = svc.mvcc.leaseKeepAlive(id);
          call.write({ header: h(), ID: String(id), TTL: String(ttl) });
        } catch (err) {
          // An unknown or expired lease is answered with TTL 0 (etcd); other errors end the stream.
          if (err instanceof MvccError && err.reason === 'lease_not_found') call.write({ header: h(), ID: String(id), TTL: '0' });
          else endWithError(call, err);
        }
      });
    },
  };

  const watch: UntypedServiceImplementation = {
    Watch: (call: ServerDuplexStream<Msg, Msg>) => {
      if (!admitStream(call)) return;
      const ws = new WatchStream(svc.hub, {
        send: (msg) => { call.write(msg); },
        queuedBytes: () => call.writableLength,
      }, h, watchLimits);
      call.on('data', (m: Msg) => ws.handle(m));
      call.on('drain', () => ws.drained());
      const done = () => ws.close();
      call.on('end', done);
      call.on('cancelled', done);
      call.on('error', done);
      call.on('close', done);
    },
  };

  const cluster: UntypedServiceImplementation = {
    MemberList: unary(() => ({ header: h(), members: members(svc.memberList()) })),
    MemberAdd: unary(async (m) => {
      const r = await svc.memberAdd(strings(m.peerURLs), m.isLearner === true);
      return { header: h(), member: r.member, members: members(r.members) };
    }),
    MemberRemove: unary(async (m) => ({ header: h(), members: members(await svc.memberRemove(String(m.ID ?? '0'))) })),
    MemberUpdate: unary(async (m) => ({ header: h(), members: members(await svc.memberUpdate(String(m.ID ?? '0'), strings(m.peerURLs))) })),
    MemberPromote: unary(async (m) => ({ header: h(), members: members(await svc.memberPromote(String(m.ID ?? '0'))) })),
  };

  const maintenance: UntypedServiceImplementation = {
    Status: unary(() => {
      const s = svc.status();
      return {
        header: h(), version: s.version, dbSize: String(s.dbSize), leader: s.leader, raftIndex: String(s.raftIndex),
        raftTerm: String(s.raftTerm), raftAppliedIndex: String(s.raftAppliedIndex), errors: s.errors,
        dbSizeInUse: String(s.dbSizeInUse), isLearner: s.isLearner,
      };
    }),
    Alarm: unary(async (m) => {
      const action = String(m.action ?? 'GET').toLowerCase() as 'get' | 'activate' | 'deactivate';
      const alarm = String(m.alarm ?? 'NONE').toLowerCase() as 'none' | 'nospace' | 'corrupt';
      const list = await svc.alarm(action, String(m.memberID ?? '0'), alarm);
      return { header: h(), alarms: list.map((a) => ({ memberID: a.memberId, alarm: a.alarm.toUpperCase() })) };
    }),
    Defragment: unary(() => {
      svc.defragment();
      return { header: h() };
    }),
    Hash: unary(() => ({ header: h(), hash: svc.hash() })),
    HashKV: unary((m) => {
      const r = svc.hashKv(int(m.revision));
      return { header: h(r.revision), hash: r.hash, compact_revision: String(r.compactRevision) };
    }),
    MoveLeader: unary(async (m) => {
      await svc.moveLeader(String(m.targetID ?? '0'));
      return { header: h() };
    }),
    Downgrade: unary(() => { throw new MvccError('not_capable', 'downgrade is not supported'); }),
    Snapshot: (call: ServerWritableStream<Msg, Msg>) => {
      try {
        const header = h();
        const chunks = svc.snapshot();
        const pump = (): void => {
          for (;;) {
            const next = chunks.next();
            if (next.done) {
              call.end();
              return;
            }
            const ok = call.write({ header, remaining_bytes: String(next.value.remainingBytes), blob: next.value.blob });
            if (!ok) {
              call.once('drain', pump);
              return;
            }
          }
        };
        pump();
      } catch (err) {
        endWithError(call, err);
      }
    },
  };

  const authNotEnabled = () => unary(() => { throw new MvccError('auth_not_enabled', 'authentication is not enabled'); });
  const auth: UntypedServiceImplementation = {
    AuthStatus: unary(() => ({ header: h(), enabled: false, authRevision: '0' })),
  };
  for (const name of Object.keys(service('Auth'))) if (!auth[name]) auth[name] = authNotEnabled();

  server.addService(service('KV'), kv);
  server.addService(service('Watch'), watch);
  server.addService(service('Lease'), lease);
  server.addService(service('Cluster'), cluster);
  server.addService(service('Maintenance'), maintenance);
  server.addService(service('Auth'), auth);

  function admitStream(call: ServerDuplexStream<Msg, Msg>): boolean {
    if (streams.size >= streamsMax) {
      endWithError(call, new MvccError('invalid', `too many streams (limit ${streamsMax})`));
      return false;
    }
    const entry = { end: () => call.end() };
    streams.add(entry);
    const drop = () => streams.delete(entry);
    call.on('close', drop);
    call.on('cancelled', drop);
    call.on('error', drop);
    call.on('end', () => {
      drop();
      call.end();
    });
    return true;
  }

  let bound = false;
  return {
    listen(addr: string): Promise<number> {
      return new Promise((resolve, reject) => {
        server.bindAsync(addr, ServerCredentials.createInsecure(), (err, port) => {
          if (err) {
            reject(err);
            return;
          }
          bound = true;
          log.info({ addr, port }, 'etcd gRPC API listening');
          resolve(port);
        });
      });
    },
    close(): Promise<void> {
      for (const s of streams) s.end();
      streams.clear();
      if (!bound) return Promise.resolve();
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

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

function endWithError(call: { emit(event: 'error', err: unknown): boolean; destroy?(err?: Error): void }, err: unknown): void {
  call.emit('error', toServiceError(err));
}

export type { GrpcObject };
