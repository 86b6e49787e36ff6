import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import { InvalidArgumentError, TooLargeError, UnauthenticatedError, openApi, type Logger, type MediaTypes, type OpenApiRoute, type ResponseSpec, type SecurityRequirement, type TlsFiles } from '../../util/index.js';
import type { Server as TlsServer } from 'node:tls';
import { KV_LIMITS, type KvService, type Replicator } from '../../seams/index.js';
import { MEMBER_ID, type MembershipService } from '../../node/index.js';
import { ERROR_SCHEMA, sendError } from './errors.js';
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
  '/openapi.json': ['GET', 'HEAD'],
};

/** The version of this API's OpenAPI document (docs/openapi/conuredb.json). */
export const HTTP_API_VERSION = '0.1.0';

/**
 * The seed-compatible REST API plus probes and metrics. Handlers only decode, call one service
 * function and encode; errors are mapped to statuses in `errors.ts`. See docs/http-api.md.
 * Every route has a schema; `GET /openapi.json` is generated from them (routes are collected by
 * an onRoute hook). Response schemas describe, they do not filter: replies are serialized with
 * JSON.stringify, so a field a schema forgets still reaches clients (and the OpenAPI fuzz test,
 * test/e2e/openapi-fuzz, reports the schema as broken).
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
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  // This API's routes, for /openapi.json. Routes added once createHttpApi has returned (conured
  // adds etcd's JSON gateway, /v3/*) belong to another API, etcd's (docs/etcd.md): not listed.
  const routes: RouteOptions[] = [];
  let sealed = false;
  app.addHook('onRoute', (r) => { if (!sealed) routes.push(r); });

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

  // No route: 405 with Allow on this API's paths, else 404. Also when fastify refused the request
  // before routing it to this handler (QUERY without a Content-Type is 400 to fastify).
  const noRoute = (req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const path = req.url.split('?')[0]!.replace(/\/+$/, '') || '/';
    const allowed = ALLOWED[path];
    if (allowed) {
      reply.header('allow', allowed.join(', ')).code(405);
      return reply.type('text/plain; charset=utf-8').send(`method ${req.method} not allowed; use ${allowed.join(', ')}`);
    }
    return reply.code(404).type('application/json').send(JSON.stringify({ error: `no route ${req.method} ${path}`, code: 'not_found' }));
  };
  app.setNotFoundHandler(noRoute);

  app.setErrorHandler((err, req, reply) => {
    if (req.is404) return noRoute(req, reply);
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

  // ---- seed KV API -------------------------------------------------------------------------
  const kvRoute = { preValidation: firstValues, schemaErrorFormatter: missingKey };
  app.get('/kv', { ...kvRoute, schema: SCHEMAS.kvGet }, async (req, reply) => {
    const q = req.query as KvQuery;
    const consistency = q.consistency === 'serializable' || q.consistency === 'stale' ? 'serializable' : 'linearizable';
    try {
      const value = await kv.get(keyOf(q), consistency);
      return reply.type('application/octet-stream').send(value ? Buffer.from(value) : '');
    } catch (err) { return sendError(reply, err, 'text'); }
  });

  app.put('/kv', { ...kvRoute, schema: SCHEMAS.kvPut }, async (req, reply) => {
    const q = req.query as KvQuery;
    try {
      const value = q.value !== undefined ? Buffer.from(q.value, 'utf8') : bodyBytes(req.body);
      await kv.put(keyOf(q), value);
      return reply.type('text/plain; charset=utf-8').send('OK');
    } catch (err) { return sendError(reply, err, 'text'); }
  });

  app.delete('/kv', { ...kvRoute, schema: SCHEMAS.kvDelete }, async (req, reply) => {
    try {
      await kv.delete(keyOf(req.query as KvQuery));
      return reply.type('text/plain; charset=utf-8').send('OK');
    } catch (err) { return sendError(reply, err, 'text'); }
  });

  // ---- cluster views and membership --------------------------------------------------------
  app.get('/status', { schema: SCHEMAS.status }, async () => {
    const s = replicator.status();
    return { is_leader: s.isLeader, leader: s.leader };
  });

  app.get('/raft/config', { schema: SCHEMAS.raftConfig }, async () => ({
    leader: replicator.status().leader,
    servers: replicator.members().map((m) => ({ id: m.id, address: m.address, suffrage: m.suffrage })),
  }));

  app.get('/raft/stats', { schema: SCHEMAS.raftStats }, async () => replicator.stats());

  app.get('/raft/snapshot', { schema: SCHEMAS.raftSnapshot }, async (_req, reply) => {
    if (!opts.snapshots) return sendError(reply, new InvalidArgumentError('this member does not serve snapshots'), 'json');
    const snap = opts.snapshots.exportSnapshot();
    return reply.type('application/octet-stream').header('x-conure-snapshot-index', String(snap.index)).send(Buffer.from(snap.data.buffer, snap.data.byteOffset, snap.data.byteLength));
  });

  // The raw body: a follower answers 409 with the leader before it parses anything.
  app.post('/join', { schema: SCHEMAS.join }, async (req, reply) => json(reply, () => membership.join(bodyBytes(req.body))));
  app.post('/remove', { schema: SCHEMAS.remove }, async (req, reply) => json(reply, () => membership.remove(bodyBytes(req.body))));
  app.post('/promote', { schema: SCHEMAS.promote }, async (req, reply) => json(reply, async () => { await membership.promote(jsonBody(req)); return { ok: true }; }));
  app.post('/leader/transfer', { schema: SCHEMAS.leaderTransfer }, async (req, reply) => json(reply, async () => { await membership.transfer(jsonBody(req, true)); return { ok: true }; }));

  // ---- probes, metrics, OpenAPI -------------------------------------------------------------
  app.get('/health', { schema: SCHEMAS.health }, async () => ({ status: 'ok' }));
  app.get('/ready', { schema: SCHEMAS.ready }, async (_req, reply) => {
    const s = replicator.status();
    reply.code(s.ready ? 200 : 503);
    return { ready: s.ready, leader: s.leader };
  });
  app.get('/metrics', { schema: SCHEMAS.metrics }, async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  app.get('/openapi.json', { schema: SCHEMAS.openApi }, async () => httpApiOpenApi(routes));

  sealed = true;
  return app;
}

/** The /kv query once its schema has passed: `key` is a non-empty string. */
type KvQuery = { key: string; value?: string; consistency?: string };

