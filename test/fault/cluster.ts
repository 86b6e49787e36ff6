/**
 * The system under test as the fault suite sees it: real `conured` members on 127.0.0.1 that
 * can be killed, restarted (optionally with a wiped disk), paused and resumed, HTTP and etcd
 * endpoints for the workloads, and the proxies that carry every raft link.
 *
 * Wiring: member `a` reaches member `b` through `proxies.get('a->b')`: `a` starts with
 * `--peer-address b=<proxy port>`, the proxy forwards to `b`'s raft listener. Raft messages
 * from `a` to `b` always travel on `a`'s own outbound connection, so cutting that proxy cuts
 * exactly the directed link (see nemesis/network.ts). Client traffic (HTTP, gRPC) and snapshot
 * fetches do not go through the proxies: a partition separates the members, not the clients.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePeerSecretFile, PeerSecret } from '../../src/node/peer-auth.js';
import { CONURED } from '../support/conured-process.js';
import { freePort } from '../support/cluster.js';
import { FaultProxy } from './proxy.js';
import { linkName } from './nemesis/network.js';

/** One member under test. All methods are idempotent where that makes sense. */
export interface FaultNode {
  readonly id: string;
  readonly role: 'voter' | 'arbiter';
  /** Its data directory (its own small file system when the cluster was launched with `diskBytes`). */
  readonly dataDir: string;
  /** Base URL of its HTTP API; stable across restarts. */
  readonly url: string;
  /** `127.0.0.1:port` of its etcd gRPC API (arbiters serve none); stable across restarts. */
  readonly grpc: string;
  /** `127.0.0.1:port` of its own raft listener (the proxies forward to it). */
  readonly raft: string;
  /** Current OS process id, or undefined while down. */
  pid(): number | undefined;
  isRunning(): boolean;
  isPaused(): boolean;
  /** SIGKILL and wait for the exit. No-op when down. */
  kill9(): Promise<void>;
  /**
   * Starts again with the same flags and ports. No-op when running. `wipe` deletes the data
   * directory first: the member comes back empty and joins again as a new learner.
   */
  restart(opts?: { wipe?: boolean }): Promise<void>;
  /** SIGSTOP. No-op when down or paused. */
  pause(): void;
  /** SIGCONT. No-op unless paused. */
  resume(): void;
}

/** A running system under test. */
export interface FaultCluster {
  readonly nodes: readonly FaultNode[];
  /** Raft link proxies keyed `from->to`; empty for a single member. */
  readonly proxies: ReadonlyMap<string, FaultProxy>;
  /** True when the members replicate (two or more). */
  readonly replicated: boolean;
  /** True when each data directory is its own small file system (`LaunchOptions.diskBytes`). */
  readonly diskLimited: boolean;
  /** The cluster secret's HTTP token for member-only endpoints; undefined when peers run without one. */
  readonly peerToken: string | undefined;
  /** HTTP base URLs of the data-bearing members, for clients. */
  endpoints(): string[];
  /** etcd gRPC `host:port` of the data-bearing members, for clients. */
  etcdEndpoints(): string[];
  /** Stops every member and proxy; safe to call twice. */
  close(): Promise<void>;
}

/** Options every launcher accepts. */
export interface LaunchOptions {
  /** Members wanted (voters + arbiters); a launcher refuses sizes it cannot build. */
  size: number;
  /** How many of them are arbiters (default 0). */
  arbiters?: number;
  /** Root for data directories (one per member). */
  dataRoot: string;
  /** Folder for node logs (`<id>.log`, appended across restarts). */
  logDir: string;
  /** Extra environment for the members, e.g. a mutation switch. */
  env?: Record<string, string>;
  /** Give each member's data directory its own tmpfs of this size, so it can be filled (needs root). */
  diskBytes?: number;
  /** Members authenticate each other with a cluster secret (default true, as every deployment does). */
  peerSecret?: boolean;
}

/** Starts a system under test. */
export interface ClusterLauncher {
  readonly name: string;
  /** Throws for a shape it cannot build. */
  launch(opts: LaunchOptions): Promise<FaultCluster>;
}

/** Start timeout for a member, generous because restarts happen under load on 2 cores. */
const START_TIMEOUT_MS = 30_000;
/** Time for a launched cluster to reach its full configuration. */
const FORM_TIMEOUT_MS = 60_000;

interface NodePorts { http: number; raft: number; client: number }

/** A `conured` process with fixed ports and flags, restartable. */
class ConuredNode implements FaultNode {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private paused = false;
  private readonly log: WriteStream;

  constructor(
    readonly id: string,
    readonly role: 'voter' | 'arbiter',
    readonly dataDir: string,
    logFile: string,
    private readonly ports: NodePorts,
    /** Flags for a start; `fresh` when the data directory is empty. */
    private readonly flags: (fresh: boolean) => string[],
    private readonly env: Record<string, string>,
  ) {
    mkdirSync(dataDir, { recursive: true });
    this.log = createWriteStream(logFile, { flags: 'a' });
  }

