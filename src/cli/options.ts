import { hostname } from 'node:os';
import { MEMBER_ID } from '../node/index.js';
import { InvalidArgumentError, joinHostPort, splitHostPort } from '../util/index.js';

/** Parses `2s`, `500ms`, `1m`, `1h` or a bare number of milliseconds. */
export function parseDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`invalid duration ${JSON.stringify(text)}; use e.g. 500ms, 2s, 1m`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!);
}

/** Parses `true/false/1/0/yes/no`; a bare flag (`--bootstrap`) is true. */
export function parseBool(text: string | boolean | undefined): boolean {
  if (text === undefined || text === true || text === '') return true;
  if (text === false) return false;
  const t = text.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw new InvalidArgumentError(`invalid boolean ${JSON.stringify(text)}; use true or false`);
}

/**
 * `--force-new-cluster`: a boolean (bare flag: true), or a member id, which is true only on that
 * member, so one value serves a whole StatefulSet. Throws for anything else.
 */
export function parseForceNewCluster(v: string | boolean | undefined, nodeId: string): boolean {
  if (v === undefined) return false;
  try { return parseBool(v); } catch { /* not a boolean: a member id? */ }
  if (typeof v === 'string' && MEMBER_ID.test(v)) return v === nodeId;
  throw new InvalidArgumentError(`--force-new-cluster: ${JSON.stringify(v)} is neither true/false nor a member id`);
}

export interface HostPort { host: string; port: number }

/** Parses `host:port`, `[v6]:port` or `:port` (all interfaces). */
export function parseHostPort(text: string, flag: string): HostPort {
  const hp = splitHostPort(text);
  if (!hp) throw new InvalidArgumentError(`${flag}: ${JSON.stringify(text)} is not host:port`);
  return { host: hp.host || '0.0.0.0', port: hp.port };
}

/** The address peers should use: the listen address, with a wildcard host replaced by this host's name. */
export function advertised(listen: HostPort, explicit: string | undefined, flag: string): string {
  if (explicit) {
    const hp = parseHostPort(explicit, flag);
    return joinHostPort(hp.host, hp.port);
  }
  const host = listen.host === '0.0.0.0' || listen.host === '::' ? hostname() : listen.host;
  return joinHostPort(host, listen.port);
}

/**
 * Parses `--peer-address id=host:port,id=host:port`: raft addresses that override what a peer
 * advertises (to route a link through a proxy, or across NAT). Later entries win.
 */
export function parsePeerAddresses(text: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of String(text ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const id = eq > 0 ? part.slice(0, eq).trim() : '';
    if (!id) throw new InvalidArgumentError(`--peer-address: ${JSON.stringify(part)} is not id=host:port`);
    const hp = parseHostPort(part.slice(eq + 1).trim(), `--peer-address ${id}`);
    if (hp.host === '0.0.0.0') throw new InvalidArgumentError(`--peer-address ${id}: give a host to dial, not ${JSON.stringify(part.slice(eq + 1))}`);
    out.set(id, joinHostPort(hp.host, hp.port));
  }
  return out;
}
