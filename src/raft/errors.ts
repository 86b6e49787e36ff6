/**
 * Typed errors of the raft core. Each extends ConureError with a stable `code`.
 *
 * | class                            | code             | thrown by                                   |
 * |----------------------------------|------------------|---------------------------------------------|
 * | CompactedError                   | compacted        | Storage.entries/term below firstIndex        |
 * | LogUnavailableError              | unavailable      | Storage.entries/term above lastIndex         |
 * | SnapshotTemporarilyUnavailableError | unavailable   | Storage.snapshot while one is being built    |
 * | ProposalDroppedError             | unavailable      | propose/proposeConfChange/readIndex          |
 * | InvalidConfChangeError           | invalid_argument | proposeConfChange                           |
 * | RaftConfigError                  | invalid_argument | RawNode constructor                          |
 * | ProposalTooLargeError            | too_large        | propose (entry above maxSizePerMsgBytes)      |
 * | RaftUsageError                   | internal         | API misuse (ready twice without advance, ...) |
 */
import { ConureError } from '../util/index.js';

/** The requested index is at or below the last compaction point (a snapshot covers it). */
export class CompactedError extends ConureError {
  constructor(index: number, firstIndex: number) {
    super('compacted', `log index ${index} is compacted (first index ${firstIndex})`);
  }
}

/** The requested index is beyond the last index in the log. */
export class LogUnavailableError extends ConureError {
  constructor(index: number, lastIndex: number) {
    super('unavailable', `log index ${index} is unavailable (last index ${lastIndex})`);
  }
}

/** The storage cannot produce a snapshot right now; raft retries later. */
export class SnapshotTemporarilyUnavailableError extends ConureError {
  constructor() { super('unavailable', 'snapshot temporarily unavailable'); }
}

export type DropReason =
  | 'no-leader' | 'not-leader' | 'transferring' | 'arbiter' | 'conf-pending'
  | 'uncommitted-limit' | 'read-queue-full' | 'not-member' | 'learner-behind';

/**
 * The proposal (or read) was not accepted; it may be retried, possibly on another member.
 * `reason` tells why: no leader known, this member is not the leader and forwarding is
 * disabled, a leadership transfer is in progress, this member is an arbiter, a configuration
 * change is still uncommitted, a learner is not caught up enough to be promoted, or a queue
 * limit was reached.
 */
export class ProposalDroppedError extends ConureError {
  readonly reason: DropReason;
  constructor(reason: DropReason, detail = '') {
    super('unavailable', `proposal dropped: ${reason}${detail ? ` (${detail})` : ''}`);
    this.reason = reason;
  }
}

/** The configuration change is not valid against the current membership. */
export class InvalidConfChangeError extends ConureError {
  constructor(message: string) { super('invalid_argument', `invalid configuration change: ${message}`); }
}

/** The raft configuration is invalid (a limit out of range, an inconsistent option). */
export class RaftConfigError extends ConureError {
  constructor(message: string) { super('invalid_argument', `invalid raft config: ${message}`); }
}

/** A proposal (or a ReadIndex context) exceeds its byte limit. */
export class ProposalTooLargeError extends ConureError {
  constructor(bytes: number, maxBytes: number, limitName = 'maxSizePerMsgBytes') {
    super('too_large', `${bytes} bytes exceed ${limitName} ${maxBytes}`);
  }
}

/** The caller broke the RawNode contract (for example called ready() twice without advance()). */
export class RaftUsageError extends ConureError {
  constructor(message: string) { super('internal', message); }
}
