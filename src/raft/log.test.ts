import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RaftLog } from './log.js';
import { MemoryStorage } from './storage.js';
import type { Entry } from './types.js';

const e = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array([index]) });

function logWith(terms: number[]): RaftLog {
  const s = MemoryStorage.bootstrapped({ voters: ['a'], learners: [], arbiters: [] });
  s.append(terms.map((t, i) => e(i + 2, t)));
  return new RaftLog(s, 0);
}

describe('RaftLog', () => {
  it('maybeAppend: rejects a mismatched predecessor, skips duplicates, truncates conflicts', () => {
    const log = logWith([1, 1, 2]); // indexes 2..4
    assert.equal(log.maybeAppend(4, 1, 0, [e(5, 2)]), null, 'prev 4 has term 2, not 1');
    assert.deepEqual(log.maybeAppend(2, 1, 0, [e(3, 1), e(4, 2)]), { lastNew: 4, appendedFrom: 0 });
    assert.deepEqual(log.maybeAppend(2, 1, 3, [e(3, 1), e(4, 3), e(5, 3)]), { lastNew: 5, appendedFrom: 4 });
    assert.equal(log.term(4), 3);
    assert.equal(log.committed, 3);
  });

  it('findConflictByTerm returns the last index at or below a term', () => {
    const log = logWith([1, 1, 2, 2, 4]); // 2..6
    assert.equal(log.findConflictByTerm(6, 3), 5);
    assert.equal(log.findConflictByTerm(6, 1), 3);
    assert.equal(log.findConflictByTerm(6, 0), 1);
    assert.equal(log.findConflictByTerm(99, 9), 6, 'clamped to the last index');
  });

  it('isUpToDate compares last term first, then length (§5.4.1)', () => {
    const log = logWith([1, 2]); // last 3/2
    assert.equal(log.isUpToDate(3, 2), true);
    assert.equal(log.isUpToDate(2, 2), false);
    assert.equal(log.isUpToDate(1, 3), true);
    assert.equal(log.isUpToDate(9, 1), false);
  });

  it('unstable entries become stable only for the matching (index, term)', () => {
    const log = logWith([1]);
    log.append([e(3, 2), e(4, 2)]);
    log.stableTo(4, 1);
    assert.equal(log.unstableEntries.length, 2, 'term mismatch: still unstable');
    log.stableTo(3, 2);
    assert.deepEqual(log.unstableEntries.map((x) => x.index), [4]);
    assert.throws(() => { log.committed = 3; log.append([e(3, 5)]); }, /truncate committed/);
  });

  it('slice spans storage and the unstable tail and honours maxBytes', () => {
    const log = logWith([1, 1]);
    log.append([e(4, 2), e(5, 2)]);
    assert.deepEqual(log.slice(2, 6, 1 << 20).map((x) => x.index), [2, 3, 4, 5]);
    assert.deepEqual(log.slice(2, 6, 50).map((x) => x.index), [2, 3]);
    assert.deepEqual(log.slice(4, 6, 0).map((x) => x.index), [4]);
  });
});
