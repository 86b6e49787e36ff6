import { ConureError, type ErrorCode } from '../util/index.js';

/**
 * Why an etcd-API request failed, one value per condition etcd distinguishes. Transports map a
 * reason to their own status (gRPC: `api/etcd/grpc-status.ts`, the only place that does it) and
 * to etcd's exact error text (`api/etcd/rpctypes.ts`), which clients such as etcdctl and the etcd3
 * npm package match on.
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
