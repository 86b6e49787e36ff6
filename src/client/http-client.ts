import { ConureError, InvalidArgumentError, NotLeaderError, UnavailableError, type ErrorCode } from '../util/index.js';

export interface ConureHttpClientOptions {
  /** Base URLs such as `http://127.0.0.1:8081`; tried in turn when one cannot be reached. */
  endpoints: string[];
  /** Per-request timeout; default 10 s. */
  timeoutMs?: number;
  /** Follow a 409 `{"leader_http"}` answer to the leader at most this many times; default 3. */
  leaderRedirectsMax?: number;
  /** Sent as `Authorization: Bearer <token>` (member-only endpoints of a cluster with a secret). */
  token?: string;
}

export interface StatusResponse { is_leader: boolean; leader: string }
export interface RaftServer { id: string; address: string; suffrage: 'voter' | 'learner' | 'arbiter' }
export interface RaftConfigResponse { leader: string; servers: RaftServer[] }

const STATUS_CODE: Record<number, ErrorCode> = { 400: 'invalid_argument', 401: 'unauthenticated', 403: 'permission_denied', 404: 'not_found', 409: 'conflict', 413: 'too_large', 423: 'locked', 501: 'unsupported', 503: 'unavailable', 504: 'timeout', 507: 'no_space' };

/**
 * A small client for the ConureDB HTTP API (seed REST API and membership). Connection
 * failures move on to the next endpoint; an HTTP error answer does not (it is the cluster's
 * answer) except a 409 naming the leader, which is retried there for membership calls.
 * Errors: `UnavailableError` when no endpoint answers, otherwise a ConureError whose code
 * matches the HTTP status, with the server's message.
 */
export class ConureHttpClient {
  private readonly endpoints: string[];
  private readonly timeoutMs: number;
  private readonly redirectsMax: number;
  private readonly auth: Record<string, string>;

  constructor(opts: ConureHttpClientOptions) {
    if (opts.endpoints.length === 0) throw new InvalidArgumentError('no endpoints given; use --endpoints or CONURE_ENDPOINTS');
    this.endpoints = opts.endpoints.map(normaliseEndpoint);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.redirectsMax = opts.leaderRedirectsMax ?? 3;
    this.auth = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  }

  async put(key: string, value: Uint8Array | string): Promise<void> {
    await this.request('PUT', `/kv?key=${encodeURIComponent(key)}`, typeof value === 'string' ? Buffer.from(value) : value);
  }

  async get(key: string, consistency: 'linearizable' | 'serializable' = 'linearizable'): Promise<Buffer> {
    const q = consistency === 'serializable' ? '&consistency=serializable' : '';
    return (await this.request('GET', `/kv?key=${encodeURIComponent(key)}${q}`)).body;
  }

  async delete(key: string): Promise<void> {
    await this.request('DELETE', `/kv?key=${encodeURIComponent(key)}`);
  }

  async status(): Promise<StatusResponse> { return this.json('GET', '/status'); }
  async raftConfig(): Promise<RaftConfigResponse> { return this.json('GET', '/raft/config'); }
  async raftStats(): Promise<Record<string, unknown>> { return this.json('GET', '/raft/stats'); }

  async join(id: string, raftAddr: string, role: string, httpAddr?: string): Promise<unknown> {
    return this.json('POST', '/join', { ID: id, RaftAddr: raftAddr, Role: role, ...(httpAddr && { HttpAddr: httpAddr }) }, true);
  }
  async remove(id: string): Promise<{ removed: boolean }> { return this.json('POST', '/remove', { ID: id }, true); }
  async promote(id: string): Promise<unknown> { return this.json('POST', '/promote', { ID: id }, true); }
  async transferLeader(id?: string): Promise<unknown> { return this.json('POST', '/leader/transfer', id ? { ID: id } : {}); }

  private async json<T>(method: string, path: string, body?: unknown, followLeader = false): Promise<T> {
    const res = await this.request(method, path, body === undefined ? undefined : Buffer.from(JSON.stringify(body)), followLeader);
    return JSON.parse(res.body.toString('utf8')) as T;
  }

  private async request(method: string, path: string, body?: Uint8Array, followLeader = false): Promise<{ status: number; body: Buffer }> {
    const failures: string[] = [];
    for (const base of this.endpoints) {
      let target = base;
      for (let redirect = 0; redirect <= this.redirectsMax; redirect++) {
        let res: Response;
        try {
          res = await fetch(target + path, { method, ...(body && { body }), headers: { ...this.auth, ...(body && { 'content-type': 'application/octet-stream' }) }, signal: AbortSignal.timeout(this.timeoutMs) });
        } catch (err) {
          failures.push(`${target}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
          break; // next endpoint
        }
        const buf = Buffer.from(await res.arrayBuffer());
        if (res.ok) return { status: res.status, body: buf };
        const parsed = parseError(buf);
        if (res.status === 409 && followLeader && parsed.leader_http) {
          target = normaliseEndpoint(parsed.leader_http);
          continue;
        }
        if (res.status === 409 && parsed.code === 'not_leader') throw new NotLeaderError(parsed.leader, parsed.leader_http);
        throw new ConureError(STATUS_CODE[res.status] ?? 'internal', `${method} ${path} → ${res.status}: ${parsed.message}`);
      }
    }
    throw new UnavailableError(`no endpoint answered: ${failures.join('; ')}`);
  }
}

function parseError(buf: Buffer): { message: string; code?: string; leader?: string; leader_http?: string } {
  const text = buf.toString('utf8');
  try {
    const j = JSON.parse(text) as { error?: string; code?: string; leader?: string; leader_http?: string };
    if (j && typeof j === 'object') return { message: j.error ?? text, ...(j.code && { code: j.code }), ...(j.leader && { leader: j.leader }), ...(j.leader_http && { leader_http: j.leader_http }) };
  } catch { /* plain-text error from the seed API */ }
  return { message: text };
}

/** Accepts `host:port`, `http://host:port` or `https://…`; strips trailing slashes. */
export function normaliseEndpoint(e: string): string {
  const t = e.trim().replace(/\/+$/, '');
  return /^https?:\/\//.test(t) ? t : `http://${t}`;
}
