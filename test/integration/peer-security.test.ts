/**
 * Hostile peers and hostile membership requests against real 3-member clusters on 127.0.0.1
 * (docs/security.md): forged raft frames from outsiders (findings 1–4 of the security review),
 * the cluster secret, and membership requests that are refused without changing anything.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pack } from 'msgpackr';
import { encodeConfChange } from '../../src/raft/conf-change.js';
import { makeMessage, type Message } from '../../src/raft/types.js';
import { PeerSecret } from '../../src/node/peer-auth.js';
import { encodeFrame } from '../../src/node/peer-transport.js';
import { startWriter, TestCluster, type TestMember } from '../support/cluster.js';
import { tempDir } from '../support/conured-process.js';

/** Sends raw envelopes to a member's raft port, as an outsider would, and closes. */
async function sendFrames(raftPort: number, envelopes: Array<{ from: string; to: string; cluster?: unknown; msg: unknown }>): Promise<void> {
  const s = connect({ host: '127.0.0.1', port: raftPort });
  s.on('error', () => undefined);
  await new Promise((r) => s.once('connect', r));
  for (const e of envelopes) s.write(encodeFrame(pack(e)));
  await new Promise((r) => setTimeout(r, 100));
  s.destroy();
}

async function stats(m: TestMember): Promise<{ term: number; state: string; transport: Record<string, number> }> {
  return (await (await fetch(`${m.url}/raft/stats`)).json()) as { term: number; state: string; transport: Record<string, number> };
}

async function config(m: TestMember): Promise<string> {
  const c = (await (await fetch(`${m.url}/raft/config`)).json()) as { servers: unknown[] };
  return JSON.stringify(c.servers);
}

async function put(url: string, key: string, value: string): Promise<number> {
  return (await fetch(`${url}/kv?key=${key}&value=${value}`, { method: 'PUT', signal: AbortSignal.timeout(10_000) })).status;
}

async function threeMembers(extra: string[] = []): Promise<TestCluster> {
  const c = new TestCluster();
  const boot = await c.add({ id: 'boot', bootstrap: true });
  const v1 = await c.add({ id: 'v1' });
  const arb = await c.add({ id: 'arb', role: 'arbiter' });
  boot.spec.join = [v1.url]; v1.spec.join = [boot.url]; arb.spec.join = [boot.url, v1.url];
  await boot.start(extra);
  await v1.start(extra);
  await arb.start(extra);
  await c.waitConfig((s) => s.length === 3 && s.filter((x) => x.suffrage === 'voter').length === 2 && s.some((x) => x.suffrage === 'arbiter'), '2 voters + 1 arbiter');
  await v1.waitReady();
  return c;
}

/** The forged frames of the security review, addressed to member `to`. */
function hostileFrames(to: string, from: string): Array<{ from: string; to: string; msg: unknown }> {
  const hb = (term: number): Message => makeMessage({ type: 'heartbeat', from, to, term, commit: 1 });
  const injected = makeMessage({
    type: 'app', from, to, term: 10_000, index: 0, logTerm: 0, commit: 3,
    entries: [{ index: 1, term: 10_000, type: 'conf', data: encodeConfChange({ type: 'addVoter', nodeId: 'mallory', context: new Uint8Array(0) }) }],
  });
  return [
    { from, to, msg: hb(Infinity) },
    { from, to, msg: hb(2 ** 53) },
    { from, to, msg: hb(2 ** 53 - 1) },
    { from, to, msg: { ...hb(5), term: '9999' } },
    { from, to, msg: injected },
    { from, to, msg: hb(50_000) },
  ];
}

