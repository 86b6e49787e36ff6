/**
 * Peer transport: raft messages between members over one persistent TCP connection per peer.
 *
 * ```
 *  frame := u32 length (big-endian, of the payload) | payload (msgpack of a PeerEnvelope)
 *
 *  sender                                  receiver
 *  send(to, addr, msg) ─► queue[to] ─► socket ─► decoder ─► onMessage(from, msg)
 *      (bounded; drops when full:            (frames > frameBytesMax or undecodable
 *       raft retransmits)                     payloads close the connection + log)
 * ```
 *
 * Delivery is best effort, as raft expects: messages may be dropped (queue full, connection
 * lost) but are never reordered within one connection or corrupted. Connections are
 * outbound-only per direction (A→B uses A's connection; B→A uses B's), which keeps ordering
 * simple. A lost connection is re-dialled with exponential backoff (up to `redialMaxMs`).
 *
 * Large payloads (snapshots) are split by the caller (`node/snapshot-transfer`) into chunks
 * below `frameBytesMax`.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { pack, unpack } from 'msgpackr';
import { ClosedError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

export interface PeerEnvelope {
  /** Sender member id. */
  from: string;
  /** Recipient member id; frames for another id are dropped (a stale address). */
  to: string;
  /** The sender's advertised addresses, so a member that does not know them yet can answer. */
  fromAdvertise?: PeerAdvertise;
  msg: unknown;
}

/** Where a member can be reached: raft and HTTP `host:port`. */
export interface PeerAdvertise { raft: string; http: string }

export interface PeerTransportOptions {
  id: string;
  /** This member's advertised addresses, sent in every envelope. */
  advertise?: PeerAdvertise;
  listenHost: string;
  listenPort: number;
  onMessage: (from: string, msg: unknown, fromAdvertise: PeerAdvertise | undefined) => void;
  logger?: Logger;
  /** Largest frame accepted or sent; default 16 MiB. */
  frameBytesMax?: number;
  /** Messages queued per peer before new ones are dropped; default 4096. */
  queueMessagesMax?: number;
  /** Bytes queued per peer before new messages are dropped; default 64 MiB. */
  queueBytesMax?: number;
  redialMinMs?: number;
  redialMaxMs?: number;
}

export interface TransportStats {
  sent: number;
  received: number;
  dropped: number;
  badFrames: number;
}

export class PeerTransport {
  private server: Server | undefined;
  private readonly peers = new Map<string, PeerConnection>();
  private readonly inbound = new Set<Socket>();
  private closed = false;
  readonly stats: TransportStats = { sent: 0, received: 0, dropped: 0, badFrames: 0 };
  readonly frameBytesMax: number;

