/**
 * The seams of a running member: the interfaces between the replication driver (node/) and
 * what it replicates (mvcc/), used by the API layers too. They live below all of their users
 * (DESIGN.md §2; docs/decisions/003-layer-rules.md), so mvcc/ never imports node/.
 *
 * ```
 *   api/http, api/etcd  ──►  Replicator  ──►  StateMachine  ──►  StateStore (LMDB)
 *   (thin handlers)          propose()        apply(index, cmd)   atomic + applied index
 *                            readBarrier()
 * ```
 *
 * - A `StateMachine` is deterministic: the same commands at the same indexes give the same
 *   state and results on every member. It never looks at clocks, randomness or the network.
 * - A `Replicator` orders commands (a single node: trivially; a cluster: raft), applies them
 *   on every member and hands the proposer its result once the command is durable on a quorum
 *   and applied locally.
 */

/** A deterministic, replicated state machine over a StateStore. */
export interface StateMachine {
  /**
   * Applies the command at `index` and returns its result (handed to the proposer only).
   * Must be deterministic. A command that fails validation returns an error value rather than
   * throwing; throwing means the member cannot continue (storage failure) and is fatal.
   * Indexes at or below `appliedIndex()` must be ignored (return undefined): replay is idempotent.
   */
  apply(index: number, command: Uint8Array): unknown;
  /** Applies a no-op at `index` (raft's empty entries, config changes) to advance the applied index. */
  applyNoop(index: number): void;
  /** Highest applied index. */
  appliedIndex(): number;
  /** Resolves when every applied change is durable. */
  sync(): Promise<void>;
  /**
   * Optional group commit: runs `fn`, in which several `apply` calls are made, as one atomic
   * storage transaction. Replicators use it to apply a batch of entries with one commit.
   */
  batch?<T>(fn: () => T): T;
}

/**
 * A state machine whose whole state can be exported and restored, for raft snapshots sent to
 * members that fell behind the leader's compacted log.
 */
export interface SnapshottableStateMachine extends StateMachine {
  /** The whole state as bytes, taken synchronously (so it is consistent), with its applied index. */
  exportState(): { index: number; data: Uint8Array };
  /** Replaces the whole state with `data` (from exportState) at `index`; durable on resolve. */
  restoreState(index: number, data: Uint8Array): Promise<void>;
}

export type Suffrage = 'voter' | 'learner' | 'arbiter';

export interface Member {
  id: string;
  /** The advertised raft address, host:port. */
  address: string;
  /** The advertised HTTP address (host:port), when known. */
  httpAddress?: string;
  /** The etcd client URL (`http://host:port`) the member published when it joined, if any. */
  clientUrl?: string;
  suffrage: Suffrage;
}

/**
 * Where a member reports timings it measures (the etcd-compatible metrics, api/etcd/metrics.ts).
 * Calls are synchronous and cheap; an observer must not throw.
 */
export interface MemberObserver {
  /** One fsync of the raft log (etcd's WAL fsync). */
  walFsyncSeconds(seconds: number): void;
  /** A heartbeat's round trip to the member `to` (etcd's peer round-trip time). */
  peerRoundTripSeconds(to: string, seconds: number): void;
}

export interface NodeStatus {
  id: string;
  isLeader: boolean;
  /** The leader's advertised raft address, or '' when unknown. */
  leader: string;
  /** The leader's advertised HTTP address, or '' when unknown. */
  leaderHttp: string;
  /** Ready to serve: has a leader and has applied up to the commit index learned from it. */
  ready: boolean;
}

export interface RaftStats {
  state: 'leader' | 'follower' | 'candidate' | 'pre-candidate' | 'learner' | 'arbiter' | 'shutdown';
  term: number;
  commit_index: number;
  applied_index: number;
  last_log_index: number;
  last_log_term: number;
  num_peers: number;
  last_contact_ms: number | null;
  [extra: string]: unknown;
}

export type ReadConsistency = 'linearizable' | 'serializable';

/**
 * Orders and replicates commands. Errors: `NotLeaderError` (a follower that cannot forward),
 * `UnavailableError` (no leader, shutting down, proposal dropped), `ClosedError`.
 */
export interface Replicator {
  /** Replicates `command`; resolves with the state machine's result once applied and durable. */
  propose(command: Uint8Array): Promise<unknown>;
  /** Resolves when the local state machine has applied everything committed before the call (ReadIndex). */
  readBarrier(): Promise<void>;
  status(): NodeStatus;
  members(): Member[];
  stats(): RaftStats;
  /**
   * Adds (or re-addresses) a member; idempotent for the same id and address. `fresh` says the
   * member lost its disk: an existing entry for it is removed and it re-enters as a learner,
   * since a voter that forgot its vote could otherwise vote twice in one term.
   */
  addMember(m: { id: string; address: string; httpAddress?: string; clientUrl?: string; suffrage: Suffrage; fresh?: boolean }): Promise<void>;
  removeMember(id: string): Promise<void>;
  promoteMember(id: string): Promise<void>;
  transferLeadership(toId?: string): Promise<void>;
  close(): Promise<void>;
}
