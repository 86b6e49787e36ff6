/**
 * Peer transport: raft messages between members over one persistent TCP connection per peer.
 *
 * ```
 *  frame := u32 length (big-endian, of the payload) | payload (msgpack of a PeerEnvelope)
 *           with a cluster secret: payload | 16-byte MAC (see peer-auth.ts), after a handshake
 *
 *  sender                                  receiver
 *  send(to, addr, msg) ─► queue[to] ─► socket ─► decoder ─► onMessage(from, msg)
 *      (bounded; drops when full:            (frames > frameBytesMax, bad MACs or undecodable
 *       raft retransmits)                     payloads close the connection + log)
 * ```
 *
 * Delivery is best effort, as raft expects: messages may be dropped (queue full, connection
 * lost) but are never reordered within one connection or corrupted. Connections are
 * outbound-only per direction (A→B uses A's connection; B→A uses B's), which keeps ordering
 * simple. A lost connection is re-dialled with exponential backoff (up to `redialMaxMs`).
 *
 * Inbound limits, so nobody who can reach the port can exhaust the member: at most
 * `inboundConnectionsMax` connections (of which at most `handshakesMax` still handshaking, each
 * for at most `handshakeTimeoutMs`), a frame must complete within `frameTimeoutMs` of its first
 * byte, and all inbound connections together buffer at most `inboundBufferedBytesMax` of
 * partial frames. With a `secret`, nothing from a connection that has not proved it knows the
 * secret reaches `onMessage`; a peer that authenticates again replaces its older connection.
 *
 * Large payloads (snapshots) travel over HTTP, never as one frame.
 */
import { createServer, connect, isIP, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, Server as TlsServer, type TLSSocket } from 'node:tls';
import { pack, unpack } from 'msgpackr';
import { ClosedError, type Logger, type TlsFiles } from '../util/index.js';
import { ClientHandshake, decodeHello, ServerHandshake, TAG_BYTES, type FrameMac, type PeerSecret } from './peer-auth.js';

export interface PeerEnvelope {
  /** Sender member id. */
  from: string;
  /** Recipient member id; frames for another id are dropped (a stale address). */
  to: string;
  /** The sender's advertised addresses, so a member that does not know them yet can answer. */
  fromAdvertise?: PeerAdvertise;
  /** The sender's cluster id, once it has one (recovery.ts): members of another cluster are refused. */
  cluster?: string;
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
  /** This member's cluster id (read for every envelope sent: a joiner learns its id late). */
  cluster?: () => string | undefined;
  /**
   * Called for each frame of an accepted connection; `msg` is untrusted (validate it).
   * `cluster` is the envelope's cluster id as sent (untrusted too; undefined when absent).
   */
  onMessage: (from: string, msg: unknown, fromAdvertise: PeerAdvertise | undefined, cluster: unknown) => void;
  logger?: Logger;
  /** The cluster secret: every connection must complete the handshake of peer-auth.ts. */
  secret?: PeerSecret;
  /**
   * TLS on every connection, both ways: dialled listeners must present a certificate from the
   * CA in `files` (and valid for the address dialled); with `clientCertAuth`, dialling peers
   * must too. The TLS handshake counts as handshaking (limits above); with a secret as well,
   * the secret's handshake runs inside TLS.
   */
  tls?: { files: TlsFiles; clientCertAuth: boolean };
  /** Largest frame accepted or sent; default 16 MiB. */
  frameBytesMax?: number;
  /** Messages queued per peer before new ones are dropped; default 4096. */
  queueMessagesMax?: number;
  /** Bytes queued per peer before new messages are dropped; default 64 MiB. */
  queueBytesMax?: number;
  /** Inbound connections held at once; default 64. */
  inboundConnectionsMax?: number;
  /** Inbound connections still handshaking at once; default 16. */
  handshakesMax?: number;
  /** Time a new connection has to complete the handshake; default 5 s. */
  handshakeTimeoutMs?: number;
  /** Time a frame may take from its first byte to its last; default 30 s. */
  frameTimeoutMs?: number;
  /** Bytes of partial frames buffered over all inbound connections; default 2 × frameBytesMax. */
  inboundBufferedBytesMax?: number;
  redialMinMs?: number;
  redialMaxMs?: number;
  /** A dial that has not connected within this many ms is abandoned and re-dialled (default
   * 3000). Without it a dial to an address nobody answers (a restarted pod's old IP, still in a
   * DNS cache) waits for the kernel's SYN retries, about 2 minutes, while the peer is up elsewhere. */
  connectTimeoutMs?: number;
}

