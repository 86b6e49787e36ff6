import { status, type ServiceError } from '@grpc/grpc-js';
import { ConureError, InvalidArgumentError, UnavailableError } from '../../util/index.js';

/**
 * The one place where gRPC failures from an etcd server become ConureErrors, so callers branch
 * on `code` and never on gRPC numbers or server texts:
 *
 *   UNAVAILABLE, connection failures          → unavailable (UnavailableError; retry elsewhere/later)
 *   DEADLINE_EXCEEDED                          → timeout
 *   OUT_OF_RANGE "compacted"                   → compacted
 *   OUT_OF_RANGE (future revision, TTL)        → invalid_argument
 *   INVALID_ARGUMENT                           → invalid_argument
 *   NOT_FOUND ("requested lease not found")    → not_found
 *   FAILED_PRECONDITION                        → conflict
 *   RESOURCE_EXHAUSTED (database space)        → no_space
 *   UNAUTHENTICATED / PERMISSION_DENIED        → unauthenticated / permission_denied
 *   UNIMPLEMENTED                              → unsupported
 *   CANCELLED                                  → closed when we closed the client, else unavailable
 *   anything else                              → internal
 */
export function fromGrpcError(err: unknown, endpoint: string, closed = false): ConureError {
  if (err instanceof ConureError) return err;
  const e = err as Partial<ServiceError>;
  const details = e.details || e.message || String(err);
  const msg = `etcd ${endpoint}: ${details}`;
  switch (e.code) {
    case status.UNAVAILABLE: return new UnavailableError(msg, 1, { cause: err });
    case status.DEADLINE_EXCEEDED: return new ConureError('timeout', msg, { cause: err });
    case status.OUT_OF_RANGE:
      return /compacted/.test(details) ? new ConureError('compacted', msg, { cause: err }) : new InvalidArgumentError(msg, { cause: err });
    case status.INVALID_ARGUMENT: return new InvalidArgumentError(msg, { cause: err });
    case status.NOT_FOUND: return new ConureError('not_found', msg, { cause: err });
    case status.FAILED_PRECONDITION: return new ConureError('conflict', msg, { cause: err });
    case status.RESOURCE_EXHAUSTED: return new ConureError('no_space', msg, { cause: err });
    case status.UNAUTHENTICATED: return new ConureError('unauthenticated', msg, { cause: err });
    case status.PERMISSION_DENIED: return new ConureError('permission_denied', msg, { cause: err });
    case status.UNIMPLEMENTED: return new ConureError('unsupported', msg, { cause: err });
    case status.CANCELLED: return closed ? new ConureError('closed', msg, { cause: err }) : new UnavailableError(msg, 1, { cause: err });
    default: return new ConureError('internal', msg, { cause: err });
  }
}

/** True for failures where another endpoint (or a later try) may succeed. */
export function isRetryable(err: ConureError): boolean {
  return err.code === 'unavailable';
}
