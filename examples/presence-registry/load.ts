#!/usr/bin/env node
/**
 * A small, bounded presence load generator: USERS users × DEVICES devices register, CHURN rounds
 * of unregister/register, then everything is unregistered. Prints a JSON summary.
 *
 *   ETCD_ENDPOINTS=127.0.0.1:2379 USERS=50 DEVICES=2 CHURN=3 CONCURRENCY=16 node dist/examples/presence-registry/load.js
 * Bounds: USERS ≤ 10000, DEVICES ≤ 10, CHURN ≤ 100, CONCURRENCY ≤ 256.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EtcdClient } from '../../src/client/etcd-client.js';
import { PresenceRegistry } from './registry.js';

function bounded(name: string, fallback: number, max: number): number {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new Error(`${name} must be an integer in 1..${max}`);
  return n;
}

export async function runLoad(o: { endpoints: string[]; users: number; devices: number; churn: number; concurrency: number; ttlSeconds?: number }): Promise<{ ops: number; errors: number; elapsedMs: number; opsPerSecond: number }> {
  const client = new EtcdClient({ endpoints: o.endpoints });
  const reg = new PresenceRegistry(client, { ttlSeconds: o.ttlSeconds ?? 90 });
  const pairs: Array<[string, string]> = [];
  for (let u = 0; u < o.users; u++) for (let d = 0; d < o.devices; d++) pairs.push([`load-u${u}`, `d${d}`]);
  let ops = 0; let errors = 0;
  const pool = async (fns: Array<() => Promise<unknown>>): Promise<void> => {
    let i = 0;
    await Promise.all(Array.from({ length: Math.min(o.concurrency, fns.length) }, async () => {
      while (i < fns.length) { const f = fns[i++]!; try { await f(); ops++; } catch { errors++; } }
    }));
  };
  const t0 = performance.now();
  await pool(pairs.map(([u, d]) => () => reg.register(u, d, 'load-gw')));
  for (let c = 0; c < o.churn; c++) {
    await pool(pairs.map(([u, d]) => () => reg.unregister(u, d)));
    await pool(pairs.map(([u, d]) => () => reg.register(u, d, `load-gw-${c}`)));
  }
  await pool(pairs.map(([u, d]) => () => reg.unregister(u, d)));
  const elapsedMs = performance.now() - t0;
  await reg.close(true);
  client.close();
  return { ops, errors, elapsedMs: Math.round(elapsedMs), opsPerSecond: Math.round((ops / elapsedMs) * 1000) };
}

/** Run as a program (directly or through a bin symlink), not imported by a test. */
const isMain = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const r = await runLoad({
    endpoints: (process.env.ETCD_ENDPOINTS ?? '127.0.0.1:2379').split(','),
    users: bounded('USERS', 50, 10_000), devices: bounded('DEVICES', 2, 10), churn: bounded('CHURN', 3, 100), concurrency: bounded('CONCURRENCY', 16, 256),
  });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