describe('hostile peers', { timeout: 180_000 }, () => {
  it('frames from an outsider never reach raft: no crash, no term change, no injected member, writes go on', async () => {
    const c = await threeMembers();
    try {
      const leader = await c.leader();
      const before = await config(leader);
      const termBefore = (await stats(leader)).term;
      const writer = startWriter(() => [leader.url], 'under-attack');
      for (let round = 0; round < 10; round++) {
        await Promise.all(c.members.map((m) => sendFrames(m.raftPort, hostileFrames(m.spec.id, 'mallory'))));
      }
      // A forged sender that is not even a well-formed message: the real member's id with a bad term.
      await Promise.all(c.members.map((m) => sendFrames(m.raftPort, [{ from: 'v1', to: m.spec.id, msg: makeMessage({ type: 'heartbeat', from: 'v1', to: m.spec.id, term: Infinity }) }])));
      const acked = await writer.stop();
      assert.ok(acked.length > 0, 'writes were acknowledged during the attack');
      for (const m of c.members) {
        const s = await stats(m);
        assert.ok(Number.isSafeInteger(s.term) && s.term < 1000, `${m.spec.id} term ${s.term}`);
        assert.ok(s.transport.invalid! + s.transport.nonMember! >= 10, `${m.spec.id} counted the dropped frames: ${JSON.stringify(s.transport)}`);
      }
      assert.equal((await stats(await c.leader())).term, termBefore, 'the leader was never deposed');
      assert.equal(await config(await c.leader()), before);
      // Nothing was persisted that could stop a restarted cluster from electing a leader.
      await Promise.all(c.members.map((m) => m.stop()));
      for (const m of c.members) await m.start();
      const again = await c.leader(30_000);
      assert.equal(await put(again.url, 'after-restart', 'ok'), 200);
      assert.ok(!(await config(again)).includes('mallory'));
    } finally {
      await c.stopAll();
    }
  });

  it('frames naming a real member but carrying another cluster\'s id, or a malformed one, never reach raft', async () => {
    const c = await threeMembers();
    try {
      const leader = await c.leader();
      const termBefore = (await stats(leader)).term;
      const before = await Promise.all(c.members.map(async (m) => (await stats(m)).transport));
      // A heartbeat at a high term from a real member would depose the leader if raft saw it.
      const hb = (to: string, from: string) => makeMessage({ type: 'heartbeat', from, to, term: 50_000, commit: 1 });
      for (const m of c.members) {
        const from = m.spec.id === 'v1' ? 'boot' : 'v1';
        await sendFrames(m.raftPort, [
          { from, to: m.spec.id, cluster: 'f'.repeat(32), msg: hb(m.spec.id, from) },
          { from, to: m.spec.id, cluster: 'not a cluster id', msg: hb(m.spec.id, from) },
          { from, to: m.spec.id, cluster: 12345, msg: hb(m.spec.id, from) },
        ]);
      }
      for (const [i, m] of c.members.entries()) {
        const t = (await stats(m)).transport;
        assert.ok(t.foreignCluster! >= before[i]!.foreignCluster! + 1, `${m.spec.id} dropped the other cluster's frame: ${JSON.stringify(t)}`);
        assert.ok(t.invalid! >= before[i]!.invalid! + 2, `${m.spec.id} dropped the malformed ids: ${JSON.stringify(t)}`);
      }
      assert.equal((await stats(await c.leader())).term, termBefore, 'the leader was never deposed');
    } finally {
      await c.stopAll();
    }
  });

  it('with a cluster secret, even a frame that names a real member is refused before raft; member-only endpoints need the token', async () => {
    const dir = tempDir('conure-secret-');
    const file = join(dir.dir, 'secret');
    writeFileSync(file, 'a cluster secret that is long enough\n');
    const c = await threeMembers(['--peer-secret-file', file]);
    try {
      const leader = await c.leader();
      const termBefore = (await stats(leader)).term;
      // Well-formed frames, from the real member ids, with a higher term: would depose the leader.
      for (const m of c.members) {
        const other = c.members.find((x) => x !== m)!.spec.id;
        await sendFrames(m.raftPort, [{ from: other, to: m.spec.id, msg: makeMessage({ type: 'heartbeat', from: other, to: m.spec.id, term: termBefore + 100, commit: 1 }) }]);
      }
      await new Promise((r) => setTimeout(r, 300));
      for (const m of c.members) {
        const s = await stats(m);
        assert.ok(s.term < termBefore + 100, `${m.spec.id} adopted the forged term`);
        assert.ok(s.transport.authFailed! + s.transport.badFrames! >= 1, `${m.spec.id}: ${JSON.stringify(s.transport)}`);
      }
      const token = new PeerSecret('a cluster secret that is long enough').httpToken;
      const snap = await fetch(`${leader.url}/raft/snapshot`);
      assert.equal(snap.status, 401);
      assert.equal(((await snap.json()) as { code: string }).code, 'unauthenticated');
      assert.equal((await fetch(`${leader.url}/raft/snapshot`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
      assert.equal((await fetch(`${leader.url}/raft/snapshot`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      const before = await config(leader);
      const join = await fetch(`${leader.url}/join`, { method: 'POST', body: JSON.stringify({ ID: 'mallory', RaftAddr: '127.0.0.1:1' }) });
      assert.equal(join.status, 401);
      const remove = await fetch(`${leader.url}/remove`, { method: 'POST', body: JSON.stringify({ ID: 'v1' }) });
      assert.equal(remove.status, 401);
      assert.equal(await config(leader), before);
      // Clients are unaffected: reads and writes need no peer credential.
      assert.equal(await put(leader.url, 'k', 'v'), 200);
    } finally {
      await c.stopAll();
      dir.cleanup();
    }
  });
});

describe('membership requests', { timeout: 120_000 }, () => {
  it('a refused /join or /remove changes nothing (finding 6); a follower answers 409 with the leader before reading the body', async () => {
    const c = await threeMembers();
    try {
      const leader = await c.leader();
      const follower = c.members.find((m) => m !== leader && m.spec.role !== 'arbiter')!;
      const before = await config(leader);
      const post = (m: TestMember, path: string, body: string) => fetch(`${m.url}${path}`, { method: 'POST', body });
      // A live member's id at a new address: refused, and the member stays reachable.
      const moved = await post(leader, '/join', JSON.stringify({ ID: follower.spec.id, RaftAddr: '127.0.0.1:54999' }));
      assert.equal(moved.status, 409, await moved.clone().text());
      assert.match(((await moved.json()) as { error: string }).error, /is active at/);
      // Role changes of existing members, malformed requests.
      for (const body of [
        JSON.stringify({ ID: 'arb', RaftAddr: '127.0.0.1:54998', Role: 'voter' }),
        JSON.stringify({ ID: follower.spec.id, RaftAddr: follower.raftAddr, Role: 'arbiter' }),
        JSON.stringify({ ID: 'x y', RaftAddr: '127.0.0.1:1' }),
        '{"ID":', '',
      ]) {
        const res = await post(leader, '/join', body);
        assert.equal(res.status, 400, `${body}: ${res.status}`);
      }
      const res = await post(leader, '/remove', '{"ID":');
      assert.equal(res.status, 400);
      // The guide's follower check: 409 and the leader, whatever the body.
      for (const [path, body] of [['/join', '{"ID":"test","RaftAddr":"test"}'], ['/join', 'garbage'], ['/remove', '{"ID":"boot"}']] as const) {
        const r = await post(follower, path, body);
        assert.equal(r.status, 409);
        const j = (await r.json()) as { leader: string; leader_http: string };
        assert.equal(j.leader, leader.raftAddr);
        assert.equal(j.leader_http, `127.0.0.1:${leader.httpPort}`);
      }
      assert.equal(await config(leader), before);
      assert.equal(await put(follower.url, 'still-served', 'yes'), 200);
    } finally {
      await c.stopAll();
    }
  });
});
