import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompactedError, LogUnavailableError } from './errors.js';
import { MemoryStorage, bootstrapSnapshot } from './storage.js';
import { storageContract } from './storage.contract.js';
import type { Entry } from './types.js';

storageContract({
  name: 'MemoryStorage',
  create: async (f) => {
    const s = new MemoryStorage();
    s.applySnapshot(f.snapshot);
    s.append(f.entries);
    s.setHardState(f.hardState);
    return { storage: s, cleanup: async () => {} };
  },
});

const ent = (index: number, term: number, data = `e${index}`): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(data) });

describe('MemoryStorage writes', () => {
  it('append replaces a conflicting tail and skips entries covered by the snapshot', () => {
    const s = MemoryStorage.bootstrapped({ voters: ['a'], learners: [], arbiters: [] });
    s.append([ent(2, 1), ent(3, 1), ent(4, 1)]);
    s.append([ent(3, 2), ent(4, 2)]);
    assert.deepEqual(s.entries(2, 5, 1 << 20).map((e) => `${e.index}/${e.term}`), ['2/1', '3/2', '4/2']);
    s.append([ent(1, 1), ent(2, 1)]); // 1 is the snapshot's; 2 matches
    assert.equal(s.lastIndex(), 2, 'appending at 2 truncates after it');
    assert.throws(() => s.append([ent(9, 2)]), LogUnavailableError, 'a gap is refused');
  });

  it('createSnapshot + compact drop the prefix; term stays known at the compaction point', () => {
    const s = MemoryStorage.bootstrapped({ voters: ['a'], learners: [], arbiters: [] });
    s.append([ent(2, 1), ent(3, 1), ent(4, 2)]);
    s.createSnapshot(3, { voters: ['a'], learners: [], arbiters: [] }, new Uint8Array([1]));
    s.compact(3);
    assert.equal(s.firstIndex(), 4);
    assert.equal(s.term(3), 1);
    assert.throws(() => s.entries(3, 4, 100), CompactedError);
    assert.equal(s.snapshot().meta.index, 3);
  });

  it('trimPayloads keeps index, term and conf entries, and reports the floor', () => {
    const s = MemoryStorage.bootstrapped({ voters: ['a'], learners: [], arbiters: ['w'] });
    s.append([ent(2, 1, 'xx'), { index: 3, term: 1, type: 'conf', data: new Uint8Array([4, 0, 1, 98]) }, ent(4, 1, 'yyy')]);
    assert.equal(s.payloadBytes(), 5);
    s.trimPayloads(3);
    assert.equal(s.payloadFloor(), 3);
    assert.equal(s.payloadBytes(), 3);
    assert.deepEqual(s.entries(2, 5, 1 << 20).map((e) => [e.index, e.term, e.type, e.data.length]), [[2, 1, 'normal', 0], [3, 1, 'conf', 4], [4, 1, 'normal', 3]]);
  });

  it('bootstrapSnapshot is index 1, term 1 with the membership', () => {
    const snap = bootstrapSnapshot({ voters: ['x'], learners: [], arbiters: [] });
    assert.deepEqual(snap.meta, { index: 1, term: 1, membership: { voters: ['x'], learners: [], arbiters: [] } });
  });
});
