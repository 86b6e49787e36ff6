/**
 * Nemeses: fault injectors that act on a FaultCluster on a schedule.
 *
 * A nemesis has one fault at a time: `inject` starts it (kill a member, pause one, cut links)
 * and returns what it did; `heal` undoes whatever is in force. The scheduler alternates quiet
 * and fault windows of random lengths until its deadline or its fault count, then heals; each
 * start and stop is written to nemesis.jsonl with the history's clock, so the report can lay
 * fault windows over the operations.
 *
 * Nemeses declare how many members they need (`needs`); the runner skips them, with the reason
 * in the summary, when the profile's cluster is smaller.
 */
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { raftConfig, tmpfsUnavailableReason, waitForConfig, type FaultCluster, type FaultNode } from '../cluster.js';
import type { HistoryRecorder } from '../history-recorder.js';
import { hostileNemesis } from './hostile.js';
import { NetworkNemesis } from './network.js';
import { bridge, isolate, majorityMinority, oneWay, type PartitionPlan } from './partition.js';

/** One line of nemesis.jsonl. */
export interface NemesisEvent {
  /** Same clock as the history (ns since the run started). */
  time: number;
  /** Wall clock, for matching node logs. */
  wall: string;
  nemesis: string;
  /** `start` of a fault window, `stop` (healed), or `info` (something worth knowing). */
  phase: 'start' | 'stop' | 'info';
  action: string;
  targets: string[];
  detail?: unknown;
}

/** What a nemesis needs from the cluster. */
export interface NemesisNeeds {
  /** Minimum members (two or more means raft replication, with proxies on the raft links). */
  members: number;
  /** A small file system per data directory: `required` (skipped without one) or `preferred` (used when possible). */
  disk?: 'required' | 'preferred';
}

/** Randomness for schedules and target choice: returns [0, 1). Seeded by the runner. */
export type Random = () => number;

/** A fault injector; see the module comment. */
export interface Nemesis {
  readonly name: string;
  readonly needs: NemesisNeeds;
  /** Starts one fault; resolves with the action and its targets once it is in force. */
  inject(cluster: FaultCluster, random: Random): Promise<{ action: string; targets: string[]; detail?: unknown }>;
  /** Ends the fault in force (if any); resolves once the cluster is whole again. */
  heal(cluster: FaultCluster): Promise<{ action: string; targets: string[] } | undefined>;
}

const pick = <T>(xs: readonly T[], random: Random): T => xs[Math.floor(random() * xs.length)]!;

/** Does nothing: the baseline every profile runs, so a failure can be told apart from a fault. */
export const noneNemesis: Nemesis = {
  name: 'none',
  needs: { members: 1 },
  inject: async () => ({ action: 'nothing', targets: [] }),
  heal: async () => undefined,
};

/** kill -9 a random member; heal restarts it with the same flags and data. */
export function killNemesis(): Nemesis {
  let killed: FaultNode | undefined;
  return {
    name: 'kill',
    needs: { members: 1 },
    async inject(cluster, random) {
      const node = pick(cluster.nodes.filter((n) => n.isRunning()), random);
      const pid = node.pid();
      await node.kill9();
      killed = node;
      return { action: 'kill -9', targets: [node.id], detail: { pid } };
    },
    async heal() {
      const node = killed;
      if (!node) return undefined;
      killed = undefined;
      await node.restart();
      return { action: 'restart', targets: [node.id] };
    },
  };
}

/** SIGSTOP a random member (a long GC-like stall); heal sends SIGCONT. */
export function pauseNemesis(): Nemesis {
  let paused: FaultNode | undefined;
  return {
    name: 'pause',
    needs: { members: 1 },
    async inject(cluster, random) {
      const node = pick(cluster.nodes.filter((n) => n.isRunning() && !n.isPaused()), random);
      node.pause();
      paused = node;
      return { action: 'SIGSTOP', targets: [node.id], detail: { pid: node.pid() } };
    },
    async heal() {
      const node = paused;
      if (!node) return undefined;
      paused = undefined;
      node.resume();
      return { action: 'SIGCONT', targets: [node.id] };
    },
  };
}

