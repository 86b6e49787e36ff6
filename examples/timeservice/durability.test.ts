/**
 * The Time Service as a real process: kill -9 during concurrent writes, then a restart keeps
 * every acknowledged location; the backup CronJob's command (Debian's sqlite3, VACUUM INTO)
 * during concurrent writes yields a consistent database the service starts from; SIGTERM
 * checkpoints the WAL.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/support/cluster.js';

const SERVER = fileURLToPath(new URL('./server.js', import.meta.url));
const HAVE_SQLITE3 = spawnSync('which', ['sqlite3']).status === 0;
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function start(dbPath: string): Promise<{ url: string; proc: ChildProcess; exited: Promise<number | null> }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [SERVER], { env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DB_PATH: dbPath, DB_MAX_OPEN_CONNS: '3', DB_MAX_IDLE_CONNS: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try { if ((await fetch(`${url}/health`)).ok) break; } catch { /* not yet */ }
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error('timeservice did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, proc, exited };
}

/** Writers POSTing unique locations until stopped; returns the acknowledged names. */
function writers(url: string, prefix: string, n = 4): { stop(): Promise<string[]>; acked: string[] } {
  const acked: string[] = [];
  let running = true;
  const loops = Array.from({ length: n }, async (_, w) => {
    for (let i = 0; running && i < 5000; i++) {
      const name = `${prefix}-${w}-${i}`;
      try {
        const r = await fetch(`${url}/api/locations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, timezone: 'Europe/Berlin', description: 'load' }) });
        if (r.status === 201) acked.push(name);
      } catch { if (!running) break; await new Promise((res) => setTimeout(res, 20)); }
    }
  });
  return { acked, stop: async () => { running = false; await Promise.all(loops); return acked; } };
}

async function names(url: string): Promise<Set<string>> {
  return new Set(((await (await fetch(`${url}/api/locations`)).json()) as { locations: Array<{ name: string }> }).locations.map((l) => l.name));
}

describe('time service durability', { timeout: 120_000 }, () => {
  it('kill -9 during writes: every acknowledged location is there after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'timeservice-kill-')); dirs.push(dir);
    const db = join(dir, 'timeservice.db');
    const s = await start(db);
    const w = writers(s.url, 'k');
    while (w.acked.length < 150) await new Promise((r) => setTimeout(r, 20));
    s.proc.kill('SIGKILL');
    await s.exited;
    const acked = await w.stop();
    const again = await start(db);
    try {
      const have = await names(again.url);
      const lost = acked.filter((n) => !have.has(n));
      assert.deepEqual(lost, [], `lost ${lost.length} of ${acked.length} acknowledged locations`);
    } finally { again.proc.kill('SIGTERM'); assert.equal(await again.exited, 0); }
    // SIGTERM checkpointed (TRUNCATE): the WAL is empty or gone.
    assert.ok(!existsSync(`${db}-wal`) || statSync(`${db}-wal`).size === 0, 'WAL checkpointed on SIGTERM');
  });

  it('VACUUM INTO during concurrent writes gives a consistent database the service restores from', { skip: !HAVE_SQLITE3 && !process.env.CI && 'sqlite3 is not installed (scripts/setup.sh installs it)' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'timeservice-backup-')); dirs.push(dir);
    const db = join(dir, 'timeservice.db');
    const s = await start(db);
    const w = writers(s.url, 'b');
    try {
      while (w.acked.length < 100) await new Promise((r) => setTimeout(r, 20));
      const before = [...w.acked];
      const backup = join(dir, 'backup', 'timeservice_20260101-020000.db');
      execFileSync('mkdir', ['-p', join(dir, 'backup')]);
      // The CronJob's command, verbatim but for the paths.
      execFileSync('sqlite3', [db, `VACUUM INTO '${backup}'`], { timeout: 30_000 });
      while (w.acked.length < before.length + 50) await new Promise((r) => setTimeout(r, 20));
      await w.stop();
      assert.equal(execFileSync('sqlite3', [backup, 'PRAGMA integrity_check;'], { encoding: 'utf8' }).trim(), 'ok');
      // Restore: the service starts on the backup and has everything acknowledged before it.
      const restored = await start(backup);
      try {
        const have = await names(restored.url);
        assert.deepEqual(before.filter((n) => !have.has(n)), []);
        assert.ok(have.size < w.acked.length, 'the backup is a point in time, not the live file');
        assert.equal((await fetch(`${restored.url}/api/locations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'after-restore', timezone: 'UTC' }) })).status, 201);
      } finally { restored.proc.kill('SIGTERM'); await restored.exited; }
    } finally { await w.stop(); s.proc.kill('SIGTERM'); await s.exited; }
  });
});
