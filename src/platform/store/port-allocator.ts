/**
 * StorePortAllocator: TCP ports for local instances, reserved in the store so two workers (or
 * two platform replicas on one host) never hand out the same port.
 *
 * Each port is a key `ports/<n>` = { owner }, created with a create-if-absent txn, so a port is
 * reserved at most once however many allocators race. Ports in [portLow, portHigh] are tried in
 * order; one that some other process already listens on (binding 127.0.0.1:<n> fails) is
 * skipped. `allocate` is idempotent per owner: asking again returns the owner's ports (the
 * lowest `count` of them) and reserves only what is missing. When the range has no room, the
 * ports reserved by that call are released again and `resource_exhausted` is thrown.
 */
import { createServer } from 'node:net';
import { op, compare } from '../../client/index.js';
import { InvalidArgumentError, ResourceExhaustedError } from '../../util/index.js';
import type { PortAllocator } from '../types.js';
import type { PlatformStore } from './platform-store.js';
import type { PortRecord } from './records.js';

export interface StorePortAllocatorOptions {
  store: PlatformStore;
  /** First port of the range (inclusive). */
  portLow: number;
  /** Last port of the range (inclusive). */
  portHigh: number;
  /** Host to probe with a brief bind (default 127.0.0.1). */
  probeHost?: string;
  /** Port probe; default: try to bind it. Tests inject one. */
  isFree?: (port: number) => Promise<boolean>;
}

/** True when `port` can be bound on `host` right now (the probe socket is closed at once). */
export function canBind(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export class StorePortAllocator implements PortAllocator {
  private readonly store: PlatformStore;
  private readonly low: number;
  private readonly high: number;
  private readonly isFree: (port: number) => Promise<boolean>;

  constructor(opts: StorePortAllocatorOptions) {
    const ok = (n: number) => Number.isSafeInteger(n) && n >= 1 && n <= 65535;
    if (!ok(opts.portLow) || !ok(opts.portHigh) || opts.portLow > opts.portHigh) throw new InvalidArgumentError(`bad port range ${opts.portLow}..${opts.portHigh}`);
    this.store = opts.store;
    this.low = opts.portLow;
    this.high = opts.portHigh;
    const host = opts.probeHost ?? '127.0.0.1';
    this.isFree = opts.isFree ?? ((p) => canBind(p, host));
  }

  /** Every reserved port with its owner. */
  async reserved(): Promise<Map<number, string>> {
    const { items } = await this.store.list<PortRecord>(this.store.keys.kind('ports'));
    return new Map(items.map((i) => [Number(this.store.keys.idOf(i.key)), i.value.owner]));
  }

  async allocate(owner: string, count: number): Promise<number[]> {
    if (!owner) throw new InvalidArgumentError('port owner must not be empty');
    if (!Number.isSafeInteger(count) || count < 1 || count > this.high - this.low + 1) throw new InvalidArgumentError(`cannot allocate ${count} ports from ${this.low}..${this.high}`);
    const taken = await this.reserved();
    const mine = [...taken].filter(([, o]) => o === owner).map(([p]) => p).sort((a, b) => a - b);
    if (mine.length >= count) return mine.slice(0, count);
    const fresh: number[] = [];
    for (let port = this.low; port <= this.high && mine.length + fresh.length < count; port++) {
      if (taken.has(port)) continue;
      if (!(await this.isFree(port))) continue;
      const key = this.store.keys.port(port);
      const rec: PortRecord = { owner, reservedAt: new Date().toISOString() };
      const r = await this.store.client.runTxn({ compare: [compare.absent(key)], success: [op.putJson(key, rec)] });
      if (r.succeeded) fresh.push(port);
    }
    if (mine.length + fresh.length < count) {
      for (const p of fresh) await this.store.remove(this.store.keys.port(p));
      throw new ResourceExhaustedError(`no ${count - mine.length} free ports left in ${this.low}..${this.high}`);
    }
    return [...mine, ...fresh].sort((a, b) => a - b);
  }

  async release(owner: string): Promise<void> {
    const { items } = await this.store.list<PortRecord>(this.store.keys.kind('ports'));
    for (const i of items) {
      if (i.value.owner !== owner) continue;
      await this.store.client.runTxn({ compare: [compare.modRevision(i.key, '==', i.modRevision)], success: [op.delete(i.key)] });
    }
  }
}
