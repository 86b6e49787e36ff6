/**
 * An in-memory PortAllocator for tests and single-process use: ports come from a range below the
 * kernel's ephemeral range (so a stopped instance's port is not handed to an outgoing connection
 * or a port-0 listener meanwhile), and a port that something on the host already listens on
 * (checked by binding 127.0.0.1) is skipped.
 *
 * Invariants: a port belongs to at most one owner; `allocate(owner, n)` returns the owner's first
 * n ports, reserving more only when it has fewer; calls are serialised, so concurrent callers
 * never get the same port. Reservations live as long as the object.
 */
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import type { PortAllocator } from '../../types.js';
import { ConureError, InvalidArgumentError } from '../../../util/index.js';

/**
 * Optional extension of a PortAllocator whose reservations do not survive a restart (the memory
 * allocator): a new LocalDriver hands back the ports its re-adopted processes already listen on,
 * so they keep them. An allocator with durable reservations (the store's) need not implement it.
 */
export interface PortAdoption {
  /** Reserves exactly `ports` for `owner` unless another owner holds one; true when reserved. */
  adopt(owner: string, ports: readonly number[]): Promise<boolean>;
}

/** True when `a` implements {@link PortAdoption}. */
export function canAdoptPorts(a: PortAllocator): a is PortAllocator & PortAdoption {
  return typeof (a as Partial<PortAdoption>).adopt === 'function';
}

export interface MemoryPortAllocatorOptions {
  /** Lowest port handed out; default 20000 (or lower, to stay under the ephemeral range). */
  low?: number;
  /** Highest port handed out; default just under the kernel's ephemeral range. */
  high?: number;
  /** First port tried (then upwards, wrapping); default spreads processes by pid. */
  start?: number;
  /** Host address checked for ports in use; default 127.0.0.1. */
  host?: string;
  /** Largest `count` of one call. */
  countMax?: number;
}

export class MemoryPortAllocator implements PortAllocator, PortAdoption {
  private readonly low: number;
  private readonly high: number;
  private readonly host: string;
  private readonly countMax: number;
  private cursor: number;
  private readonly byOwner = new Map<string, number[]>();
  private readonly taken = new Set<number>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(opts: MemoryPortAllocatorOptions = {}) {
    const ephemeralLow = ephemeralRangeLow();
    this.high = opts.high ?? ephemeralLow - 1;
    this.low = opts.low ?? Math.min(20_000, this.high - 5000);
    if (!(this.low >= 1 && this.low <= this.high && this.high <= 65535)) throw new InvalidArgumentError(`bad port range ${this.low}..${this.high}`);
    this.host = opts.host ?? '127.0.0.1';
    this.countMax = opts.countMax ?? 64;
    const span = this.high - this.low + 1;
    this.cursor = opts.start ?? this.low + ((process.pid * 97) % span);
  }

  allocate(owner: string, count: number): Promise<number[]> {
    return this.serial(async () => {
      if (!Number.isSafeInteger(count) || count < 0 || count > this.countMax) throw new InvalidArgumentError(`port count must be 0..${this.countMax}; got ${count}`);
      const mine = this.byOwner.get(owner) ?? [];
      const span = this.high - this.low + 1;
      let tried = 0;
      while (mine.length < count) {
        if (tried++ >= span) throw new ConureError('unavailable', `no free port left in ${this.low}..${this.high}`);
        const port = this.cursor;
        this.cursor = port >= this.high ? this.low : port + 1;
        if (this.taken.has(port) || !(await bindable(port, this.host))) continue;
        this.taken.add(port);
        mine.push(port);
      }
      this.byOwner.set(owner, mine);
      return mine.slice(0, count);
    });
  }

  adopt(owner: string, ports: readonly number[]): Promise<boolean> {
    return this.serial(async () => {
      const mine = this.byOwner.get(owner) ?? [];
      if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535 || (this.taken.has(p) && !mine.includes(p)))) return false;
      if (mine.length > 0 && !ports.every((p, i) => mine[i] === p)) return false;
      for (const p of ports) this.taken.add(p);
      this.byOwner.set(owner, [...ports, ...mine.slice(ports.length)]);
      return true;
    });
  }

  release(owner: string): Promise<void> {
    return this.serial(async () => {
      for (const p of this.byOwner.get(owner) ?? []) this.taken.delete(p);
      this.byOwner.delete(owner);
    });
  }

  /** Ports held by `owner` (for tests). */
  held(owner: string): number[] { return [...(this.byOwner.get(owner) ?? [])]; }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
}

/** True when nothing listens on `host:port` (a listen succeeds). */
export function bindable(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function ephemeralRangeLow(): number {
  try {
    const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(lo) && lo > 1024) return lo;
  } catch { /* not Linux */ }
  return 32768;
}
