/**
 * A fault-injecting TCP proxy for one network link, on loopback.
 *
 *   dialer ──► [ proxy :port ] ──► target
 *              up:   dialer → target bytes
 *              down: target → dialer bytes
 *
 * Every accepted connection is paired with a fresh connection to the target. Each direction of
 * the link has a fault, applied to all its connections, changeable at any time:
 *
 *   pass          forward at once
 *   delay(ms)     forward every chunk `ms` later, order preserved
 *   drop          read and discard (the peer sees silence, as in a partition)
 *   block         stop reading: bytes wait in the kernel buffers (TCP back-pressure) and flow on
 *                 when the fault is lifted, like a stalled switch
 *
 * Dropping bytes mid-stream corrupts any framing, so partitions use `cut()` / `restore()`,
 * which also reset the existing connections: after a cut or a heal every stream restarts at a
 * frame boundary, exactly like a real partition that outlives TCP's timeouts.
 *
 * Limits: at most `connectionsMax` concurrent connections (extra ones are closed), and at most
 * `delayedBytesMax` bytes waiting in delay queues per connection direction (beyond that the
 * source is paused until the queue drains).
 */
import net from 'node:net';

/** Which bytes a fault applies to: `up` = dialer → target, `down` = target → dialer. */
export type Direction = 'up' | 'down';

/** A fault for one direction of the link. */
export type LinkFault = { kind: 'pass' } | { kind: 'drop' } | { kind: 'block' } | { kind: 'delay'; ms: number };

/** Options of `FaultProxy.start`. */
export interface FaultProxyOptions {
  /** Where connections are forwarded. */
  target: { host: string; port: number };
  /** Listen address; default 127.0.0.1 and an ephemeral port. */
  listenHost?: string;
  listenPort?: number;
  /** A name for logs and nemesis records, e.g. `n1->n2`. */
  name?: string;
  /** Concurrent connections accepted; default 64. */
  connectionsMax?: number;
  /** Bytes held in a delay queue per connection direction before the source is paused; default 8 MiB. */
  delayedBytesMax?: number;
}

/** Counters of a proxy since it started. */
export interface FaultProxyStats {
  accepted: number;
  open: number;
  bytesForwarded: Record<Direction, number>;
  bytesDropped: Record<Direction, number>;
  /** Bytes currently waiting in delay queues. */
  bytesDelayed: Record<Direction, number>;
  resets: number;
}

const PASS: LinkFault = { kind: 'pass' };

/** One direction of one connection: reads `src`, writes `dst` according to the proxy's fault. */
class Pipe {
  private queue: { at: number; chunk: Buffer }[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Sources start paused (the server uses pauseOnConnect; the target side is paused on dial). */
  private paused = true;

  /** Bytes read but not yet written (waiting for their delay). */
  get pendingBytes(): number { return this.queuedBytes; }

  constructor(private readonly proxy: FaultProxy, readonly dir: Direction, private readonly src: net.Socket, private readonly dst: net.Socket) {
    src.on('data', (chunk: Buffer) => this.onData(chunk));
    this.sync();
  }

  private onData(chunk: Buffer): void {
    const fault = this.proxy.fault(this.dir);
    if (fault.kind === 'drop') { this.proxy.count('dropped', this.dir, chunk.length); return; }
    const delay = fault.kind === 'delay' ? fault.ms : 0;
    this.queue.push({ at: Date.now() + delay, chunk });
    this.queuedBytes += chunk.length;
    this.pump();
    this.sync();
  }

  /** Delivers queued chunks that are due, in order; schedules itself for the next one. */
  private pump(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now) {
      const { chunk } = this.queue.shift()!;
      this.queuedBytes -= chunk.length;
      if (!this.dst.destroyed) { this.dst.write(chunk); this.proxy.count('forwarded', this.dir, chunk.length); }
    }
    if (this.queue.length > 0) this.timer = setTimeout(() => { this.pump(); this.sync(); }, Math.max(1, this.queue[0]!.at - now));
  }

  /** Pauses or resumes the source to match the fault and the queue limit. */
  sync(): void {
    const want = this.proxy.fault(this.dir).kind === 'block' || this.queuedBytes > this.proxy.delayedBytesMax;
    if (want && !this.paused) { this.src.pause(); this.paused = true; }
    if (!want && this.paused) { this.paused = false; this.src.resume(); }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.queue = [];
  }
}

