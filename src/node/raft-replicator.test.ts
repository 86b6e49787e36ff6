/**
 * The raft driver with real LMDB and loopback TCP: a member that installs a snapshot and stops
 * at once (a crash at that point) must start again from what it persisted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { unpack } from 'msgpackr';
import type { HardState } from '../raft/index.js';
import { LmdbRaftLog, LmdbStateStore } from '../storage/index.js';
import type { Logger } from '../util/index.js';
import { RaftReplicator, writeBootstrapState, type RaftReplicatorOptions } from './raft-replicator.js';
import { writeClusterId } from './recovery.js';
import { TestStateMachine } from './test-state-machine.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function until(what: string, fn: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A member in this process: its state store, state machine and replicator, restartable on its dirs. */
class Member {
  readonly dir = mkdtempSync(join(tmpdir(), 'conure-replicator-'));
  store!: LmdbStateStore;
  sm!: TestStateMachine;
  r: RaftReplicator | undefined;
  http: Server | undefined;
  constructor(readonly id: string, readonly raftPort: number, readonly httpPort: number) { dirs.push(this.dir); }

  get raft(): string { return `127.0.0.1:${this.raftPort}`; }
  get httpAddress(): string { return `127.0.0.1:${this.httpPort}`; }

  /** Opens the state store and starts the replicator; serves `GET /raft/snapshot` as conured does. */
  async start(extra: Partial<RaftReplicatorOptions> = {}): Promise<RaftReplicator> {
    this.openStore();
    const r = await RaftReplicator.start({
      id: this.id, role: 'voter', dataDir: join(this.dir, 'raft'), raftListen: { host: '127.0.0.1', port: this.raftPort },
      advertiseRaft: this.raft, advertiseHttp: this.httpAddress, stateMachine: this.sm, bootstrap: false,
      tickMs: 20, snapshotEntries: 5, ...extra,
    });
    this.r = r;
    this.http = createServer((_req, res) => {
      const snap = r.exportSnapshot();
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-conure-snapshot-index': String(snap.index) });
      res.end(Buffer.from(snap.data));
    });
    await new Promise<void>((ok) => this.http!.listen(this.httpPort, '127.0.0.1', ok));
    return r;
  }

  openStore(): void {
    this.store = new LmdbStateStore({ dir: join(this.dir, 'state') });
    this.sm = new TestStateMachine(this.store);
  }

  async stop(): Promise<void> {
    await new Promise((ok) => (this.http ? this.http.close(ok) : ok(undefined)));
    this.http = undefined;
    await this.r?.close();
    this.r = undefined;
    await this.store.close();
  }
}

async function member(id: string): Promise<Member> { return new Member(id, await freePort(), await freePort()); }

/** A logger that ends the member's driver (as a crash would) when `event` is logged. */
function crashingAt(event: string, crashed: { at?: string }): Logger {
  const quiet = () => undefined;
  return {
    info: (_obj: unknown, msg?: string) => {
      if (msg === event && !crashed.at) { crashed.at = event; throw new Error(`simulated crash at ${event}`); }
    },
    warn: quiet, debug: quiet, error: quiet, fatal: quiet, trace: quiet,
  } as unknown as Logger;
}

/** A leader with `keys` written and a snapshot taken. */
async function leaderWithKeys(keys: string[]): Promise<Member> {
  const a = await member('a');
  await a.start({ bootstrap: true });
  await until('a leads', () => a.r!.status().isLeader);
  for (const k of keys) await a.r!.propose(TestStateMachine.command(k, `v-${k}`));
  await until('a took a snapshot', () => (a.r!.stats().snapshot_index as number) >= 5);
  return a;
}

const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);

/**
 * Runs `scenario` with a leader `a` holding `keys` and a new member `b` (not started); then `b`
 * must have every key and apply a new write. Both are stopped at the end.
 */
