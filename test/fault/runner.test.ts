/**
 * Real runs against real `conured` clusters: the runner must report clean runs as clean, skip
 * what a cluster shape cannot run, and catch the deliberate server-side mutations, which prove
 * the recording → checking → reporting pipeline end to end.
 */
import { FORGED_TERM_AHEAD, highestTerm, hostileNemesis } from './nemesis/hostile.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../support/conured-process.js';
import { MUTATION_ENV, runOne, seededRandom } from './runner.js';
import { localLauncher } from './cluster.js';
import { HistoryRecorder } from './history-recorder.js';
import { checkRegister } from './checker/register.js';
import { findLeader } from './nemesis/nemesis.js';
import { NetworkNemesis } from './nemesis/network.js';
import { isolate } from './nemesis/partition.js';
import { kvGet, kvPut } from './workload/http-kv.js';
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

test('kill -9 and a partition on 3 members: the runner reports every run clean and writes the results folder', { timeout: 150_000 }, async (t) => {
  const { dir, cleanup } = tempDir('conure-fault-results-');
  t.after(cleanup);
  const withGo = goAvailable(); // when Go is here, porcupine double-checks the register history
  const { code, out } = await runCli(['--nemesis', 'kill,partition-majority', '--workload', 'register,set', '--run-seconds', '8', '--seed', '8', '--results', dir, '--run-id', 'ci', ...(withGo ? ['--porcupine'] : [])], 140_000);
  assert.equal(code, 0, out);
  assert.match(out, withGo ? /kill × register: linearizable: true, lost: 0, keys: \d+, porcupine: Ok/ : /kill × register: linearizable: true, lost: 0/);
  assert.match(out, /kill × set: linearizable: true, lost: 0, unexpected: 0/);
  assert.match(out, /partition-majority × register: linearizable: true, lost: 0/);
  const summary = JSON.parse(readFileSync(join(dir, 'ci', 'summary.json'), 'utf8')) as { totals: Record<string, number> };
  assert.deepEqual(summary.totals, { pass: 4, fail: 0, unknown: 0, error: 0, skipped: 0 });
  const run = join(dir, 'ci', 'kill-register');
  for (const f of ['history.jsonl', 'nemesis.jsonl', 'summary.json', 'timeline.svg', join('nodes', 'n1.log'), join('nodes', 'n2.log')]) assert.ok(existsSync(join(run, f)), `${f} written`);
  const history = parseHistory(readFileSync(join(run, 'history.jsonl'), 'utf8'));
  assert.ok(history.filter((e) => e.type === 'ok').length > 50, 'the workload made progress');
  const nemesis = readFileSync(join(run, 'nemesis.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { phase: string; action: string });
  assert.ok(nemesis.some((e) => e.phase === 'start' && e.action === 'kill -9'), 'at least one kill happened');
  assert.ok(nemesis.some((e) => e.phase === 'stop' && e.action === 'restart'), 'and a restart');
  assert.match(readFileSync(join(run, 'timeline.svg'), 'utf8'), /^<svg[\s\S]*kill -9[\s\S]*<\/svg>$/);
  const cut = readFileSync(join(dir, 'ci', 'partition-majority-register', 'nemesis.jsonl'), 'utf8');
  assert.match(cut, /"action":"partition majority-minority"/);
});

test('a nemesis the cluster shape cannot run is skipped with the reason', async () => {
  const profile = { ...PROFILES.short!, shapes: [{ members: 1, arbiters: 0 }] };
  const s = await runOne({ profile, nemesis: 'partition-majority', workload: 'register', seed: 1, mutation: 'none', dir: '/nonexistent', log: () => undefined });
  assert.equal(s.status, 'skipped');
  assert.match(s.reason ?? '', /needs 3 members; this profile's cluster has 1/);
});

test('a server serving reads without ReadIndex (stale-read) is caught', { timeout: 120_000 }, async (t) => {
  const { dir, cleanup } = tempDir('conure-fault-mutation-');
  t.after(cleanup);
  const stale = await runOne({ profile: { ...PROFILES.short!, runMs: 4000 }, nemesis: 'none', workload: 'register', seed: 11, mutation: 'stale-read', dir: join(dir, 'stale'), log: () => undefined });
  assert.equal(stale.status, 'fail', JSON.stringify(stale));
  assert.equal(stale.linearizable, false);
  assert.ok(stale.counterexample && stale.counterexample.length >= 2, 'a counterexample is reported');
});

test('a leader that commits without a quorum (early-ack) is caught: its acknowledged write is missing on the majority', { timeout: 120_000 }, async (t) => {
  // Scripted rather than a random schedule, so the fault is certain to outlast an election.
  const { dir, cleanup } = tempDir('conure-fault-early-ack-');
  const cluster = await localLauncher.launch({ size: 3, dataRoot: join(dir, 'data'), logDir: join(dir, 'logs'), env: MUTATION_ENV['early-ack'] });
  t.after(async () => { await cluster.close(); cleanup(); });
  const recorder = new HistoryRecorder();
  const op = async (process: number, f: 'read' | 'write', url: string, value: string | null) => {
    recorder.record({ process, type: 'invoke', f, key: 'k', value });
    const r = f === 'write' ? await kvPut(url, 'k', value!, { timeoutMs: 5000 }) : await kvGet(url, 'k', { timeoutMs: 5000 });
    recorder.record({ process, type: r.type, f, key: 'k', value: f === 'read' && r.type === 'ok' ? r.value : value });
    return r;
  };
  let leader = await findLeader(cluster);
  for (let i = 0; i < 100 && !leader; i++) { await new Promise((r) => setTimeout(r, 100)); leader = await findLeader(cluster); }
  assert.ok(leader, 'a leader');
  assert.equal((await op(0, 'write', leader.url, 'v0')).type, 'ok');
  new NetworkNemesis(cluster.proxies).partition(isolate(cluster.nodes.map((n) => n.id), leader.id));
  assert.equal((await op(1, 'write', leader.url, 'v1')).type, 'ok', 'the cut-off leader acknowledges on its own');
  const majority = { ...cluster, nodes: cluster.nodes.filter((n) => n !== leader) };
  let next;
  for (let i = 0; i < 300 && !next; i++) { await new Promise((r) => setTimeout(r, 100)); next = await findLeader(majority); }
  assert.ok(next, 'the majority elects a new leader');
  const read = await op(2, 'read', next.url, null);
  assert.equal(read.type, 'ok');
  assert.notEqual(read.type === 'ok' && read.value, 'v1', 'the acknowledged v1 never reached the majority');
  const verdict = checkRegister(recorder.events);
  assert.equal(verdict.verdict, 'not_linearizable', JSON.stringify(verdict.keys));
});

test('the hostile-peer nemesis does damage without peer authentication, and none with it', { timeout: 120_000 }, async (t) => {
  const { dir, cleanup } = tempDir('conure-fault-hostile-');
  t.after(cleanup);
  for (const peerSecret of [false, true]) {
    const cluster = await localLauncher.launch({ size: 3, dataRoot: join(dir, `data-${peerSecret}`), logDir: join(dir, `logs-${peerSecret}`), peerSecret });
    try {
      let leader = await findLeader(cluster);
      for (let i = 0; i < 100 && !leader; i++) { await new Promise((r) => setTimeout(r, 100)); leader = await findLeader(cluster); }
      assert.ok(leader, 'a leader');
      const nemesis = hostileNemesis();
      await nemesis.inject(cluster, seededRandom(3));
      await new Promise((r) => setTimeout(r, 500));
      await nemesis.heal(cluster);
      const term = await highestTerm(cluster);
      if (peerSecret) assert.ok(term < FORGED_TERM_AHEAD, `with a cluster secret no forged term gets in (term ${term})`);
      else assert.ok(term >= FORGED_TERM_AHEAD, `without one, a frame naming a member is believed (term ${term})`);
    } finally {
      await cluster.close();
    }
  }
});