export interface TransportStats {
  sent: number;
  received: number;
  dropped: number;
  badFrames: number;
  /** Connections refused or closed for a limit (too many, too slow, too much buffered). */
  refused: number;
  /** Connections that failed the secret handshake or the TLS handshake (either side). */
  authFailed: number;
}

/** Largest handshake frame (HELLO with two 255-byte ids). */
const HANDSHAKE_FRAME_BYTES_MAX = 600;

type InboundState =
  | { kind: 'open'; from?: string; mac?: FrameMac }
  | { kind: 'hello' }
  | { kind: 'auth'; hs: ServerHandshake };

export class PeerTransport {
  private server: Server | undefined;
  private readonly peers = new Map<string, PeerConnection>();
  private readonly inbound = new Set<Socket>();
  /** Authenticated inbound connections by peer id (a re-authenticating peer replaces its old one). */
  private readonly inboundById = new Map<string, Socket>();
  private handshaking = 0;
  /** Completes TLS handshakes of accepted sockets (never listens itself). */
  private tlsServer: TlsServer | undefined;
  /** Accepted sockets in their TLS handshake, by remote address:port, awaiting 'secureConnection'. */
  private readonly tlsPending = new Map<string, { raw: Socket; secured: (s: TLSSocket) => void }>();
  private bufferedBytes = 0;
  private closed = false;
  readonly stats: TransportStats = { sent: 0, received: 0, dropped: 0, badFrames: 0, refused: 0, authFailed: 0 };
  readonly frameBytesMax: number;