  constructor(private readonly opts: PeerTransportOptions) {
    this.frameBytesMax = opts.frameBytesMax ?? 16 * 1024 * 1024;
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  async start(): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.listenPort, this.opts.listenHost, () => { server.off('error', reject); resolve(); });
    });
    const a = server.address();
    return typeof a === 'object' && a ? a.port : this.opts.listenPort;
  }

  /** Queues `msg` for peer `to` at `address` (host:port). Never throws for network reasons. */
  send(to: string, address: string, msg: unknown): void {
    if (this.closed) throw new ClosedError('peer transport');
    let peer = this.peers.get(to);
    if (peer && peer.address !== address) { peer.close(); peer = undefined; }
    if (!peer) {
      peer = new PeerConnection(to, address, this);
      this.peers.set(to, peer);
    }
    let payload: Buffer;
    try {
      payload = pack({ from: this.opts.id, to, ...(this.opts.advertise && { fromAdvertise: this.opts.advertise }), msg } satisfies PeerEnvelope);
    } catch (err) {
      this.opts.logger?.error({ err, to }, 'peer_message_unencodable');
      this.stats.dropped++;
      return;
    }
    if (payload.length > this.frameBytesMax) {
      this.opts.logger?.error({ to, bytes: payload.length, limit: this.frameBytesMax }, 'peer_message_too_large');
      this.stats.dropped++;
      return;
    }
    if (!peer.enqueue(payload)) this.stats.dropped++;
  }

  /** Forgets a peer (it left the cluster): closes its connection and drops its queue. */
  forget(id: string): void {
    this.peers.get(id)?.close();
    this.peers.delete(id);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
    for (const s of this.inbound) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** @internal */ get options(): PeerTransportOptions { return this.opts; }

  private accept(socket: Socket): void {
    if (this.closed) { socket.destroy(); return; }
    this.inbound.add(socket);
    socket.setNoDelay(true);
    const decoder = new FrameDecoder(this.frameBytesMax);
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.badFrame(socket, err);
        return;
      }
      for (const f of frames) {
        let env: PeerEnvelope;
        try {
          env = unpack(f) as PeerEnvelope;
          if (!env || typeof env.from !== 'string' || typeof env.to !== 'string') throw new Error('frame is not a peer envelope');
        } catch (err) {
          this.badFrame(socket, err);
          return;
        }
        if (env.to !== this.opts.id) { this.stats.dropped++; continue; }
        this.stats.received++;
        try {
          const adv = env.fromAdvertise;
          this.opts.onMessage(env.from, env.msg, adv && typeof adv.raft === 'string' && typeof adv.http === 'string' ? adv : undefined);
        } catch (err) {
          this.opts.logger?.error({ err, from: env.from }, 'peer_message_handler_failed');
        }
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => this.inbound.delete(socket));
  }

  private badFrame(socket: Socket, err: unknown): void {
    this.stats.badFrames++;
    this.opts.logger?.warn({ err: (err as Error).message, remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'peer_bad_frame_closing_connection');
    socket.destroy();
  }
}

/** Splits a byte stream into length-prefixed frames. Throws on a frame over the limit. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly frameBytesMax: number) {}

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len > this.frameBytesMax) throw new Error(`frame of ${len} bytes exceeds the ${this.frameBytesMax}-byte limit`);
      if (this.buf.length < 4 + len) break;
      out.push(this.buf.subarray(4, 4 + len));
      this.buf = this.buf.subarray(4 + len);
    }
    return out;
  }
}

export function encodeFrame(payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(payload.length, 0);
  return Buffer.concat([head, payload]);
}

/** One outbound connection with its bounded queue and redial loop. */
class PeerConnection {
  private socket: Socket | undefined;
  private connected = false;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private closed = false;
  private backoffMs: number;
  private redialTimer: NodeJS.Timeout | undefined;

  constructor(readonly id: string, readonly address: string, private readonly t: PeerTransport) {
    this.backoffMs = t.options.redialMinMs ?? 50;
    this.dial();
  }

  enqueue(payload: Buffer): boolean {
    const o = this.t.options;
    if (this.queue.length >= (o.queueMessagesMax ?? 4096) || this.queuedBytes + payload.length > (o.queueBytesMax ?? 64 * 1024 * 1024)) return false;
    this.queue.push(encodeFrame(payload));
    this.queuedBytes += payload.length + 4;
    if (this.connected) this.flush();
    return true;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.redialTimer);
    this.socket?.destroy();
    this.queue = [];
    this.queuedBytes = 0;
  }

  private dial(): void {
    if (this.closed) return;
    const at = this.address.lastIndexOf(':');
    const host = this.address.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(this.address.slice(at + 1));
    const socket = connect({ host, port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('connect', () => {
      this.connected = true;
      this.backoffMs = this.t.options.redialMinMs ?? 50;
      this.flush();
    });
    socket.on('drain', () => this.flush());
    socket.on('data', () => undefined); // outbound connections carry no replies
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.connected = false;
      if (this.closed) return;
      // Frames written to a dead socket may be lost: raft retransmits, so drop nothing else.
      this.redialTimer = setTimeout(() => this.dial(), this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, this.t.options.redialMaxMs ?? 2000);
    });
  }

  private flush(): void {
    const s = this.socket;
    if (!s || !this.connected) return;
    while (this.queue.length > 0) {
      const frame = this.queue.shift()!;
      this.queuedBytes -= frame.length;
      this.t.stats.sent++;
      if (!s.write(frame)) return; // wait for 'drain'
    }
  }
}
