#!/usr/bin/env node
/**
 * presence-gateway: a demo chat gateway. It keeps a PresenceCache of the whole registry and
 * serves a tiny HTTP API for devices connecting to it:
 *
 *   POST   /connect?user=U&device=D     register U/D at this gateway (lease kept while connected)
 *   POST   /disconnect?user=U&device=D  unregister
 *   GET    /lookup?user=U               the cached devices of U and their gateways
 *   GET    /health                      200 once the cache is watching
 *
 * Env: ETCD_ENDPOINTS (host:port,…; default 127.0.0.1:2379), GATEWAY_ID (default host:port),
 * PORT (default 8090), HOST (127.0.0.1), PRESENCE_TTL_SECONDS (90), DEVICES_MAX (100000).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { pino } from 'pino';
import { EtcdClient } from '../../src/client/etcd-client.js';
import { InvalidPresenceIdError, PresenceCache, PresenceRegistry, DEFAULT_TTL_SECONDS } from './registry.js';

export interface GatewayOptions { endpoints: string[]; port: number; host: string; gatewayId?: string; ttlSeconds: number; devicesMax: number }

export async function startGateway(o: GatewayOptions): Promise<{ url: string; close(): Promise<void> }> {
  const log = pino({ name: 'presence-gateway' });
  const client = new EtcdClient({ endpoints: o.endpoints });
  const registry = new PresenceRegistry(client, { ttlSeconds: o.ttlSeconds });
  const cache = new PresenceCache(client);
  await cache.start();
  cache.on('change', (c) => log.debug({ change: c }, 'presence_change'));
  const app = Fastify({ bodyLimit: 1024 });
  let gatewayId = o.gatewayId ?? '';
  const ids = { type: 'object', required: ['user', 'device'], properties: { user: { type: 'string', maxLength: 128 }, device: { type: 'string', maxLength: 128 } } } as const;
  app.setErrorHandler((e, _req, reply) => {
    const err = e as Error;
    if (err instanceof InvalidPresenceIdError || (err as { validation?: unknown }).validation) return reply.code(400).send({ error: err.message });
    log.warn({ err }, 'request_failed');
    return reply.code(503).send({ error: err.message });
  });
  app.get('/health', async () => ({ ok: true, revision: cache.revision() }));
  app.post<{ Querystring: { user: string; device: string } }>('/connect', { schema: { querystring: ids } }, async (req, reply) => {
    if (registry.heldCount() >= o.devicesMax) return reply.code(429).send({ error: `this gateway holds ${o.devicesMax} devices already` });
    const r = await registry.register(req.query.user, req.query.device, gatewayId);
    return { lease: r.leaseId, revision: r.revision };
  });
  app.post<{ Querystring: { user: string; device: string } }>('/disconnect', { schema: { querystring: ids } }, async (req) => ({ removed: await registry.unregister(req.query.user, req.query.device) }));
  app.get<{ Querystring: { user: string } }>('/lookup', { schema: { querystring: { type: 'object', required: ['user'], properties: { user: { type: 'string', maxLength: 128 } } } } }, async (req) => ({ devices: cache.lookup(req.query.user) }));
  await app.listen({ port: o.port, host: o.host });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  if (!gatewayId) gatewayId = `${o.host}:${port}`;
  log.info({ gateway: gatewayId, endpoints: o.endpoints }, 'presence_gateway_started');
  return {
    url: `http://${o.host}:${port}`,
    close: async () => { await app.close(); cache.close(); await registry.close(true); client.close(); },
  };
}

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return n;
}

/** Run as a program (directly or through a bin symlink), not imported by a test. */
const isMain = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const gw = await startGateway({
    endpoints: (process.env.ETCD_ENDPOINTS ?? '127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean),
    port: positiveInt('PORT', 8090), host: process.env.HOST ?? '127.0.0.1',
    ...(process.env.GATEWAY_ID ? { gatewayId: process.env.GATEWAY_ID } : {}),
    ttlSeconds: positiveInt('PRESENCE_TTL_SECONDS', DEFAULT_TTL_SECONDS), devicesMax: positiveInt('DEVICES_MAX', 100_000),
  });
  const shutdown = (): void => { void gw.close().then(() => process.exit(0)); };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
