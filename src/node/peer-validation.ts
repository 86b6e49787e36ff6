/**
 * Validation of raft messages received from peers, before anything reaches the raft core or
 * the disk. The core trusts its input (it is pure and fast); this module is where untrusted
 * bytes become a `Message`.
 *
 * Checks, in order:
 * - shape: a plain object whose every field has the type `Message` declares (no extra
 *   coercion: a string term, `Infinity`, `NaN`, a negative or fractional number all fail);
 * - identity: `from` is the envelope's sender (forwarded `readIndex`/`transferLeader` keep
 *   their originator), `to` is this member, ids are well-formed;
 * - bounds: terms ≤ TERM_MAX (so `term + 1` can never equal `term`), indexes ≤ INDEX_MAX,
 *   contexts ≤ CONTEXT_BYTES_MAX, at most ENTRIES_MAX entries;
 * - entries: `app` entries are consecutive after `index`, with non-decreasing terms between
 *   `logTerm` and the message term; `prop` entries carry no index or term and are never
 *   configuration changes (members change only through the leader's own API); every `conf`
 *   entry decodes to a valid change;
 * - snapshots: metadata only (the state is fetched over HTTP), a membership of valid, disjoint
 *   ids with at least one voter.
 *
 * Errors: `InvalidArgumentError` naming the first bad field. Never throws anything else.
 */
import { decodeConfChange, type Entry, type Membership, type Message, type MessageType, type Snapshot } from '../raft/index.js';
import { InvalidArgumentError } from '../util/index.js';
import { MEMBER_ID } from './membership-service.js';

/** Largest term accepted from a peer: far beyond any real cluster's, and `term + 1` stays exact. */
export const TERM_MAX = 2 ** 48;
/** Largest log index (and tick stamp) accepted from a peer. */
export const INDEX_MAX = 2 ** 52;
/** Largest `context` (ReadIndex and heartbeat contexts are well under 100 bytes). */
export const CONTEXT_BYTES_MAX = 1024;
/** Most entries one message may carry. */
export const ENTRIES_MAX = 65_536;
/** Largest conf-change context (a member's addresses). */
export const CONF_CONTEXT_BYTES_MAX = 4096;

const TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'app', 'appResp', 'vote', 'voteResp', 'preVote', 'preVoteResp', 'heartbeat', 'heartbeatResp',
  'snap', 'prop', 'readIndex', 'readIndexResp', 'timeoutNow', 'transferLeader',
]);
/** Messages that are requests forwarded to the leader and carry no term. */
const TERMLESS: ReadonlySet<MessageType> = new Set<MessageType>(['prop', 'readIndex', 'transferLeader']);
const FIELDS = ['type', 'from', 'to', 'term', 'logTerm', 'index', 'entries', 'commit', 'reject', 'rejectHint', 'snapshot', 'context', 'force', 'voterDurable'];

function bad(what: string): never { throw new InvalidArgumentError(`invalid raft message: ${what}`); }

function int(v: unknown, field: string, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) bad(`${field} must be an integer in 0..${max}`);
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') bad(`${field} must be a boolean`);
  return v;
}

function bytes(v: unknown, field: string, max: number): Uint8Array {
  if (!(v instanceof Uint8Array)) bad(`${field} must be bytes`);
  if (v.length > max) bad(`${field} exceeds ${max} bytes`);
  return v;
}

/** A member id as the seed API accepts it (MEMBER_ID). */
export function isMemberId(v: unknown): v is string {
  return typeof v === 'string' && MEMBER_ID.test(v);
}

function memberId(v: unknown, field: string): string {
  if (!isMemberId(v)) bad(`${field} is not a member id`);
  return v;
}

function ids(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.length > 256) bad(`${field} must be a list of at most 256 ids`);
  return v.map((x, i) => memberId(x, `${field}[${i}]`));
}

function membership(v: unknown): Membership {
  if (typeof v !== 'object' || v === null) bad('snapshot membership must be an object');
  const o = v as Record<string, unknown>;
  const m: Membership = { voters: ids(o.voters, 'voters'), learners: ids(o.learners, 'learners'), arbiters: ids(o.arbiters, 'arbiters') };
  const all = [...m.voters, ...m.learners, ...m.arbiters];
  if (new Set(all).size !== all.length) bad('snapshot membership lists a member twice');
  if (m.voters.length === 0) bad('snapshot membership has no voter');
  return m;
}

