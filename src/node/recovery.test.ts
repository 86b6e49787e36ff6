import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pack, unpack } from 'msgpackr';
import { decodeConfChange, encodeConfChange, RawNode, createRng, type ConfChange, type Entry } from '../raft/index.js';
import { LmdbRaftLog } from '../storage/index.js';
import { LmdbRaftStorage } from './lmdb-raft-storage.js';
import { CLUSTER_ID, forcedMarker, forceNewCluster, planRecovery, readClusterId, REGISTRY_KEY } from './recovery.js';
import { writeBootstrapState } from './raft-replicator.js';

const addr = (id: string) => pack({ raft: `${id}:2380`, http: `${id}:8081`, intent: 'voter' });
const conf = (index: number, term: number, cc: ConfChange): Entry => ({ index, term, type: 'conf', data: encodeConfChange(cc) });
const put = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(`w${index}`) });

/**
 * A 3-voter log as member `a` holds it: bootstrap at 1, b and c added (c as learner, then
 * promoted), an arbiter z, writes up to index 10 at term 3, commit persisted at 8.
 */
async function threeMemberLog(dir: string, opts: { learner?: string } = {}): Promise<LmdbRaftLog> {
  const log = new LmdbRaftLog({ dir });
  await writeBootstrapState(log, 'a', 'a:2380', 'a:8081');
  const entries: Entry[] = [
    conf(2, 1, { type: 'addVoter', nodeId: 'b', context: addr('b') }),
    conf(3, 1, { type: 'addLearner', nodeId: 'c', context: addr('c') }),
    conf(4, 2, { type: 'addVoter', nodeId: 'c', context: new Uint8Array(0) }),
    conf(5, 2, { type: 'addArbiter', nodeId: 'z', context: addr('z') }),
    ...(opts.learner ? [conf(6, 2, { type: 'addLearner', nodeId: opts.learner, context: new Uint8Array(0) })] : [put(6, 2)]),
    put(7, 3), put(8, 3), put(9, 3), put(10, 3),
  ];
  await new LmdbRaftStorage(log).persist({ term: 4, vote: 'b', commit: 8 }, entries, undefined);
  await log.sync();
  return log;
}

describe('quorum-loss recovery (force new cluster)', () => {
  it('keeps every entry, removes every other member, commits through its own entries, and gives a new cluster id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conure-recovery-'));
    try {
      const log = await threeMemberLog(dir);
      const before = readClusterId(log);
      assert.match(before ?? '', CLUSTER_ID, 'a bootstrapped log has a cluster id');
      const r = await forceNewCluster(log, { id: 'a', raft: 'a2:2380', http: 'a2:8081' });
      assert.deepEqual(r.removed, ['b', 'c', 'z']);
      assert.equal(r.lastIndex, 10);
      assert.equal(r.commit, 8);
      assert.equal(r.term, 5, 'a term above everything in the log and the hard state');
      assert.equal(r.index, 13);
      assert.notEqual(r.cluster, before);
      assert.equal(readClusterId(log), r.cluster);
      const storage = new LmdbRaftStorage(log);
      assert.deepEqual(storage.initialState().hardState, { term: 5, vote: 'a', commit: 13 });
      const tail = storage.entries(6, 14, Infinity);
      assert.deepEqual(tail.slice(0, 5).map((e) => [e.index, e.term, new TextDecoder().decode(e.data)]),
        [[6, 2, 'w6'], [7, 3, 'w7'], [8, 3, 'w8'], [9, 3, 'w9'], [10, 3, 'w10']], 'the uncommitted entries 9 and 10 are kept');
      assert.deepEqual(tail.slice(5).map((e) => [e.index, e.term, decodeConfChange(e.data).type, decodeConfChange(e.data).nodeId]),
        [[11, 5, 'remove', 'b'], [12, 5, 'remove', 'c'], [13, 5, 'remove', 'z']]);
      assert.deepEqual(Object.keys(unpack(log.getMeta(REGISTRY_KEY)!) as object), ['a']);
      assert.deepEqual(forcedMarker(log)?.cluster, r.cluster);

      // The real raft core, started on it, sees a one-voter configuration and commits it all.
      const raw = new RawNode({ id: 'a', storage, rng: createRng(1), electionTimeoutTicks: 10, heartbeatTicks: 1 });
      assert.deepEqual(raw.membership, { voters: ['a'], learners: [], arbiters: [] });
      raw.campaign();
      const rd = raw.ready();
      assert.equal(raw.status().role, 'leader', 'the sole voter elects itself');
      // 14: the new leader's own empty entry, at term 6.
      assert.deepEqual(rd.committedEntries.map((e) => e.index), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
      await log.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('makes a learner survivor a voter first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conure-recovery-'));
    try {
      const log = await threeMemberLog(dir, { learner: 'b' });
      const plan = planRecovery(log, 'b');
      assert.equal(plan.promoted, true);
      const r = await forceNewCluster(log, { id: 'b', raft: 'b:2380', http: 'b:8081' });
      const ccs = new LmdbRaftStorage(log).entries(11, r.index + 1, Infinity).map((e) => decodeConfChange(e.data));
      assert.deepEqual(ccs.map((c) => `${c.type} ${c.nodeId}`), ['addVoter b', 'remove a', 'remove c', 'remove z']);
      const raw = new RawNode({ id: 'b', storage: new LmdbRaftStorage(log), rng: createRng(1), electionTimeoutTicks: 10, heartbeatTicks: 1 });
      assert.deepEqual(raw.membership, { voters: ['b'], learners: [], arbiters: [] });
      await log.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses, changing nothing: an empty data directory, an arbiter, a member id not in the configuration', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conure-recovery-'));
    try {
      const empty = new LmdbRaftLog({ dir: join(dir, 'empty') });
      assert.throws(() => planRecovery(empty, 'a'), /holds no raft log/);
      await empty.close();
      const log = await threeMemberLog(join(dir, 'full'));
      const cluster = readClusterId(log);
      await assert.rejects(forceNewCluster(log, { id: 'z' }), /z is an arbiter: it holds no state/);
      await assert.rejects(forceNewCluster(log, { id: 'q' }), /q is not a member of the configuration/);
      assert.equal(log.lastIndex(), 10, 'nothing appended');
      assert.deepEqual(new LmdbRaftStorage(log).initialState().hardState, { term: 4, vote: 'b', commit: 8 });
      assert.equal(readClusterId(log), cluster);
      assert.equal(forcedMarker(log), undefined);
      await log.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
