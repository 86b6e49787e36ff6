/**
 * The platform's HTTP API (fastify). Thin handlers: decode, call one PlatformService method,
 * encode. Every route has a JSON schema; `/openapi.json` is generated from those schemas (routes
 * are collected by an onRoute hook). `Authorization: Bearer <token>` on everything except
 * `/health`, `/ready`, `/metrics` and `/openapi.json`.
 *
 * Errors: `{"error": message, "code": code}` with the status from the one table in
 * src/api/http/errors.ts (HTTP_STATUS). Framework errors are turned into ConureErrors first:
 * bad JSON and schema violations → invalid_argument (400), a body over `bodyLimitBytes` →
 * too_large (413), an unknown route → not_found (404).
 *
 * Mutations answer 202 `{"database", "operation"}` with `Location: /v1/operations/<id>`.
 * `Idempotency-Key` (1..255 characters) is honoured on every mutation: the same key and the
 * same method, path and body return the earlier operation; another body → 422.
 */
import { createHash } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import { sendError } from '../../api/http/index.js';
import { ConureError, InvalidArgumentError, TooLargeError, type Logger, type TlsFiles } from '../../util/index.js';
import type { Server as TlsServer } from 'node:tls';
import type { Idempotency, MutationResult, PlatformService, Principal } from '../service/index.js';
import type { PlatformMetrics } from './metrics.js';

export interface HealthSource {
  /** Component → state; `running` is healthy. */
  components(): Record<string, string>;
  /** True when the store answers. */
  storeReachable(): Promise<boolean>;
}

export interface PlatformApiOptions {
  service: PlatformService;
  health: HealthSource;
  metrics: PlatformMetrics;
  /** Request body limit, bytes (default 64 KiB). */
  bodyLimitBytes?: number;
  log?: Logger;
  version?: string;
  /** Serve HTTPS with this certificate (kept current when its files change). */
  tls?: TlsFiles;
}

const PUBLIC = new Set(['/health', '/ready', '/metrics', '/openapi.json']);

declare module 'fastify' {
  interface FastifyRequest { principal?: Principal }
  interface FastifySchema { summary?: string }
}

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 128, description: 'database id' } } } as const;
const idemHeader = { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 255 } } } as const;
const quantity = { type: 'string', maxLength: 32, description: 'Kubernetes quantity, e.g. "2Gi"' } as const;

