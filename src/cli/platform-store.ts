/**
 * The platform's embedded store: one ConureDB member (bootstrap) under <dataDir>/store on
 * 127.0.0.1, composed here in the CLI layer like `conured` itself. Its ports are kept in
 * ports.json so a restart finds the same store; ports taken meanwhile are replaced.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { type EmbeddedStoreStarter, canBind } from '../platform/index.js';
import { startConured } from './conured-server.js';

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); });
  });
}

export const startEmbeddedStore: EmbeddedStoreStarter = async (cfg, log, onFatal) => {
  const dir = join(cfg.dataDir, 'store');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'ports.json');
  let ports: { http: number; raft: number; client: number } | undefined;
  try { ports = JSON.parse(readFileSync(file, 'utf8')) as typeof ports; } catch { /* first start */ }
  if (!ports || !(await canBind(ports.http)) || !(await canBind(ports.raft)) || !(await canBind(ports.client))) {
    ports = { http: await freePort(), raft: await freePort(), client: await freePort() };
    writeFileSync(file, `${JSON.stringify(ports)}\n`);
  }
  const store = await startConured({
    nodeId: 'platform-store', dataDir: join(dir, 'data'),
    http: { host: '127.0.0.1', port: ports.http }, raft: { host: '127.0.0.1', port: ports.raft }, client: { host: '127.0.0.1', port: ports.client },
    advertiseHttp: `127.0.0.1:${ports.http}`, advertiseRaft: `127.0.0.1:${ports.raft}`,
    bootstrap: true, join: [], joinBackoffMs: 1000, joinRetries: 0, role: 'voter',
    heartbeatMs: 100, electionTimeoutMs: 1000, snapshotEntries: 10_000, peerAddresses: new Map(),
    unsafeNoSync: false, unsafeStaleReads: false, unsafeEarlyAck: false,
  }, log.child({ component: 'store' }), onFatal);
  const endpoint = `127.0.0.1:${store.clientPort}`;
  log.info({ endpoint, data_dir: dir }, 'embedded_store_started');
  return { endpoint, close: () => store.close() };
};
