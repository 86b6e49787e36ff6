/**
 * Partition plans: which directed links to cut. Pure functions over member ids, so they are
 * unit-tested without a cluster and reused by the network nemesis once a cluster exists.
 *
 * A plan is a list of directed links `[from, to]`: the bytes `from` sends to `to` are dropped.
 * A symmetric partition between groups A and B cuts every a→b and b→a. The usual shapes:
 *
 *   majority/minority   {1,2,3} | {4,5}            every cross link, both ways
 *   bridge              {1,2} ─ 3 ─ {4,5}          cross links cut except those touching 3
 *   one-way             {1} ─x→ {2,3}              only 1→2, 1→3 (2,3 still reach 1)
 *   isolate(node)       {n} | rest                 used for leader isolation
 */

/** A directed link between two members; bytes from [0] to [1]. */
export type Link = readonly [from: string, to: string];

/** A named set of cuts, recorded in nemesis.jsonl. */
export interface PartitionPlan {
  kind: 'majority-minority' | 'bridge' | 'one-way' | 'isolate';
  /** The groups, for the report. */
  groups: string[][];
  cuts: Link[];
}

function cross(a: readonly string[], b: readonly string[], bothWays: boolean): Link[] {
  const out: Link[] = [];
  for (const x of a) for (const y of b) { out.push([x, y]); if (bothWays) out.push([y, x]); }
  return out;
}

function check(members: readonly string[], min: number): void {
  if (new Set(members).size !== members.length) throw new RangeError('member ids must be distinct');
  if (members.length < min) throw new RangeError(`this partition needs at least ${min} members, got ${members.length}`);
}

/** Deterministic shuffle by a caller-supplied random source in [0, 1). */
export function shuffled<T>(xs: readonly T[], random: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(random() * (i + 1)); [a[i], a[j]] = [a[j]!, a[i]!]; }
  return a;
}

/** A random minority (⌊(n-1)/2⌋ members, at least one) cut off from the majority, both ways. */
export function majorityMinority(members: readonly string[], random: () => number): PartitionPlan {
  check(members, 2);
  const s = shuffled(members, random);
  const minority = s.slice(0, Math.max(1, Math.floor((members.length - 1) / 2)));
  const majority = s.slice(minority.length);
  return { kind: 'majority-minority', groups: [majority, minority], cuts: cross(majority, minority, true) };
}

/** Two halves that can only talk through one bridge member (Jepsen's "bridge"). */
export function bridge(members: readonly string[], random: () => number): PartitionPlan {
  check(members, 3);
  const s = shuffled(members, random);
  const bridgeNode = s[0]!;
  const rest = s.slice(1);
  const a = rest.slice(0, Math.ceil(rest.length / 2));
  const b = rest.slice(a.length);
  return { kind: 'bridge', groups: [a, [bridgeNode], b], cuts: cross(a, b, true) };
}

/** `from` can no longer send to anyone else; everyone can still send to `from`. */
export function oneWay(members: readonly string[], from: string): PartitionPlan {
  check(members, 2);
  if (!members.includes(from)) throw new RangeError(`${from} is not a member`);
  const others = members.filter((m) => m !== from);
  return { kind: 'one-way', groups: [[from], others], cuts: cross([from], others, false) };
}

/** `node` cut off from every other member, both ways (leader isolation passes the leader). */
export function isolate(members: readonly string[], node: string): PartitionPlan {
  check(members, 2);
  if (!members.includes(node)) throw new RangeError(`${node} is not a member`);
  const others = members.filter((m) => m !== node);
  return { kind: 'isolate', groups: [[node], others], cuts: cross([node], others, true) };
}

/**
 * Whether `to` is reachable from `from` over links not cut (a directed path). Used by tests to
 * state plan properties, and by the runner to describe which members can still form a quorum.
 */
export function reachable(members: readonly string[], cuts: readonly Link[], from: string, to: string): boolean {
  const cut = new Set(cuts.map(([x, y]) => `${x}\u0000${y}`));
  const seen = new Set([from]);
  const todo = [from];
  while (todo.length > 0) {
    const x = todo.pop()!;
    if (x === to) return true;
    for (const y of members) if (!seen.has(y) && !cut.has(`${x}\u0000${y}`)) { seen.add(y); todo.push(y); }
  }
  return false;
}
