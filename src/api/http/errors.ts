import type { FastifyReply } from 'fastify';
import { asConureError, NotLeaderError, UnavailableError, type ErrorCode } from '../../util/index.js';

/** The one place where error codes become HTTP statuses. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  conflict: 409,
  not_leader: 409,
  too_large: 413,
  locked: 423,
  internal: 500,
  unsupported: 501,
  unavailable: 503,
  closed: 503,
  timeout: 504,
  compacted: 410,
  no_space: 507,
  unprocessable: 422,
  resource_exhausted: 429,
};

/**
 * The JSON error body `sendError` writes, as a schema (OpenAPI documents reference it).
 * `leader` and `leader_http` come with `not_leader` only.
 */
export const ERROR_SCHEMA = {
  type: 'object',
  required: ['error', 'code'],
  properties: {
    error: { type: 'string', description: 'what went wrong, for a human' },
    code: { type: 'string', enum: Object.keys(HTTP_STATUS), description: 'stable, for programs' },
    leader: { type: 'string', description: 'not_leader: the leader\'s raft address, or "" when none is known' },
    leader_http: { type: 'string', description: 'not_leader: the leader\'s HTTP address, or ""' },
  },
};

/**
 * Sends `err` as an HTTP error. `format: 'text'` (the seed `/kv` API) answers with the bare
 * message, as the seed API does; `json` answers `{"error": message, "code": code}`.
 * A NotLeaderError also carries `leader` / `leader_http`; an UnavailableError sets Retry-After.
 */
export function sendError(reply: FastifyReply, err: unknown, format: 'text' | 'json'): FastifyReply {
  const e = asConureError(err);
  const status = HTTP_STATUS[e.code] ?? 500;
  if (e instanceof UnavailableError) reply.header('retry-after', String(e.retryAfterSeconds));
  reply.code(status);
  if (format === 'text' && !(e instanceof NotLeaderError)) {
    return reply.type('text/plain; charset=utf-8').send(e.message);
  }
  const body: Record<string, unknown> = { error: e.message, code: e.code };
  if (e instanceof NotLeaderError) {
    body.leader = e.leader ?? '';
    body.leader_http = e.leaderHttp ?? '';
  }
  return reply.type('application/json').send(JSON.stringify(body));
}
