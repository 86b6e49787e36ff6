import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MemoryStorage, type Entry } from '../raft/index.js';
import { LmdbRaftLog } from '../storage/index.js';
import { LmdbRaftStorage } from './lmdb-raft-storage.js';

const ent = (index: number, term: number, type: Entry['type'] = 'normal', s = `d${index}`): Entry => ({ index, term, type, data: new TextEncoder().encode(s) });

describe('LmdbRaftStorage', () => {
  it('agrees with MemoryStorage on entries, terms, bounds and errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conure-rs-'));
    try {
      const log = new LmdbRaftLog({ dir });
      const lmdb = new LmdbRaftStorage(log);
      const mem = MemoryStorage.bootstrapped({ voters: ['a'], learners: [], arbiters: [] });
      const boot = mem.snapshot();
      await lmdb.persist({ term: 1, vote: '', commit: 1 }, [], boot);
      const es = [ent(2, 1), ent(3, 1, 'conf'), ent(4, 2), ent(5, 2)];
      mem.append(es); await lmdb.persist({ term: 2, vote: 'a', commit: 3 }, es, undefined);
      for (const s of [mem, lmdb]) {
        assert.equal(s.firstIndex(), 2);
        assert.equal(s.lastIndex(), 5);
        assert.equal(s.term(1), 1);
        assert.throws(() => s.term(0), { code: 'compacted' });
        assert.throws(() => s.term(6), { code: 'unavailable' });
        assert.throws(() => s.entries(1, 3, Infinity), { code: 'compacted' });
        assert.throws(() => s.entries(2, 7, Infinity), { code: 'unavailable' });
      }
      assert.deepEqual(lmdb.entries(2, 6, Infinity), mem.entries(2, 6, Infinity).map((e) => ({ ...e, data: e.data })));
      assert.deepEqual(lmdb.initialState(), { hardState: { term: 2, vote: 'a', commit: 3 }, membership: { voters: ['a'], learners: [], arbiters: [] } });
      lmdb.markSnapshot(4, 2, { voters: ['a', 'b'], learners: [], arbiters: [] });
      assert.equal(lmdb.firstIndex(), 2, 'marking a snapshot keeps the entries');
      lmdb.compact(10);
      assert.equal(lmdb.firstIndex(), 5, 'compaction stops at the snapshot mark');
      assert.deepEqual(lmdb.snapshot().meta, { index: 4, term: 2, membership: { voters: ['a', 'b'], learners: [], arbiters: [] } });
      await lmdb.sync();
      await log.close();
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  it('trims normal payloads for arbiters but keeps conf entries whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conure-rs-'));
    try {
      const log = new LmdbRaftLog({ dir });
      const s = new LmdbRaftStorage(log);
      await s.persist(undefined, [ent(1, 1), ent(2, 1, 'conf', 'cc'), ent(3, 1), ent(4, 1)], undefined);
      assert.equal(s.trimPayloads(3), 2);
      assert.equal(s.payloadFloor(), 3);
      assert.deepEqual(s.entries(1, 5, Infinity).map((e) => [e.index, e.type, new TextDecoder().decode(e.data)]), [[1, 'normal', ''], [2, 'conf', 'cc'], [3, 'normal', ''], [4, 'normal', 'd4']]);
      await log.close();
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  it('never persists a term or index that is not a safe non-negative integer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conure-rs-'));
    try {
      const log = new LmdbRaftLog({ dir });
      const lmdb = new LmdbRaftStorage(log);
      await lmdb.persist({ term: 1, vote: '', commit: 1 }, [], MemoryStorage.bootstrapped({ voters: ['a'], learners: [], arbiters: [] }).snapshot());
      for (const term of [Infinity, NaN, 2 ** 53, -1, 1.5]) {
        await assert.rejects(lmdb.persist({ term, vote: '', commit: 1 }, [], undefined), /refusing to persist/);
        await assert.rejects(lmdb.persist(undefined, [ent(2, term)], undefined), /refusing to persist/);
      }
      await log.close();
      const reopened = new LmdbRaftLog({ dir });
      assert.equal(new LmdbRaftStorage(reopened).initialState().hardState.term, 1);
      await reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

