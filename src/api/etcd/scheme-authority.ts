import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { HpackDecoder, HpackError, encodeLiterals } from './hpack.js';

/**
 * etcd 3.4's clientv3 (grpc-go 1.26, passthrough resolver) dials some endpoints with the URL as
 * given, so its requests carry `:authority: http://127.0.0.1:2379`: `etcdctl
 * --endpoints=http://… endpoint status`, `--cluster`, `defrag`, `hashkv`, `move-leader`. Go's
 * HTTP/2 server accepts that; nghttp2, inside node's http2, rejects an authority containing `/`
 * with RST_STREAM PROTOCOL_ERROR before any JavaScript sees the stream, and node has no option to
 * relax it (only `strictFieldWhitespaceValidation`, which is about whitespace).
 *
 * So each accepted connection is first read up to its first request's header block:
 *
 * ```
 *  socket ──► peek: preface, frames … first HEADERS block ──► HPACK-decode :authority
 *                │ no scheme (the usual case)        │ "scheme://host:port"
 *                ▼                                    ▼
 *   the socket itself, bytes unshifted       SchemeAuthorityConnection: every HEADERS block is
 *   (node's http2 reads the native handle)   decoded (the client's dynamic table mirrored here) and
 *                                            re-encoded as literals with :authority = host:port
 * ```
 *
 * grpc-go sends no request before it has the server's SETTINGS, and node's http2 only starts
 * once it has the socket, so an empty SETTINGS frame ("all defaults") is written as soon as the
 * client preface is complete; the client's ACK of it is taken out of the stream (node never sent
 * it), and node's own SETTINGS follow. A client that sends at once is simply held for one
 * round trip. Other frames pass through unchanged.
 *
 * Limits: the peek settles on the rewriting path after 64 KiB or 10 s without a header block; a
 * header block is at most 256 KiB and a HEADERS/CONTINUATION frame at most 16 KiB (node's
 * SETTINGS_MAX_FRAME_SIZE), else the connection is destroyed; the HPACK table follows node's
 * default SETTINGS_HEADER_TABLE_SIZE (4096).
 */
export function acceptSchemeAuthority(socket: Socket): Promise<Duplex> {
  return new Promise((resolve) => {
    const rewriter = new FrameRewriter(() => socket.write(EMPTY_SETTINGS));
    let out: Buffer[] = [];
    const finish = (mode: 'native' | 'rewrite' | 'not-h2'): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onEnd);
      socket.off('end', onEnd);
      socket.pause();
      if (mode === 'rewrite') {
        rewriter.takeRaw();
        resolve(new SchemeAuthorityConnection(socket, rewriter, out));
        return;
      }
      socket.unshift(mode === 'native' ? Buffer.concat(rewriter.takeRaw()) : rewriter.rawSeen());
      resolve(socket);
    };
    const onData = (chunk: Buffer): void => {
      try {
        out = out.concat(rewriter.push(chunk));
      } catch {
        // Not an HTTP/2 preface: node's http2 answers it (nothing was written). A malformed
        // frame after it: a connection error.
        if (rewriter.settingsSent) onEnd();
        else finish('not-h2');
        return;
      }
      if (rewriter.firstBlock === true) finish('rewrite');
      else if (rewriter.firstBlock === false && rewriter.ackSeen) finish('native');
      else if (rewriter.rawBytes > PEEK_BYTES_MAX) finish('rewrite');
    };
    const onEnd = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    // An idle connection (no request yet) stays on the rewriting path, which is always correct.
    const timer = setTimeout(() => finish(rewriter.settingsSent ? 'rewrite' : 'not-h2'), PEEK_MS_MAX);
    timer.unref();
    socket.on('data', onData);
    socket.once('error', onEnd);
    socket.once('end', onEnd);
    // A caller that sniffed the first bytes hands the socket over paused (client-listener.ts).
    socket.resume();
  });
}

