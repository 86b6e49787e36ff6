/**
 * The etcd client port: gRPC and HTTP/1.1 on one listener, with optional TLS, as etcd serves
 * its client URL (`etcdctl` over gRPC, `curl /health`, `/version`, `/metrics`, `/v3/*`).
 *
 * ```
 *  net.Server ──accept (≤ connectionsMax)──► [TLS handshake: tls.Server, ALPN h2 | http/1.1]
 *     ──► sniff: read until the bytes diverge from the HTTP/2 preface or match all 24 of it
 *            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  → grpc-js ConnectionInjector (HTTP/2)
 *            an HTTP method token ("GET ", …)   → http.Server (fastify) via 'connection'
 *            anything else                      → closed (counted in stats.garbage)
 *     the TLS handshake, and then the sniff, each get sniffTimeoutMs, or the socket is closed.
 * ```
 *
 * ALPN: a client offering `http/1.1` (curl, browsers) gets HTTP/1.1 even if it also offers
 * `h2`, so its HTTP requests reach the http.Server; gRPC clients offer only `h2` (grpc-go,
 * grpc-js) or `grpc-exp`/`h2` (gRPC C core) and get `h2`. With `clientCertAuth`, a client
 * whose certificate does not chain to the trusted CA fails the handshake and sends nothing
 * that reaches either server.
 *
 * Bytes held before dispatch are at most one socket read (the sniffed chunk is handed on with
 * `unshift`); the http.Server's own limits (header size, header and request timeouts) and
 * grpc-js's (message size, streams) apply after it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger, TlsFiles } from '../../util/index.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** An HTTP/1.x request line starts with a method token (RFC 9110 tchar, upper case in practice). */
const METHOD_START = /^[A-Z]{1,20}( |$)/;

export interface ClientListenerOptions {
  host: string;
  port: number;
  /** Where HTTP/2 connections go (grpc-js `Server.createConnectionInjector`). */
  grpc: { injectConnection(connection: Duplex): void };
  /** Where HTTP/1.1 connections go; not listening itself. */
  http: HttpServer;
  /** Serve TLS with these files; `clientCertAuth` requires client certificates from `files`' CA. */
  tls?: { files: TlsFiles; clientCertAuth: boolean };
  /** Connections held at once (both protocols); default 10,000. */
  connectionsMax?: number;
  /** Time for the TLS handshake, and then again for the first bytes to show the protocol; default 10 s. */
  sniffTimeoutMs?: number;
  logger?: Logger;
}

export interface ClientListenerStats {
  grpc: number;
  http: number;
  /** Connections closed because their first bytes were neither HTTP/2 nor HTTP/1.x. */
  garbage: number;
  /** Connections closed for a limit: too many, or too slow to show their protocol. */
  refused: number;
  /** TLS handshakes that failed (no or untrusted client certificate, bad ALPN, not TLS). */
  tlsFailed: number;
}

export class ClientListener {
  readonly stats: ClientListenerStats = { grpc: 0, http: 0, garbage: 0, refused: 0, tlsFailed: 0 };
  private readonly server: Server;
  private readonly tls: TlsServer | undefined;
  /** Every accepted TCP connection, until it closes (dispatched ones too). */
  private readonly sockets = new Set<Socket>();
  private readonly sniffTimeoutMs: number;

  constructor(private readonly opts: ClientListenerOptions) {
    this.sniffTimeoutMs = opts.sniffTimeoutMs ?? 10_000;
    this.server = createServer((socket) => this.accept(socket));
    const t = opts.tls;
    if (t) {
      this.tls = new TlsServer({
        ...t.files.current(),
        requestCert: t.clientCertAuth,
        rejectUnauthorized: t.clientCertAuth,
        handshakeTimeout: this.sniffTimeoutMs,
        ALPNCallback: ({ protocols }) => (protocols.includes('http/1.1') ? 'http/1.1' : protocols.includes('h2') ? 'h2' : undefined),
      });
      t.files.serve(this.tls);
      this.tls.on('secureConnection', (s: TLSSocket) => this.sniff(s));
      this.tls.on('tlsClientError', (err, s) => {
        this.stats.tlsFailed++;
        opts.logger?.debug({ err: err.message, remote: s.remoteAddress }, 'etcd_client_tls_failed');
        s.destroy();
      });
    }
  }

  /** Binds host:port; resolves with the bound port (useful with port 0). */
  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => { this.server.off('error', reject); resolve(); });
    });
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : this.opts.port;
  }

  /** Stops accepting and destroys every connection (close the gRPC and HTTP servers first, to end calls cleanly). */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    if (this.sockets.size >= (this.opts.connectionsMax ?? 10_000)) {
      this.stats.refused++;
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    if (this.tls) this.tls.emit('connection', socket);
    else this.sniff(socket);
  }

  /** Reads until the protocol is known, then hands the socket (with what was read) on. */
  private sniff(socket: Socket): void {
    const timer = setTimeout(() => {
      this.stats.refused++;
      this.opts.logger?.debug({ remote: socket.remoteAddress }, 'etcd_client_protocol_not_shown_in_time');
      socket.destroy();
    }, this.sniffTimeoutMs);
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const h2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (h2 && n < PREFACE.length) return; // still a prefix of the preface: wait (bounded by the timer)
      clearTimeout(timer);
      socket.off('data', onData);
      if (!h2 && !METHOD_START.test(head.subarray(0, 21).toString('latin1'))) {
        this.stats.garbage++;
        socket.destroy();
        return;
      }
      // Paused, so the bytes read stay buffered until the new owner reads them (http2 reads a
      // session's buffered bytes itself; the http server needs the stream flowing again).
      socket.pause();
      socket.unshift(head);
      if (h2) {
        this.stats.grpc++;
        this.opts.grpc.injectConnection(socket);
      } else {
        this.stats.http++;
        this.opts.http.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
    socket.once('close', () => clearTimeout(timer));
    socket.on('error', () => undefined);
  }
}
