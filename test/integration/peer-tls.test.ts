/**
 * A 3-member cluster on 127.0.0.1 with mutual TLS on the raft port (`--peer-cert-file`,
 * `--peer-key-file`, `--peer-trusted-ca-file`, `--peer-client-cert-auth`): it replicates, and a
 * hostile client without a valid certificate reaches nothing of raft. Then etcd's `/health` on
 * the client port answers `"false"` with 503 once the quorum is gone.
 */
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { pack } from 'msgpackr';
import { ensureDevCertificates, type DevCertificates } from '../../src/cli/dev-certs.js';
import { makeMessage } from '../../src/raft/types.js';
import { encodeFrame } from '../../src/node/peer-transport.js';
import { TestCluster, type TestMember } from '../support/cluster.js';
import { tempDir } from '../support/conured-process.js';
import { until } from '../support/until.js';

async function stats(m: TestMember): Promise<{ term: number; transport: Record<string, number> }> {
  return (await (await fetch(`${m.url}/raft/stats`)).json()) as { term: number; transport: Record<string, number> };
}

/** Forged frames: a heartbeat with a huge term from a member id, in plain TCP and inside TLS without a certificate. */
async function attack(m: TestMember, certs: DevCertificates): Promise<void> {
  const frame = encodeFrame(pack({ from: 'v1', to: m.spec.id, msg: makeMessage({ type: 'heartbeat', from: 'v1', to: m.spec.id, term: 1_000_000, commit: 1 }) }));
  const plain = connect({ host: '127.0.0.1', port: m.raftPort });
  plain.on('error', () => undefined);
  await new Promise((r) => plain.once('connect', r));
  plain.write(frame);
  await new Promise((r) => plain.once('close', r));
  const noCert = tlsConnect({ host: '127.0.0.1', port: m.raftPort, ca: readFileSync(certs.ca) });
  noCert.on('error', () => undefined);
  await new Promise((r) => noCert.once('secureConnect', r));
  noCert.write(frame);
  await new Promise((r) => noCert.once('close', r));
}

describe('raft peers with mutual TLS', () => {
  const dir = tempDir('conure-peer-tls-');
  const cluster = new TestCluster();
  let certs: DevCertificates;
  let members: TestMember[];

  before(async () => {
    certs = await ensureDevCertificates(dir.dir, ['127.0.0.1']);
    const tls = ['--peer-cert-file', certs.peer.cert, '--peer-key-file', certs.peer.key, '--peer-trusted-ca-file', certs.ca, '--peer-client-cert-auth'];
    const boot = await cluster.add({ id: 'boot', bootstrap: true });
    const v1 = await cluster.add({ id: 'v1' });
    const v2 = await cluster.add({ id: 'v2' });
    boot.spec.join = [v1.url, v2.url]; v1.spec.join = [boot.url]; v2.spec.join = [boot.url, v1.url];
    members = [boot, v1, v2];
    for (const m of members) await m.start(tls);
    await cluster.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
    for (const m of members) await m.waitReady();
  });
  after(async () => {
    await cluster.stopAll();
    dir.cleanup();
  });

  it('replicates writes over TLS', async () => {
    const leader = await cluster.leader();
    assert.equal((await fetch(`${leader.url}/kv?key=tls&value=peers`, { method: 'PUT' })).status, 200);
    for (const m of members) assert.equal(await (await fetch(`${m.url}/kv?key=tls`)).text(), 'peers');
  });

  it('a client without a valid certificate reaches nothing of raft', async () => {
    const before = await Promise.all(members.map(stats));
    for (const m of members) await attack(m, certs);
    await until('every member counted the failed handshakes', async () => (await Promise.all(members.map(stats))).every((s, i) => s.transport.authFailed! >= before[i]!.transport.authFailed! + 2));
    const afterwards = await Promise.all(members.map(stats));
    for (const [i, s] of afterwards.entries()) {
      assert.ok(s.term < 1_000_000, `member ${members[i]!.spec.id} adopted the forged term`);
      assert.equal(s.transport.invalid, before[i]!.transport.invalid);
      assert.equal(s.transport.nonMember, before[i]!.transport.nonMember);
    }
    const leader = await cluster.leader();
    assert.equal((await fetch(`${leader.url}/kv?key=still&value=fine`, { method: 'PUT' })).status, 200);
  });

  it('/health on the client port is "false" with 503 without a quorum', async () => {
    const survivor = members[0]!;
    const health = async () => {
      const res = await fetch(`http://127.0.0.1:${survivor.clientPort}/health`, { signal: AbortSignal.timeout(5000) });
      return { status: res.status, body: await res.json() };
    };
    assert.deepEqual(await health(), { status: 200, body: { health: 'true' } });
    await members[1]!.stop();
    await members[2]!.stop();
    assert.deepEqual(await until('health false', async () => { const h = await health(); return h.status === 503 && h; }), { status: 503, body: { health: 'false' } });
  });
});
