/**
 * Test support: start and stop real `conured` processes on 127.0.0.1 with ephemeral HTTP
 * ports. The compiled CLI is found relative to this file, so tests work from any build folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DIST_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CONURED = join(DIST_ROOT, 'src', 'cli', 'conured.js');
export const CONURECTL = join(DIST_ROOT, 'src', 'cli', 'conurectl.js');

export interface ConuredProcess {
  proc: ChildProcess;
  url: string;
  port: number;
  dataDir: string;
  stderr: () => string;
  /** SIGKILL and wait for exit. */
  kill9(): Promise<void>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface StartOptions {
  dataDir?: string;
  nodeId?: string;
  args?: string[];
  env?: Record<string, string>;
  /** Give up waiting for the started line (and readiness) after this long. */
  startTimeoutMs?: number;
  /** Wait until GET /ready answers 200 (a leader is known and the member caught up); default true. */
  waitReady?: boolean;
}

/** Polls GET /ready until it answers 200. */
export async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(`${url}/ready`, { signal: AbortSignal.timeout(1000) })).ok) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`${url} did not become ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startConured(opts: StartOptions = {}): Promise<ConuredProcess> {
  const dataDir = opts.dataDir ?? tempDir('conured-').dir;
  const args = [CONURED, '--bootstrap', '--node-id', opts.nodeId ?? 'node1', '--data-dir', dataDir,
    '--http-addr', '127.0.0.1:0', '--raft-addr', '127.0.0.1:0', '--client-addr', '127.0.0.1:0', ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env, CONURE_LOG_LEVEL: 'info' } }); // the started line is read at info level
  let err = '';
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`conured did not start within ${opts.startTimeoutMs ?? 15000} ms:\n${err}`)), opts.startTimeoutMs ?? 15000);
    proc.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
      const m = /"http":"127\.0\.0\.1:(\d+)"[^\n]*conured_started/.exec(err);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`conured exited with ${code} before starting:\n${err}`)); });
  });
  if (opts.waitReady ?? true) await waitReady(`http://127.0.0.1:${port}`, opts.startTimeoutMs ?? 15000);
  return {
    proc, port, dataDir, url: `http://127.0.0.1:${port}`,
    stderr: () => err,
    kill9: async () => { proc.kill('SIGKILL'); await exited; },
    stop: async () => { proc.kill('SIGTERM'); return exited; },
  };
}
