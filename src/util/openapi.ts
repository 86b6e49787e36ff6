/**
 * OpenAPI 3.0 documents generated from route schemas, so an API is described once: the schemas
 * fastify validates with (or, for a server without fastify, the route table it dispatches on)
 * are the document. Used by the ConureDB REST API, the platform API and Fluxion's HTTP
 * endpoints; each serves the result at `GET /openapi.json`, and docs/openapi/ holds a copy
 * (scripts/render-openapi.mjs, checked by a unit test).
 *
 * A route's `schema` may hold fastify's own keys and a few that only this generator reads
 * (fastify ignores them):
 *
 *   summary, description          the operation's
 *   params, querystring, headers  parameters: JSON object schemas, `required` honoured
 *   body                          requestBody: application/json, required
 *   rawBody                       requestBody of a handler that reads the bytes itself (no
 *                                 fastify validation): { required?, description?, content }
 *   response                      { <status>: <JSON schema> } (application/json) or
 *                                 { <status>: { description?, headers?, content: { <media type>: { schema } } } },
 *                                 fastify's own two forms
 *
 * Schemas must be in the OpenAPI 3.0 dialect (`nullable: true`, not `type: [.., 'null']`).
 * A schema anywhere in a route that is the very object passed in `schemas` becomes a `$ref`.
 * HEAD routes (fastify adds one for every GET) are left out: they answer as the GET, bodiless.
 */
import type {} from 'fastify';

export type JsonSchema = Record<string, unknown>;
export interface MediaTypes { [mediaType: string]: { schema: JsonSchema } }
export interface ResponseSpec { description?: string; headers?: Record<string, unknown>; content?: MediaTypes }
export type SecurityRequirement = Record<string, string[]>;

/** The documentation-only keys a route schema may carry (see the module comment). */
export interface OpenApiSchemaKeys {
  summary?: string;
  description?: string;
  rawBody?: { required?: boolean; description?: string; content: MediaTypes };
}

declare module 'fastify' {
  interface FastifySchema extends OpenApiSchemaKeys {}
}

/** What the generator needs of a route: fastify's RouteOptions fit, so does a plain table. */
export interface OpenApiRoute {
  method: string | readonly string[];
  url: string;
  schema?: object;
}

type RouteSchema = OpenApiSchemaKeys & {
  params?: unknown; querystring?: unknown; headers?: unknown; body?: unknown;
  response?: Record<string, unknown>;
};

export interface OpenApiOptions {
  title: string;
  version: string;
  description?: string;
  securitySchemes?: Record<string, unknown>;
  /** The document's security requirement (every operation's, unless `securityOf` says otherwise). */
  security?: SecurityRequirement[];
  /** An operation's own requirement (`[]`: anyone may call it), or undefined for the document's. */
  securityOf?: (path: string) => SecurityRequirement[] | undefined;
  /** Shared schemas, emitted under components/schemas and referenced by `$ref`. */
  schemas?: Record<string, JsonSchema>;
  /**
   * Responses the operations of `path` have besides those they declare (a declared status wins),
   * e.g. the errors every authenticated route can answer.
   */
  extraResponses?: (path: string) => Record<string, ResponseSpec>;
}

/** The OpenAPI 3.0.3 document of `routes`, in their order. */
export function openApi(routes: readonly OpenApiRoute[], o: OpenApiOptions): Record<string, unknown> {
  const refs = new Map<unknown, { $ref: string }>(Object.entries(o.schemas ?? {}).map(([name, s]) => [s, { $ref: `#/components/schemas/${name}` }]));
  /** `schema` with every shared schema in it (itself included unless `keep`) replaced by its $ref. */
  const ref = (schema: unknown, keep = false): unknown => {
    if (!keep && refs.has(schema)) return refs.get(schema);
    if (Array.isArray(schema)) return schema.map((x) => ref(x));
    if (typeof schema !== 'object' || schema === null) return schema;
    return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, ref(v)]));
  };
  const media = (content: MediaTypes): MediaTypes =>
    Object.fromEntries(Object.entries(content).map(([type, m]) => [type, { ...m, schema: ref(m.schema) as JsonSchema }]));
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const methods = (typeof r.method === 'string' ? [r.method] : [...r.method]).map((m) => m.toLowerCase()).filter((m) => m !== 'head');
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const s: RouteSchema = r.schema ?? {};
    const parameters = ref([
      ...parametersOf('path', s.params),
      ...parametersOf('query', s.querystring),
      ...parametersOf('header', s.headers),
    ]);
    const declared: Record<string, ResponseSpec> = {};
    for (const [code, spec] of Object.entries(s.response ?? {})) {
      const r = spec as JsonSchema & ResponseSpec;
      declared[code] = r.content
        ? { description: r.description ?? statusText(code), ...(r.headers && { headers: r.headers }), content: r.content }
        : { description: (r.description as string | undefined) ?? statusText(code), content: { 'application/json': { schema: r } } };
    }
    const responses = Object.entries({ ...o.extraResponses?.(path), ...declared })
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([code, r]) => [code, r.content ? { ...r, content: media(r.content) } : r]);
    for (const m of methods) {
      const entry: Record<string, unknown> = {
        summary: s.summary ?? '',
        ...(s.description && { description: s.description }),
        operationId: `${m}${path.replace(/[{}]/g, '').split('/').map((x) => x.charAt(0).toUpperCase() + x.slice(1)).join('').replace(/[^A-Za-z0-9]/g, '')}`,
        parameters,
        responses: Object.fromEntries(responses),
      };
      if (s.body) entry.requestBody = { required: true, content: { 'application/json': { schema: ref(s.body) } } };
      else if (s.rawBody) entry.requestBody = { required: s.rawBody.required ?? true, ...(s.rawBody.description && { description: s.rawBody.description }), content: media(s.rawBody.content) };
      const security = o.securityOf?.(path);
      if (security) entry.security = security;
      paths[path] = { ...(paths[path] ?? {}), [m]: entry };
    }
  }
  return {
    openapi: '3.0.3',
    info: { title: o.title, version: o.version, ...(o.description && { description: o.description }) },
    components: {
      ...(o.securitySchemes && { securitySchemes: o.securitySchemes }),
      ...(o.schemas && { schemas: Object.fromEntries(Object.entries(o.schemas).map(([name, s]) => [name, ref(s, true)])) }),
    },
    ...(o.security && { security: o.security }),
    paths,
  };
}

function parametersOf(where: 'path' | 'query' | 'header', obj: unknown): unknown[] {
  const o = obj as { properties?: Record<string, JsonSchema>; required?: string[] } | undefined;
  return Object.entries(o?.properties ?? {}).map(([name, schema]) => {
    const { description, ...rest } = schema;
    return {
      name, in: where, required: where === 'path' || (o?.required ?? []).includes(name),
      ...(typeof description === 'string' && { description }),
      schema: rest,
    };
  });
}

const STATUS_TEXT: Record<string, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  409: 'Conflict', 413: 'Content Too Large', 422: 'Unprocessable Content', 423: 'Locked', 429: 'Too Many Requests',
  500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable', 504: 'Gateway Timeout', 507: 'Insufficient Storage',
};

function statusText(code: string): string { return STATUS_TEXT[code] ?? code; }
