import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ensureDevCertificates } from './dev-certs.js';
import { devTlsArgs } from './dev-cluster.js';

describe('dev certificates', () => {
  it('makes a CA and server, peer and client certificates for the hosts, and keeps them on a second run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dev-certs-'));
    try {
      const c = await ensureDevCertificates(dir, ['127.0.0.1', 'localhost']);
      const text = (f: string) => execFileSync('openssl', ['x509', '-in', f, '-noout', '-text'], { encoding: 'utf8' });
      assert.match(text(c.server.cert), /IP Address:127\.0\.0\.1, DNS:localhost/);
      assert.match(text(c.peer.cert), /TLS Web Server Authentication, TLS Web Client Authentication/);
      assert.match(text(c.client.cert), /TLS Web Client Authentication/);
      execFileSync('openssl', ['verify', '-CAfile', c.ca, c.server.cert, c.peer.cert, c.client.cert]);
      const again = await ensureDevCertificates(dir, ['127.0.0.1']);
      assert.equal(text(again.server.cert), text(c.server.cert));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says clearly when openssl is missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await assert.rejects(ensureDevCertificates(join(tmpdir(), 'never-made'), ['127.0.0.1']), /openssl was not found on PATH/);
    } finally {
      process.env.PATH = path;
      rmSync(join(tmpdir(), 'never-made'), { recursive: true, force: true });
    }
  });

  it('dev cluster --tls turns TLS on for every port, with client and peer certificate checks', () => {
    const args = devTlsArgs({ dir: '/t', ca: '/t/ca.pem', server: { cert: 's', key: 'sk' }, peer: { cert: 'p', key: 'pk' }, client: { cert: 'c', key: 'ck' } });
    for (const flag of ['--cert-file', '--client-cert-auth', '--http-cert-file', '--peer-cert-file', '--peer-client-cert-auth']) assert.ok(args.includes(flag), flag);
    assert.equal(args[args.indexOf('--peer-trusted-ca-file') + 1], '/t/ca.pem');
  });
});
