import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LmdbRaftLog, type LogRecord } from './raft-log-store.js';

const rec = (index: number, term: number, s = `e${index}`): LogRecord => ({ index, term, data: new TextEncoder().encode(s) });
const txt = (r: LogRecord) => new TextDecoder().decode(r.data);

function withLog(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conure-raftlog-'));
    try { await fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
}

describe('LmdbRaftLog', () => {
  it('starts empty', withLog(async (dir) => {
    const log = new LmdbRaftLog({ dir });
    assert.equal(log.firstIndex(), 1);
    assert.equal(log.lastIndex(), 0);
    assert.equal(log.term(0), 0);
    assert.equal(log.hardState(), undefined);
    await log.close();
  }));

  it('appends, replaces a conflicting suffix, and persists across reopen', withLog(async (dir) => {
    const log = new LmdbRaftLog({ dir });
    await log.persist({ hardState: new Uint8Array([1]), entries: [rec(1, 1), rec(2, 1), rec(3, 1), rec(4, 2)] });
    await log.persist({ entries: [rec(3, 3, 'x3')] });
    assert.equal(log.lastIndex(), 3);
    assert.deepEqual(log.entries(1, 10).map((r) => [r.index, r.term, txt(r)]), [[1, 1, 'e1'], [2, 1, 'e2'], [3, 3, 'x3']]);
    await assert.rejects(log.persist({ entries: [rec(6, 3)] }), /ends at 3/);
    await assert.rejects(log.persist({ entries: [rec(4, 3), rec(6, 3)] }), /not contiguous/);
    await log.sync();
    await log.close();
    const again = new LmdbRaftLog({ dir });
    assert.equal(again.lastIndex(), 3);
    assert.equal(again.term(3), 3);
    assert.deepEqual([...again.hardState()!], [1]);
    await again.close();
  }));

  it('limits entries by bytes but always returns at least one', withLog(async (dir) => {
    const log = new LmdbRaftLog({ dir });
    await log.persist({ entries: [rec(1, 1, 'aaaa'), rec(2, 1, 'bbbb'), rec(3, 1, 'cccc')] });
    assert.equal(log.entries(1, 4, 1).length, 1);
    assert.equal(log.entries(1, 4, 8).length, 2);
    assert.equal(log.entries(2, 3).length, 1);
    await log.close();
  }));

  it('stages a snapshot state with its mark and hard state until it is dropped', withLog(async (dir) => {
    let log = new LmdbRaftLog({ dir });
    const state = new TextEncoder().encode('state at 7');
    await log.persist({ hardState: new Uint8Array([7]), snapshot: { index: 7, term: 2, meta: new Uint8Array(0) }, snapshotState: state });
    await log.close();
    log = new LmdbRaftLog({ dir });
    assert.deepEqual(log.stagedSnapshot(), state, 'staged durably with the mark');
    assert.equal(log.snapshot().index, 7);
    assert.deepEqual(log.hardState(), new Uint8Array([7]));
    await log.dropStagedSnapshot();
    assert.equal(log.stagedSnapshot(), undefined);
    await log.close();
  }));

  it('installs a snapshot mark, compacting covered entries and keeping an agreeing tail', withLog(async (dir) => {
    const log = new LmdbRaftLog({ dir });
    await log.persist({ entries: Array.from({ length: 10 }, (_, i) => rec(i + 1, 1)) });
    await log.persist({ snapshot: { index: 6, term: 1, meta: new Uint8Array([9]) } });
    assert.equal(log.firstIndex(), 7);
    assert.equal(log.lastIndex(), 10);
    assert.equal(log.term(6), 1);
    assert.equal(log.term(5), undefined);
    assert.throws(() => log.entries(5, 8), { code: 'compacted' });
    // A snapshot that disagrees with the log replaces it entirely.
    await log.persist({ snapshot: { index: 8, term: 4, meta: new Uint8Array() } });
    assert.equal(log.firstIndex(), 9);
    assert.equal(log.lastIndex(), 8);
    await log.sync(); await log.close();
    const again = new LmdbRaftLog({ dir });
    assert.deepEqual([again.firstIndex(), again.lastIndex(), again.snapshot().term], [9, 8, 4]);
    await again.close();
  }));

  it('trims payloads for arbiters, keeping index, term and kept entries', withLog(async (dir) => {
    const log = new LmdbRaftLog({ dir });
    await log.persist({ entries: [rec(1, 1, 'conf'), rec(2, 1, 'data'), rec(3, 1, 'data'), rec(4, 1, 'data')] });
    assert.equal(log.trimPayloads(3, (d) => new TextDecoder().decode(d) === 'conf'), 2);
    assert.deepEqual(log.entries(1, 5).map((r) => [r.index, r.term, txt(r)]), [[1, 1, 'conf'], [2, 1, ''], [3, 1, ''], [4, 1, 'data']]);
    assert.equal(log.trimmedTo(), 3);
    assert.equal(log.trimPayloads(3, () => false), 0);
    await log.close();
  }));

  it('matches an in-memory model under random appends and snapshots (property)', withLog(async (dir) => {
    const log = new LmdbRaftLog({ dir });
    let model: LogRecord[] = []; let snapIndex = 0;
    await fc.assert(fc.asyncProperty(fc.array(fc.oneof(
      fc.record({ kind: fc.constant('append' as const), back: fc.nat(3), n: fc.integer({ min: 1, max: 4 }), term: fc.integer({ min: 1, max: 9 }) }),
      fc.record({ kind: fc.constant('snap' as const), back: fc.nat(5), n: fc.constant(0), term: fc.constant(0) }),
    ), { maxLength: 25 }), async (ops) => {
      for (const op of ops) {
        const last = model.length ? model.at(-1)!.index : snapIndex;
        if (op.kind === 'append') {
          const at = Math.max(snapIndex + 1, last + 1 - op.back);
          const es = Array.from({ length: op.n }, (_, i) => rec(at + i, op.term));
          await log.persist({ entries: es });
          model = [...model.filter((r) => r.index < at), ...es];
        } else if (last - op.back > snapIndex) {
          const idx = last - op.back;
          await log.persist({ snapshot: { index: idx, term: model.find((r) => r.index === idx)!.term, meta: new Uint8Array() } });
          snapIndex = idx;
          model = model.filter((r) => r.index > idx);
        }
        assert.equal(log.lastIndex(), model.length ? model.at(-1)!.index : snapIndex);
        assert.equal(log.firstIndex(), snapIndex + 1);
        assert.deepEqual(log.entries(snapIndex + 1, Infinity).map((r) => [r.index, r.term]), model.map((r) => [r.index, r.term]));
      }
    }), { numRuns: 30 });
    await log.close();
  }));
});
