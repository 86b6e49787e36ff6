import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { MvccError, type MvccErrorReason } from '../../mvcc/index.js';
import { NotLeaderError, UnavailableError, asConureError, type ErrorCode, type UnavailableReason } from '../../util/index.js';
import { RangeTooLargeError } from './range-response.js';
import { RPC_ERRORS, type RpcErrorName } from './rpctypes.js';

/**
 * The one place where errors become gRPC statuses: each error picks an entry of etcd's own table
 * (rpctypes.ts), so codes and texts are etcd 3.4's and clients that branch on them work (etcdctl
 * prints the text, clientv3's `rpctypes` maps it back to `ErrNoLeader` & co. and retries on
 * Unavailable, the etcd3 npm package maps "etcdserver: requested lease not found" to
 * EtcdLeaseInvalidError).
 */
const BY_REASON: Record<Exclude<MvccErrorReason, 'invalid'>, RpcErrorName> = {
  empty_key: 'EmptyKey',
  key_not_found: 'KeyNotFound',
  value_provided: 'ValueProvided',
  lease_provided: 'LeaseProvided',
  too_many_ops: 'TooManyOps',
  duplicate_key: 'DuplicateKey',
  compacted: 'Compacted',
  future_revision: 'FutureRev',
  no_space: 'NoSpace',
  lease_not_found: 'LeaseNotFound',
  lease_exists: 'LeaseExist',
  lease_ttl_too_large: 'LeaseTTLTooLarge',
  request_too_large: 'RequestTooLarge',
  member_not_found: 'MemberNotFound',
  member_exists: 'MemberExist',
  member_not_learner: 'MemberNotLearner',
  peer_url_exists: 'PeerURLExist',
  auth_not_enabled: 'AuthNotEnabled',
  not_capable: 'NotCapable',
};

const BY_UNAVAILABLE: Record<UnavailableReason, RpcErrorName> = {
  no_leader: 'NoLeader',
  leader_changed: 'LeaderChanged',
  timeout: 'Timeout',
  too_many_requests: 'RequestTooManyRequests',
  stopped: 'Stopped',
};

/** ConureError codes: an etcd error, or a code whose text is `etcdserver: <message>`. */
const BY_CODE: Record<ErrorCode, RpcErrorName | status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  too_large: 'RequestTooLarge',
  conflict: status.FAILED_PRECONDITION,
  not_leader: 'NotLeader',
  unavailable: status.UNAVAILABLE,
  timeout: 'Timeout',
  compacted: 'Compacted',
  no_space: 'NoSpace',
  unauthenticated: status.UNAUTHENTICATED,
  permission_denied: 'PermissionDenied',
  locked: status.FAILED_PRECONDITION,
  unsupported: status.UNIMPLEMENTED,
  closed: 'Stopped',
  unprocessable: status.FAILED_PRECONDITION,
  resource_exhausted: 'RequestTooManyRequests',
  internal: status.INTERNAL,
};

const rpc = (name: RpcErrorName): { code: status; details: string } => {
  const [code, details] = RPC_ERRORS[name];
  return { code, details };
};

/**
 * A gRPC status another member answered (a request forwarded to the leader), passed on to the
 * client as it is: etcd's code and text.
 */
export class RpcStatusError extends Error {
  constructor(readonly code: status, readonly details: string) { super(details); }
}

/** The gRPC status and text for `err`. */
export function grpcStatusOf(err: unknown): { code: status; details: string } {
  if (err instanceof RpcStatusError) return { code: err.code, details: err.details };
  if (err instanceof MvccError) {
    // 'invalid' covers several conditions; its own message says which.
    return err.reason === 'invalid' ? { code: status.INVALID_ARGUMENT, details: `etcdserver: ${err.message}` } : rpc(BY_REASON[err.reason]);
  }
  // grpc-go's own text for a response over the send limit (no "etcdserver: " prefix).
  if (err instanceof RangeTooLargeError) return { code: status.RESOURCE_EXHAUSTED, details: err.message };
  if (err instanceof UnavailableError && err.reason) return rpc(BY_UNAVAILABLE[err.reason]);
  // Not the leader, and no leader known: etcd's "no leader".
  if (err instanceof NotLeaderError && !err.leader) return rpc('NoLeader');
  const e = asConureError(err);
  const to = BY_CODE[e.code];
  return typeof to === 'string' ? rpc(to) : { code: to, details: `etcdserver: ${e.message}` };
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
