/**
 * Raft core throughput: proposals per second one leader core processes with MemoryStorage,
 * at batch sizes 1, 64 and 1024 (proposals handed to the core per Ready cycle). The leader is
 * a real RawNode in a 3-voter configuration; the two followers are simulated by answering
 * every append at once, so the figure is the cost of the core itself: appending, building
 * append messages, counting acknowledgements, committing and handing entries out to apply.
 * No I/O, no encoding. Prints figures only.
 */
import { MemoryStorage, RawNode, createRng, makeMessage, type Message } from '../src/raft/index.js';
import type { BenchModule, BenchRow } from './report.js';

function leader(): { raw: RawNode; storage: MemoryStorage } {
  const m = { voters: ['n1', 'n2', 'n3'], learners: [], arbiters: [] };
  const storage = MemoryStorage.bootstrapped(m);
  const raw = new RawNode({
    id: 'n1', storage, rng: createRng(1), maxSizePerMsgBytes: 1 << 20, maxInflightMsgs: 256,
    maxUncommittedEntriesBytes: 1 << 30, compactionRetainEntries: 0,
  });
  return { raw, storage };
}

/** One Ready cycle: persist, answer appends as both followers, apply; returns entries applied. */
function cycle(raw: RawNode, storage: MemoryStorage): number {
  let applied = 0;
  for (let guard = 0; guard < 16 && raw.hasReady(); guard++) {
    const rd = raw.ready();
    if (rd.snapshot) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    applied += rd.committedEntries.length;
    if (rd.compactTo) storage.compact(Math.min(rd.compactTo, storage.snapshot().meta.index));
    const replies: Message[] = [];
    for (const m of rd.messages) {
      if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'vote' || m.type === 'preVote') {
        const type = m.type === 'app' ? 'appResp' : m.type === 'heartbeat' ? 'heartbeatResp' : m.type === 'vote' ? 'voteResp' : 'preVoteResp';
        replies.push(makeMessage({ type, from: m.to, to: m.from, term: m.term, index: m.index + m.entries.length, context: m.context }));
      }
    }
    raw.advance();
    for (const r of replies) raw.step(r);
  }
  return applied;
}

const bench: BenchModule = async ({ quick }) => {
  const rows: BenchRow[] = [];
  const payload = new Uint8Array(100).fill(0x61);
  const seconds = quick ? 0.5 : 3;
  for (const batch of [1, 64, 1024]) {
    process.stderr.write(`[bench] raft core batch=${batch}\n`);
    const { raw, storage } = leader();
    raw.campaign();
    for (let i = 0; i < 10 && raw.role !== 'leader'; i++) cycle(raw, storage);
    cycle(raw, storage);
    const data = Array.from({ length: batch }, () => payload);
    let proposed = 0;
    let applied = 0;
    let cycles = 0;
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    while (performance.now() < deadline) {
      for (let k = 0; k < Math.max(1, Math.floor(256 / batch)); k++) {
        if (batch === 1) raw.propose(payload); else raw.proposeBatch(data);
        proposed += batch;
        applied += cycle(raw, storage);
        cycles++;
      }
      // Keep memory flat: snapshot and compact like a real node would.
      if (raw.applied - storage.firstIndex() > 50_000) {
        storage.createSnapshot(raw.applied, raw.membershipAt(raw.applied), new Uint8Array(0));
        raw.snapshotCreated(raw.applied);
        cycle(raw, storage);
      }
    }
    const secs = (performance.now() - t0) / 1000;
    rows.push({
      name: 'raft core leader, MemoryStorage, 3 voters',
      params: { batch, payload_bytes: payload.length },
      metrics: { proposals_per_s: proposed / secs, applied_per_s: applied / secs, ready_cycles_per_s: cycles / secs },
    });
  }
  return {
    suite: 'raft-core: proposals/s through one leader core (no I/O)',
    rows,
    notes: ['followers are simulated: every append is acknowledged at once by both', 'batch = proposals handed to the core per Ready cycle (proposeBatch for batch > 1)'],
  };
};
export default bench;