async function withLeaderAndJoiner(scenario: (a: Member, b: Member) => Promise<void>): Promise<void> {
  const a = await leaderWithKeys(keys);
  const b = await member('b');
  try {
    await scenario(a, b);
    await until('b has every key', () => keys.every((k) => b.sm.read(k) === `v-${k}`));
    await a.r!.propose(TestStateMachine.command('later', 'x'));
    await until('b applies new writes', () => b.sm.read('later') === 'x');
  } finally {
    await b.stop().catch(() => undefined);
    await a.stop();
  }
}

describe('RaftReplicator.addMember', { timeout: 30_000 }, () => {
  it('refuses a member id that peers would refuse in a conf entry (it would stall replication), changing nothing', async () => {
    const a = await member('a');
    await a.start({ bootstrap: true });
    try {
      await until('a leads', () => a.r!.status().isLeader);
      const before = a.r!.stats().last_log_index;
      await assert.rejects(a.r!.addMember({ id: '127.0.0.1:7999', address: '127.0.0.1:7999', suffrage: 'learner' }), /member id "127\.0\.0\.1:7999" must be/);
      assert.deepEqual(a.r!.members().map((m) => m.id), ['a']);
      assert.equal(a.r!.stats().last_log_index, before, 'nothing proposed');
    } finally {
      await a.stop();
    }
  });
});

describe('RaftReplicator and snapshots', { timeout: 60_000 }, () => {
  it('a member stopped right after installing a snapshot starts again and has every key', async () => {
    await withLeaderAndJoiner(async (a, b) => {
      const crashed: { at?: string } = {};
      let fatal: unknown;
      await b.start({ logger: crashingAt('snapshot_installed', crashed), onFatal: (err) => { fatal = err; } });
      await a.r!.addMember({ id: 'b', address: b.raft, httpAddress: b.httpAddress, suffrage: 'learner' });
      await until('b installed the snapshot', () => crashed.at !== undefined && fatal !== undefined);
      await b.stop();
      // What it left on disk: the persisted commit covers everything the state holds.
      const log = new LmdbRaftLog({ dir: join(b.dir, 'raft') });
      const commit = (unpack(log.hardState()!) as HardState).commit;
      await log.close();
      b.openStore();
      const applied = b.sm.appliedIndex();
      await b.store.close();
      assert.ok(applied > 1 && commit >= applied, `persisted commit ${commit} covers applied ${applied}`);

      await b.start(); // before the fix: "applied N is beyond commit M"
    });
  });

  it('a member that stopped after persisting a snapshot but before restoring it restores it on start', async () => {
    await withLeaderAndJoiner(async (a, b) => {
      let fatal: unknown;
      await b.start({ onFatal: (err) => { fatal = err; } });
      // The state machine fails to restore (the process dies there), after raft has persisted the snapshot.
      b.sm.restoreState = () => Promise.reject(new Error('simulated crash before the state is restored'));
      await a.r!.addMember({ id: 'b', address: b.raft, httpAddress: b.httpAddress, suffrage: 'learner' });
      await until('b failed restoring', () => fatal !== undefined);
      assert.match(String((fatal as Error).message), /simulated crash/);
      await b.stop();

      await b.start();
      assert.ok(keys.every((k) => b.sm.read(k) === `v-${k}`), 'the persisted snapshot was restored before raft started');
    });
  });

  it('starts a member whose state is ahead of its persisted commit (the on-disk state of the old bug)', async () => {
    await withLeaderAndJoiner(async (a, b) => {
      await a.r!.addMember({ id: 'b', address: b.raft, httpAddress: b.httpAddress, suffrage: 'learner' });
      // What the old driver left: the leader's state (fetched over HTTP) restored at its applied
      // index, while the raft log holds only the snapshot raft announced (index 1) and commit 1.
      const log = new LmdbRaftLog({ dir: join(b.dir, 'raft') });
      await writeBootstrapState(log, 'a', a.raft, a.httpAddress);
      writeClusterId(log, String(a.r!.stats().cluster_id)); // b had adopted a's cluster id
      await log.close();
      b.openStore();
      const state = a.sm.exportState();
      await b.sm.restoreState(state.index, state.data);
      await b.store.close();

      await b.start(); // before the fix: "applied N is beyond commit 1"
    });
  });
});
