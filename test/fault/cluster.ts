/**
 * The system under test as the fault suite sees it: members that can be killed, restarted,
 * paused and resumed, HTTP endpoints for the workloads, and (for a replicated cluster) the
 * proxies that carry each raft link.
 *
 * `ClusterLauncher` is the plug point for the replicated cluster: today `standaloneLauncher`
 * starts one standalone `conured` (the only shape the server supports); a multi-member launcher
 * implements the same interface, routing raft link `a -> b` through `proxies.get('a->b')`
 * (see nemesis/network.ts), and every nemesis and workload works unchanged.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { startConured, type ConuredProcess } from '../support/conured-process.js';
import type { FaultProxy } from './proxy.js';

/** One member under test. All methods are idempotent where that makes sense. */
export interface FaultNode {
  readonly id: string;
  /** Base URL of its HTTP API; stable across restarts. */
  readonly url: string;
  /** Current OS process id, or undefined while down. */
  pid(): number | undefined;
  isRunning(): boolean;
  isPaused(): boolean;
  /** SIGKILL and wait for the exit. No-op when down. */
  kill9(): Promise<void>;
  /** Starts again with the same flags, data directory and HTTP port. No-op when running. */
  restart(): Promise<void>;
  /** SIGSTOP. No-op when down or paused. */
  pause(): void;
  /** SIGCONT. No-op unless paused. */
  resume(): void;
  /** Graceful SIGTERM (a paused node is resumed first); SIGKILL when it does not exit in `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

/** A running system under test. */
export interface FaultCluster {
  readonly nodes: readonly FaultNode[];
  /** Raft link proxies keyed `from->to`; empty for a single node. */
  readonly proxies: ReadonlyMap<string, FaultProxy>;
  /** True when the members replicate (partitions and membership nemeses apply). */
  readonly replicated: boolean;
  /** HTTP base URLs for clients. */
  endpoints(): string[];
  /** Stops every member and proxy; safe to call twice. */
  close(): Promise<void>;
}

/** Options every launcher accepts. */
export interface LaunchOptions {
  /** Members wanted; a launcher refuses sizes it cannot build. */
  size: number;
  /** Root for data directories (one per member). */
  dataRoot: string;
  /** Folder for node logs (`<id>.log`, appended across restarts). */
  logDir: string;
  /** Extra environment for the members, e.g. a mutation switch. */
  env?: Record<string, string>;
}

/** Starts a system under test. */
export interface ClusterLauncher {
  readonly name: string;
  /** Largest size this launcher can build. */
  readonly sizeMax: number;
  /** True when its members replicate through raft links it can partition (FaultCluster.proxies). */
  readonly replicated: boolean;
  launch(opts: LaunchOptions): Promise<FaultCluster>;
}

/** Start timeout for a member, generous because restarts happen under load on 2 cores. */
const START_TIMEOUT_MS = 30_000;

/** A `conured` member built on test/support/conured-process.ts. */
class ConuredNode implements FaultNode {
  private proc: ConuredProcess | undefined;
  private paused = false;
  private readonly log: WriteStream;
  private readonly httpPort: number;
  private readonly args: string[];

  private constructor(readonly id: string, private readonly dataDir: string, logFile: string, private readonly env: Record<string, string>, first: ConuredProcess) {
    this.log = createWriteStream(logFile, { flags: 'a' });
    this.httpPort = first.port;
    this.args = ['--http-addr', `127.0.0.1:${this.httpPort}`];
    this.attach(first);
  }

  static async start(id: string, dataDir: string, logFile: string, env: Record<string, string>): Promise<ConuredNode> {
    const first = await startConured({ dataDir, nodeId: id, env, startTimeoutMs: START_TIMEOUT_MS });
    return new ConuredNode(id, dataDir, logFile, env, first);
  }

  get url(): string { return `http://127.0.0.1:${this.httpPort}`; }

  private attach(p: ConuredProcess): void {
    this.proc = p;
    this.log.write(p.stderr()); // what was logged before startConured resolved
    p.proc.stderr?.on('data', (chunk: Buffer) => this.log.write(chunk));
    p.proc.once('exit', (code, signal) => {
      this.log.write(JSON.stringify({ fault_suite: 'process_exit', node: this.id, code, signal, time: new Date().toISOString() }) + '\n');
      if (this.proc === p) { this.proc = undefined; this.paused = false; }
    });
  }

  pid(): number | undefined { return this.proc?.proc.pid; }
  isRunning(): boolean { return this.proc !== undefined; }
  isPaused(): boolean { return this.paused; }

  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    await p.kill9();
    this.proc = undefined;
    this.paused = false;
  }

  async restart(): Promise<void> {
    if (this.proc) return;
    this.attach(await startConured({ dataDir: this.dataDir, nodeId: this.id, env: this.env, args: this.args, startTimeoutMs: START_TIMEOUT_MS }));
  }

  pause(): void {
    if (!this.proc || this.paused) return;
    this.proc.proc.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (!this.proc || !this.paused) return;
    this.proc.proc.kill('SIGCONT');
    this.paused = false;
  }

  async stop(timeoutMs = 20_000): Promise<void> {
    const p = this.proc;
    if (p) {
      this.resume();
      const timer = setTimeout(() => p.proc.kill('SIGKILL'), timeoutMs);
      await p.stop();
      clearTimeout(timer);
      this.proc = undefined;
    }
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }
}

/** Launches one standalone `conured` (today's only server shape; `--join` is refused). */
export const standaloneLauncher: ClusterLauncher = {
  name: 'standalone',
  sizeMax: 1,
  replicated: false,
  async launch(opts: LaunchOptions): Promise<FaultCluster> {
    if (opts.size !== 1) throw new RangeError(`the standalone launcher builds 1 member, not ${opts.size}; multi-member clusters wait for raft replication`);
    mkdirSync(opts.logDir, { recursive: true });
    const dataDir = join(opts.dataRoot, 'n1');
    mkdirSync(dataDir, { recursive: true });
    const node = await ConuredNode.start('n1', dataDir, join(opts.logDir, 'n1.log'), opts.env ?? {});
    let closed: Promise<void> | undefined;
    return {
      nodes: [node],
      proxies: new Map(),
      replicated: false,
      endpoints: () => [node.url],
      close: () => (closed ??= node.stop()),
    };
  },
};
