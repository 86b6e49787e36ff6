/**
 * `make fault`'s short profile as part of `make test` (CI): every nemesis against a register and
 * a set workload (both APIs) and the lease workload, on real 3-member clusters. Every run must
 * end `linearizable: true, lost: 0`. It runs in the serial phase: fault timing on 2 cores should
 * not compete with the parallel suites. The schedule seed is fixed so a failure can be replayed
 * with `node dist/test/fault/run.js --seed 1000` (the system's own timing still varies).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../support/conured-process.js';
import { PROFILES } from './profiles.js';
import { tmpfsUnavailableReason } from './cluster.js';

const RUN_JS = join(dirname(fileURLToPath(import.meta.url)), 'run.js');

test('make fault (short profile): every run linearizable with nothing lost', { timeout: 15 * 60_000 }, async (t) => {
  const { dir, cleanup } = tempDir('conure-fault-short-');
  t.after(cleanup);
  const p = spawn(process.execPath, [RUN_JS, '--profile', 'short', '--seed', '1000', '--results', dir, '--run-id', 'short'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let log = '';
  p.stdout.on('data', (d: Buffer) => { out += d; });
  p.stderr.on('data', (d: Buffer) => { log += d; });
  const code = await new Promise<number | null>((resolve) => p.once('exit', resolve));
  for (const line of out.trim().split('\n')) t.diagnostic(line);
  assert.equal(code, 0, `${out}\n--- progress ---\n${log.slice(-20_000)}`);
  // disk-full needs a tmpfs per member (root); without one it is skipped, with the reason.
  const runs = PROFILES.short!.runs.length;
  const skipped = tmpfsUnavailableReason() ? PROFILES.short!.runs.filter((r) => r.nemesis === 'disk-full').length : 0;
  const verdicts = out.split('\n').filter((l) => / × /.test(l) && !/skipped/.test(l));
  assert.equal(verdicts.length, runs - skipped, out);
  for (const v of verdicts) assert.match(v, /linearizable: true, lost: 0/, v);
  const summary = JSON.parse(readFileSync(join(dir, 'short', 'summary.json'), 'utf8')) as { totals: Record<string, number> };
  assert.deepEqual(summary.totals, { pass: runs - skipped, fail: 0, unknown: 0, error: 0, skipped });
});
