/**
 * The fault suite's system under test on real processes: a 3-voter cluster whose raft links run
 * through proxies. kill -9 and restart keep data and ports; SIGSTOP stalls a member; cutting the
 * leader's links (and only those) makes the others elect a new leader; the membership nemesis
 * removes a member, wipes it and brings it back as a voter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../support/conured-process.js';
import { localLauncher, raftConfig, tmpfsUnavailableReason } from './cluster.js';
import { kvGet, kvPut, waitReady } from './workload/http-kv.js';
import { NetworkNemesis } from './nemesis/network.js';
import { isolate } from './nemesis/partition.js';
import { diskFullNemesis, findLeader, membershipNemesis } from './nemesis/nemesis.js';

const until = async (what: string, pred: () => Promise<boolean>, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
};

test('a 3-voter cluster through link proxies: kill, pause, isolate the leader, membership', { timeout: 180_000 }, async (t) => {
  const { dir, cleanup } = tempDir('conure-fault-cluster-');
  const cluster = await localLauncher.launch({ size: 3, dataRoot: join(dir, 'data'), logDir: join(dir, 'logs') });
  t.after(async () => { await cluster.close(); cleanup(); });
  assert.equal(cluster.nodes.length, 3);
  assert.equal(cluster.proxies.size, 6, 'one proxy per directed link');
  assert.equal(cluster.endpoints().length, 3);
  assert.equal(cluster.etcdEndpoints().length, 3);
  const [n1, n2] = cluster.nodes;
  assert.ok(n1 && n2);
  assert.equal((await kvPut(n1.url, 'k', 'v1', { timeoutMs: 5000 })).type, 'ok');
  const forwarded = [...cluster.proxies.values()].reduce((sum, p) => sum + p.stats().bytesForwarded.up, 0);
  assert.ok(forwarded > 0, 'raft traffic flows through the proxies');

  const pid = n2.pid();
  await n2.kill9();
  assert.equal(n2.isRunning(), false);
  assert.equal((await kvGet(n2.url, 'k', { timeoutMs: 2000 })).type, 'fail', 'a killed member refuses connections');
  await n2.restart();
  assert.notEqual(n2.pid(), pid);
  assert.ok(await waitReady(() => [n2.url], 30_000));
  assert.deepEqual(await kvGet(n2.url, 'k', { timeoutMs: 5000 }), { type: 'ok', value: 'v1' }, 'acknowledged data survives kill -9');

  n2.pause();
  assert.deepEqual(await kvGet(n2.url, 'k', { timeoutMs: 500 }), { type: 'info', error: 'timeout' }, 'a paused member does not answer');
  n2.resume();

  // Cut the leader off: the other two elect a new leader; the old one cannot serve linearizable reads.
  const leader = await findLeader(cluster);
  assert.ok(leader);
  const net = new NetworkNemesis(cluster.proxies);
  net.partition(isolate(cluster.nodes.map((n) => n.id), leader.id));
  const others = cluster.nodes.filter((n) => n !== leader);
  await until('a new leader among the majority', async () => (await findLeader({ ...cluster, nodes: others })) !== undefined);
  assert.equal((await kvPut(others[0]!.url, 'k', 'v2', { timeoutMs: 5000 })).type, 'ok', 'the majority accepts writes');
  assert.notEqual((await kvGet(leader.url, 'k', { timeoutMs: 3000 })).type, 'ok', 'the isolated old leader serves no (stale) read');
  net.heal();
  await until('the old leader catches up', async () => {
    const r = await kvGet(leader.url, 'k', { timeoutMs: 3000 });
    return r.type === 'ok' && r.value === 'v2';
  });

  // Remove a member, wipe it, and bring it back: it must end up a voter again.
  const nemesis = membershipNemesis();
  let next = 0;
  const injected = await nemesis.inject(cluster, () => [0.5, 0.5][next++ % 2]!);
  assert.equal(injected.action, 'remove voter');
  assert.equal((await raftConfig(cluster.nodes))?.servers.length, 2);
  const healed = await nemesis.heal(cluster);
  assert.deepEqual(healed?.targets, injected.targets);
  const cfg = await raftConfig(cluster.nodes);
  assert.deepEqual(cfg?.servers.map((s) => `${s.id}:${s.suffrage}`).sort(), ['n1:voter', 'n2:voter', 'n3:voter']);
  const back = cluster.nodes.find((n) => n.id === injected.targets[0])!;
  await until('the re-added member has the data', async () => {
    const r = await kvGet(back.url, 'k', { timeoutMs: 3000 });
    return r.type === 'ok' && r.value === 'v2';
  });

  await cluster.close();
  const log = readFileSync(join(dir, 'logs', 'n2.log'), 'utf8');
  assert.ok((log.match(/conured_started/g)?.length ?? 0) >= 2, 'one log per member across restarts');
});

test('the launcher refuses shapes it cannot build', async () => {
  await assert.rejects(localLauncher.launch({ size: 0, dataRoot: '/nonexistent', logDir: '/nonexistent' }), /1 to 7 members/);
  await assert.rejects(localLauncher.launch({ size: 2, arbiters: 2, dataRoot: '/nonexistent', logDir: '/nonexistent' }), /at least one voter/);
});

test('a full disk stops the member with the cause in its log; freeing it brings the member back', { timeout: 120_000 }, async (t) => {
  const noTmpfs = tmpfsUnavailableReason();
  if (noTmpfs) { t.skip(`needs a tmpfs per member (root): ${noTmpfs}`); return; }
  const { dir, cleanup } = tempDir('conure-fault-disk-');
  const cluster = await localLauncher.launch({ size: 3, dataRoot: join(dir, 'data'), logDir: join(dir, 'logs'), diskBytes: 64 * 1024 * 1024 });
  t.after(async () => { await cluster.close(); cleanup(); });
  assert.equal(cluster.diskLimited, true);
  const nemesis = diskFullNemesis();
  const injected = await nemesis.inject(cluster, () => 0);
  const node = cluster.nodes.find((n) => n.id === injected.targets[0])!;
  // Writes through the others still commit (2 of 3) once a leader with room leads; the full
  // member fails its next log write.
  const other = cluster.nodes.find((n) => n !== node)!;
  for (let i = 0; i < 20; i++) await until(`k${i} written`, async () => (await kvPut(other.url, `k${i}`, 'v', { timeoutMs: 5000 })).type === 'ok', 30_000);
  await until('the full member stops', async () => !node.isRunning());
  // Whichever write hits the full disk first: the raft log (ENOSPC) or the state store (LMDB says EIO).
  assert.match(readFileSync(join(dir, 'logs', `${node.id}.log`), 'utf8'), /(raft log|state store) write failed: (No space left on device|Input\/output error)[^\n]*"msg":"conured_fatal"/);
  const healed = await nemesis.heal(cluster);
  assert.equal(healed?.action, 'free disk, restart');
  await until('the member catches up', async () => {
    const r = await kvGet(node.url, 'k19', { timeoutMs: 3000 });
    return r.type === 'ok' && r.value === 'v';
  }, 30_000);
});
