/**
 * Contract suite for `Storage` implementations (the read side raft relies on). Run it against
 * every implementation (MemoryStorage here; the node layer's LMDB storage) with a factory that
 * builds a storage holding the given snapshot, entries and hard state.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompactedError, LogUnavailableError } from './errors.js';
import type { Storage } from './storage.js';
import type { Entry, HardState, Snapshot } from './types.js';

export interface StorageFixture {
  snapshot: Snapshot;
  /** Entries after the snapshot, consecutive from snapshot.meta.index + 1. */
  entries: Entry[];
  hardState: HardState;
}

export interface StorageContractOptions {
  name: string;
  create(f: StorageFixture): Promise<{ storage: Storage; cleanup(): Promise<void> }>;
}

const bytes = (s: string) => new TextEncoder().encode(s);

export function storageContract(o: StorageContractOptions): void {
  const fixture = (): StorageFixture => ({
    snapshot: { meta: { index: 10, term: 2, membership: { voters: ['a', 'b'], learners: ['c'], arbiters: ['w'] } }, data: bytes('state') },
    entries: [11, 12, 13, 14].map((index) => ({ index, term: index < 13 ? 2 : 3, type: 'normal' as const, data: bytes(`e${index}`) })),
    hardState: { term: 3, vote: 'a', commit: 12 },
  });

  describe(`Storage contract: ${o.name}`, () => {
    it('reports the initial state, bounds and terms', async () => {
      const { storage, cleanup } = await o.create(fixture());
      try {
        const st = storage.initialState();
        assert.deepEqual(st.hardState, { term: 3, vote: 'a', commit: 12 });
        assert.deepEqual(st.membership, { voters: ['a', 'b'], learners: ['c'], arbiters: ['w'] });
        assert.equal(storage.firstIndex(), 11);
        assert.equal(storage.lastIndex(), 14);
        assert.equal(storage.term(10), 2, 'the snapshot index has a term');
        assert.equal(storage.term(13), 3);
        assert.equal(storage.snapshot().meta.index, 10);
        assert.deepEqual(storage.snapshot().data, bytes('state'));
      } finally { await cleanup(); }
    });

    it('returns entries in [lo, hi) and honours maxBytes (at least one entry)', async () => {
      const { storage, cleanup } = await o.create(fixture());
      try {
        assert.deepEqual(storage.entries(11, 15, 1 << 20).map((e) => e.index), [11, 12, 13, 14]);
        assert.deepEqual(storage.entries(12, 14, 1 << 20).map((e) => e.index), [12, 13]);
        assert.deepEqual(storage.entries(11, 15, 0).map((e) => e.index), [11], 'one entry even over the limit');
        const e = storage.entries(13, 14, 1 << 20)[0]!;
        assert.deepEqual({ ...e, data: new TextDecoder().decode(e.data) }, { index: 13, term: 3, type: 'normal', data: 'e13' });
      } finally { await cleanup(); }
    });

    it('throws CompactedError below the first index and LogUnavailableError past the last', async () => {
      const { storage, cleanup } = await o.create(fixture());
      try {
        assert.throws(() => storage.entries(10, 12, 1 << 20), CompactedError);
        assert.throws(() => storage.term(9), CompactedError);
        assert.throws(() => storage.entries(12, 16, 1 << 20), LogUnavailableError);
        assert.throws(() => storage.term(15), LogUnavailableError);
      } finally { await cleanup(); }
    });

    it('an empty log after the snapshot has lastIndex = firstIndex - 1', async () => {
      const f = fixture();
      f.entries = [];
      const { storage, cleanup } = await o.create(f);
      try {
        assert.equal(storage.firstIndex(), 11);
        assert.equal(storage.lastIndex(), 10);
        assert.equal(storage.term(10), 2);
        assert.throws(() => storage.term(11), LogUnavailableError);
      } finally { await cleanup(); }
    });
  });
}
