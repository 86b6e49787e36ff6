/**
 * Test support: a real etcd 3.4 (`etcd` on PATH, Debian's etcd-server) and a real conured as
 * etcd v3 endpoints on 127.0.0.1, each restartable on the same client port and data dir (so a
 * test can kill an endpoint and bring it back).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './cluster.js';
import { startConured, tempDir, type ConuredProcess } from './conured-process.js';

export const HAVE_ETCD = spawnSync('which', ['etcd']).status === 0;

/** A restartable etcd v3 endpoint. */
export interface EtcdEndpoint {
  name: 'etcd' | 'conured';
  /** host:port of the gRPC client API. */
  endpoint: string;
  /** SIGKILL and wait for exit. */
  kill9(): Promise<void>;
  /** Starts again on the same port and data (after kill9). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT the server (a hung endpoint). */
  pause(): void;
  resume(): void;
  /** Stops and removes the data dir. */
  close(): Promise<void>;
}

/**
 * SIGSTOP, and return only once the kernel shows every thread stopped (`T` in /proc): a signal
 * is delivered asynchronously, and a multi-threaded server (etcd is Go) may still answer a
 * request sent right after kill() returns.
 */
function stop(proc: ChildProcess | undefined): void {
  if (!proc?.pid) return;
  proc.kill('SIGSTOP');
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 400; i++) {
    let stopped = true;
    try {
      for (const t of readdirSync(`/proc/${proc.pid}/task`)) {
        const stat = readFileSync(`/proc/${proc.pid}/task/${t}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'T') { stopped = false; break; }
      }
    } catch { return; } // not Linux, or the process is gone
    if (stopped) return;
    Atomics.wait(nap, 0, 0, 5);
  }
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

async function waitTcp(host: string, port: number, timeoutMs: number, proc: ChildProcess): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`process exited with ${proc.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a single-member etcd with its own temp data dir and free ports. */
export async function startEtcd(): Promise<EtcdEndpoint> {
  const { dir, cleanup } = tempDir('conure-etcd-');
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `127.0.0.1:${client}`;
  let proc: ChildProcess | undefined;
  const launch = async () => {
    proc = spawn('etcd', [
      '--name', 'default', '--data-dir', join(dir, 'data'),
      '--listen-client-urls', `http://${endpoint}`, '--advertise-client-urls', `http://${endpoint}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `default=http://127.0.0.1:${peer}`, '--log-level', 'error', '--logger', 'zap',
    ], { stdio: 'ignore' });
    await waitTcp('127.0.0.1', client, 15_000, proc);
  };
  await launch();
  return {
    name: 'etcd', endpoint,
    kill9: async () => { if (proc) { proc.kill('SIGKILL'); await exited(proc); } },
    restart: launch,
    pause: () => { stop(proc); },
    resume: () => { proc?.kill('SIGCONT'); },
    close: async () => { if (proc) { proc.kill('SIGCONT'); proc.kill('SIGKILL'); await exited(proc); } cleanup(); },
  };
}

/** Starts a one-member conured (bootstrap) with a fixed client port so it can be restarted. */
export async function startConuredEndpoint(): Promise<EtcdEndpoint & { process(): ConuredProcess }> {
  const { dir, cleanup } = tempDir('conure-store-');
  const client = await freePort();
  const endpoint = `127.0.0.1:${client}`;
  let p: ConuredProcess | undefined;
  const launch = async () => { p = await startConured({ dataDir: dir, args: ['--client-addr', endpoint] }); };
  await launch();
  return {
    name: 'conured', endpoint,
    process: () => p!,
    kill9: async () => { await p?.kill9(); },
    restart: launch,
    pause: () => { stop(p?.proc); },
    resume: () => { p?.proc.kill('SIGCONT'); },
    close: async () => { p?.proc.kill('SIGCONT'); await p?.kill9(); cleanup(); },
  };
}

export interface EtcdctlRun { code: number; stdout: string; stderr: string }

/** Runs `etcdctl` (API v3) against `endpoint` with `args`; never rejects. */
export function etcdctl(endpoint: string, args: string[], stdin?: string, timeoutMs = 20_000): Promise<EtcdctlRun> {
  return new Promise((resolve) => {
    const child = spawn('etcdctl', [`--endpoints=${endpoint}`, '--dial-timeout=5s', '--command-timeout=10s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(stdin ?? '');
  });
}
