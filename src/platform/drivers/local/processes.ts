/**
 * Detached child processes that outlive the platform, and safe re-adoption of them.
 *
 * A process is "ours" when it is alive, not a zombie, and its /proc/<pid>/cmdline is exactly
 * the command we started (the script path and its data-directory argument included), so a pid
 * reused by an unrelated process is never signalled. Linux only (/proc).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { ConureError } from '../../../util/index.js';

/** Starts `process.execPath args…` detached, stdout+stderr appended to `logFile`; returns its pid. */
export function spawnDetached(args: string[], logFile: string, env: Record<string, string> = {}): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(process.execPath, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...instanceEnv(), ...env },
    });
    child.on('error', () => { /* reported through the pid check and the log */ });
    child.unref();
    if (child.pid === undefined) throw new ConureError('internal', `could not start ${args[0]}; see ${logFile}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/**
 * The platform's environment without its CONURE_* and FLUXION_* settings (an instance gets its
 * configuration from its flags only; e.g. CONURE_UNSAFE_NO_FSYNC must never leak into it).
 * Instances log at CONURE_INSTANCE_LOG_LEVEL (default info).
 */
export function instanceEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('CONURE_') && !k.startsWith('FLUXION_') && k !== 'NODE_TEST_CONTEXT') env[k] = v;
  }
  env.CONURE_LOG_LEVEL = process.env.CONURE_INSTANCE_LOG_LEVEL ?? 'info';
  return env;
}

/** The command line of `pid` (argv), or undefined when it is gone or a zombie. */
export function cmdlineOf(pid: number): string[] | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return undefined;
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return undefined;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** True when `pid` runs `<node> ...args` with exactly these arguments. */
export function isOurs(pid: number | undefined, args: readonly string[]): boolean {
  if (pid === undefined) return false;
  const argv = cmdlineOf(pid);
  if (!argv || argv.length !== args.length + 1) return false;
  return args.every((a, i) => argv[i + 1] === a);
}

/**
 * Pids of live processes running `script` with `flag dir` among their arguments: finds an
 * instance process whose pid was never recorded (a crash between spawn and the pid write).
 */
export function findByDataDir(script: string, flag: string, dir: string): number[] {
  const found: number[] = [];
  let names: string[];
  try { names = readdirSync('/proc'); } catch { return found; }
  for (const n of names) {
    if (!/^[0-9]+$/.test(n)) continue;
    const argv = cmdlineOf(Number(n));
    if (!argv || argv[1] !== script) continue;
    const i = argv.indexOf(flag);
    if (i > 0 && argv[i + 1] === dir) found.push(Number(n));
  }
  return found;
}

/** Sends `signal` to `pid` only if it is still our process; false when it was not. */
export function signalIfOurs(pid: number, args: readonly string[], signal: NodeJS.Signals): boolean {
  if (!isOurs(pid, args)) return false;
  try { process.kill(pid, signal); return true; } catch { return false; }
}

/**
 * Stops our process `pid`: SIGTERM, then waits up to `graceMs`, then SIGKILL and waits up to
 * `killWaitMs` more. Resolves once it is gone; throws `timeout` if even SIGKILL did not end it.
 */
export async function terminate(pid: number, args: readonly string[], graceMs: number, killWaitMs = 5000): Promise<'absent' | 'terminated' | 'killed'> {
  if (!signalIfOurs(pid, args, 'SIGTERM')) return 'absent';
  if (await waitGone(pid, args, graceMs)) return 'terminated';
  signalIfOurs(pid, args, 'SIGKILL');
  if (await waitGone(pid, args, killWaitMs)) return 'killed';
  throw new ConureError('timeout', `process ${pid} did not exit within ${graceMs + killWaitMs} ms of SIGTERM and SIGKILL`);
}

async function waitGone(pid: number, args: readonly string[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isOurs(pid, args)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The last `bytes` of a log file, for error messages. */
export function logTail(file: string, bytes = 1500): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.slice(-bytes);
  } catch {
    return '';
  }
}
