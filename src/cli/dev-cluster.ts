/**
 * `conurectl dev cluster`: a local ConureDB cluster as child processes, in the same shape as
 * the Helm chart (the topology comes from src/planner): `conure-bootstrap-0`, `conure-0…`,
 * `conure-arbiter-0`. Member i (bootstrap, then voters, then the arbiter) serves HTTP on
 * base-port+i, raft on base-port+100+i and etcd gRPC on base-port+200+i. Each member has its
 * own data directory and log file under --data-dir. Ctrl-C or SIGTERM stops them all.
 * With `--tls`, a CA and certificates are made under <data-dir>/tls and every port serves TLS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { MemberHttp, ensurePeerSecretFile } from '../node/index.js';
import { TlsFiles } from '../util/index.js';
import { ensureDevCertificates, type DevCertificates } from './dev-certs.js';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conuredArgs, type LocalMember, planTopology, type ArbiterMode } from '../planner/index.js';

// Shared with the platform's local driver (src/platform/drivers/local), which runs members the same way.
export { conuredArgs, type LocalMember };

export interface DevClusterOptions {
  voters: number;
  arbiter: ArbiterMode;
  basePort: number;
  dataDir: string;
  host: string;
  /** TLS on every port: certificates made under <dataDir>/tls (dev-certs.ts), mutual TLS between members. */
  tls?: boolean;
  /** Where progress lines go (stdout by default). */
  out?: (line: string) => void;
}

const CONURED = join(dirname(fileURLToPath(import.meta.url)), 'conured.js');
const STOP_TIMEOUT_MS = 20_000;

/** The members and local ports a launcher run would use; pure. */
export function planLocalCluster(opts: Omit<DevClusterOptions, 'out' | 'tls'>): LocalMember[] {
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
  const certs = opts.tls ? await ensureDevCertificates(join(opts.dataDir, 'tls'), [...new Set([opts.host, '127.0.0.1', 'localhost'])]) : undefined;
  const scheme = certs ? 'https' : 'http';
  const seeds = members.filter((m) => m.role === 'voter').map((m) => `${scheme}://${m.http}`);
  const secretFile = ensurePeerSecretFile(opts.dataDir);
  const tlsArgs = certs ? devTlsArgs(certs) : [];
  const clientTls = certs && TlsFiles.load({ certFile: certs.client.cert, keyFile: certs.client.key, caFile: certs.ca });
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  let exitCode = 0;

  const exited = members.map((m) => new Promise<void>((resolveExit) => {
    const start = () => {
      const log = createWriteStream(m.logFile, { flags: 'a' });
      const child = spawn(process.execPath, [CONURED, ...conuredArgs(m, seeds, secretFile), ...tlsArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
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
  for (const m of members) out(`  ${m.id.padEnd(18)} ${m.role.padEnd(7)} ${scheme}://${m.http}  raft ${m.raft}  etcd ${m.client}  log ${m.logFile}`);
  out(`export CONURE_ENDPOINTS=${seeds.join(',')}`);
  out(`export CONURE_PEER_SECRET_FILE=${secretFile}   # peers authenticate with it; conurectl needs it for members/snapshot commands`);
  if (certs) {
    const etcdEndpoints = members.filter((m) => m.role === 'voter').map((m) => `https://${m.client}`).join(',');
    out(`export NODE_EXTRA_CA_CERTS=${certs.ca}   # so conurectl (node) trusts the dev CA`);
    out(`ETCDCTL_API=3 etcdctl --cacert ${certs.ca} --cert ${certs.client.cert} --key ${certs.client.key} --endpoints=${etcdEndpoints} put foo bar`);
    out(`curl --cacert ${certs.ca} --cert ${certs.client.cert} --key ${certs.client.key} https://${members[0]!.client}/health`);
  }
  const http = new MemberHttp(clientTls);
  void waitHealthy(members, http, () => stopping).then((ok) => { if (ok) out('cluster is up; Ctrl-C stops it'); });
  await Promise.all(exited);
  clientTls?.close();
  return exitCode;
}

/** TLS on every port of a dev member: client port with client certificates, HTTPS, and mutual TLS between members. */
export function devTlsArgs(c: DevCertificates): string[] {
  return [
    '--cert-file', c.server.cert, '--key-file', c.server.key, '--trusted-ca-file', c.ca, '--client-cert-auth',
    '--http-cert-file', c.server.cert, '--http-key-file', c.server.key, '--http-trusted-ca-file', c.ca,
    '--peer-cert-file', c.peer.cert, '--peer-key-file', c.peer.key, '--peer-trusted-ca-file', c.ca, '--peer-client-cert-auth',
  ];
}

async function waitHealthy(members: LocalMember[], http: MemberHttp, stopped: () => boolean): Promise<boolean> {
  for (let attempt = 0; attempt < 600 && !stopped(); attempt++) {
    const ready = await Promise.all(members.map(async (m) => {
      try { return (await http.fetch(`${http.url(m.http)}/ready`, { signal: AbortSignal.timeout(1000) })).ok; } catch { return false; }
    }));
    if (ready.every(Boolean)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
