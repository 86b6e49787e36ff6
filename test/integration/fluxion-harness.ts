/**
 * Test harness for Fluxion integration tests: runs the real `fluxiond` binary of the same build
 * as a child process on 127.0.0.1 with an ephemeral port, and a minimal protocol client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

/** `<build>/src/cli/fluxiond.js`, resolved from this file's compiled location. */
export const FLUXIOND = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'fluxiond.js');

export interface Daemon {
  port: number;
  proc: ChildProcess;
  /** stderr lines so far (pino JSON). */
  logs: string[];
  url(query: string): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Starts fluxiond with `args` (plus --host/--port unless given) and waits for its `listening` line. */
export async function startDaemon(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<Daemon> {
  const full = [...args];
  if (!full.some((a) => a.startsWith('--port') || a === '-p')) full.push('--port', '0');
  if (!full.some((a) => a.startsWith('--host'))) full.push('--host', '127.0.0.1');
  const proc = spawn(process.execPath, [FLUXIOND, ...full], {
    env: { ...process.env, CONURE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`fluxiond did not start:\n${logs.join('\n')}`)); }, timeoutMs);
    let buf = '';
    proc.stderr!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        try {
          const o = JSON.parse(line) as { msg?: string; port?: number };
          if (o.msg === 'listening' && typeof o.port === 'number') { clearTimeout(timer); resolve(o.port); }
        } catch { /* not JSON: usage errors */ }
      }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`fluxiond exited with ${code}:\n${logs.join('\n')}`)); });
  });
  return {
    port, proc, logs, exited,
    url: (query) => `ws://127.0.0.1:${port}/?${query}`,
    kill: (signal = 'SIGTERM') => { proc.kill(signal); return exited; },
  };
}

/** Runs fluxiond to completion (for flag/exit-code tests). */
export function runDaemon(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [FLUXIOND, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

export type Frame = Record<string, unknown>;

/** A protocol client: waits for `ready`, matches replies by id, records id-less frames and the close code. */
export class Client {
  readonly frames: Frame[] = [];
  closeCode: number | undefined;
  private readonly waiters = new Map<string, (f: Frame) => void>();
  private closedWaiters: Array<(code: number) => void> = [];
  private seq = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw) => {
      const f = JSON.parse(String(raw)) as Frame;
      this.frames.push(f);
      if (typeof f.id === 'string') {
        const w = this.waiters.get(f.id);
        this.waiters.delete(f.id);
        w?.(f);
      }
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      for (const w of this.closedWaiters) w(code);
      for (const [id, w] of this.waiters) w({ id, closed: code });
      this.waiters.clear();
    });
  }

  /** Connects and resolves after the first frame, which must be `ready`. */
  static connect(url: string, timeoutMs = 10_000): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const timer = setTimeout(() => { ws.terminate(); reject(new Error('no ready frame')); }, timeoutMs);
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        let body = '';
        res.on('data', (c: Buffer) => { body += c.toString(); });
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
      });
      ws.once('error', (err) => { clearTimeout(timer); reject(err); });
      const client = new Client(ws);
      ws.once('message', () => {
        clearTimeout(timer);
        const first = client.frames[0]!;
        if (first.type !== 'ready') reject(new Error(`first frame was ${JSON.stringify(first)}`));
        else resolve(client);
      });
    });
  }

  /** Sends `{id, type, data}` (`data` JSON-encoded unless already a string) and awaits the reply with that id. */
  request(type: string, data: unknown, id = `r${++this.seq}`): Promise<Frame> {
    const p = new Promise<Frame>((resolve) => this.waiters.set(id, resolve));
    this.ws.send(JSON.stringify({ id, type, data: typeof data === 'string' ? data : JSON.stringify(data) }));
    return p;
  }

  /** Sends a raw text frame. */
  sendRaw(text: string): void { this.ws.send(text); }

  /** Resolves with the close code (immediately when already closed). */
  closed(timeoutMs = 10_000): Promise<number> {
    if (this.closeCode !== undefined) return Promise.resolve(this.closeCode);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('socket did not close')), timeoutMs);
      this.closedWaiters.push((c) => { clearTimeout(timer); resolve(c); });
    });
  }

  close(): Promise<number> {
    this.ws.close();
    return this.closed();
  }
}

/**
 * Waits until a log line satisfies `pred` (log lines travel over stderr, apart from the socket, so
 * a reply can arrive before the line logged just before it). Resolves with the line, or undefined
 * after `timeoutMs`.
 */
export async function waitForLog(d: Daemon, pred: (line: string) => boolean, timeoutMs = 5000): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = d.logs.find(pred);
    if (line !== undefined || Date.now() >= deadline) return line;
    await new Promise((r) => setTimeout(r, 20));
  }
}
