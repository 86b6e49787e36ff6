/**
 * The network nemesis: applies partition plans to the proxies that carry raft links.
 *
 * Wiring (set up by a cluster launcher that supports per-peer addresses): member `from` dials
 * member `to` through `proxies.get(linkName(from, to))`. Bytes `from` → `to` therefore travel
 * either up that proxy, or down the proxy of the reverse link (when `to` dialed `from` and
 * answers on the same connection). Cutting a directed link cuts both, so the nemesis is
 * correct whichever side opens the connection.
 */
import type { FaultProxy, LinkFault } from '../proxy.js';
import type { Link, PartitionPlan } from './partition.js';

/** Key of the proxy through which `from` dials `to`. */
export function linkName(from: string, to: string): string { return `${from}->${to}`; }

/** Applies and heals partition plans on a set of link proxies. */
export class NetworkNemesis {
  private active: PartitionPlan | undefined;

  /** `proxies` maps `linkName(from, to)` to the proxy `from` dials to reach `to`. */
  constructor(private readonly proxies: ReadonlyMap<string, FaultProxy>) {}

  /** The partition in force, if any. */
  get current(): PartitionPlan | undefined { return this.active; }

  /** Cuts every link of the plan (healing any previous plan first). */
  partition(plan: PartitionPlan): void {
    if (this.active) this.heal();
    for (const link of plan.cuts) this.apply(link, { kind: 'drop' });
    const touched = new Set(plan.cuts.flatMap(([a, b]) => [linkName(a, b), linkName(b, a)]));
    for (const name of touched) this.proxies.get(name)?.resetConnections();
    this.active = plan;
  }

  /** Adds latency to every link (both directions); `ms` 0 removes it. Does not reset connections. */
  slow(ms: number): void {
    for (const p of this.proxies.values()) p.set('both', ms > 0 ? { kind: 'delay', ms } : { kind: 'pass' });
  }

  /** Restores every link. */
  heal(): void {
    for (const p of this.proxies.values()) p.restore();
    this.active = undefined;
  }

  private apply([from, to]: Link, fault: LinkFault): void {
    const out = this.proxies.get(linkName(from, to));
    const back = this.proxies.get(linkName(to, from));
    if (!out && !back) throw new RangeError(`no proxy carries ${from} -> ${to}`);
    out?.set('up', fault);
    back?.set('down', fault);
  }
}
