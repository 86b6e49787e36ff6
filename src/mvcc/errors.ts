import { ConureError, type ErrorCode } from '../util/errors.js';

/**
 * Why an etcd-API request failed, one value per condition etcd distinguishes. Transports map a
 * reason to their own status (gRPC: `api/etcd/grpc-status.ts`, the only place that does it) and
 * to etcd's exact error text, which clients such as etcdctl and the etcd3 npm package match on.
 */
export type MvccErrorReason =
  | 'empty_key'
  | 'key_not_found'
  | 'value_provided'
  | 'lease_provided'
  | 'too_many_ops'
  | 'duplicate_key'
  | 'compacted'
  | 'future_revision'
  | 'no_space'
  | 'lease_not_found'
  | 'lease_exists'
  | 'lease_ttl_too_large'
  | 'request_too_large'
  | 'member_not_found'
  | 'member_exists'
  | 'member_not_learner'
  | 'peer_url_exists'
  | 'auth_not_enabled'
  | 'not_capable'
  | 'invalid';

const CODES: Record<MvccErrorReason, ErrorCode> = {
  empty_key: 'invalid_argument',
  key_not_found: 'invalid_argument',
  value_provided: 'invalid_argument',
  lease_provided: 'invalid_argument',
  too_many_ops: 'invalid_argument',
  duplicate_key: 'invalid_argument',
  compacted: 'compacted',
  future_revision: 'invalid_argument',
  no_space: 'no_space',
  lease_not_found: 'not_found',
  lease_exists: 'conflict',
  lease_ttl_too_large: 'invalid_argument',
  request_too_large: 'too_large',
  member_not_found: 'not_found',
  member_exists: 'conflict',
  member_not_learner: 'conflict',
  peer_url_exists: 'conflict',
  auth_not_enabled: 'unsupported',
  not_capable: 'unsupported',
  invalid: 'invalid_argument',
};

/**
 * A request the MVCC store or the etcd services refused. `reason` is stable; `message` is a
 * human-readable explanation (transports may substitute etcd's canonical text).
 * The state machine returns these as values from `apply` (never throws them), so that a
 * refused command still advances the applied index identically on every member.
 */
export class MvccError extends ConureError {
  readonly reason: MvccErrorReason;
  /** For `compacted`: the store's compacted revision. */
  readonly compactRevision: number | undefined;
  constructor(reason: MvccErrorReason, message: string, opts: { cause?: unknown; compactRevision?: number } = {}) {
    super(CODES[reason], message, { cause: opts.cause });
    this.reason = reason;
    this.compactRevision = opts.compactRevision;
  }
}

/** The canonical text etcd v3.4 sends for each reason (`rpctypes`), which clients match on. */
export const ETCD_ERROR_TEXT: Record<MvccErrorReason, string> = {
  empty_key: 'etcdserver: key is not provided',
  key_not_found: 'etcdserver: key not found',
  value_provided: 'etcdserver: value is provided',
  lease_provided: 'etcdserver: lease is provided',
  too_many_ops: 'etcdserver: too many operations in txn request',
  duplicate_key: 'etcdserver: duplicate key given in txn request',
  compacted: 'etcdserver: mvcc: required revision has been compacted',
  future_revision: 'etcdserver: mvcc: required revision is a future revision',
  no_space: 'etcdserver: mvcc: database space exceeded',
  lease_not_found: 'etcdserver: requested lease not found',
  lease_exists: 'etcdserver: lease already exists',
  lease_ttl_too_large: 'etcdserver: too large lease TTL',
  request_too_large: 'etcdserver: request is too large',
  member_not_found: 'etcdserver: member not found',
  member_exists: 'etcdserver: member ID already exist',
  member_not_learner: 'etcdserver: can only promote a learner member',
  peer_url_exists: 'etcdserver: Peer URLs already exists',
  auth_not_enabled: 'etcdserver: authentication is not enabled',
  not_capable: 'etcdserver: not capable',
  invalid: 'etcdserver: invalid request',
};
