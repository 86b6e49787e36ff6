import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ETCD_ERROR_TEXT, MvccError, type MvccErrorReason } from '../../mvcc/errors.js';
import { asConureError, type ErrorCode } from '../../util/errors.js';
import { RangeTooLargeError } from './range-response.js';

/**
 * The one place where errors become gRPC statuses. Codes and texts follow etcd's `rpctypes`,
 * because clients branch on them: etcdctl prints the text, the etcd3 npm package maps texts to
 * error classes (e.g. "etcdserver: requested lease not found" → EtcdLeaseInvalidError), and
 * Go clientv3 retries on Unavailable.
 */
const BY_REASON: Record<MvccErrorReason, status> = {
  empty_key: status.INVALID_ARGUMENT,
  key_not_found: status.INVALID_ARGUMENT,
  value_provided: status.INVALID_ARGUMENT,
  lease_provided: status.INVALID_ARGUMENT,
  too_many_ops: status.INVALID_ARGUMENT,
  duplicate_key: status.INVALID_ARGUMENT,
  compacted: status.OUT_OF_RANGE,
  future_revision: status.OUT_OF_RANGE,
  no_space: status.RESOURCE_EXHAUSTED,
  lease_not_found: status.NOT_FOUND,
  lease_exists: status.FAILED_PRECONDITION,
  lease_ttl_too_large: status.OUT_OF_RANGE,
  request_too_large: status.INVALID_ARGUMENT,
  member_not_found: status.NOT_FOUND,
  member_exists: status.FAILED_PRECONDITION,
  member_not_learner: status.FAILED_PRECONDITION,
  peer_url_exists: status.FAILED_PRECONDITION,
  auth_not_enabled: status.FAILED_PRECONDITION,
  not_capable: status.UNAVAILABLE,
  invalid: status.INVALID_ARGUMENT,
};

const BY_CODE: Record<ErrorCode, [status, string | undefined]> = {
  invalid_argument: [status.INVALID_ARGUMENT, undefined],
  not_found: [status.NOT_FOUND, undefined],
  too_large: [status.INVALID_ARGUMENT, ETCD_ERROR_TEXT.request_too_large],
  conflict: [status.FAILED_PRECONDITION, undefined],
  not_leader: [status.UNAVAILABLE, 'etcdserver: not leader'],
  unavailable: [status.UNAVAILABLE, undefined],
  timeout: [status.UNAVAILABLE, 'etcdserver: request timed out'],
  compacted: [status.OUT_OF_RANGE, ETCD_ERROR_TEXT.compacted],
  no_space: [status.RESOURCE_EXHAUSTED, ETCD_ERROR_TEXT.no_space],
  unauthenticated: [status.UNAUTHENTICATED, undefined],
  permission_denied: [status.PERMISSION_DENIED, 'etcdserver: permission denied'],
  locked: [status.FAILED_PRECONDITION, undefined],
  unsupported: [status.UNIMPLEMENTED, undefined],
  closed: [status.UNAVAILABLE, 'etcdserver: server stopped'],
  unprocessable: [status.FAILED_PRECONDITION, undefined],
  resource_exhausted: [status.RESOURCE_EXHAUSTED, undefined],
  internal: [status.INTERNAL, undefined],
};

/** The gRPC status and text for `err`. */
export function grpcStatusOf(err: unknown): { code: status; details: string } {
  if (err instanceof MvccError) {
    // 'invalid' covers several conditions; its own message says which.
    const details = err.reason === 'invalid' ? `etcdserver: ${err.message}` : ETCD_ERROR_TEXT[err.reason];
    return { code: BY_REASON[err.reason], details };
  }
  // grpc-go's own text for a response over the send limit (no "etcdserver: " prefix).
  if (err instanceof RangeTooLargeError) return { code: status.RESOURCE_EXHAUSTED, details: err.message };
  const e = asConureError(err);
  const [code, text] = BY_CODE[e.code];
  return { code, details: text ?? `etcdserver: ${e.message}` };
}

/** `err` as a grpc-js ServiceError, ready for a callback or `call.destroy()`/`emit('error')`. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const { code, details } = grpcStatusOf(err);
  return { code, details, metadata: new Metadata(), name: 'Error', message: details };
}

/**
 * The HTTP status the JSON gateway answers for a gRPC code (grpc-gateway v1's table, which
 * etcd 3.4's gateway uses).
 */
export function httpStatusOfGrpc(code: status): number {
  switch (code) {
    case status.OK: return 200;
    case status.CANCELLED: return 408;
    case status.INVALID_ARGUMENT: return 400;
    case status.DEADLINE_EXCEEDED: return 504;
    case status.NOT_FOUND: return 404;
    case status.ALREADY_EXISTS: return 409;
    case status.PERMISSION_DENIED: return 403;
    case status.UNAUTHENTICATED: return 401;
    case status.RESOURCE_EXHAUSTED: return 429;
    case status.FAILED_PRECONDITION: return 412;
    case status.ABORTED: return 409;
    case status.OUT_OF_RANGE: return 400;
    case status.UNIMPLEMENTED: return 501;
    case status.UNAVAILABLE: return 503;
    default: return 500;
  }
}
