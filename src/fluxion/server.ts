/**
 * The Fluxion transport: one HTTP listener serving the FluxionDB WebSocket protocol on any path
 * (upgrade with `?api-key=…&name=…`) plus `GET /health`, `GET /metrics` and `GET /openapi.json`
 * (HTTP_ROUTES: what the listener dispatches on and what its OpenAPI document describes).
 *
 * The transport only decodes the envelope `{id, type, data}`, calls `FluxionService.handle` once
 * and encodes the reply as `{"id": …, …reply}`. Policy for bad input (see docs/fluxion.md):
 *
 * | input                                   | default (`badInput: 'reply'`)          | `badInput: 'close'` (original)     |
 * |-----------------------------------------|----------------------------------------|------------------------------------|
 * | not JSON / bad envelope                 | `{"id"?, "error": "invalid request…"}` | close 1008                         |
 * | unknown type                            | `{"id", "error": "Unknown message type"}` | `{"error":…}` (no id), close 1008 |
 * | invalid payload                         | `{"id", "error": "<type>: <reason>"}`  | close 1008                         |
 * | frame > `messageBytesMax` (≤ 4× limit)  | `{"id"?, "error": "request too large…"}` | close 1009                       |
 * | frame > 4 × `messageBytesMax`           | close 1009 (never buffered)            | close 1009                         |
 * | binary frame                            | close 1003 `text frames only`          | same                               |
 *
 * Limits: `connectionsMax` open sockets (503 at the upgrade beyond it), of which the last
 * `masterConnectionsReserved` only the master key may take (so scoped keys can never lock it
 * out); at most `connectionsPerKeyMax` sockets per scoped key (429 at the upgrade beyond it);
 * `inFlightMax` requests
 * per socket (reading pauses until replies drain), `outboundBytesMax` buffered replies per socket
 * (reading pauses until the socket drains), idle sockets are pinged and closed after
 * `idleTimeoutMs` without traffic.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TlsFiles, Logger } from '../util/index.js';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { openApi, type OpenApiRoute } from '../util/index.js';
import { errorText, isMessageType, PayloadError } from './protocol.js';
import { AuthError, UnknownTypeError, type FluxionService, type Reply, type Session } from './service.js';
import type { FluxionMetrics } from './metrics.js';

export interface ServerOptions {
  host?: string;
  /** Listen port; 0 picks an ephemeral port (see `address()`). */
  port: number;
  /** Largest request frame in bytes (default 16 MiB, as the original). */
  messageBytesMax?: number;
  /** How invalid requests are answered (default `reply`). */
  badInput?: 'reply' | 'close';
  connectionsMax?: number;
  /** Sockets one scoped (non-master) key may hold at once (default 256). */
  connectionsPerKeyMax?: number;
  /** Sockets of `connectionsMax` kept for the master key (default 16). */
  masterConnectionsReserved?: number;
  inFlightMax?: number;
  outboundBytesMax?: number;
  idleTimeoutMs?: number;
  /** Negotiate permessage-deflate when a client offers it (default false: it costs CPU per byte). */
  perMessageDeflate?: boolean;
  /** Extra fields for `/health`. */
  health?: () => Record<string, unknown>;
  /** Serve `wss://` and `https://` with this certificate (reloaded when its files change). */
  tls?: TlsFiles;
}

interface Conn { ws: WebSocket; socket: Socket; session: Session; lastSeenMs: number; paused: boolean; inFlight: number }

const CLOSE_POLICY = 1008;
const CLOSE_UNSUPPORTED = 1003;
const CLOSE_TOO_BIG = 1009;
const CLOSE_GOING_AWAY = 1001;
const READY_FRAME = JSON.stringify({ message: 'Authentication successful', type: 'ready' });

const count = { type: 'integer', minimum: 0 };
const healthBody = (description: string) => ({
  type: 'object', description,
  required: ['status', 'collections', 'documents', 'records', 'keyValues', 'estimatedBytes', 'connections'],
  properties: {
    status: { type: 'string', enum: ['ok', 'draining'] },
    collections: count, documents: count, records: count, keyValues: count,
    estimatedBytes: { ...count, description: 'bytes held by records, documents and key/values, estimated' },
    connections: { ...count, description: 'open WebSocket connections' },
    durable: { type: 'boolean', description: 'acknowledged writes are on disk (false: --data not set, memory only)' },
    writable: { type: 'boolean', description: 'false once a write-ahead-log write failed: writes are refused' },
  },
});