/** A proxy for one link; see the module comment. */
export class FaultProxy {
  readonly name: string;
  readonly delayedBytesMax: number;
  private readonly faults: Record<Direction, LinkFault> = { up: PASS, down: PASS };
  private readonly conns = new Set<{ a: net.Socket; b: net.Socket; pipes: Pipe[] }>();
  private readonly counters: Omit<FaultProxyStats, 'bytesDelayed'> = { accepted: 0, open: 0, bytesForwarded: { up: 0, down: 0 }, bytesDropped: { up: 0, down: 0 }, resets: 0 };
  private closed = false;

  private constructor(private readonly server: net.Server, private readonly opts: FaultProxyOptions, readonly port: number) {
    this.name = opts.name ?? `proxy:${port}->${opts.target.port}`;
    this.delayedBytesMax = opts.delayedBytesMax ?? 8 * 1024 * 1024;
  }

  /** Starts listening; resolves once the port is bound. */
  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const server = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.listenPort ?? 0, opts.listenHost ?? '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
    const addr = server.address();
    const proxy = new FaultProxy(server, opts, typeof addr === 'object' && addr ? addr.port : 0);
    server.on('connection', (a) => proxy.accept(a));
    return proxy;
  }

  /** `host:port` dialers should use instead of the target. */
  get address(): string { return `${this.opts.listenHost ?? '127.0.0.1'}:${this.port}`; }

  private accept(a: net.Socket): void {
    if (this.closed || this.conns.size >= (this.opts.connectionsMax ?? 64)) { a.destroy(); return; }
    this.counters.accepted++;
    const b = net.connect({ host: this.opts.target.host, port: this.opts.target.port });
    b.pause();
    const conn = { a, b, pipes: [] as Pipe[] };
    this.conns.add(conn);
    this.counters.open = this.conns.size;
    const teardown = () => {
      if (!this.conns.delete(conn)) return;
      this.counters.open = this.conns.size;
      for (const p of conn.pipes) p.close();
      a.destroy(); b.destroy();
    };
    for (const s of [a, b]) { s.on('error', teardown); s.on('close', teardown); s.setNoDelay(true); }
    b.once('connect', () => {
      conn.pipes = [new Pipe(this, 'up', a, b), new Pipe(this, 'down', b, a)];
    });
  }

  /** The current fault of a direction. */
  fault(dir: Direction): LinkFault { return this.faults[dir]; }

  /** Sets the fault of one direction, or of both. Takes effect for bytes read from now on. */
  set(dir: Direction | 'both', fault: LinkFault): void {
    if (fault.kind === 'delay' && !(Number.isFinite(fault.ms) && fault.ms >= 0)) throw new RangeError(`delay must be a finite number of ms >= 0, got ${fault.ms}`);
    for (const d of dir === 'both' ? (['up', 'down'] as const) : [dir]) this.faults[d] = fault;
    for (const c of this.conns) for (const p of c.pipes) p.sync();
  }

  /** Drops the given direction(s) and resets every connection (a partition). */
  cut(dir: Direction | 'both' = 'both'): void {
    this.set(dir, { kind: 'drop' });
    this.resetConnections();
  }

  /** Passes both directions again and resets every connection so streams restart cleanly. */
  restore(): void {
    const wasDropping = this.faults.up.kind === 'drop' || this.faults.down.kind === 'drop';
    this.set('both', PASS);
    if (wasDropping) this.resetConnections();
  }

  /** Closes every open connection (both sides see a reset); the listener stays up. */
  resetConnections(): void {
    for (const c of [...this.conns]) { c.a.resetAndDestroy(); c.b.resetAndDestroy(); }
    this.counters.resets++;
  }

  /** @internal byte accounting used by the pipes. */
  count(what: 'forwarded' | 'dropped', dir: Direction, n: number): void {
    (what === 'forwarded' ? this.counters.bytesForwarded : this.counters.bytesDropped)[dir] += n;
  }

  stats(): FaultProxyStats {
    const bytesDelayed = { up: 0, down: 0 };
    for (const c of this.conns) for (const p of c.pipes) bytesDelayed[p.dir] += p.pendingBytes;
    return { ...this.counters, bytesForwarded: { ...this.counters.bytesForwarded }, bytesDropped: { ...this.counters.bytesDropped }, bytesDelayed };
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.conns]) { c.a.destroy(); c.b.destroy(); }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
