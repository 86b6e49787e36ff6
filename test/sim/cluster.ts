/**
 * Deterministic cluster simulator for the raft core.
 *
 * N members share a simulated network (drop, delay, reorder, duplicate, symmetric and
 * asymmetric partitions); members crash and restart from their durable state (writes not
 * fsynced when a Ready said mustSync=false are lost); a random client workload proposes,
 * reads and changes membership. Every run is fully determined by its seed.
 *
 * Invariants are checked as the run goes, on every Ready a member produces:
 *   - election safety: at most one leader per term;
 *   - log matching: one (index, term) always names the same entry with the same predecessor;
 *   - leader completeness: a new leader holds every entry any member has applied;
 *   - state-machine safety: every member's state after applying index i is the same;
 *   - linearizable reads: a ReadIndex is at least every index applied before it was asked;
 *   - arbiters: never apply data, and lead only a hand-off: at most one entry of their own
 *     term, the empty no-op.
 * Then the faults heal, and liveness is checked: a voter leads and commits within a bound.
 */
import {
  MemoryStorage, ProposalDroppedError, RawNode, createRng, type ConfChange, type Entry, type Membership,
  type Message, type RaftMutation, type Ready, type Rng, InvalidConfChangeError,
} from '../../src/raft/index.js';

export type Scenario = 'basic' | 'membership' | 'arbiter';

export interface SimOptions {
  seed: number;
  /** Default: derived from the seed. */
  scenario?: Scenario;
  mutation?: RaftMutation;
  /** Test-only driver bug: `skipSync` never fsyncs, so a crash loses what was acknowledged. */
  driverBug?: 'skipSync';
  /** Ticks of the faulty phase. Default: 300..600 from the seed. */
  faultTicks?: number;
  /** Tick budget for liveness after healing. */
  livenessTicksMax?: number;
  /** Called with a line per notable event (replay/debugging). */
  trace?: (line: string) => void;
}

export interface SimStats {
  ticks: number;
  elections: number;
  commits: number;
  reads: number;
  crashes: number;
  snapshotsSent: number;
  confChanges: number;
  arbiterLeaderships: number;
  /** Arbiter entries verified to have had their payload dropped after every voter had them. */
  arbiterTrimmedChecked: number;
  /** Members lost for good (with their disk). */
  lost: number;
}

export interface SimResult {
  seed: number;
  scenario: Scenario;
  ok: boolean;
  violation?: string;
  tick: number;
  stats: SimStats;
}

export class SimViolation extends Error {}

const enc = new TextEncoder();
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;

function fnv(h: number, data: Uint8Array): number {
  let x = h >>> 0;
  for (let i = 0; i < data.length; i++) { x ^= data[i]!; x = Math.imul(x, 16777619) >>> 0; }
  return x;
}
function mixEntry(h: number, e: Entry): number {
  let x = fnv(h ^ 0x9e3779b9, enc.encode(`${e.index}:${e.type}:`));
  return fnv(x, e.data);
}
function encodeState(index: number, hash: number): Uint8Array { return enc.encode(`${index}:${hash}`); }
function decodeState(data: Uint8Array, fallbackIndex: number): { index: number; hash: number } {
  if (data.length === 0) return { index: fallbackIndex, hash: 0 };
  const [i, h] = new TextDecoder().decode(data).split(':');
  return { index: Number(i), hash: Number(h) };
}

type Op =
  | { k: 'snap'; s: Ready['snapshot'] }
  | { k: 'ents'; e: Entry[] }
  | { k: 'hs'; h: NonNullable<Ready['hardState']> }
  | { k: 'compact'; i: number }
  | { k: 'createSnap'; i: number; m: Membership; d: Uint8Array }
  | { k: 'trim'; i: number };

function applyOp(s: MemoryStorage, op: Op): void {
  switch (op.k) {
    case 'snap': s.applySnapshot(op.s!); break;
    case 'ents': s.append(op.e); break;
    case 'hs': s.setHardState(op.h); break;
    case 'compact': s.compact(Math.min(op.i, s.snapshot().meta.index, s.lastIndex())); break;
    case 'createSnap': if (op.i <= s.lastIndex() && op.i >= s.firstIndex() - 1) s.createSnapshot(op.i, op.m, op.d); break;
    case 'trim': s.trimPayloads(op.i); break;
  }
}

