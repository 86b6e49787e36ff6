import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { applyConfChange, decodeConfChange, encodeConfChange } from './conf-change.js';
import { InvalidConfChangeError } from './errors.js';
import type { ConfChange, ConfChangeType, Membership } from './types.js';

const m0: Membership = { voters: ['a', 'b'], learners: ['l'], arbiters: ['w'] };
const cc = (type: ConfChangeType, nodeId: string): ConfChange => ({ type, nodeId, context: new Uint8Array(0) });

describe('conf changes', () => {
  it('encode/decode round-trips any change', () => {
    fc.assert(fc.property(
      fc.constantFrom<ConfChangeType>('addVoter', 'addLearner', 'addArbiter', 'remove', 'update'),
      fc.string({ minLength: 1, maxLength: 60 }), fc.uint8Array({ maxLength: 64 }),
      (type, nodeId, context) => {
        assert.deepEqual(decodeConfChange(encodeConfChange({ type, nodeId, context })), { type, nodeId, context });
      }));
  });

  it('rejects malformed encodings with a typed error', () => {
    for (const bad of [new Uint8Array([]), new Uint8Array([9, 0, 1, 97]), new Uint8Array([1, 0, 5, 97]), new Uint8Array([1, 0, 0])]) {
      assert.throws(() => decodeConfChange(bad), InvalidConfChangeError);
    }
    assert.throws(() => encodeConfChange(cc('addVoter', '')), InvalidConfChangeError);
  });

  it('applies single-server changes and keeps the lists sorted and disjoint', () => {
    assert.deepEqual(applyConfChange(m0, cc('addVoter', 'l')), { voters: ['a', 'b', 'l'], learners: [], arbiters: ['w'] });
    assert.deepEqual(applyConfChange(m0, cc('addLearner', 'a')), { voters: ['b'], learners: ['a', 'l'], arbiters: ['w'] });
    assert.deepEqual(applyConfChange(m0, cc('addArbiter', 'x')), { voters: ['a', 'b'], learners: ['l'], arbiters: ['w', 'x'] });
    assert.deepEqual(applyConfChange(m0, cc('remove', 'w')), { voters: ['a', 'b'], learners: ['l'], arbiters: [] });
    assert.deepEqual(m0, { voters: ['a', 'b'], learners: ['l'], arbiters: ['w'] }, 'input untouched');
  });

  it('refuses changes that are invalid or leave no voter', () => {
    assert.throws(() => applyConfChange(m0, cc('addVoter', 'a')), InvalidConfChangeError);
    assert.throws(() => applyConfChange(m0, cc('addVoter', 'w')), InvalidConfChangeError);
    assert.throws(() => applyConfChange(m0, cc('addArbiter', 'l')), InvalidConfChangeError);
    assert.throws(() => applyConfChange(m0, cc('remove', 'zz')), InvalidConfChangeError);
    const one: Membership = { voters: ['a'], learners: [], arbiters: ['w'] };
    assert.throws(() => applyConfChange(one, cc('remove', 'a')), /no voter/);
    assert.throws(() => applyConfChange(one, cc('addLearner', 'a')), /no voter/);
  });

  it('update keeps the membership and is refused for a non-member', () => {
    for (const id of ['a', 'l', 'w']) assert.deepEqual(applyConfChange(m0, cc('update', id)), m0);
    assert.throws(() => applyConfChange(m0, cc('update', 'ghost')), /not a member/);
    const enc = encodeConfChange({ type: 'update', nodeId: 'a', context: new Uint8Array([1, 2]) });
    assert.deepEqual(decodeConfChange(enc), { type: 'update', nodeId: 'a', context: new Uint8Array([1, 2]) });
  });
});
