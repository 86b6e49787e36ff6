/**
 * The OpenAPI documents of every HTTP API, exactly as their servers serve them at
 * `GET /openapi.json`: the ConureDB REST API and the platform API are built (not started) with
 * dependencies that this one request never touches (a stand-in that throws if it is) and asked
 * through fastify's inject; Fluxion's comes from the route table its listener dispatches on.
 *
 * scripts/render-openapi.mjs writes them under docs/openapi/ (`--check` compares instead), and
 * openapi-documents.test.ts fails when a checked-in copy differs, so they cannot drift.
 */
import type { FastifyInstance } from 'fastify';
import { createHttpApi, HttpMetrics } from '../api/http/index.js';
import { fluxionOpenApi } from '../fluxion/index.js';
import { createPlatformApi, PlatformMetrics } from '../platform/index.js';

/** File name under docs/openapi/ → the document. */
export type OpenApiDocuments = Record<'conuredb.json' | 'fluxion.json' | 'platform.json', Record<string, unknown>>;

export async function openApiDocuments(): Promise<OpenApiDocuments> {
  const conuredb = createHttpApi({
    kv: unused('kv'), replicator: unused('replicator'), membership: unused('membership'), metrics: new HttpMetrics({}, false),
  });
  const platform = createPlatformApi({
    service: unused('service'), health: unused('health'), metrics: new PlatformMetrics(unused('metrics sources')),
  });
  return {
    'conuredb.json': await served(conuredb),
    'fluxion.json': fluxionOpenApi(),
    'platform.json': await served(platform),
  };
}

/** A document as its file holds it: two-space JSON and a final newline. */
export function renderOpenApi(doc: unknown): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

async function served(app: FastifyInstance): Promise<Record<string, unknown>> {
  try {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    if (res.statusCode !== 200) throw new Error(`GET /openapi.json answered ${res.statusCode}: ${res.body}`);
    return res.json();
  } finally {
    await app.close();
  }
}

/** A dependency the document never needs: any use of it is a bug here, so it throws. */
function unused<T>(name: string): T {
  return new Proxy({}, {
    get: (_t, prop) => { throw new Error(`${name}.${String(prop)} was used while rendering an OpenAPI document`); },
  }) as T;
}
