import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidArgumentError } from '../../util/index.js';
import type { Msg } from './codec.js';
import { grpcStatusOf, httpStatusOfGrpc } from './grpc-status.js';
import { authNotEnabled, leaseKeepAliveOnce, unaryOperations, type UnaryName, type UnaryOperation } from './operations.js';
import type { EtcdServices } from './services.js';
import { WatchStream } from './watch-stream.js';

/**
 * etcd's gateway paths for unary RPCs (including its `/v3/kv/lease/*` aliases), under `/v3`;
 * every path is also served under `/v3beta`, as etcd 3.4 does (it answers 404 under `/v3alpha`).
 */
const PREFIXES = ['/v3', '/v3beta'];
const ROUTES: [string, UnaryName][] = [
  ['/v3/kv/range', 'KV.Range'],
  ['/v3/kv/put', 'KV.Put'],
  ['/v3/kv/deleterange', 'KV.DeleteRange'],
  ['/v3/kv/txn', 'KV.Txn'],
  ['/v3/kv/compaction', 'KV.Compact'],
  ['/v3/lease/grant', 'Lease.LeaseGrant'],
  ['/v3/lease/revoke', 'Lease.LeaseRevoke'],
  ['/v3/kv/lease/revoke', 'Lease.LeaseRevoke'],
  ['/v3/lease/timetolive', 'Lease.LeaseTimeToLive'],
  ['/v3/kv/lease/timetolive', 'Lease.LeaseTimeToLive'],
  ['/v3/lease/leases', 'Lease.LeaseLeases'],
  ['/v3/kv/lease/leases', 'Lease.LeaseLeases'],
  ['/v3/cluster/member/list', 'Cluster.MemberList'],
  ['/v3/cluster/member/add', 'Cluster.MemberAdd'],
  ['/v3/cluster/member/remove', 'Cluster.MemberRemove'],
  ['/v3/cluster/member/update', 'Cluster.MemberUpdate'],
  ['/v3/cluster/member/promote', 'Cluster.MemberPromote'],
  ['/v3/maintenance/status', 'Maintenance.Status'],
  ['/v3/maintenance/alarm', 'Maintenance.Alarm'],
  ['/v3/maintenance/defragment', 'Maintenance.Defragment'],
  ['/v3/maintenance/hash', 'Maintenance.Hash'], // HashKV shares the path in rpc.proto; grpc-gateway routes it to Hash
  ['/v3/maintenance/transfer-leadership', 'Maintenance.MoveLeader'],
  ['/v3/maintenance/downgrade', 'Maintenance.Downgrade'],
  ['/v3/auth/status', 'Auth.AuthStatus'],
];

/** Auth paths other than status: answered "authentication is not enabled". */
const AUTH_PATHS = [
  'enable', 'disable', 'authenticate', 'user/add', 'user/get', 'user/list', 'user/delete', 'user/changepw', 'user/grant',
  'user/revoke', 'role/add', 'role/get', 'role/list', 'role/delete', 'role/grant', 'role/revoke',
].map((p) => `/v3/auth/${p}`);

export interface EtcdGatewayOptions {
  /** Longest a streaming response (watch) stays open, in ms. Default 1 hour. */
  streamDurationMaxMs?: number;
}

/**
 * Registers etcd's JSON gateway under `/v3/*` on a fastify instance (the node's HTTP port).
 * Requests and responses are the proto messages as JSON, as etcd's grpc-gateway does: field names
 * as in rpc.proto, bytes as base64, 64-bit integers as strings, enums by name, and fields at
 * their default value omitted. Streaming RPCs (watch, lease keep-alive, snapshot) take one
 * request body and answer newline-delimited `{"result": ...}` objects.
 * Errors: `{"error", "message", "code"}` with the gRPC code, HTTP status per grpc-gateway's table.
 * Limits: request body `requestBytesMax` × 4/3 (base64) + 64 KiB; a watch stays open at most
 * `streamDurationMaxMs`.
 */
export function registerEtcdGateway(app: FastifyInstance, svc: EtcdServices, opts: EtcdGatewayOptions = {}): void {
  const ops = unaryOperations(svc);
  const bodyLimit = Math.ceil((svc.mvcc.limits.requestBytesMax * 4) / 3) + 64 * 1024;
  const streamMs = opts.streamDurationMaxMs ?? 3_600_000;

  const unary = (fn: UnaryOperation) => async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      const res = await fn(body(req));
      return reply.type('application/json').send(JSON.stringify(toJson(res)));
    } catch (err) {
      return sendError(reply, err);
    }
  };

  /** Registers `path` (given under /v3) under every prefix. */
  const post = (path: string, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>): void => {
    for (const prefix of PREFIXES) app.post(prefix + path.slice('/v3'.length), { bodyLimit }, handler);
  };
  for (const [path, name] of ROUTES) post(path, unary(ops[name]));
  for (const path of AUTH_PATHS) post(path, unary(authNotEnabled));

  post('/v3/lease/keepalive', async (req, reply) => {
    try {
      return reply.type('application/json').send(JSON.stringify({ result: toJson(await leaseKeepAliveOnce(svc, body(req))) }) + '\n');
    } catch (err) {
      return sendError(reply, err);
    }
  });

  post('/v3/watch', async (req, reply) => {
    let first: Msg;
    try {
      first = body(req);
    } catch (err) {
      return sendError(reply, err);
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/json' });
    const ws = new WatchStream(svc.hub, {
      send: (msg) => { res.write(JSON.stringify({ result: toJson(msg) }) + '\n'); },
      queuedBytes: () => res.writableLength,
    }, (rev) => svc.header(rev));
    const timer = setTimeout(() => res.end(), streamMs);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      ws.close();
    };
    res.on('close', done);
    res.on('drain', () => ws.drained());
    ws.handle(first);
  });

  post('/v3/maintenance/snapshot', async (_req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/json' });
    const header = svc.header();
    const chunks = svc.snapshot();
    const pump = (): void => {
      for (;;) {
        const next = chunks.next();
        if (next.done) {
          res.end();
          return;
        }
        const line = JSON.stringify({ result: toJson({ header, remaining_bytes: String(next.value.remainingBytes), blob: next.value.blob }) }) + '\n';
        if (!res.write(line)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

function body(req: FastifyRequest): Msg {
  let b = req.body;
  // conured's HTTP server takes every body as raw bytes (the seed /kv API needs them unparsed).
  if (Buffer.isBuffer(b)) {
    if (b.length === 0) return {};
    try {
      b = JSON.parse(b.toString('utf8'));
    } catch (err) {
      throw new InvalidArgumentError(`malformed JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  if (b === undefined || b === null || b === '') return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw new InvalidArgumentError('request body must be a JSON object');
  return b as Msg;
}

function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const { code, details } = grpcStatusOf(err);
  return reply.code(httpStatusOfGrpc(code)).type('application/json').send(JSON.stringify({ error: details, message: details, code }));
}

/** Enum fields whose default (zero) value grpc-gateway omits. */
const DEFAULT_ENUMS: Record<string, string> = { type: 'PUT', alarm: 'NONE', action: 'GET' };

/** proto3 JSON: bytes → base64, defaults omitted. int64 are already decimal strings. */
export function toJson(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (Array.isArray(v)) return v.map(toJson);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined || x === null || x === false || x === '' || x === '0' || x === 0) continue;
      if (Array.isArray(x) && x.length === 0) continue;
      if (x instanceof Uint8Array && x.length === 0) continue;
      if (DEFAULT_ENUMS[k] === x) continue;
      out[k] = toJson(x);
    }
    return out;
  }
  return v;
}