  constructor(private readonly opts: PeerTransportOptions) {
    this.frameBytesMax = opts.frameBytesMax ?? 16 * 1024 * 1024;
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  async start(): Promise<number> {
    const t = this.opts.tls;
    if (t) {
      const tlsServer = new TlsServer({ ...t.files.current(), requestCert: t.clientCertAuth, rejectUnauthorized: t.clientCertAuth });
      t.files.serve(tlsServer);
      tlsServer.on('secureConnection', (s: TLSSocket) => {
        const pending = this.tlsPending.get(remoteKey(s));
        this.tlsPending.delete(remoteKey(s));
        if (!pending) { s.destroy(); return; }
        s.once('close', () => pending.raw.destroy()); // the raw socket's own close ends its accounting
        pending.secured(s);
      });
      tlsServer.on('tlsClientError', (err, s) => {
        const pending = this.tlsPending.get(remoteKey(s));
        this.tlsPending.delete(remoteKey(s));
        this.stats.authFailed++;
        this.refuse(s, `TLS handshake failed: ${err.message}`);
        pending?.raw.destroy();
      });
      this.tlsServer = tlsServer;
    }
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
      const cluster = this.opts.cluster?.();
      payload = pack({ from: this.opts.id, to, ...(this.opts.advertise && { fromAdvertise: this.opts.advertise }), ...(cluster && { cluster }), msg } satisfies PeerEnvelope);
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

  private accept(raw: Socket): void {
    const o = this.opts;
    if (this.closed) { raw.destroy(); return; }
    const secret = o.secret;
    const handshakes = secret !== undefined || this.tlsServer !== undefined;
    if (this.inbound.size >= (o.inboundConnectionsMax ?? 64) || (handshakes && this.handshaking >= (o.handshakesMax ?? 16))) {
      this.refuse(raw, 'too many inbound connections');
      return;
    }
    this.inbound.add(raw);
    raw.setNoDelay(true);
    raw.on('error', () => undefined);
    let handshakeTimer: NodeJS.Timeout | undefined;
    if (handshakes) {
      this.handshaking++;
      handshakeTimer = setTimeout(() => { this.stats.authFailed++; this.refuse(raw, 'handshake timed out'); }, o.handshakeTimeoutMs ?? 5000);
    }
    const endHandshake = () => {
      if (handshakeTimer === undefined) return;
      clearTimeout(handshakeTimer);
      handshakeTimer = undefined;
      this.handshaking--;
    };
    raw.once('close', () => {
      endHandshake();
      this.inbound.delete(raw);
    });
    if (!this.tlsServer) {
      this.serve(raw, raw, endHandshake);
      return;
    }
    const key = remoteKey(raw);
    this.tlsPending.set(key, {
      raw,
      secured: (s) => {
        if (!secret) endHandshake();
        this.serve(raw, s, endHandshake);
      },
    });
    raw.once('close', () => this.tlsPending.delete(key));
    this.tlsServer.emit('connection', raw);
  }

  /**
   * Reads frames from `socket` (`raw` itself, or the TLS socket over it): the secret's
   * handshake when there is a secret (then `endHandshake`), then envelopes for `onMessage`.
   */
  private serve(raw: Socket, socket: Socket, endHandshake: () => void): void {
    const o = this.opts;
    const secret = o.secret;
    let state: InboundState = secret ? { kind: 'hello' } : { kind: 'open' };
    const decoder = new FrameDecoder(secret ? HANDSHAKE_FRAME_BYTES_MAX : this.frameBytesMax);
    let buffered = 0;
    let frameTimer: NodeJS.Timeout | undefined;
    // The frame clock starts with a frame's first byte and restarts whenever a frame completes.
    const account = (completed: boolean) => {
      const now = decoder.pendingBytes;
      this.bufferedBytes += now - buffered;
      buffered = now;
      if (now === 0 || completed) { clearTimeout(frameTimer); frameTimer = undefined; }
      if (now > 0 && frameTimer === undefined) frameTimer = setTimeout(() => this.refuse(socket, 'frame not completed in time'), o.frameTimeoutMs ?? 30_000);
    };
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.badFrame(socket, err);
        return;
      }
      account(frames.length > 0);
      if (this.bufferedBytes > (o.inboundBufferedBytesMax ?? 2 * this.frameBytesMax)) {
        this.refuse(socket, 'too many bytes buffered in partial frames');
        return;
      }
      for (const f of frames) {
        if (socket.destroyed) return;
        if (state.kind === 'hello') {
          let hello;
          try { hello = decodeHello(f); } catch (err) { this.stats.authFailed++; this.badFrame(socket, err); return; }
          if (hello.to !== o.id) { this.stats.authFailed++; this.refuse(socket, `handshake for ${hello.to}, this member is ${o.id}`); return; }
          const hs = new ServerHandshake(secret!, hello);
          state = { kind: 'auth', hs };
          socket.write(encodeFrame(hs.challenge()));
          continue;
        }
        if (state.kind === 'auth') {
          const mac = state.hs.verify(f);
          if (!mac) { this.stats.authFailed++; this.refuse(socket, 'peer does not know the cluster secret'); return; }
          const from = state.hs.hello.from;
          endHandshake();
          decoder.frameBytesMax = this.frameBytesMax + TAG_BYTES;
          state = { kind: 'open', from, mac };
          const old = this.inboundById.get(from);
          if (old && old !== socket) old.destroy();
          this.inboundById.set(from, socket);
          continue;
        }
        let payload: Buffer = f;
        if (state.mac) {
          const opened = state.mac.open(f);
          if (!opened) { this.stats.authFailed++; this.badFrame(socket, new Error('frame authentication failed')); return; }
          payload = opened;
        }
        let env: PeerEnvelope;
        try {
          env = unpack(payload) as PeerEnvelope;
          if (!env || typeof env !== 'object' || typeof env.from !== 'string' || typeof env.to !== 'string') throw new Error('frame is not a peer envelope');
          // One connection speaks for one sender: the authenticated one, or the first it named.
          if (state.from !== undefined && env.from !== state.from) throw new Error(`frame from ${env.from} on ${state.from}'s connection`);
        } catch (err) {
          this.badFrame(socket, err);
          return;
        }
        state.from = env.from;
        if (env.to !== o.id) { this.stats.dropped++; continue; }
        this.stats.received++;
        try {
          const adv = env.fromAdvertise as unknown;
          const ok = typeof adv === 'object' && adv !== null && typeof (adv as PeerAdvertise).raft === 'string' && typeof (adv as PeerAdvertise).http === 'string'
            && (adv as PeerAdvertise).raft.length <= 300 && (adv as PeerAdvertise).http.length <= 300;
          o.onMessage(env.from, env.msg, ok ? { raft: (adv as PeerAdvertise).raft, http: (adv as PeerAdvertise).http } : undefined, env.cluster as unknown);
        } catch (err) {
          o.logger?.error({ err, from: env.from }, 'peer_message_handler_failed');
        }
      }
    });
    socket.on('error', () => undefined);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(frameTimer);
      this.bufferedBytes -= buffered;
      buffered = 0;
      if (state.kind === 'open' && state.from !== undefined && this.inboundById.get(state.from) === socket) this.inboundById.delete(state.from);
      socket.destroy();
    };
    socket.once('close', release);
    if (raw !== socket) raw.once('close', release);
  }

  private refuse(socket: Socket, why: string): void {
    this.stats.refused++;
    this.opts.logger?.warn({ why, remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'peer_connection_refused');
    socket.destroy();
  }

  private badFrame(socket: Socket, err: unknown): void {
    this.stats.badFrames++;
    this.opts.logger?.warn({ err: (err as Error).message, remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'peer_bad_frame_closing_connection');
    socket.destroy();
  }
}

/**
 * Splits a byte stream into length-prefixed frames. Throws on a frame over the limit (checked
 * as soon as the length prefix arrives, before any of its bytes are buffered). A frame's
 * buffer is allocated once its length is known, so a large frame costs O(size), not O(size²).
 */
export class FrameDecoder {
  private head: Buffer = Buffer.alloc(0);
  private frame: Buffer | undefined;
  private filled = 0;
  constructor(public frameBytesMax: number) {}

  /** Bytes received of frames not yet complete. */
  get pendingBytes(): number { return this.head.length + this.filled; }

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (!this.frame) {
        const need = 4 - this.head.length;
        const take = Math.min(need, chunk.length - at);
        this.head = this.head.length === 0 && take === 4 ? chunk.subarray(at, at + 4) : Buffer.concat([this.head, chunk.subarray(at, at + take)]);
        at += take;
        if (this.head.length < 4) break;
        const len = this.head.readUInt32BE(0);
        if (len > this.frameBytesMax) throw new Error(`frame of ${len} bytes exceeds the ${this.frameBytesMax}-byte limit`);
        this.head = Buffer.alloc(0);
        if (chunk.length - at >= len && this.filled === 0) {
          // The whole frame is in this chunk: no copy.
          out.push(chunk.subarray(at, at + len));
          at += len;
          continue;
        }
        this.frame = Buffer.allocUnsafe(len);
        this.filled = 0;
      }
      const take = Math.min(this.frame.length - this.filled, chunk.length - at);
      chunk.copy(this.frame, this.filled, at, at + take);
      this.filled += take;
      at += take;
      if (this.filled === this.frame.length) {
        out.push(this.frame);
        this.frame = undefined;
        this.filled = 0;
      }
    }
    return out;
  }
}

