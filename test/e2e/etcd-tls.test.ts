/**
 * The etcd client port as etcd serves it, against a real conured on 127.0.0.1 and the real
 * etcdctl 3.4 and curl: TLS with client certificates (`--cert-file`, `--key-file`,
 * `--trusted-ca-file`, `--client-cert-auth`), and HTTP/1.1 (`/health`, `/version`,
 * `/metrics`, `/v3/*`) beside gRPC on the same port, with and without TLS.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ensureDevCertificates, type DevCertificates } from '../../src/cli/dev-certs.js';
import { TestCluster, type TestMember } from '../support/cluster.js';
import { tempDir } from '../support/conured-process.js';
import { etcdctl } from '../support/etcd-process.js';

const have = (bin: string) => spawnSync('which', [bin]).status === 0;
const skip = ['etcdctl', 'curl', 'openssl'].filter((b) => !have(b)).map((b) => `missing ${b}`).join(', ') || false;

function curl(args: string[]): { code: number; body: string; status: string } {
  const r = spawnSync('curl', ['-sS', '--max-time', '10', '-w', '\n%{http_code}', ...args], { encoding: 'utf8' });
  const lines = r.stdout.split('\n');
  return { code: r.status ?? -1, status: lines.pop() ?? '', body: lines.join('\n') };
}

async function oneMember(args: string[]): Promise<{ cluster: TestCluster; member: TestMember }> {
  const cluster = new TestCluster();
  const member = await cluster.add({ id: 'tls0', bootstrap: true });
  await member.start(args);
  await member.waitReady();
  return { cluster, member };
}

describe('etcd client port with TLS and client certificates', { skip }, () => {
  const dir = tempDir('conure-etcd-tls-');
  let certs: DevCertificates;
  let cluster: TestCluster;
  let endpoint: string;
  let tlsArgs: string[];

  before(async () => {
    certs = await ensureDevCertificates(dir.dir, ['127.0.0.1', 'localhost']);
    const started = await oneMember(['--cert-file', certs.server.cert, '--key-file', certs.server.key, '--trusted-ca-file', certs.ca, '--client-cert-auth']);
    cluster = started.cluster;
    endpoint = `https://127.0.0.1:${started.member.clientPort}`;
    tlsArgs = ['--cacert', certs.ca, '--cert', certs.client.cert, '--key', certs.client.key];
  });
  after(async () => {
    await cluster?.stopAll();
    dir.cleanup();
  });

  it('etcdctl --cacert/--cert/--key puts and gets over https', async () => {
    const put = await etcdctl(endpoint, [...tlsArgs, 'put', 'tls-key', 'tls-value']);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(put.stdout.trim(), 'OK');
    const get = await etcdctl(endpoint, [...tlsArgs, 'get', 'tls-key']);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, 'tls-key\ntls-value\n');
  });

  it('refuses etcdctl without a client certificate, or speaking plain gRPC', async () => {
    const noCert = await etcdctl(endpoint, ['--cacert', certs.ca, '--dial-timeout=2s', '--command-timeout=3s', 'get', 'tls-key'], undefined, 15_000);
    assert.notEqual(noCert.code, 0);
    const plain = await etcdctl(endpoint.replace('https', 'http'), ['--dial-timeout=2s', '--command-timeout=3s', 'get', 'tls-key'], undefined, 15_000);
    assert.notEqual(plain.code, 0);
  });

  it('serves /health, /version, /metrics and the /v3 gateway over https on the same port', () => {
    const health = curl([...tlsArgs, `${endpoint}/health`]);
    assert.deepEqual([health.status, JSON.parse(health.body)], ['200', { health: 'true' }]);
    const version = JSON.parse(curl([...tlsArgs, `${endpoint}/version`]).body) as Record<string, string>;
    assert.deepEqual(Object.keys(version).sort(), ['etcdcluster', 'etcdserver']);
    assert.match(curl([...tlsArgs, `${endpoint}/metrics`]).body, /^conure_is_leader 1$/m);
    const range = JSON.parse(curl([...tlsArgs, `${endpoint}/v3/kv/range`, '-d', JSON.stringify({ key: Buffer.from('tls-key').toString('base64') })]).body) as { kvs: Array<{ value: string }> };
    assert.equal(Buffer.from(range.kvs[0]!.value, 'base64').toString(), 'tls-value');
  });

  it('curl without a client certificate gets nothing', () => {
    const r = curl(['--cacert', certs.ca, `${endpoint}/health`]);
    assert.notEqual(r.code, 0);
    assert.equal(r.body, '');
  });
});

describe('etcd client port without TLS: HTTP/1.1 beside gRPC', { skip }, () => {
  let cluster: TestCluster;
  let port: number;

  before(async () => {
    const started = await oneMember([]);
    cluster = started.cluster;
    port = started.member.clientPort;
  });
  after(async () => { await cluster?.stopAll(); });

  it('curl and etcdctl share the port', async () => {
    const health = curl([`http://127.0.0.1:${port}/health`]);
    assert.deepEqual([health.status, JSON.parse(health.body)], ['200', { health: 'true' }]);
    assert.match(curl([`http://127.0.0.1:${port}/version`]).body, /^\{"etcdserver":"3\.4\.\d+","etcdcluster":"3\.4\.0"\}$/);
    assert.match(curl([`http://127.0.0.1:${port}/metrics`]).body, /^# HELP /m);
    const put = curl([`http://127.0.0.1:${port}/v3/kv/put`, '-d', JSON.stringify({ key: Buffer.from('shared').toString('base64'), value: Buffer.from('port').toString('base64') })]);
    assert.equal(put.status, '200', put.body);
    const get = await etcdctl(`127.0.0.1:${port}`, ['get', 'shared', '--print-value-only']);
    assert.equal(get.stdout, 'port\n', get.stderr);
  });

  it('closes garbage and keeps serving', async () => {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    await new Promise((r) => s.once('connect', r));
    s.write(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x0d, 0x0a]));
    await new Promise((r) => s.once('close', r));
    const put = await etcdctl(`127.0.0.1:${port}`, ['put', 'after-garbage', 'ok']);
    assert.equal(put.code, 0, put.stderr);
  });
});
