/**
 * Real runs against a real `conured` (today a single standalone member): the runner must
 * report clean runs as clean, and must catch the deliberate client-side mutations, which prove
 * the recording → checking → reporting pipeline end to end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../support/conured-process.js';
import { runOne } from './runner.js';
import { PROFILES } from './profiles.js';
import { parseHistory } from './checker/history.js';
import { goAvailable } from './porcupine-harness.js';

const RUN_JS = join(dirname(fileURLToPath(import.meta.url)), 'run.js');

function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [RUN_JS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`runner did not finish in ${timeoutMs} ms:\n${out}`)); }, timeoutMs);
    p.once('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

test('kill -9 on a single node: the runner reports every run clean and writes the results folder', { timeout: 120_000 }, async (t) => {
  const { dir, cleanup } = tempDir('conure-fault-results-');
  t.after(cleanup);
  const withGo = goAvailable(); // when Go is here, porcupine double-checks the register history
  const { code, out } = await runCli(['--nemesis', 'kill,partition-majority', '--workload', 'register,set', '--run-seconds', '8', '--seed', '7', '--results', dir, '--run-id', 'ci', ...(withGo ? ['--porcupine'] : [])], 110_000);
  assert.equal(code, 0, out);
  assert.match(out, withGo ? /kill × register: linearizable: true, lost: 0, keys: \d+, porcupine: Ok/ : /kill × register: linearizable: true, lost: 0/);
  assert.match(out, /kill × set: linearizable: true, lost: 0, unexpected: 0/);
  assert.match(out, /partition-majority × register: skipped \(.*needs a replicated cluster/);
  const summary = JSON.parse(readFileSync(join(dir, 'ci', 'summary.json'), 'utf8')) as { totals: Record<string, number>; runs: { faults: number; ops: { ok: number } }[] };
  assert.deepEqual(summary.totals, { pass: 2, fail: 0, unknown: 0, error: 0, skipped: 2 });
  const run = join(dir, 'ci', 'kill-register');
  for (const f of ['history.jsonl', 'nemesis.jsonl', 'summary.json', 'timeline.svg', join('nodes', 'n1.log')]) assert.ok(existsSync(join(run, f)), `${f} written`);
  const history = parseHistory(readFileSync(join(run, 'history.jsonl'), 'utf8'));
  assert.ok(history.filter((e) => e.type === 'ok').length > 50, 'the workload made progress');
  const nemesis = readFileSync(join(run, 'nemesis.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { phase: string; action: string });
  assert.ok(nemesis.some((e) => e.phase === 'start' && e.action === 'kill -9'), 'at least one kill happened');
  assert.ok(nemesis.some((e) => e.phase === 'stop' && e.action === 'restart'), 'and a restart');
  assert.match(readFileSync(join(run, 'timeline.svg'), 'utf8'), /^<svg[\s\S]*kill -9[\s\S]*<\/svg>$/);
});

test('mutations are caught: a stale read (register) and a lost acknowledgement (set)', { timeout: 90_000 }, async (t) => {
  const { dir, cleanup } = tempDir('conure-fault-mutation-');
  t.after(cleanup);
  const profile = { ...PROFILES.short!, runMs: 4000 };
  const stale = await runOne({ profile, nemesis: 'none', workload: 'register', seed: 11, mutation: 'stale-read', dir: join(dir, 'stale'), log: () => undefined });
  assert.equal(stale.status, 'fail', JSON.stringify(stale));
  assert.equal(stale.linearizable, false);
  assert.ok(stale.counterexample && stale.counterexample.length >= 2, 'a counterexample is reported');
  const lost = await runOne({ profile, nemesis: 'pause', workload: 'set', seed: 12, mutation: 'lost-ack', dir: join(dir, 'lost'), log: () => undefined });
  assert.equal(lost.status, 'fail', JSON.stringify(lost));
  assert.ok((lost.lost ?? 0) > 0, 'lost elements are counted');
});
