/**
 * schemathesis (the real one, from PyPI; scripts/setup.sh installs it into
 * $CONURE_CACHE/venv-schemathesis) against every `/openapi.json`: a real conured, a real
 * conure-platform on the local driver, and a real fluxiond the platform started. Each run
 * generates requests from the document (examples, coverage and fuzzing phases, a bounded number
 * per operation) and checks every answer: no 5xx, the status, content type, headers and body
 * as documented, schema-violating requests refused (and, on conured and fluxiond, 405 for
 * another method; the platform answers 404 there).
 * Afterwards the state is intact: keys written before read back, the raft configuration is the
 * same, and the platform's database made before still exists, unchanged and Ready.
 *
 * What is fuzzed with which credentials, and why:
 *   - conured runs with a cluster secret. Every operation is fuzzed without the member token:
 *     /join, /remove, /promote, /leader/transfer and /raft/snapshot must answer 401, nothing else.
 *     With the token, only /promote (a single-member cluster has no learner, so nothing can be
 *     promoted) and /raft/snapshot (read-only). /join, /remove and /leader/transfer are not
 *     fuzzed with the token: they change the membership by design, and schemathesis's
 *     content-type probes send schema-valid bodies even in negative mode (e.g. /remove
 *     {"ID": <a member it learnt from /raft/config>} would remove the only voter).
 *   - the platform: every operation with the token of tenant `fuzz`, which owns a database of
 *     its own that schemathesis may halt, back up, restore, delete (it learns ids from
 *     responses); then GET operations and POST /v1/tenants with the admin token. The database
 *     that must survive belongs to tenant `keep`, which `fuzz` cannot see.
 *   - fluxiond: /health and /metrics (read-only) of `keep`'s instance.
 *
 * OPENAPI_FUZZ_EXAMPLES sets the examples per operation (default 40), OPENAPI_FUZZ_SEED a
 * seed to replay (each run prints its own). Without schemathesis the suite skips, except in CI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PeerSecret } from '../../src/node/peer-auth.js';
import { PlatformClient, type DatabaseView } from '../../src/client/platform/index.js';
import { TestCluster, type TestMember } from '../support/cluster.js';
import { killAllUnder } from '../support/local-driver.js';
import { ADMIN_TOKEN, eventually, startPlatformProcess, type PlatformProcess } from '../support/platform-process.js';

const ST = join(process.env.CONURE_CACHE ?? '/var/cache/conure', 'venv-schemathesis', 'bin', 'schemathesis');
const skip = !existsSync(ST) && !process.env.CI ? `schemathesis is not installed at ${ST} (make setup installs it)` : false;
const EXAMPLES = process.env.OPENAPI_FUZZ_EXAMPLES ?? '40';
const CHECKS = [
  'not_a_server_error', 'status_code_conformance', 'content_type_conformance', 'response_headers_conformance',
  'response_schema_conformance', 'negative_data_rejection',
];
const KEY = 'fluxion-key-0123456789';

let dir: string;
let cluster: TestCluster;
let member: TestMember;
let memberToken: string;
let platform: PlatformProcess;
let keep: DatabaseView;
let fuzzToken: string;
const known = new Map<string, Buffer>();

/**
 * One `schemathesis run` against `url`; asserts it found nothing, with its report (and the seed
 * to replay it) as the message otherwise.
 */
