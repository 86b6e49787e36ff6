/**
 * Test support: real `conure-platform serve` processes on 127.0.0.1 (a free API port each),
 * their JSON log lines, and cleanup of every process started under a test's data directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { DIST_ROOT } from './conured-process.js';
import { freePort } from './cluster.js';
import { PlatformClient } from '../../src/client/platform/index.js';

export const CONURE_PLATFORM = join(DIST_ROOT, 'src', 'cli', 'conure-platform.js');
export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface PlatformProcess {
  url: string;
  port: number;
  proc: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  admin: PlatformClient;
  exited: Promise<number | string>;
  /** Log lines with this msg. */
  events(msg: string): Array<Record<string, unknown>>;
  kill9(): Promise<void>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | string>;
}

export interface PlatformStartOptions {
  dataDir: string;
  storeEndpoints?: string;
  instanceId?: string;
  env?: Record<string, string>;
  port?: number;
}

/**
 * A block of 100 instance ports derived from the data directory, so test files running in
 * parallel (each with its own store) rarely probe the same ports, and replicas sharing a data
 * directory (or a restart) use the same block.
 */
export function portRangeFor(dataDir: string): string {
  const base = 21000 + 100 * (createHash('sha256').update(dataDir).digest().readUInt32BE(0) % 89);
  return `${base}-${base + 99}`;
}

export async function startPlatformProcess(o: PlatformStartOptions): Promise<PlatformProcess> {
  const port = o.port ?? await freePort();
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    CONURE_LOG_LEVEL: 'info', PORT: String(port), PLATFORM_DATA_DIR: o.dataDir, PLATFORM_ADMIN_TOKEN: ADMIN_TOKEN,
    STATUS_SYNC_INTERVAL: '1', LEADER_LEASE_SECONDS: '3', PLATFORM_PORT_RANGE: portRangeFor(o.dataDir),
    ...(o.storeEndpoints && { PLATFORM_STORE_ENDPOINTS: o.storeEndpoints }),
    ...(o.instanceId && { PLATFORM_INSTANCE_ID: o.instanceId }),
    ...o.env,
  };
  const proc = spawn(process.execPath, ['--enable-source-maps', CONURE_PLATFORM, 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const exited = new Promise<number | string>((r) => proc.on('exit', (c, s) => r(c ?? s ?? -1)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`conure-platform did not start:\n${raw.join('\n')}`)); }, 60_000);
    let buf = '';
    proc.stderr!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        raw.push(line);
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          logs.push(j);
          if (j.msg === 'platform_started') { clearTimeout(timer); resolve(); }
        } catch { /* plain text */ }
      }
    });
    void exited.then((c) => { clearTimeout(timer); reject(new Error(`conure-platform exited with ${c}:\n${raw.join('\n')}`)); });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url, port, proc, logs, exited,
    admin: new PlatformClient({ url, token: ADMIN_TOKEN }),
    events: (msg) => logs.filter((l) => l.msg === msg),
    kill9: async () => { proc.kill('SIGKILL'); await exited; },
    stop: () => { proc.kill('SIGTERM'); return exited; },
  };
}

/** Polls `fn` until it returns a truthy value. */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) { last = err; }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
