/**
 * HTTPS on the HTTP API port (`--http-cert-file`, `--http-key-file`, `--http-trusted-ca-file`)
 * of a 3-member cluster on 127.0.0.1: members join through https:// seeds, a member that fell
 * behind the log fetches its snapshot over https, and plain HTTP to the port gets nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ensureDevCertificates } from '../../src/cli/dev-certs.js';
import { MemberHttp } from '../../src/node/member-http.js';
import { TlsFiles } from '../../src/util/tls-files.js';
import { TestCluster, type TestMember } from '../support/cluster.js';
import { tempDir } from '../support/conured-process.js';
import { until } from '../support/until.js';

describe('HTTPS on the HTTP API port', () => {
  const dir = tempDir('conure-http-tls-');
  const cluster = new TestCluster();
  let https: MemberHttp;
  let files: TlsFiles;
  let args: string[];
  let members: TestMember[];
  const url = (m: TestMember, path: string) => `https://127.0.0.1:${m.httpPort}${path}`;
  const servers = async (m: TestMember) => ((await (await https.fetch(url(m, '/raft/config'))).json()) as { servers: unknown[] }).servers.length;

  before(async () => {
    const certs = await ensureDevCertificates(dir.dir, ['127.0.0.1']);
    files = TlsFiles.load({ certFile: certs.client.cert, keyFile: certs.client.key, caFile: certs.ca });
    https = new MemberHttp(files);
    args = ['--http-cert-file', certs.server.cert, '--http-key-file', certs.server.key, '--http-trusted-ca-file', certs.ca, '--snapshot-entries', '20'];
    const boot = await cluster.add({ id: 'boot', bootstrap: true });
    const v1 = await cluster.add({ id: 'v1' });
    const v2 = await cluster.add({ id: 'v2' });
    const seed = `https://127.0.0.1:${boot.httpPort}`;
    v1.spec.join = [seed]; v2.spec.join = [seed, `https://127.0.0.1:${v1.httpPort}`];
    members = [boot, v1, v2];
    for (const m of members) await m.start(args);
    await until('3 members joined over https', async () => { try { return (await servers(boot)) === 3; } catch { return false; } });
  });
  after(async () => {
    files.close();
    await cluster.stopAll();
    dir.cleanup();
  });

  it('serves the REST API over https only', async () => {
    const boot = members[0]!;
    await until('a leader', async () => (await (await https.fetch(url(boot, '/status'))).json() as { leader: string }).leader !== '');
    await assert.rejects(fetch(`http://127.0.0.1:${boot.httpPort}/status`, { signal: AbortSignal.timeout(5000) }));
  });

  it('a member behind the compacted log catches up from a snapshot fetched over https', async () => {
    const lagging = members[2]!;
    const leaderOf = (among: TestMember[]) => until('a leader', async () => {
      for (const m of among) if ((await (await https.fetch(url(m, '/status'))).json() as { is_leader: boolean }).is_leader) return m;
      return undefined;
    });
    assert.equal((await https.fetch(url(await leaderOf(members), '/kv?key=before&value=stop'), { method: 'PUT' })).status, 200);
    await until('the member to stop has caught up', async () => (await (await https.fetch(url(lagging, '/kv?key=before&consistency=serializable'))).text()) === 'stop');
    await lagging.stop();
    const leader = await leaderOf(members.slice(0, 2));
    for (let i = 0; i < 60; i++) assert.equal((await https.fetch(url(leader, `/kv?key=k${i}&value=v${i}`), { method: 'PUT' })).status, 200);
    await lagging.start(args);
    await until('the lagging member has the last write', async () => {
      try { return (await (await https.fetch(url(lagging, '/kv?key=k59&consistency=serializable'))).text()) === 'v59'; } catch { return false; }
    });
    assert.match(lagging.log, /snapshot_installed/);
  });
});