async function fuzz(what: string, url: string, args: string[], checks = CHECKS): Promise<void> {
  const argv = [
    'run', url, '--checks', checks.join(','), '--max-examples', EXAMPLES, '--phases', 'examples,coverage,fuzzing',
    '--workers', '1', '--request-timeout', '20', ...(process.env.OPENAPI_FUZZ_SEED ? ['--seed', process.env.OPENAPI_FUZZ_SEED] : []), ...args,
  ];
  // cwd: schemathesis keeps its example database (.hypothesis) in the working directory.
  const child = spawn(ST, argv, { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', (err) => { out += `cannot run ${ST}: ${err.message}`; resolve(null); });
    child.on('close', resolve);
  });
  const summary = out.split('\n').map((l) => l.trim()).filter((l) => /^(Selected:|\d+ generated|⚠️|Seed:)/.test(l));
  console.log(`${what}: schemathesis exited ${code}; ${summary.join('; ')}`);
  assert.equal(code, 0, `${what}: schemathesis ${argv.join(' ')}\n${out.slice(-20_000)}`);
  assert.doesNotMatch(out, /Selected: 0\//, `${what}: no operation was tested`);
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'openapi-fuzz-'));
  const secretFile = join(dir, 'peer-secret');
  writeFileSync(secretFile, 'openapi-fuzz-cluster-secret-0123456789\n', { mode: 0o600 });
  memberToken = PeerSecret.fromFile(secretFile).httpToken;
  cluster = new TestCluster();
  member = await cluster.add({ id: 'node1', bootstrap: true });
  await member.start(['--peer-secret-file', secretFile]);
  await member.waitReady();
  for (let i = 0; i < 16; i++) {
    const value = Buffer.from([...Buffer.from(`value-${i}-`), i, 0, 255 - i]);
    known.set(`openapi-fuzz/known-${i}`, value);
    const res = await fetch(`${member.url}/kv?key=${encodeURIComponent(`openapi-fuzz/known-${i}`)}`, { method: 'PUT', body: value });
    assert.equal(res.status, 200);
  }

  platform = await startPlatformProcess({ dataDir: join(dir, 'platform') });
  await platform.admin.createTenant('keep');
  fuzzToken = (await platform.admin.createTenant('fuzz')).token;
  const fuzzer = new PlatformClient({ url: platform.url, token: fuzzToken });
  const kept = await platform.admin.createDatabase({ engine: 'fluxion', tenant: 'keep', ram: '256Mi', apiKey: KEY });
  const prey = await fuzzer.createDatabase({ engine: 'fluxion', ram: '256Mi', apiKey: KEY });
  await platform.admin.waitOperation(kept.operation.id, { timeoutMs: 60_000 });
  await platform.admin.waitOperation(prey.operation.id, { timeoutMs: 60_000 });
  keep = await platform.admin.getDatabase(kept.database.id);
  assert.equal(keep.status.phase, 'Ready');
});

after(async () => {
  if (skip) return;
  await platform?.stop();
  killAllUnder(dir);
  await cluster?.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

test('conured: every operation without the member token (member-only ones answer 401)', { skip }, async () => {
  // unsupported_method too: the REST API answers 405 with Allow for another method on its paths.
  await fuzz('conured', `${member.url}/openapi.json`, [], [...CHECKS, 'unsupported_method']);
});

test('conured: /promote and /raft/snapshot with the member token', { skip }, async () => {
  await fuzz('conured member-only', `${member.url}/openapi.json`, [
    '-H', `Authorization: Bearer ${memberToken}`, '--include-path', '/promote', '--include-path', '/raft/snapshot',
  ], [...CHECKS, 'unsupported_method']);
});

test('fluxiond: /health and /metrics', { skip }, async () => {
  await fuzz('fluxiond', `${keep.endpoints.http}/openapi.json`, [], [...CHECKS, 'unsupported_method']);
});

test('platform: every operation as a tenant with a database of its own', { skip }, async () => {
  await fuzz('platform as tenant fuzz', `${platform.url}/openapi.json`, ['-H', `Authorization: Bearer ${fuzzToken}`]);
  const ops = await new PlatformClient({ url: platform.url, token: fuzzToken }).listOperations();
  console.log(`operations schemathesis started on fuzz's database: ${ops.map((o) => o.type).join(' ') || 'none'}`);
});

test('platform: reads and tenant creation as the admin', { skip }, async () => {
  await fuzz('platform as admin', `${platform.url}/openapi.json`, [
    '-H', `Authorization: Bearer ${ADMIN_TOKEN}`, '--include-method', 'GET', '--include-operation-id', 'postV1Tenants',
  ]);
});

test('state is intact: the keys, the membership, the database made before', { skip }, async () => {
  for (const [key, value] of known) {
    const res = await fetch(`${member.url}/kv?key=${encodeURIComponent(key)}`);
    assert.equal(res.status, 200, key);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), value, key);
  }
  const config = await cluster.config(member);
  assert.deepEqual(config.servers.map((s) => [s.id, s.suffrage]), [['node1', 'voter']]);

  const now = await platform.admin.getDatabase(keep.id);
  assert.deepEqual([now.spec, now.generation, now.deletionPolicy, now.halted], [keep.spec, keep.generation, keep.deletionPolicy, keep.halted]);
  assert.deepEqual((await platform.admin.listOperations(keep.id)).map((o) => o.type), ['create'], 'no operation ran on it but its create');
  await eventually(async () => (await platform.admin.getDatabase(keep.id)).status.phase === 'Ready', 30_000, `${keep.id} Ready`);
  assert.equal((await fetch(`${keep.endpoints.http}/health`)).status, 200);
});