function keyOf(q: KvQuery): Uint8Array {
  return Buffer.from(q.key, 'utf8');
}

/**
 * A repeated query parameter means its first value, as in the seed API (Go's `Query().Get`).
 * A callback hook, not an async one: /kv is the hot path.
 */
function firstValues(req: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  const q = req.query as Record<string, unknown>;
  for (const name in q) if (Array.isArray(q[name])) q[name] = (q[name] as unknown[])[0];
  done();
}

/** The only rule /kv's query schema has is a non-empty `key`; the seed API's answer is this. */
function missingKey(): Error {
  return new InvalidArgumentError('missing key');
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

// ---- schemas: validation of /kv's query, and this API's OpenAPI document --------------------

const text = (description: string, schema: Record<string, unknown> = { type: 'string' }): ResponseSpec => ({ description, content: { 'text/plain': { schema } } });
const jsonError = (description: string): ResponseSpec => ({ description, content: { 'application/json': { schema: ERROR_SCHEMA } } });
const retryAfter = { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer', minimum: 0 } } };
const binary: MediaTypes = { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } };
const memberIdSchema = { type: 'string', pattern: MEMBER_ID.source, description: 'member id: 1-128 letters, digits, ".", "_", "-"' };
const hostPort = (what: string) => ({ type: 'string', description: `${what}, host:port; the host must resolve` });
const memberBody = (description: string, properties: Record<string, unknown>, required: string[], nullable = false) => ({
  description, content: { 'application/json': { schema: { type: 'object', ...(nullable && { nullable }), required, properties } } },
});
const servers = { type: 'array', items: { type: 'object', required: ['id', 'address', 'suffrage'], properties: {
  id: { type: 'string' }, address: { type: 'string', description: 'advertised raft address' }, suffrage: { type: 'string', enum: ['voter', 'learner', 'arbiter'] },
} } };
const member = { type: 'object', required: ['id', 'address', 'suffrage'], properties: {
  ...servers.items.properties, httpAddress: { type: 'string' }, clientUrl: { type: 'string' },
} };

/** The errors of /kv: plain text as in the seed API, but for not_leader (JSON with the leader). */
const KV_ERRORS: Record<string, ResponseSpec> = {
  400: text('`missing key`: no `key` parameter, or an empty one'),
  409: jsonError('not_leader: a follower that cannot forward; `leader` and `leader_http` name the leader'),
  413: text(`\`key is N bytes; the limit is ${KV_LIMITS.keyBytesMax}\`, or a body over ${KV_LIMITS.valueBytesMax} bytes`),
  500: text('storage or internal failure'),
  503: { ...text('no leader, shutting down, too many writes in flight, not confirmed in time (outcome unknown), or an arbiter (it holds no data)'), headers: retryAfter },
};
/** The errors of the membership endpoints, all JSON. */
const MEMBER_ERRORS: Record<string, ResponseSpec> = {
  400: jsonError('invalid_argument: malformed JSON, a bad ID, an address that is not host:port or does not resolve, an unknown Role'),
  401: jsonError('unauthenticated: the cluster has a secret and the request lacks its HTTP token'),
  409: jsonError('not_leader (a follower; `leader`, `leader_http` name the leader), or conflict'),
  413: jsonError(`too_large: a body over ${KV_LIMITS.valueBytesMax} bytes`),
  501: jsonError('unsupported: this member runs standalone'),
  503: { ...jsonError('unavailable: no leader, or shutting down'), headers: retryAfter },
  504: jsonError('timeout: the change was not confirmed in time'),
};
const ok = { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean', enum: [true] } } };

const KEY_PARAM = { type: 'string', minLength: 1, description: `the key, UTF-8, at most ${KV_LIMITS.keyBytesMax} bytes` };

const SCHEMAS = {
  kvGet: {
    summary: 'Read a key',
    description: 'The raw value; an empty body when the key is absent. HEAD answers the same without a body.',
    querystring: { type: 'object', required: ['key'], properties: {
      key: KEY_PARAM,
      consistency: { type: 'string', description: '`serializable` (or `stale`): the local copy, without a read barrier; anything else: linearizable (the default)' },
    } },
    response: { 200: { description: 'the value, byte for byte', content: binary }, ...KV_ERRORS },
  },
  kvPut: {
    summary: 'Write a key',
    description: 'The value is the `value` parameter (URL-encoded UTF-8) when given, else the request body as sent.',
    querystring: { type: 'object', required: ['key'], properties: {
      key: KEY_PARAM,
      value: { type: 'string', description: 'the value; the body is ignored when this is given' },
    } },
    rawBody: {
      required: false,
      description: `the value: the body's bytes, of any content type (\`curl -d\` works), at most ${KV_LIMITS.valueBytesMax} bytes`,
      content: { ...binary, 'text/plain': { schema: { type: 'string' } } },
    },
    response: { 200: text('written: committed and fsynced on a quorum', { type: 'string', enum: ['OK'] }), ...KV_ERRORS, 507: text('no_space: the store is full') },
  },
  kvDelete: {
    summary: 'Delete a key (also when absent)',
    querystring: { type: 'object', required: ['key'], properties: {
      key: KEY_PARAM,
    } },
    response: { 200: text('deleted', { type: 'string', enum: ['OK'] }), ...KV_ERRORS },
  },
  status: {
    summary: 'Whether this member leads, and the leader',
    response: { 200: { type: 'object', required: ['is_leader', 'leader'], properties: {
      is_leader: { type: 'boolean' }, leader: { type: 'string', description: 'the leader\'s advertised raft address, or "" when none is known' },
    } } },
  },
  raftConfig: {
    summary: 'The cluster\'s members',
    response: { 200: { type: 'object', required: ['leader', 'servers'], properties: { leader: { type: 'string' }, servers } } },
  },
  raftStats: {
    summary: 'Raft counters of this member',
    description: 'The fields listed, plus more for diagnosis (transport, progress, log) that may change between versions.',
    response: { 200: { type: 'object', additionalProperties: true, required: ['state', 'term', 'commit_index', 'applied_index', 'last_log_index', 'last_log_term', 'num_peers', 'last_contact_ms'], properties: {
      state: { type: 'string', enum: ['leader', 'follower', 'candidate', 'pre-candidate', 'learner', 'arbiter', 'shutdown'] },
      term: { type: 'integer', minimum: 0 },
      commit_index: { type: 'integer', minimum: 0 },
      applied_index: { type: 'integer', minimum: 0 },
      last_log_index: { type: 'integer', minimum: 0 },
      last_log_term: { type: 'integer', minimum: 0 },
      num_peers: { type: 'integer', minimum: 0 },
      last_contact_ms: { type: 'integer', nullable: true, description: 'since the leader was last heard from; 0 on the leader, null before any contact' },
    } } },
  },
  raftSnapshot: {
    summary: 'This member\'s state, for a peer catching up from a snapshot (members only)',
    response: {
      200: { description: 'the snapshot', headers: { 'x-conure-snapshot-index': { description: 'the snapshot\'s raft index', schema: { type: 'integer', minimum: 0 } } }, content: binary },
      400: jsonError('invalid_argument: this member does not serve snapshots'),
      401: MEMBER_ERRORS[401],
    },
  },
  join: {
    summary: 'Add a member, or record its new address (idempotent); members only',
    rawBody: memberBody('the joiner', {
      ID: memberIdSchema, RaftAddr: hostPort('its advertised raft address'),
      Role: { type: 'string', enum: ['voter', 'arbiter', 'learner', ''], description: 'default voter (entering as a learner until caught up)' },
      HttpAddr: hostPort('its advertised HTTP address'),
      ClientURL: { type: 'string', maxLength: 256, description: 'its etcd client URL, http(s)://host:port' },
      Fresh: { type: 'boolean', description: 'its disk is empty: an existing entry is removed and it re-enters as a learner' },
    }, ['ID', 'RaftAddr']),
    response: {
      200: { type: 'object', required: ['outcome', 'member'], properties: { outcome: { type: 'string', enum: ['added', 'updated', 'unchanged'] }, member } },
      ...MEMBER_ERRORS,
    },
  },
  remove: {
    summary: 'Remove a member; members only',
    rawBody: memberBody('the member', { ID: memberIdSchema }, ['ID']),
    response: { 200: { type: 'object', required: ['removed'], properties: { removed: { type: 'boolean', description: 'false: it was not a member' } } }, ...MEMBER_ERRORS },
  },
  promote: {
    summary: 'Promote a learner to voter; members only',
    rawBody: memberBody('the learner', { ID: memberIdSchema }, ['ID']),
    response: { 200: ok, ...MEMBER_ERRORS },
  },
  leaderTransfer: {
    summary: 'Hand leadership over (a no-op on a follower); members only',
    rawBody: { ...memberBody('the voter to lead; the best-placed one when no ID is given (an empty body and `null` too)', { ID: { ...memberIdSchema, pattern: `^$|${MEMBER_ID.source}` } }, [], true), required: false },
    response: { 200: ok, ...MEMBER_ERRORS },
  },
  health: {
    summary: 'Liveness: the process serves',
    response: { 200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } },
  },
  ready: {
    summary: 'Readiness: a leader is known and this member has applied up to its commit index',
    response: Object.fromEntries([200, 503].map((code) => [code, { type: 'object', required: ['ready', 'leader'], properties: { ready: { type: 'boolean' }, leader: { type: 'string' } } }])),
  },
  metrics: {
    summary: 'Prometheus metrics',
    response: { 200: text('the Prometheus text format') },
  },
  openApi: {
    summary: 'This API as OpenAPI 3',
    response: { 200: { type: 'object', additionalProperties: true, description: 'this document' } },
  },
};

/** The member token, or nothing when the cluster has no secret. */
const MEMBER_SECURITY: SecurityRequirement[] = [{ member: [] }, {}];

/** The ConureDB REST API's OpenAPI document, from the routes' schemas. */
export function httpApiOpenApi(routes: readonly OpenApiRoute[]): Record<string, unknown> {
  return openApi(routes, {
    title: 'ConureDB REST API',
    version: HTTP_API_VERSION,
    description: 'The seed-compatible key-value and membership API of a ConureDB member, plus probes and metrics (docs/http-api.md).',
    securitySchemes: { member: { type: 'http', scheme: 'bearer', description: 'the cluster secret\'s HTTP token; needed only when the cluster has a secret (--peer-secret-file)' } },
    securityOf: (path) => (MEMBER_ONLY.has(path) ? MEMBER_SECURITY : undefined),
    schemas: { Error: ERROR_SCHEMA },
  });
}
