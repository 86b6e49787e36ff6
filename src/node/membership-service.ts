import { lookup } from 'node:dns/promises';
import { ConureError, InvalidArgumentError, NotLeaderError, splitHostPort } from '../util/index.js';
import type { Member, Replicator, Suffrage } from '../seams/index.js';

/** Member ids: 1–128 characters of letters, digits, `.`, `_` and `-` (pod names qualify). */
export const MEMBER_ID = /^[A-Za-z0-9._-]{1,128}$/;

export type Resolver = (host: string) => Promise<unknown>;

export interface JoinResult {
  /** `added`: a new member; `updated`: same id at a new address; `unchanged`: already present as asked. */
  outcome: 'added' | 'updated' | 'unchanged';
  member: Member;
}

/**
 * Validates and carries out membership requests from the seed API (`/join`, `/remove`,
 * `/leader/transfer`) and conurectl. Field names follow the seed API: `ID`, `RaftAddr`,
 * `Role`, plus optional `HttpAddr`, `ClientURL` (the member's etcd client URL, listed by etcd's
 * MemberList), `Fresh` (the joiner's disk is empty) and `Cluster` (the cluster id in the joiner's
 * data directory: a member of another cluster is refused).
 *
 * Errors: `InvalidArgumentError` for a malformed request, an empty id or an address that does
 * not resolve; `NotLeaderError` from the replicator on a follower (the HTTP layer answers 409
 * with the leader); `unsupported` on a standalone member.
 */
export class MembershipService {
  constructor(private readonly replicator: Replicator, private readonly resolve: Resolver = (h) => lookup(h)) {}

  /**
   * Adds a member, or records a new address for an existing one. `body` is the request as
   * received (raw JSON bytes, or an already parsed value). A follower refuses before it looks at
   * the body (409 with the leader, as the seed API does); the leader validates everything, and
   * a refused request changes nothing.
   */
  async join(body: unknown): Promise<JoinResult> {
    this.requireLeader();
    const req = asObject(parseBody(body));
    const id = memberId(req.ID);
    const address = await this.address(req.RaftAddr, 'RaftAddr');
    const httpAddress = req.HttpAddr === undefined ? undefined : await this.address(req.HttpAddr, 'HttpAddr');
    const clientUrl = req.ClientURL === undefined ? undefined : clientUrlOf(req.ClientURL);
    const role = req.Role === undefined || req.Role === '' ? 'voter' : req.Role;
    if (role !== 'voter' && role !== 'arbiter' && role !== 'learner') {
      throw new InvalidArgumentError(`Role must be "voter", "arbiter" or "learner", not ${JSON.stringify(role)}`);
    }
    if (req.Fresh !== undefined && typeof req.Fresh !== 'boolean') throw new InvalidArgumentError('Fresh must be true or false');
    if (req.Cluster !== undefined && (typeof req.Cluster !== 'string' || !/^[0-9a-f]{32}$/.test(req.Cluster))) throw new InvalidArgumentError('Cluster must be a cluster id (32 hex digits)');
    const ours = this.replicator.stats().cluster_id;
    if (typeof req.Cluster === 'string' && typeof ours === 'string' && req.Cluster !== ours) {
      throw new InvalidArgumentError(`${id}'s data belongs to cluster ${req.Cluster}, not to this cluster (${ours}): it was lost before this cluster was recovered with --force-new-cluster, or it belongs elsewhere. Wipe its data directory to join as a new member`);
    }
    const fresh = req.Fresh === true;
    const existing = this.replicator.members().find((m) => m.id === id);
    const suffrage: Suffrage = role;
    if (existing && (existing.suffrage === 'arbiter') !== (suffrage === 'arbiter')) {
      throw new InvalidArgumentError(`${id} is a member as ${existing.suffrage}; it cannot join as ${suffrage} (remove it first)`);
    }
    const sameHttp = httpAddress === undefined || existing?.httpAddress === httpAddress;
    const sameClient = clientUrl === undefined || existing?.clientUrl === clientUrl;
    if (existing && existing.address === address && sameHttp && sameClient && !fresh) return { outcome: 'unchanged', member: existing };
    await this.replicator.addMember({ id, address, ...(httpAddress && { httpAddress }), ...(clientUrl && { clientUrl }), suffrage, fresh });
    const member = this.replicator.members().find((m) => m.id === id) ?? { id, address, suffrage };
    return { outcome: existing ? 'updated' : 'added', member };
  }

  /** Removes a member; removing an id that is not a member succeeds with `removed: false`. */
  async remove(body: unknown): Promise<{ removed: boolean }> {
    this.requireLeader();
    const id = memberId(asObject(parseBody(body)).ID);
    if (!this.replicator.members().some((m) => m.id === id)) return { removed: false };
    await this.replicator.removeMember(id);
    return { removed: true };
  }

  async promote(body: unknown): Promise<void> {
    await this.replicator.promoteMember(memberId(asObject(body).ID));
  }

  /** Transfers leadership to `ID`, or to the best-placed voter when no id is given. */
  async transfer(body: unknown): Promise<void> {
    const req = body === undefined || body === null ? {} : asObject(body);
    await this.replicator.transferLeadership(req.ID === undefined || req.ID === '' ? undefined : memberId(req.ID));
  }

  /** Membership changes are made by the leader; elsewhere: NotLeaderError with the leader's addresses. */
  private requireLeader(): void {
    const st = this.replicator.status();
    if (!st.isLeader) throw new NotLeaderError(st.leader || undefined, st.leaderHttp || undefined);
  }

  private async address(value: unknown, field: string): Promise<string> {
    if (typeof value !== 'string' || value === '') throw new InvalidArgumentError(`${field} is required, as host:port`);
    const hp = splitHostPort(value);
    if (!hp || hp.host === '' || hp.port < 1) throw new InvalidArgumentError(`${field} ${JSON.stringify(value)} is not host:port`);
    const host = hp.host;
    try {
      await withTimeout(this.resolve(host), 3000);
    } catch (err) {
      throw new InvalidArgumentError(`${field} host ${JSON.stringify(host)} does not resolve`, { cause: err });
    }
    return value;
  }
}

function parseBody(body: unknown): unknown {
  if (!(body instanceof Uint8Array)) return body;
  if (body.length === 0) throw new InvalidArgumentError('request body must be a JSON object');
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`malformed JSON: ${(err as Error).message}`, { cause: err });
  }
}

function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidArgumentError('request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** An etcd client URL: `http(s)://host:port`, nothing else (no path, query or credentials), at most 256 characters. */
function clientUrlOf(value: unknown): string {
  const bad = () => new InvalidArgumentError(`ClientURL ${JSON.stringify(value)} must be http://host:port or https://host:port`);
  if (typeof value !== 'string' || value.length > 256) throw bad();
  let u: URL;
  try { u = new URL(value); } catch (err) { throw new InvalidArgumentError(bad().message, { cause: err }); }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname || !u.port || u.username || u.password || u.search || u.hash || (u.pathname !== '/' && u.pathname !== '')) throw bad();
  return `${u.protocol}//${u.host}`;
}

function memberId(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new InvalidArgumentError('ID is required');
  if (!MEMBER_ID.test(value)) throw new InvalidArgumentError(`ID ${JSON.stringify(value)} must be 1-128 letters, digits, ".", "_" or "-"`);
  return value;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new ConureError('timeout', `timed out after ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}