function snapshot(v: unknown): Snapshot {
  if (typeof v !== 'object' || v === null) bad('snap carries no snapshot');
  const s = v as Record<string, unknown>;
  const meta = s.meta as Record<string, unknown> | null;
  if (typeof meta !== 'object' || meta === null) bad('snapshot meta must be an object');
  return {
    meta: { index: int(meta.index, 'snapshot index', INDEX_MAX), term: int(meta.term, 'snapshot term', TERM_MAX), membership: membership(meta.membership) },
    // The state travels over HTTP; whatever bytes came along are ignored.
    data: new Uint8Array(0),
  };
}

function entry(v: unknown, i: number): Entry {
  if (typeof v !== 'object' || v === null) bad(`entries[${i}] must be an object`);
  const e = v as Record<string, unknown>;
  if (e.type !== 'normal' && e.type !== 'conf') bad(`entries[${i}].type must be normal or conf`);
  const data = bytes(e.data, `entries[${i}].data`, Number.MAX_SAFE_INTEGER);
  if (e.type === 'conf') {
    let cc;
    try { cc = decodeConfChange(data); } catch { bad(`entries[${i}] is a malformed configuration change`); }
    if (!isMemberId(cc.nodeId)) bad(`entries[${i}] changes an invalid member id`);
    if (cc.context.length > CONF_CONTEXT_BYTES_MAX) bad(`entries[${i}] configuration context exceeds ${CONF_CONTEXT_BYTES_MAX} bytes`);
  }
  return { index: int(e.index, `entries[${i}].index`, INDEX_MAX), term: int(e.term, `entries[${i}].term`, TERM_MAX), type: e.type, data };
}

/**
 * Returns `raw` as a well-formed Message sent by `sender` to `self`, or throws
 * InvalidArgumentError. The result is a fresh object holding only Message's fields.
 */
export function validatePeerMessage(raw: unknown, sender: string, self: string): Message {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('not an object');
  const o = raw as Record<string, unknown>;
  for (const f of FIELDS) if (!(f in o)) bad(`missing field ${f}`);
  if (typeof o.type !== 'string' || !TYPES.has(o.type as MessageType)) bad('unknown type');
  const type = o.type as MessageType;
  const from = memberId(o.from, 'from');
  // Forwarded requests keep their originator (`transferLeader` names the transferee).
  if (from !== sender && type !== 'transferLeader' && type !== 'readIndex') bad(`from ${from} is not the connection's sender ${sender}`);
  if (o.to !== self) bad('addressed to another member');
  const term = int(o.term, 'term', TERM_MAX);
  if (TERMLESS.has(type) ? term !== 0 : term === 0) bad(TERMLESS.has(type) ? `${type} must carry term 0` : `${type} must carry a term`);
  if (!Array.isArray(o.entries)) bad('entries must be a list');
  if (o.entries.length > ENTRIES_MAX) bad(`more than ${ENTRIES_MAX} entries`);
  const m: Message = {
    type, from, to: self, term,
    logTerm: int(o.logTerm, 'logTerm', TERM_MAX),
    index: int(o.index, 'index', INDEX_MAX),
    entries: o.entries.map(entry),
    commit: int(o.commit, 'commit', INDEX_MAX),
    reject: bool(o.reject, 'reject'),
    rejectHint: int(o.rejectHint, 'rejectHint', INDEX_MAX),
    snapshot: null,
    context: bytes(o.context, 'context', CONTEXT_BYTES_MAX),
    force: bool(o.force, 'force'),
    voterDurable: int(o.voterDurable, 'voterDurable', INDEX_MAX),
  };
  if (type === 'snap') m.snapshot = snapshot(o.snapshot);
  else if (o.snapshot !== null) bad(`${type} must not carry a snapshot`);
  if (m.entries.length > 0 && type !== 'app' && type !== 'prop') bad(`${type} must not carry entries`);
  if (type === 'app') {
    if (m.logTerm > term) bad('app logTerm is above the message term');
    let prevTerm = m.logTerm;
    m.entries.forEach((e, i) => {
      if (e.index !== m.index + 1 + i) bad(`entries[${i}].index ${e.index} does not follow ${m.index + i}`);
      if (e.term < prevTerm || e.term > term) bad(`entries[${i}].term ${e.term} is outside ${prevTerm}..${term}`);
      prevTerm = e.term;
    });
  }
  if (type === 'prop') {
    m.entries.forEach((e, i) => {
      if (e.type !== 'normal') bad(`entries[${i}]: configuration changes are not forwarded`);
      if (e.index !== 0 || e.term !== 0) bad(`entries[${i}] of a proposal must carry index and term 0`);
    });
    if (m.entries.length === 0) bad('prop carries no entries');
  }
  return m;
}
