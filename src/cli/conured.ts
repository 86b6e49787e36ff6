#!/usr/bin/env node
/**
 * conured: one ConureDB member. Every flag has a CONURE_* environment variable; the flags are
 * the contract the Helm chart and the local launcher rely on (docs/cli.md).
 */
import { Command, Option } from 'commander';
import { hostname } from 'node:os';
import { createLogger } from '../util/log.js';
import { advertised, parseBool, parseDurationMs, parseHostPort } from './options.js';
import { startConured, type ConuredConfig } from './conured-server.js';

const SHUTDOWN_TIMEOUT_MS = 15_000;

const program = new Command('conured')
  .description('ConureDB member: raft-replicated key-value store with the seed REST API and the etcd v3 API')
  .addOption(new Option('--node-id <id>', 'member id (default: host name)').env('CONURE_NODE_ID'))
  .addOption(new Option('--http-addr <host:port>', 'HTTP API listen address').default('0.0.0.0:8081').env('CONURE_HTTP_ADDR'))
  .addOption(new Option('--raft-addr <host:port>', 'raft peer listen address').default('0.0.0.0:7001').env('CONURE_RAFT_ADDR'))
  .addOption(new Option('--client-addr <host:port>', 'etcd v3 gRPC listen address').default('0.0.0.0:2379').env('CONURE_CLIENT_ADDR'))
  .addOption(new Option('--advertise-http <host:port>', 'HTTP address given to peers and clients').env('CONURE_ADVERTISE_HTTP'))
  .addOption(new Option('--advertise-raft <host:port>', 'raft address given to peers').env('CONURE_ADVERTISE_RAFT'))
  .addOption(new Option('--data-dir <dir>', 'data directory').default('/var/lib/conure').env('CONURE_DATA_DIR'))
  .addOption(new Option('--bootstrap [bool]', 'form a new single-member cluster when the data directory is empty').env('CONURE_BOOTSTRAP'))
  .addOption(new Option('--join <urls>', 'comma-separated seed HTTP URLs to join through').env('CONURE_JOIN'))
  .addOption(new Option('--join-backoff <duration>', 'wait between join attempts').default('2s').env('CONURE_JOIN_BACKOFF'))
  .addOption(new Option('--join-retries <n>', 'join attempts before giving up; 0 = forever').default('0').env('CONURE_JOIN_RETRIES'))
  .addOption(new Option('--role <role>', 'voter or arbiter').choices(['voter', 'arbiter']).default('voter').env('CONURE_ROLE'))
  .showHelpAfterError();

program.parse();
const o = program.opts<Record<string, string | boolean | undefined>>();
const log = createLogger('conured');

function config(): ConuredConfig {
  const http = parseHostPort(String(o.httpAddr), '--http-addr');
  const raft = parseHostPort(String(o.raftAddr), '--raft-addr');
  const joinRetries = Number(o.joinRetries);
  if (!Number.isInteger(joinRetries) || joinRetries < 0) throw new Error(`--join-retries: ${JSON.stringify(o.joinRetries)} is not a whole number >= 0`);
  return {
    nodeId: String(o.nodeId ?? hostname()),
    dataDir: String(o.dataDir),
    http,
    raft,
    advertiseHttp: advertised(http, o.advertiseHttp as string | undefined, '--advertise-http'),
    advertiseRaft: advertised(raft, o.advertiseRaft as string | undefined, '--advertise-raft'),
    bootstrap: o.bootstrap === undefined ? false : parseBool(o.bootstrap),
    join: String(o.join ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    joinBackoffMs: parseDurationMs(String(o.joinBackoff)),
    joinRetries,
    role: o.role === 'arbiter' ? 'arbiter' : 'voter',
    unsafeNoSync: process.env.CONURE_UNSAFE_NO_FSYNC === '1',
  };
}

async function main(): Promise<void> {
  let cfg: ConuredConfig;
  try {
    cfg = config();
  } catch (err) {
    console.error(`conured: ${(err as Error).message}`);
    process.exit(2);
  }
  if (cfg.join.length > 0 || cfg.role === 'arbiter') {
    console.error('conured: --join and --role arbiter need the raft-replicated member, which this build does not have yet; start a standalone node with --bootstrap');
    process.exit(2);
  }
  if (cfg.unsafeNoSync) log.warn('CONURE_UNSAFE_NO_FSYNC=1: writes are acknowledged before fsync (fault-test mutation only)');
  const running = await startConured(cfg, log).catch((err: Error) => {
    console.error(`conured: cannot start: ${err.message}`);
    process.exit(1);
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutdown_requested');
    setTimeout(() => { log.error('shutdown timed out; exiting'); process.exit(1); }, SHUTDOWN_TIMEOUT_MS).unref();
    running.close().then(() => process.exit(0), (err) => { log.error({ err }, 'shutdown_failed'); process.exit(1); });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

await main();