const PEEK_BYTES_MAX = 64 * 1024;
const PEEK_MS_MAX = 10_000;
const HEADER_FRAME_BYTES_MAX = 16 * 1024;
const HEADER_BLOCK_BYTES_MAX = 256 * 1024;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const SETTINGS = 0x4;
const ACK = 0x1;
/** An empty SETTINGS frame: "all defaults", sent before node's own SETTINGS (see below). */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);

/** `scheme://host:port[/…]` → `host:port`; anything else unchanged. */
export function authorityWithoutScheme(value: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/]*)/i.exec(value);
  return m ? m[1]! : value;
}

/**
 * The client → server byte stream, frame by frame: header blocks decoded and re-encoded with the
 * authority's scheme removed, everything else passed through.
 */
class FrameRewriter {
  /** After the first header block: whether its :authority carried a scheme. */
  firstBlock: boolean | undefined;
  /** Whether the empty SETTINGS went out (after a complete client preface). */
  settingsSent = false;
  /** Whether the client's ACK of the empty SETTINGS arrived (it is dropped from both outputs). */
  ackSeen = false;
  /** Client bytes seen so far. */
  rawBytes = 0;
  private readonly hpack = new HpackDecoder();
  private buf: Buffer = Buffer.alloc(0);
  private prefaceLeft = PREFACE.length;
  /** Bytes of a non-header frame still to pass through. */
  private passLeft = 0;
  private block: Buffer[] = [];
  private blockBytes = 0;
  private blockHead: { stream: number; flags: number; priority: Buffer | undefined } | undefined;
  /** While peeking: every byte seen, and the same bytes without the dropped ACK. */
  private seen: Buffer[] | undefined = [];
  private raw: Buffer[] = [];

  constructor(private readonly onPreface: () => void) {}

  rawSeen(): Buffer { return Buffer.concat(this.seen ?? []); }

