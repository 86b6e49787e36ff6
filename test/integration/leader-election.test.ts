/**
 * Leader election with real processes (test/support/election-child.ts) on one conured:
 * exactly one leader of two; SIGKILL of the leader → the standby acquires within TTL + check
 * interval (bounded generously: timings are never asserted tightly); SIGSTOP of a leader past
 * its TTL, then SIGCONT → its fenced write is refused and it logs leadership_lost.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { EtcdClient } from '../../src/client/etcd-client.js';
import { DIST_ROOT } from '../support/conured-process.js';
import { startConuredEndpoint, type EtcdEndpoint } from '../support/etcd-process.js';
import { sleep, until } from '../support/until.js';

const CHILD = join(DIST_ROOT, 'test', 'support', 'election-child.js');
const TTL_S = 2;
const CHECK_MS = 500;

interface Candidate { id: string; proc: ChildProcess; stderr: () => string; stdout: () => string; acquired: () => number; lost: () => number }

let server: EtcdEndpoint;
let client: EtcdClient;
const children: ChildProcess[] = [];

before(async () => {
  server = await startConuredEndpoint();
  client = new EtcdClient({ endpoints: [server.endpoint] });
});
after(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) { c.kill('SIGCONT'); c.kill('SIGKILL'); }
  }
  client?.close();
  await server?.close();
});


function count(text: string, msg: string): number {
  return text.split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).length;
}

async function candidate(key: string, id: string): Promise<Candidate> {
  const proc = spawn(process.execPath, ['--enable-source-maps', CHILD], {
    env: { ...process.env, STORE_ENDPOINT: server.endpoint, LEADER_KEY: key, INSTANCE_ID: id, TTL_S: String(TTL_S), CHECK_MS: String(CHECK_MS), CONURE_LOG_LEVEL: 'info', NODE_TEST_CONTEXT: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(proc);
  let err = '';
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await until(`${id} to start`, () => out.includes('started') || (proc.exitCode !== null ? (() => { throw new Error(`${id} exited:\n${err}`); })() : undefined), 15_000);
  return { id, proc, stderr: () => err, stdout: () => out, acquired: () => count(err, 'leadership_acquired'), lost: () => count(err, 'leadership_lost') };
}

function killed(c: Candidate): Promise<void> {
  return new Promise((r) => { if (c.proc.exitCode !== null || c.proc.signalCode !== null) r(); else c.proc.once('exit', () => r()); });
}

test('two candidates → exactly one leader; SIGKILL the leader → the standby acquires within TTL + check interval', async () => {
  const key = '/el-int/kill/leader';
  const a = await candidate(key, 'cand-a');
  const b = await candidate(key, 'cand-b');
  const first = await until('a leader', () => (a.acquired() + b.acquired() >= 1 ? true : undefined), 15_000);
  assert.ok(first);
  await sleep(2 * TTL_S * 1000);
  assert.equal(a.acquired() + b.acquired(), 1, 'exactly one candidate ever acquired');
  const [leader, standby] = a.acquired() === 1 ? [a, b] : [b, a];
  assert.equal((await client.get(key))?.value.toString(), leader.id);
  assert.match(leader.stderr(), new RegExp(`"instance_id":"${leader.id}"[^\\n]*"msg":"leadership_acquired"`));

  const t0 = Date.now();
  leader.proc.kill('SIGKILL');
  await killed(leader);
  await until('the standby to acquire', () => standby.acquired() === 1 || undefined, (TTL_S * 1000 + CHECK_MS) + 10_000);
  const took = Date.now() - t0;
  assert.ok(took <= TTL_S * 1000 + CHECK_MS + 10_000, `took ${took} ms`);
  assert.equal((await client.get(key))?.value.toString(), standby.id);
  standby.proc.kill('SIGKILL');
  await killed(standby);
});

test('SIGSTOP a leader past its TTL, then SIGCONT → its fenced write is refused and it logs leadership_lost', async () => {
  const key = '/el-int/pause/leader';
  const a = await candidate(key, 'pause-a');
  await until('pause-a to lead', () => a.acquired() === 1 || undefined, 15_000);
  const b = await candidate(key, 'pause-b');
  await sleep(500);
  assert.equal(b.acquired(), 0);

  a.proc.kill('SIGSTOP');
  try {
    await until('pause-b to take over from the paused leader', () => b.acquired() === 1 || undefined, TTL_S * 1000 + CHECK_MS + 10_000);
    assert.equal((await client.get(key))?.value.toString(), 'pause-b');
  } finally {
    a.proc.kill('SIGCONT');
  }
  // The woken leader writes at once, before it may have noticed anything.
  a.proc.stdin!.write('write /el-int/pause/data from-a\n');
  const answer = await until('the write answer', () => a.stdout().split('\n').find((l) => l.startsWith('{')), 10_000);
  assert.deepEqual(JSON.parse(answer), { write: '/el-int/pause/data', ok: false, code: 'permission_denied' });
  assert.equal(await client.get('/el-int/pause/data'), undefined, 'nothing of the deposed leader reached the store');
  await until('pause-a to log leadership_lost', () => a.lost() >= 1 || undefined, 10_000);
  // It stays a standby: the new leader keeps the key.
  await sleep(1500);
  assert.equal((await client.get(key))?.value.toString(), 'pause-b');
  assert.equal(a.acquired(), 1);
  b.proc.stdin!.write('write /el-int/pause/data from-b\n');
  await until('the new leader writes', () => b.stdout().includes('"ok":true') || undefined, 10_000);
  assert.equal((await client.get('/el-int/pause/data'))?.value.toString(), 'from-b');
});