/** Identifies an accepted connection across its TLS wrapping (unique per listener while open). */
function remoteKey(s: Socket): string {
  return `${s.remoteAddress}:${s.remotePort}`;
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
  /** Unsigned payloads: each is framed (and signed) when written, in order. */
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private closed = false;
  private backoffMs: number;
  private redialTimer: NodeJS.Timeout | undefined;
  private mac: FrameMac | undefined;

  constructor(readonly id: string, readonly address: string, private readonly t: PeerTransport) {
    this.backoffMs = t.options.redialMinMs ?? 50;
    this.dial();
  }

  enqueue(payload: Buffer): boolean {
    const o = this.t.options;
    if (this.queue.length >= (o.queueMessagesMax ?? 4096) || this.queuedBytes + payload.length > (o.queueBytesMax ?? 64 * 1024 * 1024)) return false;
    this.queue.push(payload);
    this.queuedBytes += payload.length;
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
    const o = this.t.options;
    const at = this.address.lastIndexOf(':');
    const host = this.address.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(this.address.slice(at + 1));
    // With TLS the listener must prove a certificate from the peer CA, valid for `host`.
    const socket: Socket = o.tls ? tlsConnect({ host, port, ...o.tls.files.current(), ...(isIP(host) === 0 && { servername: host }) }) : connect({ host, port });
    this.socket = socket;
    this.mac = undefined;
    socket.setNoDelay(true);
    const connectTimer = setTimeout(() => socket.destroy(), o.connectTimeoutMs ?? 3000);
    socket.once('close', () => clearTimeout(connectTimer));
    if (o.tls) {
      socket.on('error', (err: Error & { code?: string }) => {
        // Certificate and TLS errors (not ECONNREFUSED and the like: those are a peer that is down).
        if (!this.connected && err.code !== undefined && !/^E[A-Z]+$/.test(err.code)) { this.t.stats.authFailed++; o.logger?.warn({ peer: this.id, address: this.address, err: err.message }, 'peer_tls_dial_failed'); }
      });
    }
    socket.on(o.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      if (!o.secret) { this.opened(); return; }
      // Prove we know the secret, and check the listener does, before anything else is sent.
      const hs = new ClientHandshake(o.secret, o.id, this.id);
      const decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
      const timer = setTimeout(() => socket.destroy(), o.handshakeTimeoutMs ?? 5000);
      socket.write(encodeFrame(hs.hello()));
      socket.on('data', (chunk: Buffer) => {
        if (this.mac) return; // nothing is expected after the challenge
        let frames: Buffer[];
        try { frames = decoder.push(chunk); } catch { socket.destroy(); return; }
        if (frames.length === 0) return;
        clearTimeout(timer);
        const answer = hs.answer(frames[0]!);
        if (!answer) {
          this.t.stats.authFailed++;
          o.logger?.warn({ peer: this.id, address: this.address }, 'peer_handshake_failed_listener_lacks_secret');
          socket.destroy();
          return;
        }
        socket.write(encodeFrame(answer.auth));
        this.mac = answer.mac;
        this.opened();
      });
      socket.once('close', () => clearTimeout(timer));
    });
    socket.on('drain', () => this.flush());
    if (!o.secret) socket.on('data', () => undefined); // outbound connections carry no replies
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.connected = false;
      if (this.closed) return;
      // Frames written to a dead socket may be lost: raft retransmits, so drop nothing else.
      this.redialTimer = setTimeout(() => this.dial(), this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, this.t.options.redialMaxMs ?? 2000);
    });
  }

  private opened(): void {
    this.connected = true;
    this.backoffMs = this.t.options.redialMinMs ?? 50;
    this.flush();
  }

  private flush(): void {
    const s = this.socket;
    if (!s || !this.connected) return;
    while (this.queue.length > 0) {
      const payload = this.queue.shift()!;
      this.queuedBytes -= payload.length;
      this.t.stats.sent++;
      if (!s.write(encodeFrame(this.mac ? this.mac.sign(payload) : payload))) return; // wait for 'drain'
    }
  }
}
