#!/usr/bin/env node
/**
 * conured: one ConureDB member. Every flag has a CONURE_* environment variable; the flags are
 * the contract the Helm chart and the local launcher rely on (docs/cli.md).
 */
import { Command, Option } from 'commander';
import { hostname } from 'node:os';
import { raftLogExists } from '../storage/index.js';
import { PeerSecret } from '../node/index.js';
import { createLogger } from '../util/index.js';
import { advertised, parseBool, parseDurationMs, parseForceNewCluster, parseHostPort, parsePeerAddresses } from './options.js';
import { startConured, type ConuredConfig, type TlsConfig } from './conured-server.js';
import { TlsFiles } from '../util/index.js';
import { DEFAULT_MVCC_LIMITS } from '../mvcc/index.js';
import { exitOnSignals } from './shutdown.js';

const SHUTDOWN_TIMEOUT_MS = 15_000;

const program = new Command('conured')
  .description('ConureDB member: raft-replicated key-value store with the seed REST API and the etcd v3 API')
  .addOption(new Option('--node-id <id>', 'member id (default: host name)').env('CONURE_NODE_ID'))
  .addOption(new Option('--http-addr <host:port>', 'HTTP API listen address').default('0.0.0.0:8081').env('CONURE_HTTP_ADDR'))
  .addOption(new Option('--raft-addr <host:port>', 'raft peer listen address').default('0.0.0.0:7001').env('CONURE_RAFT_ADDR'))
  .addOption(new Option('--client-addr <host:port>', 'etcd v3 gRPC listen address').default('0.0.0.0:2379').env('CONURE_CLIENT_ADDR'))
  .addOption(new Option('--advertise-http <host:port>', 'HTTP address given to peers and clients').env('CONURE_ADVERTISE_HTTP'))
  .addOption(new Option('--advertise-raft <host:port>', 'raft address given to peers').env('CONURE_ADVERTISE_RAFT'))
  .addOption(new Option('--peer-address <id=host:port,...>', 'dial these raft addresses instead of what the peers advertise (proxies, NAT)').env('CONURE_PEER_ADDRESS'))
  .addOption(new Option('--peer-secret-file <path>', 'cluster secret (≥ 16 bytes) that members prove to each other on the raft port and on member-only HTTP endpoints').env('CONURE_PEER_SECRET_FILE'))
  .addOption(new Option('--cert-file <path>', 'TLS certificate (PEM) for the etcd client port; reloaded when the file changes').env('CONURE_CERT_FILE'))
  .addOption(new Option('--key-file <path>', 'TLS private key (PEM) for the etcd client port').env('CONURE_KEY_FILE'))
  .addOption(new Option('--trusted-ca-file <path>', 'CA bundle (PEM) that client certificates must chain to (with --client-cert-auth)').env('CONURE_TRUSTED_CA_FILE'))
  .addOption(new Option('--client-cert-auth [bool]', 'refuse etcd clients without a certificate signed by --trusted-ca-file').env('CONURE_CLIENT_CERT_AUTH'))
  .addOption(new Option('--peer-cert-file <path>', 'TLS certificate (PEM) this member presents on the raft port, as listener and as dialler').env('CONURE_PEER_CERT_FILE'))
  .addOption(new Option('--peer-key-file <path>', 'TLS private key (PEM) for --peer-cert-file').env('CONURE_PEER_KEY_FILE'))
  .addOption(new Option('--peer-trusted-ca-file <path>', 'CA bundle (PEM) that peer certificates must chain to').env('CONURE_PEER_TRUSTED_CA_FILE'))
  .addOption(new Option('--peer-client-cert-auth [bool]', 'refuse raft connections without a certificate signed by --peer-trusted-ca-file').env('CONURE_PEER_CLIENT_CERT_AUTH'))
  .addOption(new Option('--http-cert-file <path>', 'TLS certificate (PEM) for the HTTP API port (then every member must serve https, and --join takes https:// URLs)').env('CONURE_HTTP_CERT_FILE'))
  .addOption(new Option('--http-key-file <path>', 'TLS private key (PEM) for --http-cert-file').env('CONURE_HTTP_KEY_FILE'))
  .addOption(new Option('--http-trusted-ca-file <path>', "CA bundle (PEM) that other members' HTTP certificates must chain to (default: the system's CAs)").env('CONURE_HTTP_TRUSTED_CA_FILE'))
  .addOption(new Option('--data-dir <dir>', 'data directory').default('/var/lib/conure').env('CONURE_DATA_DIR'))
  .addOption(new Option('--bootstrap [bool]', 'form a new single-member cluster when the data directory is empty').env('CONURE_BOOTSTRAP'))
  .addOption(new Option('--force-new-cluster [bool|member-id]', 'quorum-loss recovery: make this member the sole voter of a new cluster built from its own log, keeping every entry (once per data directory; see docs/operations.md). A member id applies it only to that member (one value for a whole StatefulSet)').env('CONURE_FORCE_NEW_CLUSTER'))
  .addOption(new Option('--join <urls>', 'comma-separated seed HTTP URLs to join through').env('CONURE_JOIN'))
  .addOption(new Option('--join-backoff <duration>', 'wait between join attempts').default('2s').env('CONURE_JOIN_BACKOFF'))
  .addOption(new Option('--join-retries <n>', 'join attempts before giving up; 0 = forever').default('0').env('CONURE_JOIN_RETRIES'))
  .addOption(new Option('--role <role>', 'voter or arbiter').choices(['voter', 'arbiter']).default('voter').env('CONURE_ROLE'))
  .addOption(new Option('--heartbeat-interval <duration>', 'leader heartbeat interval (one raft tick)').default('100ms').env('CONURE_HEARTBEAT_INTERVAL'))
  .addOption(new Option('--election-timeout <duration>', 'time without a leader before an election').default('1s').env('CONURE_ELECTION_TIMEOUT'))
  .addOption(new Option('--snapshot-entries <n>', 'applied entries between snapshots (then the log is compacted)').default('10000').env('CONURE_SNAPSHOT_ENTRIES'))
  .addOption(new Option('--range-response-bytes-max <bytes>', 'largest etcd Range response; larger ones fail with ResourceExhausted').default(String(DEFAULT_MVCC_LIMITS.rangeResponseBytesMax)).env('CONURE_RANGE_RESPONSE_BYTES_MAX'))
  .addOption(new Option('--experimental-watch-progress-notify-interval <duration>', 'period of progress notifications for watches that asked for them (etcd\'s flag)').default('10m').env('CONURE_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL'))
  .addOption(new Option('--range-bytes-in-flight-max <bytes>', 'Range response bytes built and not yet sent, over all calls; more Ranges wait').default(String(DEFAULT_MVCC_LIMITS.rangeBytesInFlightMax)).env('CONURE_RANGE_BYTES_IN_FLIGHT_MAX'))
  .showHelpAfterError();

