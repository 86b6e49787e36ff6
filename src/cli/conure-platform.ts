#!/usr/bin/env node
/**
 * conure-platform: the database-as-a-service control plane (docs/platform.md).
 *
 *   conure-platform [serve]        run in the foreground (JSON logs on stderr)
 *   conure-platform daemon start   run `serve` detached (log <dataDir>/platform.log, pid <dataDir>/platform.pid),
 *                                  wait for /health, print the URL, the admin token and a curl example
 *   conure-platform daemon status|stop|logs
 *
 * Configuration from flags or the environment (flags win): PORT/--port, PLATFORM_STORE_ENDPOINTS/
 * --store-endpoints, PLATFORM_DRIVER, PLATFORM_DATA_DIR/--data-dir, RECONCILE_INTERVAL,
 * NUM_OPERATION_WORKERS, STATUS_SYNC_INTERVAL, LEADER_LEASE_SECONDS, PLATFORM_ADMIN_TOKEN,
 * PLATFORM_INSTANCE_ID. Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.
 * SIGTERM/SIGINT: stop the API, the workers (their claims are released), resign leadership;
 * the instances keep running and are re-adopted by the next start.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { createLogger } from '../util/index.js';
import { ConfigError, loadConfig, startPlatform, type PlatformConfig } from '../platform/index.js';
import { startEmbeddedStore } from './platform-store.js';
import { exitOnSignals } from './shutdown.js';

const SHUTDOWN_TIMEOUT_MS = 30_000;
const SELF = fileURLToPath(import.meta.url);

type Flags = { port?: string; storeEndpoints?: string; dataDir?: string; driver?: string; host?: string };

function withConfigFlags(c: Command): Command {
  return c
    .addOption(new Option('--port <port>', 'API port (PORT, default 8000)'))
    .addOption(new Option('--host <host>', 'API listen address (PLATFORM_HOST, default 127.0.0.1)'))
    .addOption(new Option('--store-endpoints <list>', 'etcd v3 endpoints of the store (PLATFORM_STORE_ENDPOINTS); none: an embedded ConureDB member'))
    .addOption(new Option('--data-dir <dir>', 'data directory (PLATFORM_DATA_DIR, default ./.conure-platform)'))
    .addOption(new Option('--driver <driver>', 'local | kubernetes (PLATFORM_DRIVER, default local)'));
}

function config(flags: Flags): PlatformConfig {
  try {
    return loadConfig(process.env, flags);
  } catch (err) {
    process.stderr.write(`conure-platform: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

async function serve(flags: Flags): Promise<void> {
  const cfg = config(flags);
  const log = createLogger('conure-platform', { instance_id: cfg.instanceId });
  const fatal = (err: unknown) => {
    log.fatal({ err }, 'platform_fatal');
    process.stderr.write(`conure-platform: ${(err as Error).message}\n`);
    process.exit(1);
  };
  let running;
  try {
    running = await startPlatform(cfg, log, fatal, startEmbeddedStore);
  } catch (err) {
    process.stderr.write(`conure-platform: cannot start: ${(err as Error).message}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
  exitOnSignals(log, running, SHUTDOWN_TIMEOUT_MS, 'platform_stopped');
}

// ---- daemon -------------------------------------------------------------------------------------

function files(cfg: PlatformConfig) {
  return { pid: join(cfg.dataDir, 'platform.pid'), log: join(cfg.dataDir, 'platform.log'), token: join(cfg.dataDir, 'admin-token') };
}

function livePid(pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('conure-platform') ? pid : undefined;
  } catch { return undefined; }
}

async function healthy(url: string): Promise<boolean> {
  try { return (await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })).ok; } catch { return false; }
}

function urlOf(cfg: PlatformConfig): string { return `http://${cfg.host === '0.0.0.0' ? '127.0.0.1' : cfg.host}:${cfg.port}`; }

async function daemonStart(flags: Flags): Promise<void> {
  const cfg = config(flags);
  const f = files(cfg);
  mkdirSync(cfg.dataDir, { recursive: true });
  const url = urlOf(cfg);
  const existing = livePid(f.pid);
  if (existing === undefined) {
    const out = openSync(f.log, 'a');
    const args = [SELF, 'serve', '--data-dir', cfg.dataDir, '--port', String(cfg.port), '--host', cfg.host, ...(cfg.storeEndpoints.length ? ['--store-endpoints', cfg.storeEndpoints.join(',')] : [])];
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out], env: { ...process.env, CONURE_LOG_LEVEL: process.env.CONURE_LOG_LEVEL ?? 'info' } });
    closeSync(out);
    writeFileSync(f.pid, `${child.pid}\n`);
    let exited: number | null = null;
    child.once('exit', (code) => { exited = code ?? 1; });
    child.unref();
    const deadline = Date.now() + 60_000;
    while (!(await healthy(url))) {
      if (exited !== null) { process.stderr.write(`conure-platform: the platform exited with ${exited}; see ${f.log}\n${tail(f.log, 20)}\n`); rmSync(f.pid, { force: true }); process.exit(1); }
      if (Date.now() > deadline) { process.stderr.write(`conure-platform: not healthy within 60 s; see ${f.log}\n`); process.exit(1); }
      await new Promise((r) => setTimeout(r, 200));
    }
  } else if (!(await healthy(url))) {
    process.stderr.write(`conure-platform: already running (pid ${existing}) but ${url}/health does not answer 200\n`);
    process.exit(1);
  }
  const token = cfg.adminToken ?? readFileSync(f.token, 'utf8').trim();
  const pid = livePid(f.pid);
  process.stdout.write([
    `conure-platform is running (pid ${pid}); logs: ${f.log}`,
    `API:         ${url}   (OpenAPI: ${url}/openapi.json)`,
    `Admin token: ${token}   (saved in ${cfg.adminToken ? 'PLATFORM_ADMIN_TOKEN' : f.token})`,
    '',
    'Provision a Fluxion instance, then read its endpoint once it is Ready:',
    `  curl -sS -X POST ${url}/v1/databases -H "Authorization: Bearer ${token}" -H 'Content-Type: application/json' -d '{"engine":"fluxion","tenant":"user123","ram":"512Mi","apiKey":"change-me-0123456789"}'`,
    `  curl -sS "${url}/v1/databases?tenant=user123" -H "Authorization: Bearer ${token}"   # status.phase "Ready"; connect a Fluxion client to <endpoints.ws>/?api-key=change-me-0123456789`,
    '',
  ].join('\n'));
}

async function daemonStop(flags: Flags): Promise<void> {
  const cfg = config(flags);
  const f = files(cfg);
  const pid = livePid(f.pid);
  if (pid === undefined) { process.stdout.write('conure-platform is not running\n'); rmSync(f.pid, { force: true }); return; }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + SHUTDOWN_TIMEOUT_MS + 5000;
  while (livePid(f.pid) !== undefined) {
    if (Date.now() > deadline) { process.kill(pid, 'SIGKILL'); break; }
    await new Promise((r) => setTimeout(r, 100));
  }
  rmSync(f.pid, { force: true });
  process.stdout.write(`conure-platform stopped (pid ${pid}); instances keep running and are re-adopted at the next start\n`);
}

async function daemonStatus(flags: Flags): Promise<void> {
  const cfg = config(flags);
  const pid = livePid(files(cfg).pid);
  const url = urlOf(cfg);
  if (pid === undefined) { process.stdout.write('conure-platform is not running\n'); process.exitCode = 3; return; }
  let health = 'unreachable';
  try { health = await (await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })).text(); } catch { /* keep */ }
  process.stdout.write(`conure-platform is running (pid ${pid}) at ${url}\nhealth: ${health}\n`);
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n');
}

