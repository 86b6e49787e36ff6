/**
 * LeaseKeeper: keeps one lease alive over the LeaseKeepAlive stream and says so, loudly, when
 * it can no longer vouch for it.
 *
 * ```
 *   every intervalMs (TTL/3):  send {ID} ─────────► server
 *                              ◄───────── {ID, TTL}   TTL > 0: expiresAt = sentAt + TTL
 *                                                     TTL ≤ 0: lost ("expired on the server")
 *   deadline timer at expiresAt with no fresher answer: lost ("no keep-alive within the TTL")
 * ```
 *
 * `expiresAt` is conservative: it counts from when the answered request was sent, so when the
 * keeper still says alive the server cannot have expired the lease yet (clock rates aside). A
 * stream failure is retried (next endpoint on `unavailable`) until the deadline; a process
 * paused past its TTL (SIGSTOP) finds the deadline passed on waking and emits `lost` before it
 * sends anything. `lost` is emitted at most once; after it the keeper is stopped and the lease
 * must be treated as gone (grant a new one).
 *
 * Events: `lost` (reason: string), `alive` (ttlSeconds: number) after each answer.
 */
import { EventEmitter } from 'node:events';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { EtcdClient } from './client.js';
import { leaseId, safeInt } from './bytes.js';
import type { LeaseGrantResult } from './types.js';
import type { Wire } from './wire.js';

export interface LeaseKeeperOptions {
  /** Keep-alive period, ms; default a third of the TTL. */
  intervalMs?: number;
  /** Monotonic-enough clock, ms (tests inject one); default Date.now. */
  now?: () => number;
}

export class LeaseKeeper extends EventEmitter {
  readonly id: string;
  readonly ttlSeconds: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private expires: number;
  private stream: ClientDuplexStream<Wire, Wire> | undefined;
  private streamIndex = 0;
  private sent: number[] = [];
  private tickTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private state: 'new' | 'alive' | 'lost' | 'stopped' = 'new';
  private untrack: (() => void) | undefined;

  constructor(private readonly client: EtcdClient, lease: LeaseGrantResult, opts: LeaseKeeperOptions = {}) {
    super();
    this.id = lease.id;
    this.ttlSeconds = lease.ttlSeconds;
    this.now = opts.now ?? Date.now;
    this.intervalMs = Math.max(50, opts.intervalMs ?? Math.floor((lease.ttlSeconds * 1000) / 3));
    this.expires = this.now() + lease.ttlSeconds * 1000;
  }

  /** Starts keeping the lease alive (idempotent). */
  start(): void {
    if (this.state !== 'new') return;
    this.state = 'alive';
    this.untrack = this.client.track({ close: () => { void this.stop(); } });
    this.armDeadline();
    this.tick();
  }

  /** True until `lost` or `stop()`. */
  isAlive(): boolean { return this.state === 'alive' && this.now() < this.expires; }

  /** Epoch ms before which the server cannot have expired the lease. */
  expiresAt(): number { return this.expires; }

  /** Stops the keep-alives; with `revoke` also revokes the lease (its keys go at once). */
  async stop(revoke = false): Promise<void> {
    const wasAlive = this.state === 'alive';
    if (this.state !== 'lost') this.state = 'stopped';
    this.clearTimers();
    this.endStream();
    this.untrack?.();
    if (revoke && wasAlive && !this.client.isClosed()) {
      try { await this.client.leaseRevoke(this.id); } catch { /* expired or store gone: the keys go with the TTL */ }
    }
  }

  private tick(): void {
    this.tickTimer = undefined;
    if (this.state !== 'alive') return;
    if (this.now() >= this.expires) { this.lose('no successful keep-alive within the TTL'); return; }
    try {
      this.ensureStream();
      this.sent.push(this.now());
      this.stream!.write({ ID: this.id });
    } catch { /* closed client: stop() follows */ }
    this.tickTimer = setTimeout(() => this.tick(), this.intervalMs);
  }

  private ensureStream(): void {
    if (this.stream) return;
    const { stream, index, endpoint } = this.client.openStream('Lease', 'LeaseKeepAlive');
    this.stream = stream;
    this.streamIndex = index;
    this.sent = [];
    stream.on('data', (res: Wire) => this.onAnswer(res));
    const failed = (err?: unknown) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      if (err !== undefined && this.client.mapError(err, endpoint).code === 'unavailable') this.client.failedOver(this.streamIndex);
      // Retry soon rather than a whole interval later.
      if (this.state === 'alive') {
        if (this.tickTimer) clearTimeout(this.tickTimer);
        this.tickTimer = setTimeout(() => this.tick(), Math.min(200, this.intervalMs));
      }
    };
    stream.on('error', (err) => failed(err));
    stream.on('end', () => failed());
  }

  private onAnswer(res: Wire): void {
    if (this.state !== 'alive') return;
    const sentAt = this.sent.shift() ?? this.now();
    let ttl: number;
    try {
      if (leaseId(res.ID) !== this.id) return;
      ttl = safeInt(res.TTL, 'TTL');
    } catch { return; }
    if (ttl <= 0) { this.lose('the lease expired on the server'); return; }
    if (this.now() >= this.expires) { this.lose('no successful keep-alive within the TTL'); return; }
    this.expires = Math.max(this.expires, sentAt + ttl * 1000);
    this.armDeadline();
    this.emit('alive', ttl);
  }

  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => {
      if (this.state === 'alive' && this.now() >= this.expires) this.lose('no successful keep-alive within the TTL');
      else if (this.state === 'alive') this.armDeadline();
    }, Math.max(0, this.expires - this.now()) + 1);
  }

  private lose(reason: string): void {
    if (this.state !== 'alive') return;
    this.state = 'lost';
    this.clearTimers();
    this.endStream();
    this.untrack?.();
    this.emit('lost', reason);
  }

  private clearTimers(): void {
    if (this.tickTimer) clearTimeout(this.tickTimer);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.tickTimer = this.deadlineTimer = undefined;
  }

  private endStream(): void {
    const s = this.stream;
    this.stream = undefined;
    if (s) { s.removeAllListeners('data'); s.on('error', () => {}); s.cancel(); }
  }
}