interface SimNode {
  id: string;
  arbiter: boolean;
  raw: RawNode | null;
  disk: MemoryStorage;
  mem: MemoryStorage;
  pending: Op[];
  sm: { index: number; hash: number };
  restartAt: number;
  lost: boolean;
  leaderTermSeen: number;
}

interface InFlight { at: number; seq: number; m: Message }

export class Simulation {
  readonly seed: number;
  readonly scenario: Scenario;
  private readonly rng: Rng;
  private readonly o: SimOptions;
  nodes = new Map<string, SimNode>();
  private ids: string[] = [];
  tickNow = 0;
  private net: InFlight[] = [];
  private seq = 0;
  private blocked = new Set<string>();
  private dropPct = 0;
  private dupPct = 0;
  private delayMax = 1;
  private faulty = true;
  private preVote = true;
  private checkQuorum = true;
  private lease = false;
  private proposals = 0;
  private readsIssued = new Map<string, number>();
  // Invariant state.
  private leaders = new Map<number, string>();
  private entryIds = new Map<string, { prev: number; hash: number }>();
  private appliedHash = new Map<number, number>();
  private committedTerm = new Map<number, number>();
  private maxApplied = 1;
  private arbiterTermEntries = new Map<number, number>();
  stats: SimStats = { ticks: 0, elections: 0, commits: 0, reads: 0, crashes: 0, snapshotsSent: 0, confChanges: 0, arbiterLeaderships: 0, arbiterTrimmedChecked: 0, lost: 0 };
  private liveMarker: string | null = null;
  private liveApplied = false;

  constructor(o: SimOptions) {
    this.o = o;
    this.seed = o.seed;
    this.rng = createRng(o.seed ^ 0x5bd1e995);
    const scenarios: Scenario[] = ['basic', 'basic', 'membership', 'arbiter'];
    this.scenario = o.scenario ?? scenarios[o.seed % 4]!;
    this.setup();
  }

  private r(n: number): number { return this.rng.nextInt(n); }
  private pct(p: number): boolean { return this.rng.nextInt(1000) < p * 10; }
  private trace(s: string): void { this.o.trace?.(`[t${this.tickNow}] ${s}`); }
  private fail(s: string): never { throw new SimViolation(`${s} (tick ${this.tickNow})`); }

  private setup(): void {
    let initial: Membership;
    let spare: string[] = [];
    if (this.scenario === 'basic') {
      const n = this.r(2) === 0 ? 3 : 5;
      this.ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
      initial = { voters: [...this.ids], learners: [], arbiters: [] };
      this.preVote = this.r(4) !== 0;
      this.checkQuorum = this.r(4) !== 0;
      this.lease = this.checkQuorum && this.r(3) === 0;
    } else if (this.scenario === 'membership') {
      this.ids = ['n1', 'n2', 'n3', 'n4', 'n5', 'a1'];
      initial = { voters: ['n1', 'n2', 'n3'], learners: [], arbiters: [] };
      spare = ['n4', 'n5', 'a1'];
    } else {
      this.ids = ['n1', 'n2', 'a1'];
      initial = { voters: ['n1', 'n2'], learners: [], arbiters: ['a1'] };
    }
    this.dropPct = [0, 1, 5, 10, 20][this.r(5)]!;
    this.dupPct = [0, 1, 5][this.r(3)]!;
    this.delayMax = 1 + this.r(8);
    for (const id of this.ids) {
      const disk = spare.includes(id) ? new MemoryStorage() : MemoryStorage.bootstrapped(initial);
      const node: SimNode = {
        id, arbiter: id.startsWith('a'), raw: null, disk, mem: disk.clone(), pending: [],
        sm: { index: 1, hash: 0 }, restartAt: -1, lost: false, leaderTermSeen: 0,
      };
      this.nodes.set(id, node);
      this.start(node);
    }
    this.appliedHash.set(1, 0);
    this.trace(`setup scenario=${this.scenario} nodes=${this.ids.join(',')} drop=${this.dropPct}% dup=${this.dupPct}% delayMax=${this.delayMax} preVote=${this.preVote} checkQuorum=${this.checkQuorum} lease=${this.lease}`);
  }