  get url(): string { return `http://127.0.0.1:${this.ports.http}`; }
  get grpc(): string { return `127.0.0.1:${this.ports.client}`; }
  get raft(): string { return `127.0.0.1:${this.ports.raft}`; }

  pid(): number | undefined { return this.proc?.pid; }
  isRunning(): boolean { return this.proc !== undefined; }
  isPaused(): boolean { return this.paused; }

  /** Spawns the process and resolves once it logged `conured_started` (listeners bound). */
  async start(fresh: boolean): Promise<void> {
    if (this.proc) return;
    const args = [
      CONURED, '--node-id', this.id, '--data-dir', this.dataDir,
      '--http-addr', `127.0.0.1:${this.ports.http}`, '--raft-addr', `127.0.0.1:${this.ports.raft}`, '--client-addr', `127.0.0.1:${this.ports.client}`,
      '--join-backoff', '300ms', ...this.flags(fresh),
    ];
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...this.env, CONURE_LOG_LEVEL: 'info' } });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
      this.log.write(JSON.stringify({ fault_suite: 'process_exit', node: this.id, code, signal, time: new Date().toISOString() }) + '\n');
      if (this.proc === proc) { this.proc = undefined; this.paused = false; }
      resolve();
    }));
    let seen = '';
    let started = false;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.id} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      proc.stderr!.on('data', (chunk: Buffer) => {
        this.log.write(chunk);
        if (started) return;
        seen = (seen + chunk.toString()).slice(-64 * 1024);
        if (seen.includes('conured_started')) { started = true; clearTimeout(timer); resolve(); }
      });
      // The last lines it wrote say why (a port taken meanwhile, a bad flag, ...).
      void this.exited.then(() => { clearTimeout(timer); reject(new Error(`${this.id} exited while starting: ${seen.trim().split('\n').slice(-3).join(' | ').slice(-600)}`)); });
    });
  }

  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill('SIGKILL');
    await this.exited;
  }

  async restart(opts: { wipe?: boolean } = {}): Promise<void> {
    if (this.proc) return;
    if (opts.wipe) {
      // Empty it rather than remove it: it may be a mount point.
      for (const name of readdirSync(this.dataDir)) rmSync(join(this.dataDir, name), { recursive: true, force: true });
    }
    await this.start(opts.wipe ?? false);
  }

  pause(): void {
    if (!this.proc || this.paused) return;
    this.proc.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (!this.proc || !this.paused) return;
    this.proc.kill('SIGCONT');
    this.paused = false;
  }

  async closeLog(): Promise<void> {
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }
}

interface RaftServer { id: string; suffrage: string }

/** The leader's configuration as any running member reports it, or undefined. */
export async function raftConfig(nodes: readonly FaultNode[]): Promise<{ leader: string; servers: RaftServer[] } | undefined> {
  for (const n of nodes) {
    if (!n.isRunning() || n.isPaused()) continue;
    try {
      const res = await fetch(`${n.url}/raft/config`, { signal: AbortSignal.timeout(2000) });
      if (!res.ok) continue;
      const c = (await res.json()) as { leader: string; servers: RaftServer[] };
      if (c.leader) return c;
    } catch { /* down or slow */ }
  }
  return undefined;
}

/** Polls until the configuration satisfies `pred`; throws with the last one seen after `timeoutMs`. */
export async function waitForConfig(nodes: readonly FaultNode[], pred: (servers: RaftServer[]) => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'none';
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    const c = await raftConfig(nodes);
    if (c) {
      last = c.servers.map((s) => `${s.id}:${s.suffrage}`).join(',');
      if (pred(c.servers)) return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last configuration: ${last}`);
}

/** Mounts a tmpfs of `bytes` at `dir`; throws with mount's message when that is not allowed. */
function mountTmpfs(dir: string, bytes: number): void {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'conure-fault', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot mount a tmpfs at ${dir}: ${(r.stderr || r.error?.message || 'mount failed').trim()}`);
}

function unmount(dir: string): void {
  spawnSync('umount', ['-l', dir]);
}

let tmpfsAnswer: string | undefined | null = null;

