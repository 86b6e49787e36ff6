import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { InvalidArgumentError, TooLargeError, UnauthenticatedError } from '../../util/index.js';
import type { Logger } from '../../util/index.js';
import type { TlsFiles } from '../../util/index.js';
import type { Server as TlsServer } from 'node:tls';
import { KV_LIMITS, type KvService } from '../../seams/index.js';
import type { MembershipService } from '../../node/index.js';
import type { Replicator } from '../../seams/index.js';
import { sendError } from './errors.js';
import type { HttpMetrics } from './metrics.js';

export interface HttpApiOptions {
  kv: KvService;
  replicator: Replicator;
  membership: MembershipService;
  metrics: HttpMetrics;
  /** Serves `GET /raft/snapshot` to members catching up from a snapshot. */
  snapshots?: { exportSnapshot(): { index: number; data: Uint8Array } };
  /** When set, member-only endpoints (MEMBER_ONLY) require `Authorization: Bearer <token>` that it accepts. */
  peerAuth?: { checkHttpToken(token: string): boolean };
  logger?: Logger;
  /** Serve HTTPS with this certificate (kept current when its files change). */
  tls?: TlsFiles;
}

/** Endpoints only members (and operators holding the cluster secret's token) may call. */
export const MEMBER_ONLY: ReadonlySet<string> = new Set(['/raft/snapshot', '/join', '/remove', '/promote', '/leader/transfer']);

/** Request-line and header bytes a request may carry (query-string values count here). */
export const HEADER_BYTES_MAX = 64 * 1024;

const ALLOWED: Record<string, string[]> = {
  '/kv': ['GET', 'HEAD', 'PUT', 'DELETE'],
  '/status': ['GET', 'HEAD'],
  '/raft/config': ['GET', 'HEAD'],
  '/raft/stats': ['GET', 'HEAD'],
  '/raft/snapshot': ['GET'],
  '/join': ['POST'],
  '/remove': ['POST'],
  '/promote': ['POST'],
  '/leader/transfer': ['POST'],
  '/health': ['GET', 'HEAD'],
  '/ready': ['GET', 'HEAD'],
  '/metrics': ['GET', 'HEAD'],
};

/**
 * The seed-compatible REST API plus probes and metrics. Handlers only decode, call one service
 * function and encode; errors are mapped to statuses in `errors.ts`. See docs/http-api.md.
 */