  private start(n: SimNode): void {
    n.mem = n.disk.clone();
    n.pending = [];
    const snap = n.mem.snapshot();
    n.sm = n.arbiter ? { index: snap.meta.index, hash: 0 } : decodeState(snap.data, snap.meta.index);
    n.raw = new RawNode({
      id: n.id, storage: n.mem, applied: n.arbiter ? undefined : n.sm.index, rng: createRng((this.seed * 7919 + n.id.charCodeAt(0) * 31 + Number(n.id.slice(1))) | 0),
      electionTimeoutTicks: ELECTION_TICKS, heartbeatTicks: HEARTBEAT_TICKS,
      maxSizePerMsgBytes: 256, maxInflightMsgs: 4, maxInflightBytes: 2048,
      preVote: this.preVote, checkQuorum: this.checkQuorum, compactionRetainEntries: 4,
      readOnlyOption: this.lease ? 'lease' : 'safe',
      testMutation: this.o.mutation,
    });
  }

  private crash(n: SimNode, restartIn: number): void {
    this.trace(`crash ${n.id} (restart in ${restartIn})`);
    n.raw = null;
    n.pending = [];
    n.restartAt = this.tickNow + restartIn;
    this.stats.crashes++;
  }

  // ------------------------------------------------------------ network

  private send(m: Message): void {
    if (this.blocked.has(`${m.from}>${m.to}`)) return;
    if (this.faulty && this.pct(this.dropPct)) return;
    const copies = this.faulty && this.pct(this.dupPct) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      // Mostly short delays; now and then a long stall (longer than an election timeout).
      const delay = !this.faulty ? this.r(2) : this.pct(2) ? ELECTION_TICKS + this.r(3 * ELECTION_TICKS) : this.r(this.delayMax + 1);
      this.net.push({ at: this.tickNow + delay, seq: this.seq++, m });
    }
    if (m.type === 'snap') this.stats.snapshotsSent++;
  }

  private deliverDue(): void {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const f of this.net) (f.at <= this.tickNow ? due : later).push(f);
    this.net = later;
    // Reorder: a seeded shuffle of everything due this tick.
    for (let i = due.length - 1; i > 0; i--) {
      const j = this.r(i + 1);
      [due[i], due[j]] = [due[j]!, due[i]!];
    }
    for (const f of due) {
      const n = this.nodes.get(f.m.to);
      if (!n || !n.raw || n.lost) continue;
      if (this.blocked.has(`${f.m.from}>${f.m.to}`)) continue;
      n.raw.step(f.m);
      this.process(n);
    }
  }

  // ------------------------------------------------------------ the driver loop and checks

  private sync(n: SimNode): void {
    for (const op of n.pending) applyOp(n.disk, op);
    n.pending = [];
  }

  private write(n: SimNode, op: Op): void {
    applyOp(n.mem, op);
    n.pending.push(op);
  }

  process(n: SimNode): void {
    let guard = 1000;
    while (n.raw && n.raw.hasReady()) {
      if (guard-- === 0) this.fail(`${n.id}: Ready loop did not settle`);
      const raw = n.raw;
      const rd = raw.ready();
      this.checkReady(n, rd);
      if (rd.snapshot) this.write(n, { k: 'snap', s: rd.snapshot });
      if (rd.entries.length > 0) this.write(n, { k: 'ents', e: rd.entries });
      if (rd.hardState) this.write(n, { k: 'hs', h: rd.hardState });
      if (rd.mustSync && this.o.driverBug !== 'skipSync') this.sync(n);
      for (const m of rd.messages) this.send(m);
      if (rd.snapshot && !n.arbiter) {
        const st = decodeState(rd.snapshot.data, rd.snapshot.meta.index);
        if (st.index !== rd.snapshot.meta.index) this.fail(`${n.id}: snapshot data index ${st.index} != meta ${rd.snapshot.meta.index}`);
        this.checkApplied(n, st.index, st.hash);
        n.sm = st;
      }
      for (const e of rd.committedEntries) this.apply(n, e);
      for (const rs of rd.readStates) this.checkRead(n, rs.index, rs.context);
      if (rd.compactTo > 0) this.write(n, { k: 'compact', i: rd.compactTo });
      if (rd.arbiterTrimTo > 0) {
        if (!n.arbiter) this.fail(`${n.id}: arbiterTrimTo on a non-arbiter`);
        this.write(n, { k: 'trim', i: rd.arbiterTrimTo });
      }
      raw.advance();
      // The application snapshots every few entries (meta-only on arbiters).
      const applied = raw.applied;
      if (applied - n.mem.snapshot().meta.index >= 12 && applied <= n.mem.lastIndex()) {
        const data = n.arbiter ? new Uint8Array(0) : encodeState(n.sm.index, n.sm.hash);
        if (!n.arbiter && n.sm.index !== applied) this.fail(`${n.id}: sm index ${n.sm.index} != applied ${applied}`);
        this.write(n, { k: 'createSnap', i: applied, m: raw.membershipAt(applied), d: data });
        raw.snapshotCreated(applied);
      }
    }
  }

  private checkReady(n: SimNode, rd: Ready): void {
    const raw = n.raw!;
    if (raw.role === 'leader' && n.leaderTermSeen !== raw.term) {
      n.leaderTermSeen = raw.term;
      const prev = this.leaders.get(raw.term);
      if (prev !== undefined && prev !== n.id) this.fail(`election safety: ${prev} and ${n.id} both lead term ${raw.term}`);
      this.leaders.set(raw.term, n.id);
      this.stats.elections++;
      if (n.arbiter) this.stats.arbiterLeaderships++;
      this.trace(`${n.id} leads term ${raw.term} (last ${raw.lastIndex})`);
      // Leader completeness: every applied (committed) entry is in the new leader's log.
      const first = raw.firstIndex;
      for (const [i, t] of this.committedTerm) {
        if (i < first) continue;
        const lt = raw.termAt(i);
        if (lt !== t) this.fail(`leader completeness: ${n.id} (term ${raw.term}) has term ${lt} at committed index ${i}, expected ${t}`);
      }
      if (raw.lastIndex < this.maxApplied) this.fail(`leader completeness: ${n.id} last index ${raw.lastIndex} < applied ${this.maxApplied}`);
    }
    for (const e of rd.entries) {
      const key = `${e.index}:${e.term}`;
      const prev = raw.termAt(e.index - 1);
      const h = fnv(2166136261, e.data) ^ (e.type === 'conf' ? 1 : 0);
      const seen = this.entryIds.get(key);
      if (!seen) this.entryIds.set(key, { prev, hash: h });
      else if (seen.hash !== h || (prev !== 0 && seen.prev !== 0 && seen.prev !== prev)) {
        this.fail(`log matching: ${n.id} entry ${key} differs (prev ${prev} vs ${seen.prev}, hash ${h} vs ${seen.hash})`);
      }
      if (n.arbiter && e.term === raw.term && raw.role === 'leader') {
        const c = (this.arbiterTermEntries.get(e.term) ?? 0) + 1;
        this.arbiterTermEntries.set(e.term, c);
        if (c > 1 || e.type !== 'normal' || e.data.length !== 0) this.fail(`arbiter ${n.id} appended a non-no-op entry ${key} as leader`);
      }
    }
  }

  private checkApplied(n: SimNode, index: number, hash: number): void {
    const h = this.appliedHash.get(index);
    if (h === undefined) this.appliedHash.set(index, hash);
    else if (h !== hash) this.fail(`state-machine safety: ${n.id} state at index ${index} is ${hash}, others have ${h}`);
  }

  private apply(n: SimNode, e: Entry): void {
    const t = this.committedTerm.get(e.index);
    if (t === undefined) { this.committedTerm.set(e.index, e.term); this.stats.commits++; }
    else if (t !== e.term) this.fail(`state-machine safety: ${n.id} applied (${e.index}, term ${e.term}); another member applied term ${t}`);
    if (e.index > this.maxApplied) this.maxApplied = e.index;
    if (n.arbiter) return;
    if (e.index !== n.sm.index + 1) this.fail(`${n.id}: applied ${e.index} after ${n.sm.index}`);
    n.sm = { index: e.index, hash: mixEntry(n.sm.hash, e) };
    this.checkApplied(n, e.index, n.sm.hash);
    if (this.liveMarker !== null && e.type === 'normal' && new TextDecoder().decode(e.data) === this.liveMarker) this.liveApplied = true;
  }

  private checkRead(n: SimNode, index: number, ctx: Uint8Array): void {
    if (n.arbiter) this.fail(`arbiter ${n.id} got a read state`);
    const key = new TextDecoder().decode(ctx);
    const min = this.readsIssued.get(key);
    if (min === undefined) return; // a duplicate (the network may duplicate responses)
    if (index < min) this.fail(`linearizable read: ${n.id} read ${key} at index ${index} < ${min} applied before it was asked`);
    this.stats.reads++;
  }

  // ------------------------------------------------------------ workload and faults

  private live(): SimNode[] { return [...this.nodes.values()].filter((n) => n.raw && !n.lost); }
  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.live()) if (n.raw!.role === 'leader' && (!best || n.raw!.term > best.raw!.term)) best = n;
    return best;
  }

  private workload(): void {
    const live = this.live();
    if (live.length === 0) return;
    if (this.pct(30)) {
      const n = live[this.r(live.length)]!;
      const data = enc.encode(`p${this.seed}-${this.proposals++}`);
      try { n.raw!.propose(data); this.process(n); } catch (err) { if (!(err instanceof ProposalDroppedError)) throw err; }
    }
    if (this.pct(this.lease ? 25 : 5)) {
      const n = live[this.r(live.length)]!;
      if (n.arbiter) return; // arbiters never serve reads (readIndex throws there)
      const key = `r${this.proposals++}`;
      this.readsIssued.set(key, this.maxApplied);
      try { n.raw!.readIndex(enc.encode(key)); this.process(n); } catch (err) { if (!(err instanceof ProposalDroppedError)) throw err; }
    }
    if (this.scenario === 'membership' && this.pct(3)) this.confChange();
    if (this.faulty && this.scenario !== 'membership' && this.pct(1)) {
      const l = this.leader();
      const voters = l?.raw!.membership.voters.filter((v) => v !== l.id) ?? [];
      if (l && voters.length > 0) { try { l.raw!.transferLeadership(voters[this.r(voters.length)]!); this.process(l); } catch { /* best effort */ } }
    }
  }

  private confChange(): void {
    const l = this.leader();
    if (!l) return;
    const m = l.raw!.membership;
    const options: ConfChange[] = [];
    const ctx = new Uint8Array(0);
    for (const id of this.ids) {
      const isArb = id.startsWith('a');
      if (m.voters.includes(id)) {
        if (m.voters.length > 1) { options.push({ type: 'remove', nodeId: id, context: ctx }); options.push({ type: 'addLearner', nodeId: id, context: ctx }); }
      } else if (m.learners.includes(id)) {
        options.push({ type: 'addVoter', nodeId: id, context: ctx });
        options.push({ type: 'remove', nodeId: id, context: ctx });
      } else if (m.arbiters.includes(id)) {
        options.push({ type: 'remove', nodeId: id, context: ctx });
      } else if (isArb) {
        options.push({ type: 'addArbiter', nodeId: id, context: ctx });
      } else {
        options.push({ type: 'addLearner', nodeId: id, context: ctx });
      }
    }
    const cc = options[this.r(options.length)]!;
    try {
      l.raw!.proposeConfChange(cc);
      this.stats.confChanges++;
      this.trace(`conf change ${cc.type} ${cc.nodeId} at ${l.id}`);
      this.process(l);
    } catch (err) {
      if (!(err instanceof ProposalDroppedError || err instanceof InvalidConfChangeError)) throw err;
    }
  }

  private faults(): void {
    const live = this.live();
    if (this.pct(0.6) && live.length > 0) {
      const n = live[this.r(live.length)]!;
      this.crash(n, 5 + this.r(80));
    }
    if (this.pct(1)) {
      if (this.r(2) === 0) {
        // Symmetric partition: a random split.
        const side = new Set(this.ids.filter(() => this.r(2) === 0));
        for (const a of this.ids) for (const b of this.ids) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}>${b}`);
        this.trace(`partition {${[...side].join(',')}} | rest`);
      } else {
        const a = this.ids[this.r(this.ids.length)]!;
        const b = this.ids[this.r(this.ids.length)]!;
        if (a !== b) { this.blocked.add(`${a}>${b}`); this.trace(`block ${a}>${b}`); }
      }
    }
    if (this.pct(2) && this.blocked.size > 0) { this.blocked.clear(); this.trace('partitions healed'); }
  }

  private restartDue(): void {
    for (const n of this.nodes.values()) {
      if (!n.raw && !n.lost && n.restartAt >= 0 && this.tickNow >= n.restartAt) {
        this.trace(`restart ${n.id}`);
        this.start(n);
        n.restartAt = -1;
      }
    }
  }

  /** Arbiter scenario: isolate one voter while the other leads, then lose the leader for good. */
  private arbiterLoss(phaseTick: number, faultTicks: number): void {
    if (this.scenario !== 'arbiter') return;
    const mode = this.seed % 3; // 0: lose nobody; 1: lag-then-lose the leader; 2: lose a random member
    if (mode === 1 && phaseTick === Math.floor(faultTicks / 2)) {
      const l = this.leader();
      const other = l && !l.arbiter ? (l.id === 'n1' ? 'n2' : 'n1') : 'n2';
      for (const x of this.ids) if (x !== other) { this.blocked.add(`${x}>${other}`); this.blocked.add(`${other}>${x}`); }
      this.trace(`isolate ${other}`);
    }
    if (phaseTick === faultTicks - 20) {
      let victim: SimNode | undefined;
      if (mode === 1) victim = this.leader() ?? this.nodes.get('n1');
      else if (mode === 2) victim = this.nodes.get(this.ids[this.r(3)]!);
      if (victim) {
        this.trace(`lose ${victim.id} permanently (with its disk)`);
        victim.lost = true;
        this.stats.lost++;
        victim.raw = null;
        this.blocked.clear();
      }
    }
  }

  private tickAll(): void {
    for (const n of this.live()) {
      n.raw!.tick();
      this.process(n);
    }
  }

  /** Runs the whole scenario; throws SimViolation on the first broken invariant. */
  run(): void {
    const faultTicks = this.o.faultTicks ?? 300 + this.r(300);
    for (let t = 0; t < faultTicks; t++) {
      this.tickNow++;
      this.faults();
      this.arbiterLoss(t, faultTicks);
      this.restartDue();
      this.workload();
      this.tickAll();
      this.deliverDue();
    }
    // Heal: restart every crashed member, remove partitions, a calm network.
    this.faulty = false;
    this.blocked.clear();
    for (const n of this.nodes.values()) if (!n.raw && !n.lost) { n.restartAt = this.tickNow; }
    this.restartDue();
    this.trace('healed');
    const livenessMax = this.o.livenessTicksMax ?? 40 * ELECTION_TICKS;
    const healedAt = this.tickNow;
    let markerTerm = -1;
    while (!this.liveApplied) {
      if (this.tickNow - healedAt > livenessMax) {
        const l = this.leader();
        this.fail(`liveness: no voter committed a proposal within ${livenessMax} ticks of healing (leader ${l ? `${l.id}@${l.raw!.term}` : 'none'})`);
      }
      this.tickNow++;
      const l = this.leader();
      if (l && !l.arbiter && l.raw!.term !== markerTerm) {
        this.liveMarker = `live-${this.seed}-${l.raw!.term}`;
        try { l.raw!.propose(enc.encode(this.liveMarker)); markerTerm = l.raw!.term; this.process(l); } catch (err) { if (!(err instanceof ProposalDroppedError)) throw err; }
      }
      this.tickAll();
      this.deliverDue();
    }
    // Quiesce, then check the arbiter dropped what every voter holds.
    for (let i = 0; i < 5 * ELECTION_TICKS; i++) { this.tickNow++; this.tickAll(); this.deliverDue(); }
    this.checkArbiterTrim();
    this.stats.ticks = this.tickNow;
  }

  private checkArbiterTrim(): void {
    const l = this.leader();
    if (!l) return;
    const m = l.raw!.membership;
    if (m.voters.some((v) => { const n = this.nodes.get(v); return !n || n.lost || !n.raw; })) return; // a voter is gone: the arbiter must keep entries
    for (const a of m.arbiters) {
      const n = this.nodes.get(a);
      if (!n || !n.raw || n.lost) continue;
      const commit = n.raw.commitIndex;
      if (commit < l.raw!.commitIndex) continue;
      for (let i = n.mem.firstIndex(); i <= commit; i++) {
        const [e] = n.mem.entries(i, i + 1, 1 << 20);
        if (e && e.type === 'normal' && e.data.length > 0) this.fail(`arbiter ${a} still holds the payload of entry ${i} (commit ${commit}) though every voter has it`);
        if (e && e.type === 'normal') this.stats.arbiterTrimmedChecked++;
      }
    }
  }

  result(): { leader: string | undefined } { return { leader: this.leader()?.id }; }
}

/** Runs one seed; never throws for invariant violations (they are in the result). */
export function runSim(o: SimOptions): SimResult {
  const sim = new Simulation(o);
  try {
    sim.run();
    return { seed: o.seed, scenario: sim.scenario, ok: true, tick: sim.tickNow, stats: sim.stats };
  } catch (err) {
    if (err instanceof SimViolation) return { seed: o.seed, scenario: sim.scenario, ok: false, violation: err.message, tick: sim.tickNow, stats: sim.stats };
    return { seed: o.seed, scenario: sim.scenario, ok: false, violation: `crash: ${err instanceof Error ? err.stack ?? err.message : String(err)}`, tick: sim.tickNow, stats: sim.stats };
  }
}
