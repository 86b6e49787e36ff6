/**
 * Encoding and application of single-server configuration changes.
 *
 * Encoding (the `data` of a `conf` entry), big-endian:
 * ```
 *  +--------+-------------+-----------+------------------+
 *  | type u8| idLen u16   | id (utf8) | context (rest)   |
 *  +--------+-------------+-----------+------------------+
 *  type: 1 addVoter, 2 addLearner, 3 addArbiter, 4 remove, 5 update
 * ```
 */
import { InvalidConfChangeError } from './errors.js';
import type { ConfChange, ConfChangeType, Membership, NodeId } from './types.js';
import { cloneMembership, suffrageOf } from './types.js';

const TYPE_CODES: Record<ConfChangeType, number> = { addVoter: 1, addLearner: 2, addArbiter: 3, remove: 4, update: 5 };
const CODE_TYPES: ConfChangeType[] = ['addVoter', 'addVoter', 'addLearner', 'addArbiter', 'remove', 'update'];
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Maximum node id length in bytes. */
export const NODE_ID_BYTES_MAX = 255;

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const id = enc.encode(cc.nodeId);
  if (id.length === 0 || id.length > NODE_ID_BYTES_MAX) throw new InvalidConfChangeError(`node id must be 1..${NODE_ID_BYTES_MAX} bytes`);
  const out = new Uint8Array(3 + id.length + cc.context.length);
  out[0] = TYPE_CODES[cc.type];
  out[1] = id.length >> 8;
  out[2] = id.length & 0xff;
  out.set(id, 3);
  out.set(cc.context, 3 + id.length);
  return out;
}

/** Decodes a conf entry's data. Throws InvalidConfChangeError on malformed input. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.length < 3) throw new InvalidConfChangeError('truncated encoding');
  const code = data[0]!;
  const idLen = (data[1]! << 8) | data[2]!;
  if (code < 1 || code > 5 || 3 + idLen > data.length || idLen === 0) throw new InvalidConfChangeError('malformed encoding');
  return {
    type: CODE_TYPES[code]!,
    nodeId: dec.decode(data.subarray(3, 3 + idLen)),
    context: data.slice(3 + idLen),
  };
}

function without(list: NodeId[], id: NodeId): NodeId[] { return list.filter((x) => x !== id); }
function withId(list: NodeId[], id: NodeId): NodeId[] { return [...list, id].sort(); }

/**
 * Returns the membership after `cc`, or throws InvalidConfChangeError. The rules keep every
 * change single-server (the voting set changes by at most one member) and keep at least one
 * voter in the voting set.
 */
export function applyConfChange(m: Membership, cc: ConfChange): Membership {
  const cur = suffrageOf(m, cc.nodeId);
  const next = cloneMembership(m);
  switch (cc.type) {
    case 'addVoter':
      if (cur === 'voter') throw new InvalidConfChangeError(`${cc.nodeId} is already a voter`);
      if (cur === 'arbiter') throw new InvalidConfChangeError(`${cc.nodeId} is an arbiter; remove it first`);
      next.learners = without(next.learners, cc.nodeId);
      next.voters = withId(next.voters, cc.nodeId);
      break;
    case 'addLearner':
      if (cur === 'learner') throw new InvalidConfChangeError(`${cc.nodeId} is already a learner`);
      if (cur === 'arbiter') throw new InvalidConfChangeError(`${cc.nodeId} is an arbiter; remove it first`);
      next.voters = without(next.voters, cc.nodeId);
      next.learners = withId(next.learners, cc.nodeId);
      break;
    case 'addArbiter':
      if (cur !== undefined) throw new InvalidConfChangeError(`${cc.nodeId} is already a ${cur}; remove it first`);
      next.arbiters = withId(next.arbiters, cc.nodeId);
      break;
    case 'update':
      // The member keeps its suffrage; only its context (the node layer's addresses) changes.
      if (cur === undefined) throw new InvalidConfChangeError(`${cc.nodeId} is not a member`);
      return next;
    case 'remove':
      if (cur === undefined) throw new InvalidConfChangeError(`${cc.nodeId} is not a member`);
      next.voters = without(next.voters, cc.nodeId);
      next.learners = without(next.learners, cc.nodeId);
      next.arbiters = without(next.arbiters, cc.nodeId);
      break;
  }
  if (next.voters.length === 0) throw new InvalidConfChangeError('the change would leave no voter');
  return next;
}

/** Like applyConfChange, but returns `m` unchanged for an invalid change (followers must be total). */
export function applyConfChangeLenient(m: Membership, data: Uint8Array): Membership {
  try { return applyConfChange(m, decodeConfChange(data)); } catch { return m; }
}
