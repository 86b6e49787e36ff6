/**
 * `conurectl health` and `conurectl recover`: what the reachable members say, read through
 * `/raft/stats` and judged here (pure functions, so each verdict is unit-tested).
 *
 * recover (the plan, read-only): if some member still has a leader there is nothing to recover.
 * Otherwise the survivor to recover from is the data-bearing member with the highest
 * (last log term, last log index), raft's own "most up-to-date" order: it holds every entry a
 * quorum acknowledged. Arbiters hold no state and are never chosen.
 */
import { normaliseEndpoint } from '../client/index.js';

/** One endpoint's answer: its `/raft/stats`, or why there was none. */
export type MemberAnswer = { endpoint: string; stats: MemberStats } | { endpoint: string; error: string };

/** The `/raft/stats` fields these commands read. */
export interface MemberStats {
  id: string;
  role: 'voter' | 'arbiter';
  state: string;
  suffrage?: string;
  term: number;
  leader_id?: string;
  last_log_index: number;
  last_log_term: number;
  commit_index: number;
  cluster_id?: string | null;
}

/** Reads `/raft/stats` from every endpoint at once (a member that does not answer in time is an error). */
export async function askMembers(endpoints: readonly string[], timeoutMs: number, token?: string): Promise<MemberAnswer[]> {
  return Promise.all(endpoints.map(async (e): Promise<MemberAnswer> => {
    const endpoint = normaliseEndpoint(e);
    try {
      const res = await fetch(`${endpoint}/raft/stats`, { signal: AbortSignal.timeout(timeoutMs), ...(token && { headers: { authorization: `Bearer ${token}` } }) });
      if (!res.ok) return { endpoint, error: `HTTP ${res.status}` };
      const stats = await res.json() as MemberStats;
      if (!stats || typeof stats.id !== 'string' || !Number.isSafeInteger(stats.last_log_index) || !Number.isSafeInteger(stats.last_log_term)) return { endpoint, error: 'not a ConureDB /raft/stats answer' };
      return { endpoint, stats };
    } catch (err) {
      return { endpoint, error: (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message };
    }
  }));
}

export interface HealthVerdict { healthy: boolean; message: string }

/** Healthy when a reachable member knows a leader (the guide's health check: exit 0 then). */
export function judgeHealth(answers: readonly MemberAnswer[]): HealthVerdict {
  const leaders = answers.flatMap((a) => ('stats' in a && a.stats.leader_id ? [{ a, leader: a.stats.leader_id }] : []));
  if (leaders.length > 0) {
    const { a, leader } = leaders.find((l) => l.a.stats.state === 'leader') ?? leaders[0]!;
    return { healthy: true, message: `healthy: leader ${leader} (term ${a.stats.term}), seen by ${a.endpoint}; ${describe(answers)}` };
  }
  return { healthy: false, message: `unhealthy: no reachable member knows a leader; ${describe(answers)}` };
}

export type RecoveryAdvice =
  | { kind: 'not-needed'; message: string }
  | { kind: 'impossible'; message: string }
  | { kind: 'recover'; from: { endpoint: string; stats: MemberStats }; message: string };

/** What an operator should do, from what the reachable members say. */
export function adviseRecovery(answers: readonly MemberAnswer[]): RecoveryAdvice {
  const seen = answers.filter((a): a is { endpoint: string; stats: MemberStats } => 'stats' in a);
  const led = seen.find((a) => a.stats.leader_id);
  if (led) {
    return { kind: 'not-needed', message: `no recovery needed: ${led.endpoint} (${led.stats.id}) knows leader ${led.stats.leader_id} (term ${led.stats.term}). Replace lost members with conurectl members remove, then start new ones with --join.` };
  }
  const candidates = seen.filter((a) => a.stats.role !== 'arbiter' && a.stats.suffrage !== 'arbiter' && a.stats.suffrage !== 'none');
  if (candidates.length === 0) {
    const why = seen.length === 0 ? 'no member answered' : `the members that answered (${seen.map((a) => a.stats.id).join(', ')}) are arbiters, which hold no state`;
    return { kind: 'impossible', message: `cannot recover from a member: ${why}. Restore the latest backup into a new cluster: conurectl snapshot restore <file> --data-dir <empty dir> --node-id <id> --advertise-raft <host:port> --advertise-http <host:port>` };
  }
  const best = [...candidates].sort((x, y) => y.stats.last_log_term - x.stats.last_log_term || y.stats.last_log_index - x.stats.last_log_index)[0]!;
  const others = seen.filter((a) => a !== best).map((a) => a.stats.id);
  const s = best.stats;
  const message = [
    `recover from ${s.id} (${best.endpoint}): it has the most up-to-date log of the members that answered (last log term ${s.last_log_term}, index ${s.last_log_index}; commit ${s.commit_index}).`,
    `1. Stop ${s.id}, then start it again with the same flags plus --force-new-cluster (or, stopped: conurectl recover --data-dir <its data dir> --node-id ${s.id} --yes, then start it as usual).`,
    `   It keeps every entry it has (${s.last_log_index}), becomes the sole voter of a new cluster with a new cluster id, and removes every other member from the configuration.`,
    `2. Wipe the data directories of the other members${others.length > 0 ? ` (${others.join(', ')} answered and will be removed too)` : ''}, and start them with --join ${best.endpoint}.`,
    '   A member of the old cluster that comes back with its old disk is refused by the new one.',
  ].join('\n');
  return { kind: 'recover', from: best, message };
}

function describe(answers: readonly MemberAnswer[]): string {
  return answers.map((a) => ('stats' in a
    ? `${a.endpoint}: ${a.stats.id} ${a.stats.state} term ${a.stats.term} last ${a.stats.last_log_term}/${a.stats.last_log_index}`
    : `${a.endpoint}: unreachable (${a.error})`)).join('; ');
}
