/**
 * `conurectl recover --data-dir <dir> --node-id <id> [--yes]`: the rewrite of
 * `conured --force-new-cluster` (node/recovery.ts) carried out on a stopped member's data
 * directory, after saying what it will do. Refuses while a process holds the raft log open. It
 * acts even on a directory recovered before (the flag's once-only rule is for a flag left set).
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { forcedMarker, forceNewCluster, planRecovery, readClusterId, type RecoveryPlan } from '../node/index.js';
import { LmdbRaftLog, raftLogExists } from '../storage/index.js';
import { InvalidArgumentError } from '../util/index.js';

export async function recoverDataDir(o: { dataDir: string; nodeId: string; apply: boolean }): Promise<string> {
  if (!raftLogExists(o.dataDir)) throw new InvalidArgumentError(`${o.dataDir} holds no raft log (raft.mdb): wrong --data-dir, or nothing to recover from (restore a backup with conurectl snapshot restore)`);
  const holders = processesHolding(resolve(o.dataDir, 'raft.mdb'));
  if (holders.length > 0) throw new InvalidArgumentError(`the raft log in ${o.dataDir} is open in process ${holders.join(', ')}: stop the member first`);
  const log = new LmdbRaftLog({ dir: o.dataDir });
  try {
    // Unlike the flag (which may linger in a unit file), an explicit offline run always acts: a
    // second quorum loss of the same member is recovered this way.
    const done = forcedMarker(log);
    const earlier = done ? `\n  (it was recovered before: ${done.at}, into cluster ${done.cluster}${done.cluster === readClusterId(log) ? ', its current one' : ''})` : '';
    const plan = planRecovery(log, o.nodeId);
    if (!o.apply) return `would rewrite ${o.dataDir} (run again with --yes to do it):\n${describePlan(plan)}${earlier}`;
    const r = await forceNewCluster(log, { id: o.nodeId });
    return `rewrote ${o.dataDir}: ${o.nodeId} is the sole voter of new cluster ${r.cluster}.\n${describePlan(r)}\nStart it as usual (without --join); then start the other members with empty data directories and --join <its URL>.`;
  } finally {
    await log.close();
  }
}

function describePlan(p: RecoveryPlan): string {
  return [
    `  keeps every entry it has: last index ${p.lastIndex} (term ${p.lastTerm}), of which ${p.lastIndex - p.commit} after its persisted commit ${p.commit}`,
    `  ${p.promoted ? `makes ${p.id} a voter (it was a learner), ` : ''}removes ${p.removed.length > 0 ? p.removed.join(', ') : 'nobody (it is alone already)'}`,
    `  appends ${p.index - p.lastIndex} configuration entries at term ${p.term} and commits through index ${p.index}; gives the cluster a new id`,
  ].join('\n');
}

/** Pids (Linux /proc) with `file` open; empty where /proc cannot be read. */
function processesHolding(file: string): number[] {
  const pids: number[] = [];
  let procs: string[];
  try { procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d)); } catch { return pids; }
  for (const pid of procs) {
    if (Number(pid) === process.pid) continue;
    let fds: string[];
    try { fds = readdirSync(join('/proc', pid, 'fd')); } catch { continue; }
    for (const fd of fds) {
      try { if (readlinkSync(join('/proc', pid, 'fd', fd)) === file) { pids.push(Number(pid)); break; } } catch { /* gone meanwhile */ }
    }
  }
  return pids;
}
