/**
 * Wires a complete Fluxion server: store ← recovery ← commit log → service → transport, plus
 * metrics. `startFluxion` is what `fluxiond` runs; tests and benchmarks can run it in-process.
 *
 * Ownership: the returned `FluxionApp` owns every resource it opened; `close()` stops accepting
 * connections, answers in-flight requests, flushes the WAL and releases the data directory.
 */
import type { TlsFiles, Logger } from '../util/index.js';
import type { AddressInfo } from 'node:net';
import { FluxionMetrics } from './metrics.js';
import { DurableLog, MemoryCommitLog, type CommitLog } from './persistence.js';
import { FluxionServer } from './server.js';
import { FluxionService } from './service.js';
import { FluxionStore } from './store.js';

export interface FluxionConfig {
  secretKey: string;
  /** `wss://`: the certificate and key files (`--cert-file`, `--key-file`). */
  tls?: TlsFiles;
  host?: string;
  port: number;
  /** Data directory; undefined = memory-only. */
  dataDir?: string;
  /** Soft memory limit for inserts in bytes; 0 = none. */
  memoryBytesMax?: number;
  messageBytesMax?: number;
  badInput?: 'reply' | 'close';
  snapshotWalBytes?: number;
  connectionsMax?: number;
  idleTimeoutMs?: number;
  perMessageDeflate?: boolean;
  processMetrics?: boolean;
  /** Time budget of one `qry`/`qdoc`/`gvalues` scan in ms (default 1000; 0 = unlimited). */
  queryBudgetMs?: number;
  /** Connections one scoped key may hold at once (default 256). The master key is not capped by it. */
  connectionsPerKeyMax?: number;
  /** Connections of `connectionsMax` that only the master key may use (default 16). */
  masterConnectionsReserved?: number;
}

export interface FluxionApp {
  readonly address: AddressInfo;
  readonly service: FluxionService;
  /** The durable log, when `dataDir` is set (exposes `snapshot()` and recovery figures). */
  readonly durable: DurableLog | undefined;
  close(graceMs?: number): Promise<void>;
}

export async function startFluxion(cfg: FluxionConfig, log: Logger): Promise<FluxionApp> {
  const store = new FluxionStore();
  let service: FluxionService | undefined;
  let server: FluxionServer | undefined;
  const metrics = new FluxionMetrics({
    stats: () => store.stats(),
    connections: () => server?.connectionCount ?? 0,
  }, cfg.processMetrics ?? true);
  let commitLog: CommitLog;
  let durable: DurableLog | undefined;
  if (cfg.dataDir !== undefined) {
    durable = await DurableLog.open({
      dir: cfg.dataDir, store, masterKey: cfg.secretKey, log, snapshotWalBytes: cfg.snapshotWalBytes,
      recordBytesMax: (cfg.messageBytesMax ?? 16 * 1024 * 1024) + 1024,
      onFsync: (seconds, records) => { metrics.walFsync.observe(seconds); metrics.walBatchRecords.observe(records); },
      onSnapshot: (seconds) => metrics.snapshotSeconds.observe(seconds),
    });
    commitLog = durable;
    const st = store.stats();
    log.info({ dataDir: cfg.dataDir, ...durable.recovery, records: st.records, documents: st.documents, collections: st.collections }, 'recovered');
  } else {
    commitLog = new MemoryCommitLog();
    log.warn('memory-only mode: no --data directory, nothing survives a restart');
  }
  const memoryBytesMax = cfg.memoryBytesMax ?? 0;
  service = new FluxionService({ store, log: commitLog, masterKey: cfg.secretKey, memoryBytesMax, queryBudgetMs: cfg.queryBudgetMs, logger: log });
  server = new FluxionServer(service, metrics, log, {
    host: cfg.host, port: cfg.port, messageBytesMax: cfg.messageBytesMax, badInput: cfg.badInput,
    connectionsMax: cfg.connectionsMax, idleTimeoutMs: cfg.idleTimeoutMs, perMessageDeflate: cfg.perMessageDeflate,
    connectionsPerKeyMax: cfg.connectionsPerKeyMax, masterConnectionsReserved: cfg.masterConnectionsReserved,
    ...(cfg.tls && { tls: cfg.tls }),
    health: () => ({ durable: commitLog.durable, writable: commitLog.writable }),
  });
  let address: AddressInfo;
  try {
    address = await server.listen();
  } catch (err) {
    await commitLog.close();
    throw err;
  }
  log.info({ host: address.address, port: address.port, durable: commitLog.durable, memoryBytesMax, badInput: cfg.badInput ?? 'reply' }, 'listening');
  const srv = server;
  const svc = service;
  let closing: Promise<void> | undefined;
  return {
    address,
    service: svc,
    durable,
    close(graceMs?: number): Promise<void> {
      closing ??= (async () => {
        await srv.close(graceMs);
        await commitLog.close();
        log.info('closed');
      })();
      return closing;
    },
  };
}