export function createPlatformApi(opts: PlatformApiOptions): FastifyInstance {
  const svc = opts.service;
  const app = Fastify({
    bodyLimit: opts.bodyLimitBytes ?? 64 * 1024,
    logger: false,
    // Types are checked by the engines (e.g. voters "3" is refused, not coerced).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    ...(opts.tls && { https: opts.tls.current() }),
  }) as FastifyInstance;
  if (opts.tls) opts.tls.serve(app.server as unknown as TlsServer);
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (r) => { routes.push(r); });

  app.setErrorHandler((err, _req, reply) => { sendError(reply, frameworkError(err), 'json'); });
  app.setNotFoundHandler((req, reply) => { sendError(reply, new ConureError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`), 'json'); });

  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0]!;
    if (PUBLIC.has(path)) return;
    req.principal = await svc.authenticate(req.headers.authorization);
  });
  app.addHook('onResponse', async (req, reply) => {
    opts.metrics.observeRequest(req.method, req.routeOptions.url ?? 'unknown', reply.statusCode, reply.elapsedTime / 1000);
  });

  const who = (req: FastifyRequest): Principal => req.principal!;
  const idem = (req: FastifyRequest): Idempotency => {
    const key = req.headers['idempotency-key'];
    if (key === undefined) return {};
    if (typeof key !== 'string' || key.length === 0 || key.length > 255) throw new InvalidArgumentError('Idempotency-Key must be 1..255 characters');
    const bodyHash = createHash('sha256').update(`${req.method} ${req.url}\n${JSON.stringify(req.body ?? null)}`).digest('hex');
    return { key, bodyHash };
  };
  const accepted = (reply: FastifyReply, r: MutationResult) => {
    reply.code(202).header('location', `/v1/operations/${r.operation.id}`);
    return { database: r.database, operation: r.operation };
  };

  // ---- probes, metrics, OpenAPI -------------------------------------------------------------
  app.get('/health', {
    schema: {
      summary: 'Liveness: every component running',
      response: {
        200: { type: 'object', properties: { status: { type: 'string' }, components: { type: 'object', additionalProperties: { type: 'string' } } } },
        503: { type: 'object', properties: { status: { type: 'string' }, components: { type: 'object', additionalProperties: { type: 'string' } } } },
      },
    },
  }, async (_req, reply) => {
    const components = opts.health.components();
    const ok = Object.values(components).every((s) => s === 'running');
    reply.code(ok ? 200 : 503);
    return { status: ok ? 'healthy' : 'unhealthy', components };
  });
  app.get('/ready', { schema: { summary: 'Readiness: the store is reachable' } }, async (_req, reply) => {
    const ok = await opts.health.storeReachable();
    reply.code(ok ? 200 : 503);
    return ok ? { status: 'ready' } : { status: 'not_ready', store: 'unreachable' };
  });
  app.get('/metrics', { schema: { summary: 'Prometheus metrics' } }, async (_req, reply) => {
    reply.type(opts.metrics.contentType);
    return opts.metrics.render();
  });
  app.get('/openapi.json', { schema: { summary: 'This API as OpenAPI 3' } }, async () => openApi(routes, opts.version ?? '0.1.0'));

  // ---- tenants --------------------------------------------------------------------------------
  app.post('/v1/tenants', {
    schema: {
      summary: 'Create a tenant (admin); its token is returned once',
      body: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 53 }, name: { type: 'string', maxLength: 128 } } },
    },
  }, async (req, reply) => { reply.code(201); return svc.createTenant(who(req), req.body); });
  app.get('/v1/tenants', { schema: { summary: 'List tenants (admin)' } }, async (req) => ({ tenants: await svc.listTenants(who(req)) }));

  // ---- databases ------------------------------------------------------------------------------
  app.post('/v1/databases', {
    schema: {
      summary: 'Create a database (202 + operation)',
      headers: idemHeader,
      body: {
        type: 'object', required: ['engine'],
        properties: {
          engine: { type: 'string', description: 'fluxion | conuredb' },
          tenant: { type: 'string', description: 'implied by a tenant token; required with the admin token' },
          name: { type: 'string' },
          deletionPolicy: { type: 'string', description: 'Halt | Delete | WipeOut | DoNotTerminate' },
          ram: { ...quantity, description: 'Fluxion: RAM, 256Mi..64Gi (storage = 2 × ram)' },
          apiKey: { type: 'string', description: 'Fluxion: master key, 16..256 printable ASCII; never returned' },
          replicas: { description: 'Fluxion: only 1' },
          voters: { description: 'ConureDB: 1..7 data-bearing members' },
          arbiter: { type: 'string', description: 'ConureDB: auto | always | never' },
          storage: { ...quantity, description: 'ConureDB: per member, 256Mi..1Ti' },
          version: { type: 'string' },
        },
      },
    },
  }, async (req, reply) => accepted(reply, await svc.createDatabase(who(req), req.body, idem(req))));
  app.get('/v1/databases', {
    schema: { summary: 'List databases (own; all for the admin)', querystring: { type: 'object', properties: { tenant: { type: 'string' }, engine: { type: 'string' } } } },
  }, async (req) => {
    const q = req.query as { tenant?: string; engine?: string };
    return { databases: await svc.listDatabases(who(req), q) };
  });
  app.get('/v1/databases/:id', { schema: { summary: 'Get a database', params: idParams } }, async (req) => svc.getDatabase(who(req), (req.params as { id: string }).id));
  app.patch('/v1/databases/:id', {
    schema: {
      summary: 'Resize/scale (202 + operation), or change deletionPolicy (200)',
      params: idParams, headers: idemHeader,
      body: { type: 'object', properties: { ram: quantity, voters: {}, storage: quantity, deletionPolicy: { type: 'string' } } },
    },
  }, async (req, reply) => {
    const r = await svc.patchDatabase(who(req), (req.params as { id: string }).id, req.body, idem(req));
    return 'operation' in r ? accepted(reply, r) : r;
  });
  app.delete('/v1/databases/:id', {
    schema: {
      summary: 'Delete (policy Delete | WipeOut) or halt (Halt); DoNotTerminate refuses with 422',
      params: idParams, headers: idemHeader,
      querystring: { type: 'object', properties: { policy: { type: 'string', enum: ['Delete', 'WipeOut', 'Halt', 'DoNotTerminate'] } } },
    },
  }, async (req, reply) => accepted(reply, await svc.deleteDatabase(who(req), (req.params as { id: string }).id, (req.query as { policy?: string }).policy, idem(req))));
  app.post('/v1/databases/:id/backups', { schema: { summary: 'Take a backup (202 + operation)', params: idParams, headers: idemHeader } },
    async (req, reply) => accepted(reply, await svc.backup(who(req), (req.params as { id: string }).id, idem(req))));
  app.get('/v1/databases/:id/backups', { schema: { summary: 'List a database\'s backups', params: idParams } },
    async (req) => ({ backups: await svc.listBackups(who(req), (req.params as { id: string }).id) }));
  app.get('/v1/backups', { schema: { summary: 'List every visible backup, including those of deleted databases' } },
    async (req) => ({ backups: await svc.listAllBackups(who(req)) }));
  app.post('/v1/databases/:id/restore', {
    schema: {
      summary: 'Restore a backup (of this or another database of the tenant, same engine) into this database',
      params: idParams, headers: idemHeader,
      body: { type: 'object', required: ['backupId'], properties: { backupId: { type: 'string', maxLength: 128 } } },
    },
  }, async (req, reply) => accepted(reply, await svc.restore(who(req), (req.params as { id: string }).id, req.body, idem(req))));
  app.post('/v1/databases/:id/halt', { schema: { summary: 'Stop the instance, keep its data (202)', params: idParams, headers: idemHeader } },
    async (req, reply) => accepted(reply, await svc.halt(who(req), (req.params as { id: string }).id, idem(req))));
  app.post('/v1/databases/:id/resume', { schema: { summary: 'Start a halted instance again (202)', params: idParams, headers: idemHeader } },
    async (req, reply) => accepted(reply, await svc.resume(who(req), (req.params as { id: string }).id, idem(req))));
  app.post('/v1/databases/:id/rotate-key', {
    schema: {
      summary: 'Fluxion: replace the master API key (202)', params: idParams, headers: idemHeader,
      body: { type: 'object', required: ['apiKey'], properties: { apiKey: { type: 'string' } } },
    },
  }, async (req, reply) => accepted(reply, await svc.rotateKey(who(req), (req.params as { id: string }).id, req.body, idem(req))));
  app.get('/v1/databases/:id/events', {
    schema: { summary: 'A database\'s events, oldest first', params: idParams, querystring: { type: 'object', properties: { limit: { type: 'string', pattern: '^[0-9]{1,6}$' } } } },
  }, async (req) => {
    const limit = (req.query as { limit?: string }).limit;
    return { events: await svc.events(who(req), (req.params as { id: string }).id, limit === undefined ? undefined : Number(limit)) };
  });

  // ---- operations -----------------------------------------------------------------------------
  app.get('/v1/operations/:id', { schema: { summary: 'Get an operation: state, steps, progress', params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 128 } } } } },
    async (req) => svc.getOperation(who(req), (req.params as { id: string }).id));
  app.get('/v1/operations', { schema: { summary: 'List operations', querystring: { type: 'object', properties: { database: { type: 'string', maxLength: 128 } } } } },
    async (req) => {
      const q = req.query as { database?: string };
      return { operations: await svc.listOperations(who(req), q.database === undefined ? {} : { database: q.database }) };
    });

  return app;
}

/** Turns fastify's own errors into ConureErrors; ours pass through. */
function frameworkError(err: unknown): unknown {
  if (err instanceof ConureError) return err;
  const e = err as Error & { code?: string; statusCode?: number; validation?: unknown };
  if (e.validation) return new InvalidArgumentError(e.message);
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413) return new TooLargeError(`request body is over the limit: ${e.message}`);
  if (e instanceof SyntaxError || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return new InvalidArgumentError(`malformed JSON body: ${e.message}`);
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    return new ConureError(e.statusCode === 404 ? 'not_found' : 'invalid_argument', e.message);
  }
  return err;
}

/** OpenAPI 3.0 from the collected routes' schemas. */
export function openApi(routes: readonly RouteOptions[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const methods = (Array.isArray(r.method) ? r.method : [r.method]).map((m) => m.toLowerCase()).filter((m) => m !== 'head');
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const s = (r.schema ?? {}) as Record<string, unknown> & { params?: JsonObj; querystring?: JsonObj; headers?: JsonObj; body?: unknown; summary?: string; response?: Record<string, unknown> };
    const parameters: unknown[] = [];
    const add = (where: string, obj?: JsonObj) => {
      for (const [name, schema] of Object.entries(obj?.properties ?? {})) {
        parameters.push({ name, in: where, required: where === 'path' || (obj?.required ?? []).includes(name), schema });
      }
    };
    add('path', s.params);
    add('query', s.querystring);
    add('header', s.headers);
    for (const m of methods) {
      const entry: Record<string, unknown> = {
        summary: s.summary ?? '',
        operationId: `${m}${path.replace(/[{}]/g, '').split('/').map((x) => x.charAt(0).toUpperCase() + x.slice(1)).join('').replace(/[^A-Za-z0-9]/g, '')}`,
        parameters,
        responses: responsesFor(m, path, s.response),
      };
      if (s.body) entry.requestBody = { required: true, content: { 'application/json': { schema: s.body } } };
      if (PUBLIC.has(path)) entry.security = [];
      paths[path] = { ...(paths[path] ?? {}), [m]: entry };
    }
  }
  return {
    openapi: '3.0.3',
    info: { title: 'Conure platform API', version },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: { type: 'object', required: ['error', 'code'], properties: { error: { type: 'string' }, code: { type: 'string' } } } },
    },
    security: [{ bearer: [] }],
    paths,
  };
}

type JsonObj = { properties?: Record<string, unknown>; required?: string[] };

function responsesFor(method: string, path: string, declared?: Record<string, unknown>): Record<string, unknown> {
  const err = { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  const out: Record<string, unknown> = {};
  if (declared) for (const [code, schema] of Object.entries(declared)) out[code] = { description: code, content: { 'application/json': { schema } } };
  else if (method !== 'get' && path.startsWith('/v1/databases')) out['202'] = { description: 'accepted: { database, operation }; Location: /v1/operations/<id>' };
  else out['200'] = { description: 'OK' };
  if (!PUBLIC.has(path)) for (const c of ['400', '401', '404', '413', '422', '423', '429', '503']) out[c] = err;
  return out;
}
