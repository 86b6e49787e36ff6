/**
 * Typed errors shared by every layer.
 *
 * Every error the project throws is a `ConureError` subclass with a stable, machine-readable
 * `code` and an optional `cause`. Transport layers (HTTP, gRPC, WebSocket) map codes to status
 * codes in exactly one place each; business code never picks an HTTP status.
 */
export type ErrorCode =
  | 'invalid_argument'
  | 'not_found'
  | 'too_large'
  | 'conflict'
  | 'not_leader'
  | 'unavailable'
  | 'timeout'
  | 'compacted'
  | 'no_space'
  | 'unauthenticated'
  | 'permission_denied'
  | 'locked'
  | 'unsupported'
  | 'closed'
  | 'unprocessable'
  | 'resource_exhausted'
  | 'internal';

export class ConureError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A request was malformed: a missing or badly typed field. */
export class InvalidArgumentError extends ConureError {
  constructor(message: string, options?: { cause?: unknown }) { super('invalid_argument', message, options); }
}

/** A request or an item in it exceeds a documented limit. */
export class TooLargeError extends ConureError {
  constructor(message: string, options?: { cause?: unknown }) { super('too_large', message, options); }
}

/** This member is not the leader; `leader` is the leader's address when known. */
export class NotLeaderError extends ConureError {
  readonly leader: string | undefined;
  readonly leaderHttp: string | undefined;
  constructor(leader?: string, leaderHttp?: string, options?: { cause?: unknown }) {
    super('not_leader', leader ? `not the leader; the leader is ${leader}` : 'not the leader; no leader is known', options);
    this.leader = leader;
    this.leaderHttp = leaderHttp;
  }
}

/**
 * Why a service is unavailable, where it matters to a client (etcd has one error for each): no
 * leader, the leader changed under a request, the request was not confirmed in time, overload,
 * or the server is stopping.
 */
export type UnavailableReason = 'no_leader' | 'leader_changed' | 'timeout' | 'too_many_requests' | 'stopped';

/** The service cannot answer right now (no leader, shutting down, storage failed); retry later. */
export class UnavailableError extends ConureError {
  readonly retryAfterSeconds: number;
  readonly reason: UnavailableReason | undefined;
  constructor(message: string, retryAfterSeconds = 1, options?: { cause?: unknown; reason?: UnavailableReason }) {
    super('unavailable', message, options);
    this.retryAfterSeconds = retryAfterSeconds;
    this.reason = options?.reason;
  }
}

/** The caller did not prove who it is (no credential, or a wrong one). */
export class UnauthenticatedError extends ConureError {
  constructor(message: string, options?: { cause?: unknown }) { super('unauthenticated', message, options); }
}

/** The component was closed; no further calls are accepted. */
export class ClosedError extends ConureError {
  constructor(what: string) { super('closed', `${what} is closed`); }
}

/**
 * The request is well formed but cannot be processed as sent, e.g. an `Idempotency-Key` reused
 * with a different body (HTTP 422).
 */
export class UnprocessableError extends ConureError {
  constructor(message: string, options?: { cause?: unknown }) { super('unprocessable', message, options); }
}

/** A bounded resource (a queue, a port range) is full; retry later (HTTP 429). */
export class ResourceExhaustedError extends ConureError {
  constructor(message: string, options?: { cause?: unknown }) { super('resource_exhausted', message, options); }
}

/** Normalises anything thrown into a ConureError, keeping the original as `cause`. */
export function asConureError(err: unknown): ConureError {
  if (err instanceof ConureError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ConureError('internal', message, { cause: err });
}
