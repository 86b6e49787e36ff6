/**
 * Public API of the raft consensus core. See raw-node.ts for the driver loop and
 * docs/raft.md for the design (membership method, arbiters, read modes).
 */
export { RawNode, type Ready, type RaftStatus, type ProgressInfo } from './raw-node.js';
export type { RaftConfig, RaftMutation, ReadOnlyOption } from './raft.js';
export { MemoryStorage, bootstrapSnapshot, type Storage, type InitialState } from './storage.js';
export { createRng, type Rng } from './rng.js';
export { encodeConfChange, decodeConfChange, applyConfChange, NODE_ID_BYTES_MAX } from './conf-change.js';
export {
  CompactedError, LogUnavailableError, SnapshotTemporarilyUnavailableError, ProposalDroppedError,
  InvalidConfChangeError, RaftConfigError, ProposalTooLargeError, RaftUsageError, type DropReason,
} from './errors.js';
export {
  NONE, makeMessage, emptyMembership, suffrageOf, votingMembers, allMembers, quorumSize,
  type NodeId, type Entry, type EntryType, type HardState, type Membership, type Suffrage, type Snapshot,
  type SnapshotMeta, type ConfChange, type ConfChangeType, type Message, type MessageType,
  type SoftState, type Role, type ReadState,
} from './types.js';
