/**
 * The join loop of a member started with `--join`: POST /join {"ID","RaftAddr","HttpAddr","ClientURL","Role"}
 * to each seed in turn until one accepts. A follower answers 409 with the leader's HTTP
 * address, which is tried next. Joining is idempotent, so a restarted member (even one that
 * was removed meanwhile) simply joins again and keeps its data.
 */
import type { Logger } from '../util/index.js';
import { ConureError } from '../util/index.js';
import { MemberHttp } from './member-http.js';
import type { Replicator } from '../seams/index.js';

export interface JoinOptions {
  id: string;
  raftAddr: string;
  httpAddr: string;
  /** The member's etcd client URL, published through the join (etcd's MemberList shows it). */
  clientUrl?: string;
  role: 'voter' | 'arbiter';
  /** The member's log was empty at start (new, or its disk was lost). */
  fresh: boolean;
  /** The cluster id in the member's data directory, if it has one (recovery.ts): the leader refuses another cluster's member. */
  cluster?: string;
  seeds: string[];
  backoffMs: number;
  /** Attempts over all seeds before giving up; 0 means forever. */
  retries: number;
  logger?: Logger;
  /** Stops the loop early (shutdown). */
  signal?: AbortSignal;
  /** Bearer token for the seeds' member-only endpoints (the cluster secret's HTTP token). */
  token?: string;
  /** How to reach members over HTTP (https with the cluster CA); default plain fetch. */
  http?: MemberHttp;
}

/** Resolves once a seed (or the leader it pointed to) accepted the join. */
export async function joinCluster(o: JoinOptions): Promise<{ via: string; outcome: string }> {
  const seeds = o.seeds.map((s) => s.replace(/\/+$/, '')).filter((s) => !isSelf(s, o.httpAddr));
  if (seeds.length === 0) throw new ConureError('invalid_argument', '--join lists no seed other than this member');
  const http = o.http ?? new MemberHttp();
  const body = JSON.stringify({ ID: o.id, RaftAddr: o.raftAddr, HttpAddr: o.httpAddr, ...(o.clientUrl && { ClientURL: o.clientUrl }), Role: o.role, Fresh: o.fresh, ...(o.cluster && { Cluster: o.cluster }) });
  for (let attempt = 1; o.retries === 0 || attempt <= o.retries; attempt++) {
    const queue = [...seeds];
    const tried = new Set<string>();
    while (queue.length > 0) {
      if (o.signal?.aborted) throw new ConureError('closed', 'join cancelled');
      const url = queue.shift()!;
      if (tried.has(url)) continue;
      tried.add(url);
      try {
        const res = await http.fetch(`${url}/join`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...(o.token && { authorization: `Bearer ${o.token}` }) }, signal: AbortSignal.timeout(15_000) });
        const text = await res.text();
        if (res.ok) {
          const outcome = (JSON.parse(text) as { outcome?: string }).outcome ?? 'ok';
          o.logger?.info({ via: url, outcome, attempt }, 'join_accepted');
          return { via: url, outcome };
        }
        let leaderHttp = '';
        try { leaderHttp = (JSON.parse(text) as { leader_http?: string }).leader_http ?? ''; } catch { /* plain text */ }
        if (res.status === 409 && leaderHttp) queue.unshift(http.url(leaderHttp));
        else o.logger?.warn({ via: url, status: res.status, body: text.slice(0, 300), attempt }, 'join_refused');
        if (res.status === 400) throw new ConureError('invalid_argument', `join refused by ${url}: ${text}`);
      } catch (err) {
        if (err instanceof ConureError && err.code === 'invalid_argument') throw err;
        o.logger?.info({ via: url, err: (err as Error).message, attempt }, 'join_attempt_failed');
      }
    }
    await new Promise((r) => setTimeout(r, o.backoffMs));
  }
  throw new ConureError('unavailable', `could not join through ${seeds.join(', ')} after ${o.retries} attempts`);
}

/**
 * True when any reachable seed already belongs to a cluster (its /raft/config lists members).
 * A bootstrap member whose disk was lost must join that cluster rather than found a second one.
 * Members still waiting to join report no members, so a brand-new cluster still bootstraps.
 * Leader or not does not matter: survivors may be mid-election when it looks.
 */
export async function anySeedInCluster(seeds: string[], selfHttp: string, http = new MemberHttp()): Promise<boolean> {
  const answers = await Promise.all(seeds.filter((s) => !isSelf(s, selfHttp)).map(async (s) => {
    try {
      const res = await http.fetch(`${s.replace(/\/+$/, '')}/raft/config`, { signal: AbortSignal.timeout(2000) });
      return res.ok && (((await res.json()) as { servers?: unknown[] }).servers ?? []).length > 0;
    } catch { return false; }
  }));
  return answers.some(Boolean);
}

/** Whether a seed URL points at this member's own HTTP address. */
export function isSelf(seed: string, selfHttp: string): boolean {
  return seed.replace(/^https?:\/\//, '').replace(/\/+$/, '') === selfHttp;
}

/**
 * Records a member's etcd client URL in the membership registry (an `update` through the log)
 * once a leader is known: through `join` (the local MembershipService) when this member leads,
 * else through the leader's `/join` (same id and addresses, new ClientURL). For members with no
 * join of their own to carry it (the bootstrap member, one restarted without seeds). Bounded:
 * 120 attempts, 1 s apart; stops on shutdown.
 */
export async function publishClientUrl(o: {
  replicator: Replicator; join: (body: unknown) => Promise<unknown>; id: string; raftAddr: string; httpAddr: string; role: 'voter' | 'arbiter';
  clientUrl: string; memberHttp: MemberHttp; signal: AbortSignal; log: Logger; token?: string;
}): Promise<void> {
  const body = { ID: o.id, RaftAddr: o.raftAddr, HttpAddr: o.httpAddr, ClientURL: o.clientUrl, Role: o.role, Fresh: false };
  for (let attempt = 0; attempt < 120 && !o.signal.aborted; attempt++) {
    if (o.replicator.members().find((m) => m.id === o.id)?.clientUrl === o.clientUrl) return;
    const st = o.replicator.status();
    const cluster = o.replicator.stats().cluster_id;
    try {
      if (st.isLeader) await o.join(body);
      else if (st.leaderHttp) {
        await joinCluster({ id: o.id, raftAddr: o.raftAddr, httpAddr: o.httpAddr, clientUrl: o.clientUrl, role: o.role, fresh: false, seeds: [o.memberHttp.url(st.leaderHttp)],
          backoffMs: 1000, retries: 1, logger: o.log, signal: o.signal, http: o.memberHttp, ...(o.token && { token: o.token }), ...(typeof cluster === 'string' && { cluster }) });
      }
    } catch (err) {
      o.log.debug({ err: (err as Error).message }, 'client_url_publish_retry');
    }
    await new Promise((r) => setTimeout(r, 1000).unref());
  }
  if (!o.signal.aborted) o.log.warn({ client_url: o.clientUrl }, 'client_url_not_published');
}
