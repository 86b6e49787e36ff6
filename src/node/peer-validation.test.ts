import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { pack, unpack } from 'msgpackr';
import { encodeConfChange, makeMessage, type Message } from '../raft/index.js';
import { TERM_MAX, validatePeerMessage } from './peer-validation.js';

/** What a message looks like after the wire: msgpack and back, as the transport delivers it. */
const wire = (m: unknown): unknown => unpack(pack(m));
const data = (s: string) => new TextEncoder().encode(s);

const valid: Message[] = [
  makeMessage({ type: 'app', from: 'a', to: 'b', term: 3, index: 5, logTerm: 2, commit: 4, entries: [
    { index: 6, term: 2, type: 'normal', data: data('x') },
    { index: 7, term: 3, type: 'conf', data: encodeConfChange({ type: 'addLearner', nodeId: 'c', context: data('{}') }) },
  ] }),
  makeMessage({ type: 'appResp', from: 'a', to: 'b', term: 3, index: 9, reject: true, rejectHint: 4, logTerm: 1 }),
  makeMessage({ type: 'heartbeat', from: 'a', to: 'b', term: 3, commit: 4, index: 1234, context: data('ctx'), voterDurable: 3 }),
  makeMessage({ type: 'vote', from: 'a', to: 'b', term: 4, index: 9, logTerm: 3, force: true }),
  makeMessage({ type: 'preVoteResp', from: 'a', to: 'b', term: 4, reject: true }),
  makeMessage({ type: 'prop', from: 'a', to: 'b', entries: [{ index: 0, term: 0, type: 'normal', data: data('cmd') }] }),
  makeMessage({ type: 'readIndex', from: 'a', to: 'b', context: data('a:1:2') }),
  makeMessage({ type: 'transferLeader', from: 'c', to: 'b' }),
  makeMessage({ type: 'timeoutNow', from: 'a', to: 'b', term: 4 }),
  makeMessage({ type: 'snap', from: 'a', to: 'b', term: 4, snapshot: { meta: { index: 100, term: 3, membership: { voters: ['a', 'b'], learners: [], arbiters: ['c'] } }, data: new Uint8Array(0) } }),
];

