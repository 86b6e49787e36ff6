/**
 * `conurectl dev cluster`: a local ConureDB cluster as child processes, in the same shape as
 * the Helm chart (the topology comes from src/planner): `conure-bootstrap-0`, `conure-0…`,
 * `conure-arbiter-0`. Member i (bootstrap, then voters, then the arbiter) serves HTTP on
 * base-port+i, raft on base-port+100+i and etcd gRPC on base-port+200+i. Each member has its
 * own data directory and log file under --data-dir. Ctrl-C or SIGTERM stops them all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { ensurePeerSecretFile } from '../node/peer-auth.js';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conuredArgs, type LocalMember } from '../planner/conured-args.js';
import { planTopology, type ArbiterMode } from '../planner/topology.js';

// Shared with the platform's local driver (src/platform/drivers/local), which runs members the same way.
export { conuredArgs, type LocalMember };

export interface DevClusterOptions {
  voters: number;
  arbiter: ArbiterMode;
  basePort: number;
  dataDir: string;
  host: string;
  /** Where progress lines go (stdout by default). */
  out?: (line: string) => void;
}

const CONURED = join(dirname(fileURLToPath(import.meta.url)), 'conured.js');
const STOP_TIMEOUT_MS = 20_000;

/** The members and local ports a launcher run would use; pure. */
export function planLocalCluster(opts: Omit<DevClusterOptions, 'out'>): LocalMember[] {
  const topo = planTopology({ votersReplicas: opts.voters, arbiterMode: opts.arbiter, fullname: 'conure' });
  if (opts.basePort < 1 || opts.basePort + 200 + topo.members.length > 65535) throw new Error(`--base-port ${opts.basePort} leaves no room for ${topo.members.length} members`);
  return topo.members.map((m, i) => ({
    id: m.id,
    role: m.role,
    bootstrap: m.bootstrap,
    http: `${opts.host}:${opts.basePort + i}`,
    raft: `${opts.host}:${opts.basePort + 100 + i}`,
    client: `${opts.host}:${opts.basePort + 200 + i}`,
    dataDir: resolve(opts.dataDir, m.id),
    logFile: resolve(opts.dataDir, `${m.id}.log`),
  }));
}

/** Starts the cluster and resolves when every member has exited (after a signal or a crash). */
export async function runDevCluster(opts: DevClusterOptions): Promise<number> {
  const out = opts.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const members = planLocalCluster(opts);
  const seeds = members.filter((m) => m.role === 'voter').map((m) => `http://${m.http}`);
  const secretFile = ensurePeerSecretFile(opts.dataDir);
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  let exitCode = 0;

  const exited = members.map((m) => new Promise<void>((resolveExit) => {
    const start = () => {
      const log = createWriteStream(m.logFile, { flags: 'a' });
      const child = spawn(process.execPath, [CONURED, ...conuredArgs(m, seeds, secretFile)], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.pipe(log);
      children.set(m.id, child);
      child.on('exit', (code, signal) => {
        children.delete(m.id);
        if (!stopping) {
          exitCode = 1;
          // A cluster survives the loss of a minority: keep the others running, as a real one would.
          out(`${m.id} exited (${signal ?? `code ${code}`}); its log: ${m.logFile}. The other members keep running.`);
        }
        resolveExit();
      });
    };
    start();
  }));

  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    out('stopping…');
    // Followers first, leader-capable bootstrap last, so the leader hands over at most once.
    for (const m of [...members].reverse()) children.get(m.id)?.kill('SIGTERM');
    setTimeout(() => { for (const c of children.values()) c.kill('SIGKILL'); }, STOP_TIMEOUT_MS).unref();
  };
  process.once('SIGINT', () => void stopAll());
  process.once('SIGTERM', () => void stopAll());

  out(`ConureDB dev cluster: ${members.length} member(s) under ${resolve(opts.dataDir)}`);
  for (const m of members) out(`  ${m.id.padEnd(18)} ${m.role.padEnd(7)} http://${m.http}  raft ${m.raft}  etcd ${m.client}  log ${m.logFile}`);
  out(`export CONURE_ENDPOINTS=${members.filter((m) => m.role === 'voter').map((m) => `http://${m.http}`).join(',')}`);
  out(`export CONURE_PEER_SECRET_FILE=${secretFile}   # peers authenticate with it; conurectl needs it for members/snapshot commands`);
  void waitHealthy(members, () => stopping).then((ok) => { if (ok) out('cluster is up; Ctrl-C stops it'); });
  await Promise.all(exited);
  return exitCode;
}

async function waitHealthy(members: LocalMember[], stopped: () => boolean): Promise<boolean> {
  for (let attempt = 0; attempt < 600 && !stopped(); attempt++) {
    const ready = await Promise.all(members.map(async (m) => {
      try { return (await fetch(`http://${m.http}/health`, { signal: AbortSignal.timeout(1000) })).ok; } catch { return false; }
    }));
    if (ready.every(Boolean)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
