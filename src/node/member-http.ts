/**
 * How a member calls other members' HTTP API (joins, snapshot fetches, forwarded lease
 * keep-alives): plain `fetch` over http, or, when the cluster's HTTP ports serve TLS
 * (`--http-cert-file`), https that trusts the CA in `tls` (node's fetch cannot be given a CA, so
 * https goes through `https.request`). Every member of a cluster uses the same scheme.
 */
import { request } from 'node:https';
import type { TlsFiles } from '../util/index.js';

export interface MemberFetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
}

export class MemberHttp {
  /** `tls`: its CA is what https members' certificates must chain to (system CAs without one). */
  constructor(private readonly tls?: TlsFiles) {}

  get scheme(): 'http' | 'https' { return this.tls ? 'https' : 'http'; }

  /** `scheme://hostPort`, for an address without a scheme (what members advertise). */
  url(hostPort: string): string {
    return /^https?:\/\//.test(hostPort) ? hostPort : `${this.scheme}://${hostPort}`;
  }

  /** fetch, with https URLs verified against the cluster CA. */
  async fetch(url: string, init: MemberFetchInit = {}): Promise<Response> {
    if (!this.tls || !url.startsWith('https:')) return fetch(url, init);
    const { ca } = this.tls.current();
    return new Promise<Response>((resolve, reject) => {
      const req = request(url, { method: init.method ?? 'GET', headers: init.headers ?? {}, ...(ca && { ca }), ...(init.signal && { signal: init.signal }) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
          const status = res.statusCode ?? 502;
          resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers }));
        });
      });
      req.on('error', reject);
      req.end(init.body);
    });
  }
}
