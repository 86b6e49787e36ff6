import { createServer } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { HEADER_BYTES_MAX } from '../http/index.js';
import { registerEtcdGateway } from './gateway.js';
import { ETCD_API_VERSION, type EtcdServices } from './services.js';

export interface EtcdClientHttpOptions {
  services: EtcdServices;
  /** What `/metrics` exposes (the member's registry, as on the HTTP port). */
  metrics: Registry;
  /** Longest `/health` waits for its linearizable read; default 1 s. */
  healthTimeoutMs?: number;
}

/**
 * The HTTP/1.1 side of the etcd client port (client-listener.ts hands it connections), as
 * etcd serves it: `/health` (`{"health":"true"}`, or `"false"` with 503 without a leader or
 * quorum), `/version` (`{"etcdserver","etcdcluster"}`), `/metrics`, and the `/v3/*` JSON
 * gateway. Call `ready()` before dispatching; `app.server` never listens itself.
 */
export function createEtcdClientHttp(opts: EtcdClientHttpOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    http: { maxHeaderSize: HEADER_BYTES_MAX },
    serverFactory: (handler) => createServer({ maxHeaderSize: HEADER_BYTES_MAX, headersTimeout: 10_000, requestTimeout: 60_000 }, handler),
  });
  // etcd's gateway takes any content type (curl -d sends form-encoded bytes); gateway.ts parses.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.get('/health', async (_req, reply) => {
    const healthy = await opts.services.health(opts.healthTimeoutMs ?? 1000);
    return reply.code(healthy ? 200 : 503).type('application/json').send(JSON.stringify({ health: String(healthy) }));
  });
  app.get('/version', async (_req, reply) =>
    reply.type('application/json').send(JSON.stringify({ etcdserver: ETCD_API_VERSION, etcdcluster: `${ETCD_API_VERSION.split('.').slice(0, 2).join('.')}.0` })));
  app.get('/metrics', async (_req, reply) => reply.type(opts.metrics.contentType).send(await opts.metrics.metrics()));
  registerEtcdGateway(app, opts.services);
  return app;
}