export function createHttpApi(opts: HttpApiOptions): FastifyInstance {
  const { kv, replicator, membership, metrics } = opts;
  const app = Fastify({
    logger: false,
    bodyLimit: KV_LIMITS.valueBytesMax,
    http: { maxHeaderSize: HEADER_BYTES_MAX },
    // Trailing slashes and double slashes are tolerated, as net/http clients sometimes send them.
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    ...(opts.tls && { https: opts.tls.current() }),
  }) as FastifyInstance;
  if (opts.tls) opts.tls.serve(app.server as unknown as TlsServer);

  // Every body is taken as raw bytes: `curl -d` sends form-encoded bytes that are the value.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const peerAuth = opts.peerAuth;
  if (peerAuth) {
    app.addHook('onRequest', async (req, reply) => {
      if (!MEMBER_ONLY.has(req.routeOptions.url ?? '')) return;
      const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
      if (m && peerAuth.checkHttpToken(m[1]!)) return;
      reply.header('www-authenticate', 'Bearer realm="conure-members"');
      return sendError(reply, new UnauthenticatedError(`${req.routeOptions.url} is for cluster members: send Authorization: Bearer <the cluster secret's HTTP token>`), 'json');
    });
  }
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: req.method, route, code: String(reply.statusCode) });
    metrics.latency.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err, req, reply) => {
    const e = err as Error & { code?: string; statusCode?: number };
    const textRoute = (req.routeOptions.url ?? '') === '/kv';
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(reply, new TooLargeError(`request body is larger than the ${KV_LIMITS.valueBytesMax}-byte limit`), textRoute ? 'text' : 'json');
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      return sendError(reply, new InvalidArgumentError(e.message), textRoute ? 'text' : 'json');
    }
    opts.logger?.error({ err, url: req.url }, 'http_request_failed');
    return sendError(reply, err, textRoute ? 'text' : 'json');
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!.replace(/\/+$/, '') || '/';
    const allowed = ALLOWED[path];
    if (allowed) {
      reply.header('allow', allowed.join(', ')).code(405);
      return reply.type('text/plain; charset=utf-8').send(`method ${req.method} not allowed; use ${allowed.join(', ')}`);
    }
    return reply.code(404).type('application/json').send(JSON.stringify({ error: `no route ${req.method} ${path}`, code: 'not_found' }));
  });

  // ---- seed KV API -------------------------------------------------------------------------
  app.get('/kv', async (req, reply) => {
    const q = kvQuery(req);
    const consistency = q.consistency === 'serializable' || q.consistency === 'stale' ? 'serializable' : 'linearizable';
    try {
      const value = await kv.get(keyOf(q), consistency);
      return reply.type('application/octet-stream').send(value ? Buffer.from(value) : '');
    } catch (err) { return sendError(reply, err, 'text'); }
  });

  app.put('/kv', async (req, reply) => {
    const q = kvQuery(req);
    try {
      const key = keyOf(q);
      const value = q.value !== undefined ? Buffer.from(q.value, 'utf8') : bodyBytes(req.body);
      await kv.put(key, value);
      return reply.type('text/plain; charset=utf-8').send('OK');
    } catch (err) { return sendError(reply, err, 'text'); }
  });

  app.delete('/kv', async (req, reply) => {
    try {
      await kv.delete(keyOf(kvQuery(req)));
      return reply.type('text/plain; charset=utf-8').send('OK');
    } catch (err) { return sendError(reply, err, 'text'); }
  });

  // ---- cluster views and membership --------------------------------------------------------
  app.get('/status', async () => {
    const s = replicator.status();
    return { is_leader: s.isLeader, leader: s.leader };
  });

  app.get('/raft/config', async () => ({
    leader: replicator.status().leader,
    servers: replicator.members().map((m) => ({ id: m.id, address: m.address, suffrage: m.suffrage })),
  }));

  app.get('/raft/stats', async () => replicator.stats());

  app.get('/raft/snapshot', async (_req, reply) => {
    if (!opts.snapshots) return sendError(reply, new InvalidArgumentError('this member does not serve snapshots'), 'json');
    const snap = opts.snapshots.exportSnapshot();
    return reply.type('application/octet-stream').header('x-conure-snapshot-index', String(snap.index)).send(Buffer.from(snap.data.buffer, snap.data.byteOffset, snap.data.byteLength));
  });

  // The raw body: a follower answers 409 with the leader before it parses anything.
  app.post('/join', async (req, reply) => json(reply, () => membership.join(bodyBytes(req.body))));
  app.post('/remove', async (req, reply) => json(reply, () => membership.remove(bodyBytes(req.body))));
  app.post('/promote', async (req, reply) => json(reply, async () => { await membership.promote(jsonBody(req)); return { ok: true }; }));
  app.post('/leader/transfer', async (req, reply) => json(reply, async () => { await membership.transfer(jsonBody(req, true)); return { ok: true }; }));

  // ---- probes and metrics -------------------------------------------------------------------
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => {
    const s = replicator.status();
    reply.code(s.ready ? 200 : 503);
    return { ready: s.ready, leader: s.leader };
  });
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  return app;
}

type KvQuery = { key?: string; value?: string; consistency?: string };

function kvQuery(req: FastifyRequest): KvQuery {
  const q = req.query as Record<string, unknown>;
  const pick = (v: unknown) => (Array.isArray(v) ? String(v[0]) : v === undefined ? undefined : String(v));
  return { key: pick(q.key), value: pick(q.value), consistency: pick(q.consistency) };
}

function keyOf(q: KvQuery): Uint8Array {
  if (q.key === undefined || q.key === '') throw new InvalidArgumentError('missing key');
  return Buffer.from(q.key, 'utf8');
}

function bodyBytes(body: unknown): Uint8Array {
  return Buffer.isBuffer(body) ? body : Buffer.alloc(0);
}

function jsonBody(req: FastifyRequest, optional = false): unknown {
  const raw = bodyBytes(req.body);
  if (raw.length === 0) {
    if (optional) return undefined;
    throw new InvalidArgumentError('request body must be a JSON object');
  }
  try {
    return JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`malformed JSON: ${(err as Error).message}`, { cause: err });
  }
}

async function json(reply: FastifyReply, fn: () => Promise<unknown>): Promise<FastifyReply> {
  try {
    return reply.type('application/json').send(JSON.stringify(await fn()));
  } catch (err) { return sendError(reply, err, 'json'); }
}