program.parse();
const o = program.opts<Record<string, string | boolean | undefined>>();
const log = createLogger('conured');

function config(): ConuredConfig {
  const http = parseHostPort(String(o.httpAddr), '--http-addr');
  const raft = parseHostPort(String(o.raftAddr), '--raft-addr');
  const client = parseHostPort(String(o.clientAddr), '--client-addr');
  const joinRetries = wholeNumber(o.joinRetries, '--join-retries', 0);
  const snapshotEntries = wholeNumber(o.snapshotEntries, '--snapshot-entries', 1);
  const rangeResponseBytesMax = wholeNumber(o.rangeResponseBytesMax, '--range-response-bytes-max', 1024);
  const rangeBytesInFlightMax = wholeNumber(o.rangeBytesInFlightMax, '--range-bytes-in-flight-max', 1024);
  const heartbeatMs = parseDurationMs(String(o.heartbeatInterval));
  const electionTimeoutMs = parseDurationMs(String(o.electionTimeout));
  const watchProgressNotifyMs = parseDurationMs(String(o.experimentalWatchProgressNotifyInterval));
  if (watchProgressNotifyMs < 100) throw new Error('--experimental-watch-progress-notify-interval must be at least 100ms');
  if (heartbeatMs < 1) throw new Error('--heartbeat-interval must be at least 1ms');
  if (electionTimeoutMs < 2 * heartbeatMs) throw new Error('--election-timeout must be at least twice --heartbeat-interval');
  return {
    nodeId: String(o.nodeId ?? hostname()),
    dataDir: String(o.dataDir),
    http,
    raft,
    client,
    advertiseHttp: advertised(http, o.advertiseHttp as string | undefined, '--advertise-http'),
    advertiseRaft: advertised(raft, o.advertiseRaft as string | undefined, '--advertise-raft'),
    bootstrap: o.bootstrap === undefined ? false : parseBool(o.bootstrap),
    forceNewCluster: parseForceNewCluster(o.forceNewCluster, String(o.nodeId ?? hostname())),
    join: String(o.join ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    joinBackoffMs: parseDurationMs(String(o.joinBackoff)),
    joinRetries,
    role: o.role === 'arbiter' ? 'arbiter' : 'voter',
    heartbeatMs,
    electionTimeoutMs,
    snapshotEntries,
    rangeResponseBytesMax,
    rangeBytesInFlightMax,
    watchProgressNotifyMs,
    peerAddresses: parsePeerAddresses(o.peerAddress as string | undefined),
    ...(o.peerSecretFile !== undefined && { peerSecret: PeerSecret.fromFile(String(o.peerSecretFile)) }),
    ...tlsConfigs(),
    unsafeNoSync: process.env.CONURE_UNSAFE_NO_FSYNC === '1',
    unsafeStaleReads: process.env.CONURE_UNSAFE_STALE_READS === '1',
    unsafeEarlyAck: process.env.CONURE_UNSAFE_EARLY_ACK === '1',
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
  if (cfg.bootstrap && cfg.role === 'arbiter') {
    console.error('conured: an arbiter cannot --bootstrap a cluster; start it with --join');
    process.exit(2);
  }
  if (cfg.forceNewCluster && cfg.role === 'arbiter') {
    console.error('conured: an arbiter holds no state: it cannot seed a new cluster with --force-new-cluster; recover from a voter, or restore a backup (conurectl snapshot restore)');
    process.exit(2);
  }
  if (cfg.forceNewCluster && !raftLogExists(cfg.dataDir)) {
    console.error(`conured: --force-new-cluster: ${cfg.dataDir} holds no cluster data to recover from (wrong --data-dir? restore a backup with conurectl snapshot restore instead)`);
    process.exit(2);
  }
  if (!cfg.bootstrap && cfg.join.length === 0 && !raftLogExists(cfg.dataDir)) {
    console.error(`conured: ${cfg.dataDir} holds no cluster data: start with --bootstrap to form a new cluster or --join <seed urls> to join one`);
    process.exit(2);
  }
  if (cfg.peerTls && !cfg.peerTls.clientCertAuth && !cfg.peerSecret) log.warn('--peer-cert-file without --peer-client-cert-auth or --peer-secret-file: the raft port encrypts but accepts any TLS client');
  if (cfg.unsafeNoSync) log.warn('CONURE_UNSAFE_NO_FSYNC=1: writes are acknowledged before fsync (fault-test mutation only)');
  if (cfg.unsafeEarlyAck) log.warn('CONURE_UNSAFE_EARLY_ACK=1: the leader commits writes without a quorum (fault-test mutation only)');
  if (cfg.unsafeStaleReads) log.warn('CONURE_UNSAFE_STALE_READS=1: reads skip ReadIndex and may be stale (fault-test mutation only)');
  const fatal = (err: unknown) => {
    log.fatal({ err }, 'conured_fatal');
    console.error(`conured: ${(err as Error).message}`);
    process.exit(1);
  };
  const running = await startConured(cfg, log, fatal).catch((err: Error) => {
    console.error(`conured: cannot start: ${err.message}`);
    process.exit(1);
  });
  exitOnSignals(log, running, SHUTDOWN_TIMEOUT_MS);
}

/** The TLS flag groups: each is all-or-nothing (a certificate needs its key; client auth needs a CA). */
function tlsConfigs(): Pick<ConuredConfig, 'clientTls' | 'peerTls' | 'httpTls'> {
  const clientTls = tlsFlags({ cert: o.certFile, key: o.keyFile, ca: o.trustedCaFile, auth: o.clientCertAuth }, ['--cert-file', '--key-file', '--trusted-ca-file', '--client-cert-auth'], false);
  const peerTls = tlsFlags({ cert: o.peerCertFile, key: o.peerKeyFile, ca: o.peerTrustedCaFile, auth: o.peerClientCertAuth }, ['--peer-cert-file', '--peer-key-file', '--peer-trusted-ca-file', '--peer-client-cert-auth'], true);
  const httpTls = tlsFlags({ cert: o.httpCertFile, key: o.httpKeyFile, ca: o.httpTrustedCaFile, auth: undefined }, ['--http-cert-file', '--http-key-file', '--http-trusted-ca-file', ''], false);
  return { ...(clientTls && { clientTls }), ...(peerTls && { peerTls }), ...(httpTls && { httpTls: httpTls.files }) };
}

function tlsFlags(v: { cert: unknown; key: unknown; ca: unknown; auth: unknown }, [certFlag, keyFlag, caFlag, authFlag]: string[], caRequired: boolean): TlsConfig | undefined {
  const auth = v.auth === undefined ? false : parseBool(v.auth as string | boolean);
  if (v.cert === undefined && v.key === undefined) {
    if (v.ca !== undefined || auth) throw new Error(`${v.ca !== undefined ? caFlag : authFlag} needs ${certFlag} and ${keyFlag}`);
    return undefined;
  }
  if (v.cert === undefined || v.key === undefined) throw new Error(`${certFlag} and ${keyFlag} go together`);
  // A dialling peer verifies the listener's certificate, so the raft port always needs the CA.
  if (v.ca === undefined && (auth || caRequired)) throw new Error(`${auth ? authFlag : certFlag} needs ${caFlag}`);
  const files = TlsFiles.load({ certFile: String(v.cert), keyFile: String(v.key), ...(v.ca !== undefined && { caFile: String(v.ca) }), logger: log });
  return { files, clientCertAuth: auth };
}

function wholeNumber(v: unknown, flag: string, min: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${flag}: ${JSON.stringify(v)} is not a whole number >= ${min}`);
  return n;
}

await main();