/** The member whose /status says it leads, if any answers within `timeoutMs`. */
export async function findLeader(cluster: FaultCluster, timeoutMs = 2000): Promise<FaultNode | undefined> {
  for (const n of cluster.nodes) {
    if (!n.isRunning() || n.isPaused()) continue;
    try {
      const res = await fetch(`${n.url}/status`, { signal: AbortSignal.timeout(timeoutMs) });
      if (res.ok && ((await res.json()) as { is_leader?: boolean }).is_leader) return n;
    } catch { /* down or slow: not the leader we can use */ }
  }
  return undefined;
}

type PlanMaker = (ids: string[], random: Random, cluster: FaultCluster) => Promise<PartitionPlan>;

/** A network partition nemesis over the cluster's raft link proxies. */
export function partitionNemesis(name: string, makePlan: PlanMaker): Nemesis {
  let net: NetworkNemesis | undefined;
  return {
    name,
    needs: { members: 3 },
    async inject(cluster, random) {
      net ??= new NetworkNemesis(cluster.proxies);
      const plan = await makePlan(cluster.nodes.map((n) => n.id), random, cluster);
      net.partition(plan);
      return { action: `partition ${plan.kind}`, targets: plan.groups.flat(), detail: { groups: plan.groups, cuts: plan.cuts.length } };
    },
    async heal() {
      if (!net?.current) return undefined;
      const targets = net.current.groups.flat();
      net.heal();
      return { action: 'heal network', targets };
    },
  };
}

/** Time a membership change may take to show in the configuration. */
const MEMBERSHIP_TIMEOUT_MS = 60_000;

/**
 * POSTs a membership or leadership request to the leader, following a change of leader:
 * bounded attempts, each with a timeout. Throws with the last answer when none succeeds.
 */