/** Why data directories cannot get their own tmpfs here (not root, no mount), or undefined when they can. Cached. */
export function tmpfsUnavailableReason(): string | undefined {
  if (tmpfsAnswer !== null) return tmpfsAnswer;
  const dir = mkdtempSync(join(tmpdir(), 'conure-tmpfs-probe-'));
  try {
    mountTmpfs(dir, 1024 * 1024);
    unmount(dir);
    tmpfsAnswer = undefined;
  } catch (err) {
    tmpfsAnswer = (err as Error).message;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return tmpfsAnswer;
}

/**
 * Launches a local cluster: `n1` bootstraps, the other voters and the arbiters (`a1`, …) join
 * through it, and the launch resolves once every member holds its intended suffrage. Every
 * raft link goes through its own FaultProxy. Members keep `--join` with every other member,
 * so one restarted with a wiped disk joins again (even `n1`: a bootstrap member that finds a
 * seed already in a cluster joins instead of founding a second one).
 */
export const localLauncher: ClusterLauncher = {
  name: 'local',
  async launch(opts: LaunchOptions): Promise<FaultCluster> {
    const arbiters = opts.arbiters ?? 0;
    if (!(opts.size >= 1 && opts.size <= 7)) throw new RangeError(`the local launcher builds 1 to 7 members, not ${opts.size}`);
    if (opts.size - arbiters < 1 || arbiters < 0) throw new RangeError(`a cluster needs at least one voter (size ${opts.size}, arbiters ${arbiters})`);
    mkdirSync(opts.logDir, { recursive: true });
    const specs = Array.from({ length: opts.size }, (_, i) => i < opts.size - arbiters
      ? { id: `n${i + 1}`, role: 'voter' as const }
      : { id: `a${i - (opts.size - arbiters) + 1}`, role: 'arbiter' as const });
    const ports = new Map<string, NodePorts>();
    const taken = new Set<number>();
    const distinctPort = async (): Promise<number> => {
      for (let i = 0; i < 20; i++) { const p = await freePort(); if (!taken.has(p)) { taken.add(p); return p; } }
      throw new Error('no distinct free port after 20 probes');
    };
    for (const s of specs) ports.set(s.id, { http: await distinctPort(), raft: await distinctPort(), client: await distinctPort() });
    const proxies = new Map<string, FaultProxy>();
    const nodes: ConuredNode[] = [];
    mkdirSync(opts.dataRoot, { recursive: true });
    const secretFile = opts.peerSecret === false ? undefined : ensurePeerSecretFile(opts.dataRoot);
    const peerToken = secretFile ? PeerSecret.fromFile(secretFile).httpToken : undefined;
    const mounted: string[] = [];
    let closed: Promise<void> | undefined;
    // The data is thrown away after a run: SIGKILL, not a graceful stop (members shutting down
    // together would each try to hand leadership to another that is leaving too).
    const close = () => (closed ??= (async () => {
      await Promise.all(nodes.map((n) => n.kill9().catch(() => undefined)));
      await Promise.all(nodes.map((n) => n.closeLog()));
      await Promise.all([...proxies.values()].map((p) => p.close()));
      for (const dir of mounted) unmount(dir);
    })());
    try {
      // The members' ports were probed free and released; a proxy listening on an ephemeral port
      // may be handed one of them, and that member then cannot bind it ("exited while
      // starting"). Such a proxy is started again elsewhere (bounded).
      const memberPorts = new Set([...ports.values()].flatMap((p) => [p.http, p.raft, p.client]));
      for (const a of specs) for (const b of specs) {
        if (a.id === b.id) continue;
        const name = linkName(a.id, b.id);
        for (let attempt = 0; ; attempt++) {
          const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: ports.get(b.id)!.raft }, name });
          if (!memberPorts.has(Number(proxy.address.split(':').pop())) || attempt >= 10) { proxies.set(name, proxy); break; }
          await proxy.close();
        }
      }
      for (const s of specs) {
        const others = specs.filter((o) => o.id !== s.id);
        const seeds = others.filter((o) => o.role === 'voter').map((o) => `http://127.0.0.1:${ports.get(o.id)!.http}`);
        const peerAddress = others.map((o) => `${o.id}=${proxies.get(linkName(s.id, o.id))!.address}`).join(',');
        const flags = (fresh: boolean) => [
          ...(s.id === 'n1' && !fresh ? ['--bootstrap'] : []),
          ...(seeds.length > 0 ? ['--join', seeds.join(',')] : []),
          ...(peerAddress ? ['--peer-address', peerAddress] : []),
          ...(s.role === 'arbiter' ? ['--role', 'arbiter'] : []),
          ...(secretFile ? ['--peer-secret-file', secretFile] : []),
        ];
        const dataDir = join(opts.dataRoot, s.id);
        nodes.push(new ConuredNode(s.id, s.role, dataDir, join(opts.logDir, `${s.id}.log`), ports.get(s.id)!, flags, opts.env ?? {}));
        if (opts.diskBytes) {
          mountTmpfs(dataDir, opts.diskBytes);
          mounted.push(dataDir);
        }
      }
      // n1 founds the cluster; the others join one at a time (raft changes membership one at a time anyway).
      await nodes[0]!.start(false);
      for (const n of nodes.slice(1)) await n.start(false);
      const want = new Map(specs.map((s) => [s.id, s.role]));
      await waitForConfig(nodes, (servers) => servers.length === want.size && servers.every((x) => want.get(x.id) === x.suffrage), `${specs.map((s) => `${s.id}:${s.role}`).join(',')}`, FORM_TIMEOUT_MS);
    } catch (err) {
      await close();
      throw err;
    }
    const data = nodes.filter((n) => n.role === 'voter');
    return {
      nodes, proxies, replicated: nodes.length > 1, diskLimited: mounted.length > 0, peerToken, close,
      endpoints: () => data.map((n) => n.url),
      etcdEndpoints: () => data.map((n) => n.grpc),
    };
  },
};
