/**
 * A real `fluxiond` whose data directory is a 2 MiB tmpfs that fills up (needs root to mount it;
 * skipped with the reason otherwise). After the disk is full: the WAL failure is logged with its
 * cause, writes get an error (never an acknowledgement), the idle process does not spin, and
 * SIGTERM exits promptly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, startDaemon, waitForLog, type Daemon } from './fluxion-harness.js';

/** Mounts a tmpfs of `size` at `dir`; returns why it cannot, or undefined on success. */
function mountTmpfs(dir: string, size: string): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs (run as root to test a full disk)';
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'fluxion-diskfull', dir], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot mount a tmpfs at ${dir}: ${(r.stderr || r.error?.message || 'mount failed').trim()}`;
  return undefined;
}

/** CPU seconds (user + system) the process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function health(d: Daemon): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    get(`http://127.0.0.1:${d.port}/health`, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
    }).on('error', reject);
  });
}

test('disk full: WAL failure logged with ENOSPC, writes refused, no busy loop, SIGTERM exits promptly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluxion-diskfull-'));
  const reason = mountTmpfs(dir, '2m');
  if (reason !== undefined) {
    rmSync(dir, { recursive: true, force: true });
    t.skip(reason);
    return;
  }
  let d: Daemon | undefined;
  try {
    d = await startDaemon(['--secret-key', 'k', '--data', dir, '--snapshot-wal-bytes', '64Ki']);
    const c = await Client.connect(d.url('api-key=k'));
    const batch = (i: number): unknown[] => Array.from({ length: 50 }, (_, j) => ({ col: 'fill', doc: `d${j % 5}`, ts: i * 50 + j + 1, data: 'z'.repeat(400) }));
    let acked = 0;
    let firstError: string | undefined;
    for (let i = 0; i < 1000 && firstError === undefined; i++) {
      const r = await c.request('ins', batch(i));
      if (typeof r.error === 'string') firstError = r.error; else acked++;
    }
    assert.ok(acked > 0, 'some writes fit before the disk filled');
    assert.match(firstError ?? 'never failed', /^write-ahead log failed \(ENOSPC: no space left on device\); writes are refused/);
    // Keep writing, well past the snapshot threshold: every write is refused, none acknowledged.
    for (let i = 0; i < 30; i++) {
      const r = await c.request('ins', batch(10_000 + i));
      assert.match(String(r.error), /write-ahead log failed \(ENOSPC/, `write ${i} after the disk filled: ${JSON.stringify(r)}`);
    }
    assert.match(String((await c.request('sval', { col: 'm', key: 'k', value: 'v' })).error), /write-ahead log failed/);
    // Reads still work and see exactly the acknowledged records.
    let records = 0;
    for (let j = 0; j < 5; j++) records += ((await c.request('qdoc', { col: 'fill', doc: `d${j}`, to: 1e12 })).records as unknown[]).length;
    assert.equal(records, acked * 50);
    const h = await health(d);
    assert.equal(h.writable, false);
    await waitForLog(d, (l) => l.includes('"msg":"wal_failed"'));
    const failed = d.logs.filter((l) => l.includes('"msg":"wal_failed"'));
    assert.equal(failed.length, 1, 'the WAL failure is logged exactly once');
    assert.match(failed[0]!, /"cause":"ENOSPC"/);
    // Idle now: it must not burn CPU (a busy loop uses ~1 CPU-second per second).
    const cpu0 = cpuSeconds(d.proc.pid!);
    await new Promise((r) => setTimeout(r, 2000));
    const idleCpu = cpuSeconds(d.proc.pid!) - cpu0;
    t.diagnostic(`acknowledged batches before ENOSPC: ${acked}; idle CPU over 2 s: ${idleCpu.toFixed(2)} s`);
    assert.ok(idleCpu < 1, `idle process used ${idleCpu.toFixed(2)} CPU-seconds in 2 s`);
    const t0 = performance.now();
    d.proc.kill('SIGTERM');
    const code = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still alive'), 10_000))]);
    t.diagnostic(`SIGTERM to exit: ${(performance.now() - t0).toFixed(0)} ms, exit ${String(code)}`);
    assert.equal(code, 0);
  } finally {
    if (d !== undefined && d.proc.exitCode === null && d.proc.signalCode === null) await d.kill('SIGKILL');
    spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});
