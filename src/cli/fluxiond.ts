#!/usr/bin/env node
/**
 * `fluxiond`: the Fluxion time-series server (FluxionDB WebSocket protocol).
 *
 *   fluxiond --secret-key s3cret --data /var/lib/fluxion --port 8080 --max-memory 2Gi
 *
 * Every flag has an environment variable (FLUXION_*). Exit codes follow the original server:
 * 2 for a missing secret key or a bad option value, 1 when storage cannot be opened.
 * SIGTERM/SIGINT shut down gracefully (answer in-flight requests, flush the WAL, close).
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { startFluxion, type FluxionApp, parseBytes, parseInteger } from '../fluxion/index.js';
import { createLogger, TlsFiles } from '../util/index.js';

interface Flags {
  secretKey?: string;
  secretKeyFile?: string;
  data?: string;
  port: string;
  host: string;
  flushInterval?: string;
  maxMemory?: string;
  snapshotWalBytes: string;
  messageBytesMax: string;
  maxConnections: string;
  connectionsPerKeyMax: string;
  masterConnectionsReserved: string;
  queryBudgetMs: string;
  shutdownTimeout: string;
  idleTimeout: string;
  compatClose?: boolean;
  permessageDeflate?: boolean;
  certFile?: string;
  keyFile?: string;
}

function usageError(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const program = new Command('fluxiond')
    .description('Fluxion: a durable time-series and key/value store speaking the FluxionDB WebSocket protocol')
    .version('FluxionDB 1.0', '-v, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print usage and exit')
    .addOption(new Option('-s, --secret-key <key>', 'master API key (required)').env('FLUXION_SECRET_KEY'))
    .addOption(new Option('--secret-key-file <path>', 'read the master key from a file (e.g. a mounted Kubernetes secret)').env('FLUXION_SECRET_KEY_FILE'))
    .addOption(new Option('-d, --data <dir>', 'data directory (created if needed); without it the server is memory-only').env('FLUXION_DATA'))
    .addOption(new Option('-p, --port <port>', 'listen port').env('FLUXION_PORT').default('8080'))
    .addOption(new Option('--host <addr>', 'listen address').env('FLUXION_HOST').default('0.0.0.0'))
    .addOption(new Option('-f, --flush-interval <seconds>', 'accepted for compatibility; ignored (every write is fsynced before it is acknowledged)').env('FLUXION_FLUSH_INTERVAL'))
    .addOption(new Option('--max-memory <size>', 'soft memory limit (e.g. 2Gi): past it, inserts are refused with an error').env('FLUXION_MAX_MEMORY'))
    .addOption(new Option('--snapshot-wal-bytes <size>', 'write a snapshot after this much WAL').env('FLUXION_SNAPSHOT_WAL_BYTES').default('128Mi'))
    .addOption(new Option('--message-bytes-max <size>', 'largest request frame').env('FLUXION_MESSAGE_BYTES_MAX').default('16Mi'))
    .addOption(new Option('--max-connections <n>', 'open WebSocket connections limit').env('FLUXION_MAX_CONNECTIONS').default('1024'))
    .addOption(new Option('--connections-per-key-max <n>', 'connections one scoped (non-master) API key may hold at once').env('FLUXION_CONNECTIONS_PER_KEY_MAX').default('256'))
    .addOption(new Option('--master-connections-reserved <n>', 'connections of --max-connections that only the master key may use').env('FLUXION_MASTER_CONNECTIONS_RESERVED').default('16'))
    .addOption(new Option('--query-budget-ms <ms>', 'time budget of one qry/qdoc/gvalues scan; past it the query stops with an error (0 = unlimited)').env('FLUXION_QUERY_BUDGET_MS').default('1000'))
    .addOption(new Option('--shutdown-timeout <seconds>', 'on SIGTERM/SIGINT, exit with code 1 if the graceful shutdown takes longer than this').env('FLUXION_SHUTDOWN_TIMEOUT').default('10'))
    .addOption(new Option('--idle-timeout <seconds>', 'close connections silent for this long').env('FLUXION_IDLE_TIMEOUT').default('120'))
    .addOption(new Option('--compat-close', 'close the socket (1008) on invalid requests, like the original server, instead of replying with an error').env('FLUXION_COMPAT_CLOSE'))
    .addOption(new Option('--cert-file <path>', 'TLS certificate (PEM): serve wss:// and https://; reloaded when the file changes').env('FLUXION_CERT_FILE'))
    .addOption(new Option('--key-file <path>', 'TLS private key (PEM) for --cert-file').env('FLUXION_KEY_FILE'))
    .addOption(new Option('--permessage-deflate', 'negotiate permessage-deflate compression when clients offer it').env('FLUXION_PERMESSAGE_DEFLATE'))
    .showHelpAfterError();
  program.parse(process.argv);
  const f = program.opts<Flags>();

  let secretKey = f.secretKey;
  if ((secretKey === undefined || secretKey === '') && f.secretKeyFile !== undefined) {
    try {
      secretKey = readFileSync(f.secretKeyFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      usageError(`cannot read --secret-key-file ${f.secretKeyFile}: ${(err as Error).message}`);
    }
  }
  if (secretKey === undefined || secretKey === '') usageError('secret-key is not set');

  let port: number, maxConnections: number, idleTimeoutS: number;
  let connectionsPerKeyMax: number, masterConnectionsReserved: number, queryBudgetMs: number, shutdownTimeoutS: number;
  let memoryBytesMax = 0, snapshotWalBytes: number, messageBytesMax: number;
  let tls: TlsFiles | undefined;
  try {
    port = parseInteger(f.port, '--port', 0, 65535);
    maxConnections = parseInteger(f.maxConnections, '--max-connections', 1, 1_000_000);
    idleTimeoutS = parseInteger(f.idleTimeout, '--idle-timeout', 1, 86_400);
    connectionsPerKeyMax = parseInteger(f.connectionsPerKeyMax, '--connections-per-key-max', 1, 1_000_000);
    masterConnectionsReserved = parseInteger(f.masterConnectionsReserved, '--master-connections-reserved', 0, maxConnections);
    queryBudgetMs = parseInteger(f.queryBudgetMs, '--query-budget-ms', 0, 3_600_000);
    shutdownTimeoutS = parseInteger(f.shutdownTimeout, '--shutdown-timeout', 1, 3600);
    if (f.flushInterval !== undefined) parseInteger(f.flushInterval, '--flush-interval', -1e9, 1e9);
    if (f.maxMemory !== undefined) memoryBytesMax = parseBytes(f.maxMemory, '--max-memory');
    snapshotWalBytes = parseBytes(f.snapshotWalBytes, '--snapshot-wal-bytes');
    messageBytesMax = parseBytes(f.messageBytesMax, '--message-bytes-max');
    if ((f.certFile === undefined) !== (f.keyFile === undefined)) throw new Error('--cert-file and --key-file go together');
    if (f.certFile !== undefined && f.keyFile !== undefined) tls = TlsFiles.load({ certFile: f.certFile, keyFile: f.keyFile });
  } catch (err) {
    usageError((err as Error).message);
  }

  const log = createLogger('fluxiond');
  if (f.flushInterval !== undefined) log.info('--flush-interval is ignored: every write is durable before it is acknowledged');
  let app: FluxionApp;
  try {
    app = await startFluxion({
      secretKey, host: f.host, port, dataDir: f.data, memoryBytesMax, snapshotWalBytes, messageBytesMax,
      connectionsMax: maxConnections, idleTimeoutMs: idleTimeoutS * 1000,
      badInput: f.compatClose ? 'close' : 'reply', perMessageDeflate: f.permessageDeflate === true,
      queryBudgetMs, connectionsPerKeyMax, masterConnectionsReserved, ...(tls && { tls }),
    }, log);
  } catch (err) {
    log.fatal({ err }, 'startup_failed');
    process.stderr.write(`fluxiond: ${(err as Error).message}\n`);
    process.exit(1);
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting_down');
    // Whatever hangs (a stuck disk, a peer that never reads), the process exits in bounded time.
    setTimeout(() => {
      log.error({ signal, shutdownTimeoutS }, 'shutdown_timed_out');
      process.exit(1);
    }, shutdownTimeoutS * 1000).unref();
    // Sockets get at most half the time to finish in-flight requests; the rest is for the WAL.
    app.close(Math.max(500, Math.floor(shutdownTimeoutS * 500))).then(() => process.exit(0), (err: unknown) => {
      log.fatal({ err }, 'shutdown_failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
