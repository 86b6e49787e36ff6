/**
 * Plain-data types of the raft core: entries, messages, hard state, snapshots, membership.
 *
 * Everything here is plain data (numbers, strings, booleans, arrays, plain objects and
 * Uint8Array) so the peer transport can msgpack it and the storage layer can persist it
 * without knowing any class. Ownership: a value handed to the core (a stepped message, an
 * entry returned by Storage) must not be mutated afterwards by the caller; a value returned in
 * a Ready belongs to the caller once `advance()` has been called.
 */

/** A member id, e.g. "conure-bootstrap-0". The empty string means "none". */
export type NodeId = string;
export const NONE: NodeId = '';

/** `normal` entries carry application data; `conf` entries carry an encoded ConfChange. */
export type EntryType = 'normal' | 'conf';

/**
 * One log entry. Invariant: within a log, indexes are consecutive and terms never decrease.
 * An entry with empty `data` and type `normal` is the no-op a new leader appends.
 */
export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/**
 * The state that must be durable before any message produced alongside it is sent.
 * `vote` is NONE when this member has not voted in `term`.
 */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** How a member takes part: voters and arbiters vote and count toward quorum; learners do not. */
export type Suffrage = 'voter' | 'learner' | 'arbiter';

/**
 * A configuration. Invariant: the three lists are disjoint and sorted; `voters ∪ arbiters` is
 * the voting set that quorums are counted over, and it always contains at least one voter
 * (an empty membership, as on a member that has not yet joined, has no voting set at all).
 */
export interface Membership {
  voters: NodeId[];
  learners: NodeId[];
  arbiters: NodeId[];
}

export interface SnapshotMeta {
  /** The index and term of the last entry the snapshot covers. */
  index: number;
  term: number;
  /** The membership in force at `index`; restoring the snapshot restores it. */
  membership: Membership;
}

/**
 * A snapshot of the application state at `meta.index`. Snapshots sent to an arbiter carry
 * empty `data` (an arbiter keeps no state machine).
 */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export type ConfChangeType = 'addVoter' | 'addLearner' | 'addArbiter' | 'remove' | 'update';

/**
 * One single-server membership change.
 * - `addVoter`: adds a new voter, or promotes an existing learner.
 * - `addLearner`: adds a new learner, or demotes an existing voter.
 * - `addArbiter`: adds a new arbiter (an existing member must be removed first).
 * - `remove`: removes the member, whatever its suffrage.
 * - `update`: changes nothing in the membership; it carries a new `context` for an existing
 *   member (a new address), so every member learns it through the log.
 * `context` is opaque to raft (the node layer puts the member's address there).
 */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context: Uint8Array;
}

export type MessageType =
  | 'app' | 'appResp'
  | 'vote' | 'voteResp'
  | 'preVote' | 'preVoteResp'
  | 'heartbeat' | 'heartbeatResp'
  | 'snap'
  | 'prop'
  | 'readIndex' | 'readIndexResp'
  | 'timeoutNow'
  | 'transferLeader';

/**
 * A message between members. Every field is always present (defaults: 0, '', false, [],
 * empty bytes) so encoders see one shape. Field use per type:
 *
 * ```
 *  type           index/logTerm                 entries  commit  reject/rejectHint       other
 *  app            prev entry (index, term)       yes      yes     -                       voterDurable
 *  appResp        last matched / probed index    -        -       yes: hint idx, logTerm  -
 *  vote/preVote   candidate's last (index,term)  -        -       -                       force
 *  *Resp (votes)  -                              -        -       granted = !reject       -
 *  heartbeat      leader tick stamp (lease)      -        yes     -                       context, voterDurable
 *  heartbeatResp  echoed tick stamp              -        -       -                       context
 *  snap           -                              -        -       -                       snapshot
 *  prop           -                              yes      -       -                       (term 0)
 *  readIndex      -                              -        -       -                       context (term 0)
 *  readIndexResp  read index                     -        -       -                       context
 *  timeoutNow / transferLeader: no payload (transferLeader: `from` is the transferee, term 0)
 * ```
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  snapshot: Snapshot | null;
  context: Uint8Array;
  /** Vote requests: sent on a leadership transfer; voters ignore their leader lease for it. */
  force: boolean;
  /**
   * app/heartbeat: the highest index that every voter (suffrage `voter`, not arbiters or
   * learners) has acknowledged and that is committed. Arbiters may drop entry payloads at
   * or below it. 0 when unknown.
   */
  voterDurable: number;
}

const EMPTY = new Uint8Array(0);

/** Builds a message with every field defaulted. */
export function makeMessage(m: Partial<Message> & Pick<Message, 'type' | 'from' | 'to'>): Message {
  return {
    term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0,
    snapshot: null, context: EMPTY, force: false, voterDurable: 0, ...m,
  };
}

/** Volatile state that the application may want to observe (role and leader). */
export interface SoftState {
  lead: NodeId;
  role: Role;
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** The result of a ReadIndex request: reads may be served once `applied >= index`. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

export function emptyMembership(): Membership {
  return { voters: [], learners: [], arbiters: [] };
}

export function cloneMembership(m: Membership): Membership {
  return { voters: [...m.voters], learners: [...m.learners], arbiters: [...m.arbiters] };
}

/** The suffrage of `id` in `m`, or undefined when it is not a member. */
export function suffrageOf(m: Membership, id: NodeId): Suffrage | undefined {
  if (m.voters.includes(id)) return 'voter';
  if (m.arbiters.includes(id)) return 'arbiter';
  if (m.learners.includes(id)) return 'learner';
  return undefined;
}

/** Voters and arbiters: the members quorums are counted over. */
export function votingMembers(m: Membership): NodeId[] {
  return [...m.voters, ...m.arbiters];
}

export function allMembers(m: Membership): NodeId[] {
  return [...m.voters, ...m.arbiters, ...m.learners];
}

/** Majority size of a voting set of `n` members. */
export function quorumSize(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** Approximate byte size of an entry, used for every byte limit. */
export function entryBytes(e: Entry): number {
  return e.data.length + 24;
}

export function entriesBytes(es: readonly Entry[]): number {
  let n = 0;
  for (const e of es) n += entryBytes(e);
  return n;
}
