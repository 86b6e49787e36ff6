/**
 * Nemeses: fault injectors that act on a FaultCluster on a schedule.
 *
 * A nemesis has one fault at a time: `inject` starts it (kill a member, pause one, cut links)
 * and returns what it did; `heal` undoes whatever is in force. The scheduler alternates quiet
 * and fault windows of random lengths until its deadline or its fault count, then heals; each
 * start and stop is written to nemesis.jsonl with the history's clock, so the report can lay
 * fault windows over the operations.
 *
 * Nemeses that need a replicated cluster declare it (`needs`); the runner skips them, with the
 * reason in the summary, when the launcher cannot provide one.
 */
import type { FaultCluster, FaultNode } from '../cluster.js';
import type { HistoryRecorder } from '../history-recorder.js';
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
  /** Minimum members. */
  members: number;
  /** Needs raft replication (and proxies on the raft links). */
  replicated: boolean;
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
  needs: { members: 1, replicated: false },
  inject: async () => ({ action: 'nothing', targets: [] }),
  heal: async () => undefined,
};

/** kill -9 a random member; heal restarts it with the same flags and data. */
export function killNemesis(): Nemesis {
  let killed: FaultNode | undefined;
  return {
    name: 'kill',
    needs: { members: 1, replicated: false },
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
    needs: { members: 1, replicated: false },
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
    needs: { members: 3, replicated: true },
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

/**
 * Each fault picks one of `parts` at random among those the cluster supports (today kill and
 * pause; partitions too once the cluster is replicated): randomized mixed schedules for the long
 * profile. One fault at a time.
 */
export function mixedNemesis(parts: Nemesis[]): Nemesis {
  let current: Nemesis | undefined;
  return {
    name: 'mixed',
    needs: { members: 1, replicated: false },
    async inject(cluster, random) {
      const usable = parts.filter((n) => (!n.needs.replicated || cluster.replicated) && n.needs.members <= cluster.nodes.length);
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

/** Every nemesis by name. Those needing a replicated cluster are skipped until one exists. */
export function nemesisByName(name: string): Nemesis {
  switch (name) {
    case 'none': return noneNemesis;
    case 'kill': return killNemesis();
    case 'pause': return pauseNemesis();
    case 'mixed': return mixedNemesis(['kill', 'pause', 'partition-majority', 'partition-bridge', 'partition-one-way', 'isolate-leader'].map(nemesisByName));
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
export const NEMESIS_NAMES = ['none', 'kill', 'pause', 'mixed', 'partition-majority', 'partition-bridge', 'partition-one-way', 'isolate-leader'] as const;

/** Why a nemesis cannot run on this cluster shape, or undefined when it can. */
export function unsupportedReason(n: Nemesis, launcher: { name: string; sizeMax: number; replicated: boolean }): string | undefined {
  if (n.needs.replicated && !launcher.replicated) return `${n.name} needs a replicated cluster; the ${launcher.name} launcher has none yet (issue 4)`;
  if (n.needs.members > launcher.sizeMax) return `${n.name} needs ${n.needs.members} members; the ${launcher.name} launcher builds at most ${launcher.sizeMax}`;
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
