#!/usr/bin/env node
/**
 * Time Service (the SQLite-on-a-StatefulSet guide): locations and time zones over HTTP.
 *
 *   GET    /health                      liveness/readiness (checks the database)
 *   GET    /metrics                     prom-client: timeservice_db_* only
 *   GET    /api/time?tz=<IANA zone>     the current time (UTC when tz is absent)
 *   POST   /api/locations               {"name","timezone","description"} → 201 | 400 | 409 | 413
 *   GET    /api/locations               every location (at most 1000)
 *   GET    /api/locations/{name}        one location | 404
 *   DELETE /api/locations/{name}        204 | 404
 *   GET    /api/locations/{name}/time   the current time at that location
 *
 * Env: PORT (8080), HOST (0.0.0.0), DB_PATH, DB_WAL_MODE, DB_CACHE_SIZE_KB, DB_MAX_OPEN_CONNS,
 * DB_MAX_IDLE_CONNS (see db.ts), DB_TYPE (sqlite | conuredb, with ETCD_ENDPOINTS and ETCD_PREFIX;
 * see conuredb-store.ts), ALLOWED_ORIGINS (comma-separated; `*` for any), and for
 * optional bearer auth on /api: OIDC_JWKS_URL, OIDC_ISSUER, OIDC_AUDIENCE.
 * SIGTERM/SIGINT: stop accepting, finish requests, checkpoint the WAL, exit 0.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { conureStoreConfigFromEnv, ConureLocationStore, type ConureStoreConfig } from './conuredb-store.js';
import { dbConfigFromEnv, DuplicateLocationError, TimeDb, type DbConfig, type LocationStore } from './db.js';
import { AuthError, OidcVerifier, type OidcConfig } from './oidc.js';

export const BODY_BYTES_MAX = 16 * 1024;
const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$';

let zones: Set<string> | undefined;
/** True for a zone in the IANA database Node ships (Intl), canonical names and links alike. */
export function isIanaZone(tz: string): boolean {
  if (tz.length === 0 || tz.length > 64 || !/^[A-Za-z0-9_+\-/]+$/.test(tz)) return false;
  zones ??= new Set(Intl.supportedValuesOf('timeZone'));
  if (zones.has(tz) || tz === 'UTC') return true;
  try { new Intl.DateTimeFormat('en-US', { timeZone: tz }); return true; } catch { return false; }
}

export function timeIn(tz: string, now = new Date()): { timezone: string; utc: string; local: string; offset: string; unix: number } {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'longOffset' }).formatToParts(now);
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? '';
  const offset = get('timeZoneName').replace('GMT', '') || '+00:00';
  return { timezone: tz, utc: now.toISOString(), local: `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}:${get('second')}${offset === '+00:00' ? 'Z' : offset}`, offset, unix: Math.floor(now.getTime() / 1000) };
}