  /**
   * The client's bytes so far, unchanged but for the dropped ACK, including those not yet parsed
   * (a partial frame); stops recording them. Only for handing the connection over unchanged.
   */
  takeRaw(): Buffer[] {
    const raw = [...this.raw, this.buf];
    this.seen = undefined;
    this.raw = [];
    return raw;
  }

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.rawBytes += chunk.length;
    this.seen?.push(chunk);
    const emit = (b: Buffer, raw: Buffer = b): void => {
      out.push(b);
      if (this.seen) this.raw.push(raw);
    };
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, this.buf.length);
      const at = PREFACE.length - this.prefaceLeft;
      if (!this.buf.subarray(0, n).equals(PREFACE.subarray(at, at + n))) throw new Error('not an HTTP/2 preface');
      emit(this.buf.subarray(0, n));
      this.buf = this.buf.subarray(n);
      this.prefaceLeft -= n;
      if (this.prefaceLeft > 0) return out;
      this.settingsSent = true;
      this.onPreface();
    }
    for (;;) {
      if (this.passLeft > 0) {
        const n = Math.min(this.passLeft, this.buf.length);
        if (n === 0) return out;
        emit(this.buf.subarray(0, n));
        this.buf = this.buf.subarray(n);
        this.passLeft -= n;
        continue;
      }
      if (this.buf.length < 9) return out;
      const len = this.buf.readUIntBE(0, 3);
      const type = this.buf[3]!;
      const flags = this.buf[4]!;
      const stream = this.buf.readUInt32BE(5) & 0x7fffffff;
      if (this.blockHead && type !== CONTINUATION) throw new HpackError('frame inside a header block');
      if (type === SETTINGS && (flags & ACK) && !this.ackSeen && len === 0) {
        this.ackSeen = true; // the ACK of our empty SETTINGS: node's http2 never sent it
        this.buf = this.buf.subarray(9);
        continue;
      }
      if (type !== HEADERS && type !== CONTINUATION) {
        emit(this.buf.subarray(0, 9));
        this.buf = this.buf.subarray(9);
        this.passLeft = len;
        continue;
      }
      if (len > HEADER_FRAME_BYTES_MAX) throw new HpackError('header frame too large');
      if (this.buf.length < 9 + len) return out;
      const frame = this.buf.subarray(0, 9 + len);
      let payload = frame.subarray(9);
      this.buf = this.buf.subarray(9 + len);
      if (this.seen) this.raw.push(frame);
      if (type === HEADERS) {
        if (flags & PADDED) {
          const pad = payload[0] ?? 0;
          if (pad + 1 > payload.length) throw new HpackError('bad padding');
          payload = payload.subarray(1, payload.length - pad);
        }
        let priority: Buffer | undefined;
        if (flags & PRIORITY) {
          if (payload.length < 5) throw new HpackError('short priority');
          priority = payload.subarray(0, 5);
          payload = payload.subarray(5);
        }
        this.blockHead = { stream, flags, priority };
      } else if (!this.blockHead || this.blockHead.stream !== stream) {
        throw new HpackError('CONTINUATION without HEADERS');
      }
      this.block.push(payload);
      this.blockBytes += payload.length;
      if (this.blockBytes > HEADER_BLOCK_BYTES_MAX) throw new HpackError('header block too large');
      if (flags & END_HEADERS) out.push(...this.endBlock());
    }
  }

  private endBlock(): Buffer[] {
    const head = this.blockHead!;
    const fields = this.hpack.decode(Buffer.concat(this.block));
    this.block = [];
    this.blockBytes = 0;
    this.blockHead = undefined;
    let schemed = false;
    for (const f of fields) {
      if (f.name !== ':authority') continue;
      const fixed = authorityWithoutScheme(f.value);
      if (fixed !== f.value) schemed = true;
      f.value = fixed;
    }
    this.firstBlock ??= schemed;
    let block = encodeLiterals(fields);
    const frames: Buffer[] = [];
    let type = HEADERS;
    let first = true;
    do {
      const room = HEADER_FRAME_BYTES_MAX - (first && head.priority ? 5 : 0);
      const part = block.subarray(0, room);
      block = block.subarray(part.length);
      const flags = (first ? head.flags & (0x1 | PRIORITY) : 0) | (block.length === 0 ? END_HEADERS : 0);
      const payload = first && head.priority ? Buffer.concat([head.priority, part]) : part;
      const h = Buffer.alloc(9);
      h.writeUIntBE(payload.length, 0, 3);
      h[3] = type;
      h[4] = flags;
      h.writeUInt32BE(head.stream, 5);
      frames.push(h, payload);
      type = CONTINUATION;
      first = false;
    } while (block.length > 0);
    return frames;
  }
}

/**
 * A connection whose client → server bytes go through a FrameRewriter; server → client bytes are
 * written to the socket as they are. Node's http2 wraps such a Duplex itself (JSStreamSocket).
 */
class SchemeAuthorityConnection extends Duplex {
  constructor(private readonly socket: Socket, rewriter: FrameRewriter, pending: Buffer[]) {
    super();
    for (const b of pending) this.push(b);
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = rewriter.push(chunk);
      } catch (err) {
        this.destroy(err as Error);
        return;
      }
      let more = true;
      for (const f of frames) more = this.push(f);
      if (!more) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  get remoteAddress(): string | undefined { return this.socket.remoteAddress; }
  get remotePort(): number | undefined { return this.socket.remotePort; }
  get localAddress(): string | undefined { return this.socket.localAddress; }
  get localPort(): number | undefined { return this.socket.localPort; }
  setTimeout(ms: number, cb?: () => void): this { this.socket.setTimeout(ms, cb); return this; }
  setNoDelay(noDelay?: boolean): this { this.socket.setNoDelay(noDelay); return this; }
  setKeepAlive(enable?: boolean, delayMs?: number): this { this.socket.setKeepAlive(enable, delayMs); return this; }

  override _read(): void { this.socket.resume(); }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void { this.socket.write(chunk, cb); }
  override _final(cb: (err?: Error | null) => void): void { this.socket.end(cb); }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy(err ?? undefined);
    cb(err);
  }
}