function rejects(m: unknown, why: RegExp, sender = 'a'): void {
  assert.throws(() => validatePeerMessage(wire(m), sender, 'b'), (e: Error & { code?: string }) => e.code === 'invalid_argument' && why.test(e.message), JSON.stringify(m, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
}

describe('validatePeerMessage', () => {
  it('accepts every well-formed message type after a msgpack round trip', () => {
    for (const m of valid) {
      const got = validatePeerMessage(wire(m), m.type === 'transferLeader' ? 'a' : m.from, 'b');
      assert.equal(got.type, m.type);
      assert.equal(got.term, m.term);
      assert.equal(got.entries.length, m.entries.length);
    }
  });

  it('refuses terms that are not safe, bounded, non-negative integers (finding 1 and 2)', () => {
    const hb = makeMessage({ type: 'heartbeat', from: 'a', to: 'b', term: 3 });
    rejects({ ...hb, term: Infinity }, /term must be an integer/);
    rejects({ ...hb, term: 2 ** 53 }, /term must be an integer/);
    rejects({ ...hb, term: TERM_MAX + 1 }, /term must be an integer/);
    rejects({ ...hb, term: -1 }, /term must be an integer/);
    rejects({ ...hb, term: 1.5 }, /term must be an integer/);
    rejects({ ...hb, term: NaN }, /term must be an integer/);
    rejects({ ...hb, term: '7' }, /term must be an integer/);
    rejects({ ...hb, term: 0 }, /must carry a term/);
    rejects({ ...hb, commit: 2 ** 60 }, /commit must be an integer/);
    rejects({ ...hb, index: -5 }, /index must be an integer/);
  });

  it('refuses forged identities and unknown shapes', () => {
    const hb = makeMessage({ type: 'heartbeat', from: 'a', to: 'b', term: 3 });
    rejects({ ...hb, from: 'mallory' }, /not the connection's sender/);
    rejects({ ...hb, to: 'c' }, /another member/);
    rejects({ ...hb, from: 'a b' }, /not a member id/, 'a b');
    rejects({ ...hb, type: 'evil' }, /unknown type/);
    rejects({ ...hb, context: 'text' }, /context must be bytes/);
    rejects({ ...hb, context: new Uint8Array(4096) }, /context exceeds/);
    rejects({ ...hb, reject: 1 }, /reject must be a boolean/);
    rejects({ ...hb, entries: {} }, /entries must be a list/);
    const { voterDurable: _v, ...missing } = hb;
    rejects(missing, /missing field voterDurable/);
    rejects([1, 2], /not an object/);
    rejects('heartbeat', /not an object/);
    rejects({ ...hb, snapshot: { meta: {} } }, /must not carry a snapshot/);
  });

  it('refuses entries that do not fit the log (finding 3)', () => {
    const app = makeMessage({ type: 'app', from: 'a', to: 'b', term: 3, index: 5, logTerm: 2 });
    const e = (index: number, term: number) => ({ index, term, type: 'normal', data: data('v') });
    rejects({ ...app, entries: [e(7, 3)] }, /does not follow/);
    rejects({ ...app, entries: [e(6, 3), e(6, 3)] }, /does not follow/);
    rejects({ ...app, entries: [e(6, 3), e(7, 2)] }, /outside/);
    rejects({ ...app, entries: [e(6, 4)] }, /outside/);
    rejects({ ...app, logTerm: 4 }, /logTerm is above/);
    rejects({ ...app, entries: [{ ...e(6, 3), type: 'weird' }] }, /normal or conf/);
    rejects({ ...app, entries: [{ ...e(6, 3), data: 'str' }] }, /data must be bytes/);
    rejects({ ...app, entries: [{ ...e(6, 3), type: 'conf', data: new Uint8Array([9, 0, 1, 65]) }] }, /malformed configuration change/);
    rejects({ ...app, entries: [{ ...e(6, 3), type: 'conf', data: encodeConfChange({ type: 'addVoter', nodeId: 'bad id', context: new Uint8Array(0) }) }] }, /invalid member id/);
    const hb = makeMessage({ type: 'heartbeat', from: 'a', to: 'b', term: 3 });
    rejects({ ...hb, entries: [e(1, 1)] }, /must not carry entries/);
  });

  it('refuses forwarded configuration changes and positioned proposals', () => {
    const prop = makeMessage({ type: 'prop', from: 'a', to: 'b' });
    rejects({ ...prop, entries: [{ index: 0, term: 0, type: 'conf', data: encodeConfChange({ type: 'addVoter', nodeId: 'mallory', context: new Uint8Array(0) }) }] }, /not forwarded/);
    rejects({ ...prop, entries: [{ index: 3, term: 0, type: 'normal', data: data('x') }] }, /index and term 0/);
    rejects({ ...prop, entries: [] }, /no entries/);
    rejects({ ...prop, term: 5, entries: [{ index: 0, term: 0, type: 'normal', data: data('x') }] }, /must carry term 0/);
  });

  it('refuses snapshots with a malformed membership', () => {
    const snap = (membership: unknown) => makeMessage({ type: 'snap', from: 'a', to: 'b', term: 4, snapshot: { meta: { index: 10, term: 3, membership: membership as never }, data: new Uint8Array(0) } });
    rejects(snap({ voters: [], learners: [], arbiters: [] }), /no voter/);
    rejects(snap({ voters: ['a', 'a'], learners: [], arbiters: [] }), /twice/);
    rejects(snap({ voters: ['a'], learners: ['a'], arbiters: [] }), /twice/);
    rejects(snap({ voters: ['a'], learners: 'b', arbiters: [] }), /list of at most/);
    rejects(snap(null), /membership must be an object/);
    rejects(makeMessage({ type: 'snap', from: 'a', to: 'b', term: 4 }), /no snapshot/);
  });

  it('never throws anything but InvalidArgumentError, whatever arrives (property)', () => {
    const anyValue = fc.anything({ withBigInt: true, withTypedArray: true, withNullPrototype: true, maxDepth: 3 });
    const mutated = fc.tuple(fc.constantFrom(...valid), fc.constantFrom('type', 'from', 'to', 'term', 'logTerm', 'index', 'entries', 'commit', 'reject', 'rejectHint', 'snapshot', 'context', 'force', 'voterDurable'), anyValue)
      .map(([m, k, v]) => ({ ...m, [k]: v }));
    fc.assert(fc.property(fc.oneof(anyValue, mutated), (raw) => {
      let wired: unknown;
      try { wired = wire(raw); } catch { return; } // msgpack cannot encode it: it cannot arrive either
      try {
        validatePeerMessage(wired, 'a', 'b');
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'invalid_argument', String(err));
      }
    }), { numRuns: 2000 });
  });
});
