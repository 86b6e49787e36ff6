/**
 * Development certificates made with the `openssl` CLI (node cannot create X.509 certificates):
 * a CA, and certificates it signs for servers (client ports), peers (raft: server and client
 * use) and a client (etcdctl). For `conurectl dev cluster --tls` and the TLS tests; never for
 * production (no passphrase, keys on disk next to the data).
 *
 *   dir/ca.pem ca-key.pem   server.pem server-key.pem   peer.pem peer-key.pem   client.pem client-key.pem
 *
 * Existing files are kept, so a restarted dev cluster keeps its CA and etcdctl keeps working.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface DevCertificates {
  dir: string;
  ca: string;
  server: { cert: string; key: string };
  peer: { cert: string; key: string };
  client: { cert: string; key: string };
}

export type CertUse = 'server' | 'peer' | 'client';

const EXTENDED_USAGE: Record<CertUse, string> = { server: 'serverAuth', peer: 'serverAuth,clientAuth', client: 'clientAuth' };

/** Runs openssl; a missing binary becomes a clear error. */
async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (err) {
    const e = err as Error & { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('openssl was not found on PATH; install it (Debian: apt-get install openssl) to make TLS certificates', { cause: err });
    throw new Error(`openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

/**
 * Signs a certificate for `use` with the CA in `dir` (made first if absent), valid for
 * `hosts` (IP addresses and DNS names), into `dir/<name>.pem` and `dir/<name>-key.pem`.
 * Keys are P-256. Overwrites that pair (for rotation tests); the CA is kept.
 */
export async function signCertificate(dir: string, name: string, use: CertUse, hosts: string[]): Promise<{ cert: string; key: string }> {
  const ca = await ensureCa(dir);
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  const ext = join(dir, `${name}.ext`);
  const san = hosts.map((h) => (/^[0-9.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  writeFileSync(ext, [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${EXTENDED_USAGE[use]}`,
    ...(san ? [`subjectAltName=${san}`] : []),
  ].join('\n') + '\n');
  const csr = join(dir, `${name}.csr`);
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-subj', `/CN=conure-${name}`, '-out', csr]);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '825', '-extfile', ext, '-out', cert]);
  return { cert, key };
}

async function ensureCa(dir: string): Promise<{ cert: string; key: string }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const cert = join(dir, 'ca.pem');
  const key = join(dir, 'ca-key.pem');
  if (!existsSync(cert) || !existsSync(key)) {
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
      '-days', '3650', '-subj', '/CN=conure-dev-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }
  return { cert, key };
}

/** A CA and server, peer and client certificates under `dir`, for `hosts`; existing ones are kept. */
export async function ensureDevCertificates(dir: string, hosts: string[]): Promise<DevCertificates> {
  const ca = await ensureCa(dir);
  const pair = async (name: CertUse) => {
    const cert = join(dir, `${name}.pem`);
    const key = join(dir, `${name}-key.pem`);
    return existsSync(cert) && existsSync(key) ? { cert, key } : signCertificate(dir, name, name, hosts);
  };
  return { dir, ca: ca.cert, server: await pair('server'), peer: await pair('peer'), client: await pair('client') };
}