const program = new Command('conure-platform').description('Conure database-as-a-service control plane').showHelpAfterError().exitOverride();
withConfigFlags(program.command('serve', { isDefault: true }).description('run the platform in the foreground')).action((o: Flags) => serve(o));
const daemon = program.command('daemon').description('run the platform in the background (for make run)');
withConfigFlags(daemon.command('start').description('start detached, wait for /health, print the URL and the admin token')).action((o: Flags) => daemonStart(o));
withConfigFlags(daemon.command('stop').description('SIGTERM the background platform and wait')).action((o: Flags) => daemonStop(o));
withConfigFlags(daemon.command('status').description('is it running, and /health')).action((o: Flags) => daemonStatus(o));
withConfigFlags(daemon.command('logs').description('the end of the log')).option('-n, --lines <n>', 'lines', '100')
  .action((o: Flags & { lines: string }) => { process.stdout.write(`${tail(files(config(o)).log, Number(o.lines) || 100)}\n`); });

try {
  await program.parseAsync();
} catch (err) {
  const e = err as Error & { code?: string; exitCode?: number };
  if (e.code?.startsWith('commander.')) process.exit(e.exitCode === 0 ? 0 : 2);
  process.stderr.write(`conure-platform: ${e.message}\n`);
  process.exit(1);
}