export interface ServiceOptions { db: DbConfig; /** DB_TYPE=conuredb: store on ConureDB instead of SQLite. */ conuredb?: ConureStoreConfig; allowedOrigins: string[]; oidc?: OidcConfig; logger?: boolean }

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ServiceOptions {
  const type = env.DB_TYPE ?? 'sqlite';
  if (type !== 'sqlite' && type !== 'conuredb') throw new Error(`DB_TYPE must be sqlite or conuredb, got ${type}`);
  return {
    db: dbConfigFromEnv(env),
    ...(type === 'conuredb' ? { conuredb: conureStoreConfigFromEnv(env) } : {}),
    allowedOrigins: (env.ALLOWED_ORIGINS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    ...(env.OIDC_JWKS_URL ? { oidc: { jwksUrl: env.OIDC_JWKS_URL, ...(env.OIDC_ISSUER ? { issuer: env.OIDC_ISSUER } : {}), ...(env.OIDC_AUDIENCE ? { audience: env.OIDC_AUDIENCE } : {}) } } : {}),
    logger: true,
  };
}

export async function buildService(o: ServiceOptions): Promise<{ app: FastifyInstance; db: LocationStore; registry: Registry }> {
  const registry = new Registry();
  const db: LocationStore = o.conuredb ? new ConureLocationStore(o.conuredb, registry) : new TimeDb(o.db, registry);
  const verifier = o.oidc ? new OidcVerifier(o.oidc) : undefined;
  const app = Fastify({ bodyLimit: BODY_BYTES_MAX, logger: o.logger ?? false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });

  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (origin && (o.allowedOrigins.includes('*') || o.allowedOrigins.includes(origin))) {
      reply.header('Access-Control-Allow-Origin', o.allowedOrigins.includes('*') ? '*' : origin);
      reply.header('Vary', 'Origin');
      if (req.method === 'OPTIONS') {
        reply.header('Access-Control-Allow-Methods', 'GET, POST, DELETE, OPTIONS');
        reply.header('Access-Control-Allow-Headers', 'Content-Type, Authorization');
        reply.header('Access-Control-Max-Age', '600');
        return reply.code(204).send();
      }
    } else if (req.method === 'OPTIONS' && origin) {
      return reply.code(403).send({ error: 'origin not allowed' });
    }
    if (verifier && req.url.startsWith('/api/')) {
      try { await verifier.verifyHeader(req.headers.authorization); } catch (err) {
        const msg = err instanceof AuthError ? err.message : 'token verification failed';
        return reply.code(401).header('WWW-Authenticate', 'Bearer').send({ error: msg });
      }
    }
    return undefined;
  });

  app.setErrorHandler((e, req, reply) => {
    const err = e as Error & { statusCode?: number; validation?: unknown; code?: string };
    if (err instanceof DuplicateLocationError) return reply.code(409).send({ error: err.message });
    if (err.validation) return reply.code(400).send({ error: err.message });
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    req.log.error({ err }, 'request_failed');
    return reply.code(500).send({ error: 'internal error' });
  });

  const nameParam = { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: NAME_PATTERN } } } as const;

  app.get('/health', async (_req, reply) => {
    try { await db.listLocations(1); return { status: 'ok' }; } catch (err) { return reply.code(503).send({ status: 'unavailable', error: (err as Error).message }); }
  });
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  app.get<{ Querystring: { tz?: string } }>('/api/time', { schema: { querystring: { type: 'object', properties: { tz: { type: 'string', maxLength: 64 } }, additionalProperties: false } } }, async (req, reply) => {
    const tz = req.query.tz ?? 'UTC';
    if (!isIanaZone(tz)) return reply.code(400).send({ error: `unknown time zone ${JSON.stringify(tz)}` });
    return timeIn(tz);
  });
  app.post<{ Body: { name: string; timezone: string; description?: string } }>('/api/locations', {
    schema: { body: { type: 'object', required: ['name', 'timezone'], additionalProperties: false, properties: { name: { type: 'string', pattern: NAME_PATTERN }, timezone: { type: 'string', maxLength: 64 }, description: { type: 'string', maxLength: 1000 } } } },
  }, async (req, reply) => {
    const { name, timezone, description = '' } = req.body;
    if (!isIanaZone(timezone)) return reply.code(400).send({ error: `unknown time zone ${JSON.stringify(timezone)}` });
    return reply.code(201).send(await db.createLocation({ name, timezone, description }));
  });
  app.get('/api/locations', async () => ({ locations: await db.listLocations() }));
  app.get<{ Params: { name: string } }>('/api/locations/:name', { schema: { params: nameParam } }, async (req, reply) => {
    const loc = await db.getLocation(req.params.name);
    return loc ?? reply.code(404).send({ error: `no location ${JSON.stringify(req.params.name)}` });
  });
  app.delete<{ Params: { name: string } }>('/api/locations/:name', { schema: { params: nameParam } }, async (req, reply) => {
    if (!(await db.deleteLocation(req.params.name))) return reply.code(404).send({ error: `no location ${JSON.stringify(req.params.name)}` });
    return reply.code(204).send();
  });
  app.get<{ Params: { name: string } }>('/api/locations/:name/time', { schema: { params: nameParam } }, async (req, reply) => {
    const loc = await db.getLocation(req.params.name);
    if (!loc) return reply.code(404).send({ error: `no location ${JSON.stringify(req.params.name)}` });
    return { location: loc.name, ...timeIn(loc.timezone) };
  });
  app.addHook('onClose', async () => { await db.close(); });
  return { app, db, registry };
}

/** Run as a program (directly or through a bin symlink), not imported by a test. */
const isMain = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const port = Number(process.env.PORT ?? 8080);
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be 0..65535, got ${process.env.PORT}`);
  const { app } = await buildService(optionsFromEnv());
  await app.listen({ port, host: process.env.HOST ?? '0.0.0.0' });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'timeservice_stopping');
    void app.close().then(() => process.exit(0), (err: unknown) => { app.log.error({ err }, 'shutdown_failed'); process.exit(1); });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
