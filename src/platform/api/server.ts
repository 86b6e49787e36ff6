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
import { ERROR_SCHEMA, sendError } from '../../api/http/index.js';
import { ConureError, InvalidArgumentError, TooLargeError, openApi, type Logger, type OpenApiRoute, type TlsFiles } from '../../util/index.js';
import type { Server as TlsServer } from 'node:tls';
import type { Idempotency, MutationResult, PlatformService, Principal } from '../service/index.js';
import type { PlatformMetrics } from './metrics.js';
import { ACCEPTED, BACKUP_SCHEMA, DATABASE_SCHEMA, EVENT_SCHEMA, list, OPERATION_SCHEMA, TENANT_SCHEMA } from './schemas.js';

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
    // Ids are up to 128 characters (the schemas say so, and answer 400 beyond): the router's
    // own limit (100 by default, 414) must not refuse valid ones first.
    routerOptions: { maxParamLength: 1024 },
    // Errors the router raises before any route runs (a path parameter over maxParamLength, or
    // one that is not valid percent-encoding) get the API's error body too.
    frameworkErrors: (err, _req, reply) => { sendError(reply, frameworkError(err), 'json'); },
    ...(opts.tls && { https: opts.tls.current() }),
  }) as FastifyInstance;
  if (opts.tls) opts.tls.serve(app.server as unknown as TlsServer);
  // Response schemas describe, they do not filter (see schemas.ts).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
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
  app.get('/ready', {
    schema: {
      summary: 'Readiness: the store is reachable',
      response: {
        200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ready'] } } },
        503: { type: 'object', required: ['status', 'store'], properties: { status: { type: 'string', enum: ['not_ready'] }, store: { type: 'string', enum: ['unreachable'] } } },
      },
    },
  }, async (_req, reply) => {
    const ok = await opts.health.storeReachable();
    reply.code(ok ? 200 : 503);
    return ok ? { status: 'ready' } : { status: 'not_ready', store: 'unreachable' };
  });
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', response: { 200: { description: 'the Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } } } }, async (_req, reply) => {
    reply.type(opts.metrics.contentType);
    return opts.metrics.render();
  });
  app.get('/openapi.json', { schema: { summary: 'This API as OpenAPI 3', response: { 200: { type: 'object', additionalProperties: true, description: 'this document' } } } }, async () => platformOpenApi(routes, opts.version ?? '0.1.0'));

  // ---- tenants --------------------------------------------------------------------------------
  app.post('/v1/tenants', {
    schema: {
      summary: 'Create a tenant (admin); its token is returned once',
      body: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 53 }, name: { type: 'string', maxLength: 128 } } },
      response: { 201: { type: 'object', required: ['tenant', 'token'], properties: { tenant: TENANT_SCHEMA, token: { type: 'string', description: 'shown once' } } } },
    },
  }, async (req, reply) => { reply.code(201); return svc.createTenant(who(req), req.body); });
  app.get('/v1/tenants', { schema: { summary: 'List tenants (admin)', response: { 200: list('tenants', TENANT_SCHEMA) } } }, async (req) => ({ tenants: await svc.listTenants(who(req)) }));

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
      response: { 202: ACCEPTED },
    },
  }, async (req, reply) => accepted(reply, await svc.createDatabase(who(req), req.body, idem(req))));
  app.get('/v1/databases', {
    schema: {
      summary: 'List databases (own; all for the admin)', querystring: { type: 'object', properties: { tenant: { type: 'string' }, engine: { type: 'string' } } },
      response: { 200: list('databases', DATABASE_SCHEMA) },
    },
  }, async (req) => {
    const q = req.query as { tenant?: string; engine?: string };
    return { databases: await svc.listDatabases(who(req), q) };
  });
  app.get('/v1/databases/:id', { schema: { summary: 'Get a database', params: idParams, response: { 200: DATABASE_SCHEMA } } }, async (req) => svc.getDatabase(who(req), (req.params as { id: string }).id));
  app.patch('/v1/databases/:id', {
    schema: {
      summary: 'Resize/scale (202 + operation), or change deletionPolicy (200)',
      params: idParams, headers: idemHeader,
      body: { type: 'object', properties: { ram: quantity, voters: {}, storage: quantity, deletionPolicy: { type: 'string' } } },
      response: {
        200: { type: 'object', required: ['database'], properties: { database: DATABASE_SCHEMA }, description: 'only deletionPolicy changed: done' },
        202: ACCEPTED,
      },
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
      response: { 202: ACCEPTED },
    },
  }, async (req, reply) => accepted(reply, await svc.deleteDatabase(who(req), (req.params as { id: string }).id, (req.query as { policy?: string }).policy, idem(req))));
  app.post('/v1/databases/:id/backups', { schema: { summary: 'Take a backup (202 + operation)', params: idParams, headers: idemHeader, response: { 202: ACCEPTED } } },
    async (req, reply) => accepted(reply, await svc.backup(who(req), (req.params as { id: string }).id, idem(req))));
  app.get('/v1/databases/:id/backups', { schema: { summary: 'List a database\'s backups', params: idParams, response: { 200: list('backups', BACKUP_SCHEMA) } } },
    async (req) => ({ backups: await svc.listBackups(who(req), (req.params as { id: string }).id) }));
  app.get('/v1/backups', { schema: { summary: 'List every visible backup, including those of deleted databases', response: { 200: list('backups', BACKUP_SCHEMA) } } },
    async (req) => ({ backups: await svc.listAllBackups(who(req)) }));
  app.post('/v1/databases/:id/restore', {
    schema: {
      summary: 'Restore a backup (of this or another database of the tenant, same engine) into this database',
      params: idParams, headers: idemHeader,
      body: { type: 'object', required: ['backupId'], properties: { backupId: { type: 'string', maxLength: 128 } } },
      response: { 202: ACCEPTED },
    },
  }, async (req, reply) => accepted(reply, await svc.restore(who(req), (req.params as { id: string }).id, req.body, idem(req))));
  app.post('/v1/databases/:id/halt', { schema: { summary: 'Stop the instance, keep its data (202)', params: idParams, headers: idemHeader, response: { 202: ACCEPTED } } },
    async (req, reply) => accepted(reply, await svc.halt(who(req), (req.params as { id: string }).id, idem(req))));
  app.post('/v1/databases/:id/resume', { schema: { summary: 'Start a halted instance again (202)', params: idParams, headers: idemHeader, response: { 202: ACCEPTED } } },
    async (req, reply) => accepted(reply, await svc.resume(who(req), (req.params as { id: string }).id, idem(req))));
  app.post('/v1/databases/:id/rotate-key', {
    schema: {
      summary: 'Fluxion: replace the master API key (202)', params: idParams, headers: idemHeader,
      body: { type: 'object', required: ['apiKey'], properties: { apiKey: { type: 'string' } } },
      response: { 202: ACCEPTED },
    },
  }, async (req, reply) => accepted(reply, await svc.rotateKey(who(req), (req.params as { id: string }).id, req.body, idem(req))));
  app.get('/v1/databases/:id/events', {
    schema: {
      summary: 'A database\'s events, oldest first', params: idParams, querystring: { type: 'object', properties: { limit: { type: 'string', pattern: '^[0-9]{1,6}$' } } },
      response: { 200: list('events', EVENT_SCHEMA) },
    },
  }, async (req) => {
    const limit = (req.query as { limit?: string }).limit;
    return { events: await svc.events(who(req), (req.params as { id: string }).id, limit === undefined ? undefined : Number(limit)) };
  });

  // ---- operations -----------------------------------------------------------------------------
  app.get('/v1/operations/:id', { schema: { summary: 'Get an operation: state, steps, progress', params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 128 } } }, response: { 200: OPERATION_SCHEMA } } },
    async (req) => svc.getOperation(who(req), (req.params as { id: string }).id));
  app.get('/v1/operations', { schema: { summary: 'List operations', querystring: { type: 'object', properties: { database: { type: 'string', maxLength: 128 } } }, response: { 200: list('operations', OPERATION_SCHEMA) } } },
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

/** The statuses every authenticated route may answer, with `{"error","code"}`. */
const API_ERRORS = ['400', '401', '403', '404', '409', '413', '422', '423', '429', '503'];

/** The platform API's OpenAPI document, from the collected routes' schemas. */
export function platformOpenApi(routes: readonly OpenApiRoute[], version: string): Record<string, unknown> {
  const error = { description: 'error', content: { 'application/json': { schema: ERROR_SCHEMA } } };
  return openApi(routes, {
    title: 'Conure platform API', version,
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    security: [{ bearer: [] }],
    securityOf: (path) => (PUBLIC.has(path) ? [] : undefined),
    schemas: { Error: ERROR_SCHEMA, Database: DATABASE_SCHEMA, Operation: OPERATION_SCHEMA, Backup: BACKUP_SCHEMA, Event: EVENT_SCHEMA, Tenant: TENANT_SCHEMA },
    extraResponses: (path) => (PUBLIC.has(path) ? {} : Object.fromEntries(API_ERRORS.map((c) => [c, error]))),
  });
}
