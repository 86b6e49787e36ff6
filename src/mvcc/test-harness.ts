/**
 * Test-only composition of the MVCC stack: a MemoryStateStore or LmdbStateStore, the state
 * machine, a `LocalReplicator` test double, the lessor (with a manual clock), the watch hub and
 * the service. Not used in production code paths.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStateStore, MemoryStateStore, type StateStore } from '../storage/index.js';
import type { Member, NodeStatus, RaftStats, Replicator, StateMachine, Suffrage } from '../seams/index.js';
import { ConureError, InvalidArgumentError } from '../util/index.js';
import { memberIdOf } from './ids.js';
import { Lessor, type LeaseClock } from './lessor.js';
import { MvccService, type MvccLimits } from './mvcc-service.js';
import { MvccStateMachine, type MvccStateMachineOptions } from './mvcc-state-machine.js';
import { WatchHub, type WatchHubOptions } from './watch-hub.js';

/** A clock the test advances by hand. */
export class ManualClock implements LeaseClock {
  constructor(public now = 1_000_000) {}
  nowMs(): number { return this.now; }
  advance(ms: number): void { this.now += ms; }
}

/**
 * A single-member Replicator double: `propose` applies at applied+1 and resolves after sync;
 * membership changes are kept in memory (so the Cluster service can be exercised); `leader`
 * can be flipped to test leadership changes.
 */
export class LocalReplicator implements Replicator {
  leader = true;
  term = 1;
  private readonly memberList: Member[];
  private closed = false;

  constructor(private readonly sm: StateMachine, readonly id = 'node-1', address = '127.0.0.1:7001') {
    this.memberList = [{ id, address, httpAddress: '127.0.0.1:8081', suffrage: 'voter' }];
  }

  async propose(command: Uint8Array): Promise<unknown> {
    if (this.closed) throw new ConureError('closed', 'replicator is closed');
    const r = this.sm.apply(this.sm.appliedIndex() + 1, command);
    await this.sm.sync();
    return r;
  }

  async readBarrier(): Promise<void> {}

  status(): NodeStatus {
    const self = this.memberList[0]!;
    return { id: this.id, isLeader: this.leader, leader: this.leader ? self.address : '', leaderHttp: '', ready: this.leader };
  }

  members(): Member[] { return this.memberList.map((m) => ({ ...m })); }

  stats(): RaftStats {
    const a = this.sm.appliedIndex();
    return { state: this.leader ? 'leader' : 'follower', term: this.term, commit_index: a, applied_index: a, last_log_index: a, last_log_term: this.term, num_peers: this.memberList.length - 1, last_contact_ms: 0 };
  }

  async addMember(m: { id: string; address: string; httpAddress?: string; suffrage: Suffrage }): Promise<void> {
    const i = this.memberList.findIndex((x) => x.id === m.id);
    const entry: Member = { id: m.id, address: m.address, suffrage: m.suffrage };
    if (m.httpAddress) entry.httpAddress = m.httpAddress;
    if (i >= 0) this.memberList[i] = entry;
    else this.memberList.push(entry);
  }

  async removeMember(id: string): Promise<void> {
    const i = this.memberList.findIndex((x) => x.id === id);
    if (i < 0) throw new InvalidArgumentError(`no member ${id}`);
    this.memberList.splice(i, 1);
  }

  async promoteMember(id: string): Promise<void> {
    const m = this.memberList.find((x) => x.id === id);
    if (!m) throw new InvalidArgumentError(`no member ${id}`);
    m.suffrage = 'voter';
  }

  async transferLeadership(): Promise<void> {}
  async close(): Promise<void> { this.closed = true; }
}

export interface Stack {
  store: StateStore;
  sm: MvccStateMachine;
  replicator: LocalReplicator;
  clock: ManualClock;
  lessor: Lessor;
  hub: WatchHub;
  svc: MvccService;
  dir: string | undefined;
  close(): Promise<void>;
}

export interface StackOptions {
  /** Use LMDB in a temporary directory (or in `dir`) instead of memory. */
  lmdb?: boolean;
  dir?: string;
  sm?: MvccStateMachineOptions;
  hub?: WatchHubOptions;
  limits?: Partial<MvccLimits>;
  /** Use the real clock (for end-to-end runs) instead of a ManualClock. */
  realClock?: boolean;
  keepDir?: boolean;
}

export function createStack(opts: StackOptions = {}): Stack {
  const dir = opts.lmdb ? opts.dir ?? mkdtempSync(join(tmpdir(), 'conure-mvcc-')) : undefined;
  const store: StateStore = dir ? new LmdbStateStore({ dir }) : new MemoryStateStore();
  const sm = new MvccStateMachine(store, opts.sm);
  const replicator = new LocalReplicator(sm);
  const clock = new ManualClock();
  const lessor = new Lessor(opts.realClock ? { sm, replicator } : { sm, replicator, clock });
  lessor.tick();
  const hub = new WatchHub(sm, opts.hub);
  const svc = new MvccService({ replicator, sm, lessor, store, memberId: memberIdOf(replicator.id).toString(), limits: opts.limits ?? {} });
  return {
    store, sm, replicator, clock, lessor, hub, svc, dir,
    async close() {
      hub.close();
      lessor.stop();
      await replicator.close();
      await store.close();
      if (dir && !opts.keepDir && !opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
