/**
 * Test support for the local driver: database records, and a cleanup that SIGKILLs every process
 * whose command line mentions a test's data directory (whatever state the driver was left in).
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { DatabaseRecord, DatabaseSpec } from '../../src/platform/types.js';

export function record(id: string, spec: DatabaseSpec): DatabaseRecord {
  const now = new Date().toISOString();
  return {
    id, tenant: 't1', name: id, engine: spec.engine, spec,
    status: { phase: 'Provisioning', message: '', observedAt: now },
    endpoints: {}, deletionPolicy: 'Delete', generation: 1, observedGeneration: 0, createdAt: now, updatedAt: now,
  };
}

/** Pids of processes whose command line contains `dir`. */
export function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const n of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(n) || Number(n) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${n}/cmdline`, 'utf8').includes(dir)) pids.push(Number(n));
    } catch { /* gone */ }
  }
  return pids;
}

export function killAllUnder(dir: string): void {
  for (const pid of processesUnder(dir)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