async function postToLeader(cluster: FaultCluster, path: string, body: unknown): Promise<unknown> {
  let last = 'no leader';
  for (let attempt = 0; attempt < 20; attempt++) {
    const leader = await findLeader(cluster);
    if (leader) {
      try {
        const headers: Record<string, string> = { 'content-type': 'application/json', ...(cluster.peerToken && { authorization: `Bearer ${cluster.peerToken}` }) };
        const res = await fetch(`${leader.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
        const text = await res.text();
        if (res.ok) return text ? JSON.parse(text) : undefined;
        last = `${res.status} ${text.slice(0, 200)}`;
        if (res.status >= 400 && res.status < 500 && res.status !== 409) break; // a bad request will not get better
      } catch (err) { last = (err as Error).message; }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`POST ${path} ${JSON.stringify(body)} failed: ${last}`);
}

/**
 * Membership changes under load. A fault removes a random member (a voter, possibly the leader,
 * or an arbiter) with `/remove`, kills it and wipes its disk; healing starts it again empty, so
 * it joins as a learner, is promoted once caught up (or re-added as an arbiter: an arbiter swap),
 * and the heal waits until the configuration is whole again. Never removes below 2 voters.
 */
export function membershipNemesis(): Nemesis {
  let removed: FaultNode | undefined;
  return {
    name: 'membership',
    needs: { members: 3 },
    async inject(cluster, random) {
      const voters = cluster.nodes.filter((n) => n.role === 'voter');
      const candidates = cluster.nodes.filter((n) => n.isRunning() && (n.role === 'arbiter' || voters.length > 2));
      const node = pick(candidates, random);
      const leader = (await raftConfig(cluster.nodes))?.leader;
      await postToLeader(cluster, '/remove', { ID: node.id });
      await waitForConfig(cluster.nodes, (servers) => !servers.some((s) => s.id === node.id), `${node.id} removed`, MEMBERSHIP_TIMEOUT_MS);
      await node.kill9();
      removed = node;
      return { action: node.role === 'arbiter' ? 'remove arbiter' : 'remove voter', targets: [node.id], detail: { wasLeader: leader === node.id } };
    },
    async heal(cluster) {
      const node = removed;
      if (!node) return undefined;
      removed = undefined;
      await node.restart({ wipe: true });
      await waitForConfig(cluster.nodes, (servers) => servers.some((s) => s.id === node.id && s.suffrage === node.role), `${node.id} back as ${node.role}`, MEMBERSHIP_TIMEOUT_MS);
      return { action: node.role === 'arbiter' ? 'add arbiter' : 'add learner, promoted', targets: [node.id] };
    },
  };
}

/** Leadership transfers (TimeoutNow, no clock involved) from the leader to a random running voter. */
export function transferNemesis(): Nemesis {
  return {
    name: 'transfer',
    needs: { members: 2 },
    async inject(cluster, random) {
      const leader = await findLeader(cluster);
      const to = pick(cluster.nodes.filter((n) => n.role === 'voter' && n.isRunning() && n !== leader), random);
      await postToLeader(cluster, '/leader/transfer', { ID: to.id });
      return { action: 'transfer leadership', targets: [to.id], detail: { from: leader?.id } };
    },
    heal: async () => undefined,
  };
}

/** Writes `file` until its file system is full; returns the bytes written. */
function fillDisk(file: string): number {
  const fd = openSync(file, 'w');
  let written = 0;
  try {
    for (const size of [1024 * 1024, 4096]) {
      const chunk = Buffer.alloc(size);
      for (let i = 0; i < 1_000_000; i++) {
        try { written += writeSync(fd, chunk); } catch { break; } // ENOSPC: next, smaller chunks
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

/**
 * A full disk: fills a random voter's data directory (its own tmpfs) with a ballast file. The
 * member's next log or state write fails; a member that cannot persist stops (as etcd does) rather
 * than acknowledge what it could not store. Healing deletes the ballast and restarts the member if
 * it stopped.
 */
export function diskFullNemesis(): Nemesis {
  let full: { node: FaultNode; ballast: string } | undefined;
  return {
    name: 'disk-full',
    needs: { members: 3, disk: 'required' },
    async inject(cluster, random) {
      if (!cluster.diskLimited) throw new Error('disk-full needs a cluster launched with diskBytes');
      const node = pick(cluster.nodes.filter((n) => n.isRunning() && n.role === 'voter'), random);
      const ballast = join(node.dataDir, 'fault-ballast');
      const bytes = fillDisk(ballast);
      full = { node, ballast };
      return { action: 'fill disk', targets: [node.id], detail: { ballastBytes: bytes } };
    },
    async heal() {
      if (!full) return undefined;
      const { node, ballast } = full;
      full = undefined;
      rmSync(ballast, { force: true });
      const crashed = !node.isRunning();
      await node.restart();
      return { action: crashed ? 'free disk, restart' : 'free disk', targets: [node.id] };
    },
  };
}

/**
 * Each fault picks one of `parts` at random among those the cluster supports: randomized mixed
 * schedules for the long profile. One fault at a time.
 */
export function mixedNemesis(parts: Nemesis[]): Nemesis {
  let current: Nemesis | undefined;
  return {
    name: 'mixed',
    needs: { members: 1, disk: 'preferred' },
    async inject(cluster, random) {
      const usable = parts.filter((n) => n.needs.members <= cluster.nodes.length && (n.needs.disk !== 'required' || cluster.diskLimited));
      current = pick(usable, random);
      const r = await current.inject(cluster, random);
      return { ...r, detail: { via: current.name, ...(r.detail !== undefined && { detail: r.detail }) } };
    },
    async heal(cluster) {
      const n = current;
      current = undefined;
      return n?.heal(cluster);
    },
  };
}

/** Every nemesis by name. */
export function nemesisByName(name: string): Nemesis {
  switch (name) {
    case 'none': return noneNemesis;
    case 'kill': return killNemesis();
    case 'pause': return pauseNemesis();
    case 'mixed': return mixedNemesis(NEMESIS_NAMES.filter((n) => n !== 'none' && n !== 'mixed').map(nemesisByName));
    case 'membership': return membershipNemesis();
    case 'transfer': return transferNemesis();
    case 'disk-full': return diskFullNemesis();
    case 'hostile': return hostileNemesis();
    case 'partition-majority': return partitionNemesis(name, async (ids, random) => majorityMinority(ids, random));
    case 'partition-bridge': return partitionNemesis(name, async (ids, random) => bridge(ids, random));
    case 'partition-one-way': return partitionNemesis(name, async (ids, random) => oneWay(ids, ids[Math.floor(random() * ids.length)]!));
    case 'isolate-leader': return partitionNemesis(name, async (ids, random, cluster) => {
      const leader = await findLeader(cluster);
      return isolate(ids, leader?.id ?? ids[Math.floor(random() * ids.length)]!);
    });
    default: throw new RangeError(`unknown nemesis ${JSON.stringify(name)}; known: ${NEMESIS_NAMES.join(', ')}`);
  }
}

/** Names accepted by `nemesisByName`. */
export const NEMESIS_NAMES = ['none', 'kill', 'pause', 'partition-majority', 'partition-bridge', 'partition-one-way', 'isolate-leader', 'membership', 'transfer', 'disk-full', 'hostile', 'mixed'] as const;

/** Why a nemesis cannot run on a cluster of `members`, or undefined when it can. */
export function unsupportedReason(n: Nemesis, members: number): string | undefined {
  if (n.needs.members > members) return `${n.name} needs ${n.needs.members} members; this profile's cluster has ${members}`;
  const noDisk = n.needs.disk === 'required' ? tmpfsUnavailableReason() : undefined;
  if (noDisk) return `${n.name} needs a small file system per member (run as root): ${noDisk}`;
  return undefined;
}

/** Schedule of one nemesis run. All bounds are hard. */
export interface ScheduleOptions {
  /** Stop injecting after this many ms (a fault in force at the deadline is healed). */
  durationMs: number;
  /** Quiet time between faults, ms: uniform in [min, max]. */
  quietMs: [number, number];
  /** How long a fault stays in force, ms: uniform in [min, max]. */
  faultMs: [number, number];
  /** Faults injected at most. */
  faultsMax: number;
}

/**
 * Runs the schedule: quiet, inject, hold, heal, repeat, until the deadline or the fault count.
 * Always heals before resolving, also when `signal` aborts. Returns the events it logged.
 */
export async function runNemesis(nemesis: Nemesis, cluster: FaultCluster, recorder: HistoryRecorder, opts: ScheduleOptions, random: Random, log: (e: NemesisEvent) => void, signal?: AbortSignal): Promise<NemesisEvent[]> {
  const events: NemesisEvent[] = [];
  const emit = (phase: NemesisEvent['phase'], action: string, targets: string[], detail?: unknown) => {
    const e: NemesisEvent = { time: recorder.now(), wall: new Date().toISOString(), nemesis: nemesis.name, phase, action, targets, ...(detail !== undefined && { detail }) };
    events.push(e);
    log(e);
  };
  const deadline = Date.now() + opts.durationMs;
  const between = ([lo, hi]: [number, number]) => lo + random() * (hi - lo);
  const sleepUntilOr = (ms: number) => new Promise<void>((resolve) => {
    const wait = Math.max(0, Math.min(ms, deadline - Date.now()));
    const t = setTimeout(done, wait);
    function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
  if (nemesis === noneNemesis) {
    await sleepUntilOr(opts.durationMs);
    return events;
  }
  for (let i = 0; i < opts.faultsMax && Date.now() < deadline && !signal?.aborted; i++) {
    await sleepUntilOr(between(opts.quietMs));
    if (Date.now() >= deadline || signal?.aborted) break;
    try {
      const r = await nemesis.inject(cluster, random);
      emit('start', r.action, r.targets, r.detail);
    } catch (err) {
      emit('info', 'inject failed', [], { error: (err as Error).message });
      continue;
    }
    await sleepUntilOr(between(opts.faultMs));
    const h = await nemesis.heal(cluster);
    if (h) emit('stop', h.action, h.targets);
  }
  const h = await nemesis.heal(cluster);
  if (h) emit('stop', h.action, h.targets);
  return events;
}