/**
 * The plain-HTTP routes: `onHttp` dispatches on this table and `/openapi.json` is generated from
 * it. Another method on these paths gets 405; any other request without an upgrade gets 426
 * (this listener speaks WebSocket).
 */
export const HTTP_ROUTES = [
  {
    method: 'GET', url: '/health',
    schema: { summary: 'Liveness and store counters', response: { 200: healthBody('serving'), 503: healthBody('shutting down') } },
  },
  {
    method: 'GET', url: '/metrics',
    schema: { summary: 'Prometheus metrics', response: { 200: { description: 'the Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } } },
  },
  {
    method: 'GET', url: '/openapi.json',
    schema: { summary: 'This API as OpenAPI 3', response: { 200: { type: 'object', additionalProperties: true, description: 'this document' } } },
  },
] as const satisfies readonly OpenApiRoute[];

/** The version of this API's OpenAPI document (docs/openapi/fluxion.json). */
export const FLUXION_HTTP_API_VERSION = '0.1.0';

/** Fluxion's HTTP endpoints as OpenAPI 3 (the WebSocket protocol: docs/fluxion.md). */
export function fluxionOpenApi(): Record<string, unknown> {
  return openApi(HTTP_ROUTES, {
    title: 'Fluxion HTTP endpoints', version: FLUXION_HTTP_API_VERSION,
    description: 'The plain-HTTP side of fluxiond; the FluxionDB protocol itself is WebSocket, on any path of the same port (docs/fluxion.md).',
  });
}

export class FluxionServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<Conn>();
  /** Open sockets per scoped key (master connections are not counted here). */
  private readonly perKey = new Map<string, number>();
  private scopedCount = 0;
  private readonly opts: Required<Omit<ServerOptions, 'health' | 'host' | 'tls'>> & Pick<ServerOptions, 'health' | 'host' | 'tls'>;
  private idleTimer: NodeJS.Timeout | undefined;
  private draining = false;

  constructor(
    private readonly service: FluxionService,
    private readonly metrics: FluxionMetrics,
    private readonly log: Logger,
    opts: ServerOptions,
  ) {
    this.opts = {
      messageBytesMax: 16 * 1024 * 1024, badInput: 'reply', connectionsMax: 1024, connectionsPerKeyMax: 256,
      masterConnectionsReserved: 16, inFlightMax: 1024,
      outboundBytesMax: 16 * 1024 * 1024, idleTimeoutMs: 120_000, perMessageDeflate: false, ...opts,
    };
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.opts.messageBytesMax * 4,
      perMessageDeflate: this.opts.perMessageDeflate,
    });
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => void this.onHttp(req, res);
    const tls = this.opts.tls;
    this.http = tls ? createHttpsServer(tls.current(), onRequest) : createServer(onRequest);
    if (tls) tls.serve(this.http as ReturnType<typeof createHttpsServer>);
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  /** Starts listening; resolves with the bound address. */
  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.opts.port, this.opts.host ?? '0.0.0.0', () => { this.http.off('error', reject); resolve(); });
    });
    const tick = Math.max(50, Math.floor(this.opts.idleTimeoutMs / 4));
    this.idleTimer = setInterval(() => this.checkIdle(), tick);
    this.idleTimer.unref();
    return this.address();
  }

  address(): AddressInfo { return this.http.address() as AddressInfo; }

  get connectionCount(): number { return this.conns.size; }

  /**
   * Graceful stop: refuse new connections, stop reading, wait (up to `graceMs`) for in-flight
   * requests to be answered, then close every socket with 1001. Durable state is the caller's to
   * close afterwards.
   */
  async close(graceMs = 10_000): Promise<void> {
    this.draining = true;
    if (this.idleTimer) clearInterval(this.idleTimer);
    const closed = new Promise<void>((r) => this.http.close(() => r()));
    for (const c of this.conns) c.ws.pause();
    const deadline = Date.now() + graceMs;
    while ([...this.conns].some((c) => c.inFlight > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const c of this.conns) c.ws.close(CLOSE_GOING_AWAY, 'server shutting down');
    const hardStop = setTimeout(() => { for (const c of this.conns) c.ws.terminate(); }, 1000);
    while (this.conns.size > 0 && Date.now() < deadline + 1500) await new Promise((r) => setTimeout(r, 10));
    clearTimeout(hardStop);
    this.http.closeAllConnections();
    await closed;
  }

  private async onHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const route = HTTP_ROUTES.find((r) => r.method === req.method && r.url === path);
    try {
      switch (route?.url) {
        case '/health': {
          const body = { status: this.draining ? 'draining' : 'ok', ...this.service.store.stats(), connections: this.conns.size, ...this.opts.health?.() };
          res.writeHead(this.draining ? 503 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
          break;
        }
        case '/metrics': {
          const text = await this.metrics.registry.metrics();
          res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text);
          break;
        }
        case '/openapi.json':
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fluxionOpenApi()));
          break;
        default:
          if (HTTP_ROUTES.some((r) => r.url === path)) {
            res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET' }).end(`method ${req.method} not allowed; use GET\n`);
            break;
          }
          res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' })
            .end('FluxionDB speaks WebSocket: connect with ws://host:port/?api-key=KEY; GET /health, /metrics and /openapi.json are plain HTTP\n');
      }
    } catch (err) {
      this.log.error({ err }, 'http_handler_failed');
      if (!res.headersSent) res.writeHead(500).end('internal error\n');
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const reject = (status: string, body: string): void => {
      socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    };
    if (this.draining) return reject('503 Service Unavailable', 'server is shutting down');
    let key: string, ip: string, name: string, master: boolean;
    try {
      const q = new URL(req.url ?? '/', 'http://x').searchParams;
      ip = (socket as Socket).remoteAddress ?? '';
      key = q.get('api-key') ?? '';
      name = q.get('name') ?? '';
      master = this.service.authenticate(key).master;
    } catch (err) {
      if (err instanceof AuthError) return reject('401 Unauthorized', err.message);
      this.log.error({ err }, 'upgrade_failed');
      return reject('400 Bad Request', 'bad request');
    }
    const { connectionsMax, connectionsPerKeyMax, masterConnectionsReserved } = this.opts;
    const refuse = (status: string, reason: string, body: string): void => {
      this.log.warn({ ip, reason, master, connections: this.conns.size }, 'connection_refused');
      reject(status, body);
    };
    if (master) {
      if (this.conns.size >= connectionsMax) {
        return refuse('503 Service Unavailable', 'connections_max', `too many connections (limit ${connectionsMax})`);
      }
    } else {
      if ((this.perKey.get(key) ?? 0) >= connectionsPerKeyMax) {
        return refuse('429 Too Many Requests', 'connections_per_key_max',
          `too many connections for this API key (limit ${connectionsPerKeyMax} per key)`);
      }
      const scopedMax = Math.max(0, connectionsMax - masterConnectionsReserved);
      if (this.scopedCount >= scopedMax || this.conns.size >= connectionsMax) {
        return refuse('503 Service Unavailable', 'connections_max',
          `too many connections (limit ${connectionsMax}, of which ${masterConnectionsReserved} are reserved for the master key)`);
      }
    }
    // The session is opened only once the upgrade completes, so a handshake that ws rejects
    // (bad headers, closed socket) leaves nothing behind that would count against the limits.
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      let session: Session;
      try {
        session = this.service.openSession(key, ip, name);
      } catch (err) {
        ws.close(CLOSE_POLICY, err instanceof AuthError ? err.message : 'handshake failed');
        return;
      }
      this.onOpen(ws, socket as Socket, session);
    });
  }

  private onOpen(ws: WebSocket, socket: Socket, session: Session): void {
    const conn: Conn = { ws, socket, session, lastSeenMs: Date.now(), paused: false, inFlight: 0 };
    this.conns.add(conn);
    if (!session.master) {
      this.perKey.set(session.key, (this.perKey.get(session.key) ?? 0) + 1);
      this.scopedCount++;
    }
    ws.send(READY_FRAME);
    ws.on('message', (data, isBinary) => this.onMessage(conn, data, isBinary));
    ws.on('pong', () => { conn.lastSeenMs = Date.now(); });
    ws.on('error', (err) => this.log.debug({ err, session: session.id }, 'socket_error'));
    ws.on('close', () => {
      if (!this.conns.delete(conn)) return;
      if (!session.master) {
        const n = (this.perKey.get(session.key) ?? 1) - 1;
        if (n > 0) this.perKey.set(session.key, n); else this.perKey.delete(session.key);
        this.scopedCount--;
      }
      this.service.closeSession(session);
    });
  }

  private onMessage(conn: Conn, raw: RawData, isBinary: boolean): void {
    conn.lastSeenMs = Date.now();
    if (isBinary) { conn.ws.close(CLOSE_UNSUPPORTED, 'text frames only'); return; }
    const buf = raw as Buffer;
    const text = buf.toString('utf8');
    const close = this.opts.badInput === 'close';
    let env: unknown;
    try { env = JSON.parse(text); } catch { env = undefined; }
    const o = typeof env === 'object' && env !== null && !Array.isArray(env) ? env as Record<string, unknown> : undefined;
    const id = o !== undefined && typeof o.id === 'string' && o.id !== '' ? o.id : undefined;
    if (buf.length > this.opts.messageBytesMax) {
      if (close) { conn.ws.close(CLOSE_TOO_BIG, 'message too large'); return; }
      this.send(conn, id, { error: `request too large: ${buf.length} bytes exceeds the limit of ${this.opts.messageBytesMax} bytes` });
      return;
    }
    const type = o?.type;
    const data = o?.data;
    if (id === undefined || typeof type !== 'string' || type === '' || typeof data !== 'string' || data === '') {
      if (close) { conn.ws.close(CLOSE_POLICY, 'invalid request'); return; }
      const why = o === undefined ? 'frame is not a JSON object' : '`id`, `type` and `data` must be non-empty strings';
      this.send(conn, id, { error: `invalid request envelope: ${why}` });
      return;
    }
    this.metrics.requests.inc({ type: isMessageType(type) || type === 'auth' ? type : 'unknown' });
    let result: Reply | Promise<Reply>;
    try {
      result = this.service.handle(conn.session, type, data);
    } catch (err) {
      this.fail(conn, id, err);
      return;
    }
    if (result instanceof Promise) {
      conn.inFlight++;
      result.then(
        (r) => { conn.inFlight--; this.send(conn, id, r); },
        (err) => { conn.inFlight--; this.fail(conn, id, err); },
      );
      if (conn.inFlight >= this.opts.inFlightMax) this.pause(conn);
    } else {
      this.send(conn, id, result);
    }
  }

  private fail(conn: Conn, id: string, err: unknown): void {
    const close = this.opts.badInput === 'close';
    if (err instanceof UnknownTypeError) {
      if (close) {
        if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(JSON.stringify({ error: 'Unknown message type' }));
        conn.ws.close(CLOSE_POLICY, 'unknown message type');
        return;
      }
      this.send(conn, id, { error: 'Unknown message type' });
    } else if (err instanceof PayloadError) {
      if (close) { conn.ws.close(CLOSE_POLICY, 'invalid payload'); return; }
      this.send(conn, id, { error: err.message });
    } else {
      this.log.error({ err, id }, 'request_failed');
      this.send(conn, id, { error: errorText(err) });
    }
  }

  private send(conn: Conn, id: string | undefined, reply: Reply): void {
    const ws = conn.ws;
    if (ws.readyState !== ws.OPEN) return;
    ws.send(id === undefined ? JSON.stringify(reply) : JSON.stringify({ id, ...reply }));
    if (ws.bufferedAmount > this.opts.outboundBytesMax) {
      this.pause(conn);
      conn.socket.once('drain', () => this.maybeResume(conn));
    } else if (conn.paused) {
      this.maybeResume(conn);
    }
  }

  private pause(conn: Conn): void {
    if (conn.paused || this.draining) return;
    conn.paused = true;
    conn.ws.pause();
  }

  private maybeResume(conn: Conn): void {
    if (!conn.paused || this.draining) return;
    if (conn.inFlight > this.opts.inFlightMax / 2 || conn.ws.bufferedAmount > this.opts.outboundBytesMax) return;
    conn.paused = false;
    conn.ws.resume();
  }

  private checkIdle(): void {
    const now = Date.now();
    for (const c of this.conns) {
      if (now - c.lastSeenMs > this.opts.idleTimeoutMs) { c.ws.terminate(); continue; }
      if (c.ws.readyState === c.ws.OPEN) c.ws.ping();
    }
  }
}
