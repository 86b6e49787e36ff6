/**
 * The command line, as `make run` and a user drive it:
 * - `conure-platform daemon start` starts the platform detached, waits for /health and prints
 *   the URL, the admin token (generated once, saved 0600) and the curl example; `daemon status`,
 *   `daemon logs`, `daemon stop` (SIGTERM, instances keep running);
 * - `conurectl platform db create --wait` (progress bar on stderr), `db list`, `db resize`,
 *   `op get`, `op wait`, a wrong token (exit 1 with the server's message), a bad flag (exit 2);
 * - bad configuration: `conure-platform` exits 2 with a message.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONURECTL } from '../support/conured-process.js';
import { freePort } from '../support/cluster.js';
import { killAllUnder } from '../support/local-driver.js';
import { CONURE_PLATFORM, portRangeFor } from '../support/platform-process.js';

const dir = mkdtempSync(join(tmpdir(), 'platform-cli-'));
after(() => { killAllUnder(dir); rmSync(dir, { recursive: true, force: true }); });

function run(script: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [script, ...args], { env: { ...process.env, CONURE_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('bad configuration exits 2 with a message', async () => {
  for (const [env, re] of [
    [{ NUM_OPERATION_WORKERS: 'many' }, /NUM_OPERATION_WORKERS must be a whole number/],
    [{ PORT: '70000' }, /PORT must be a whole number from 0 to 65535/],
    [{ PLATFORM_DRIVER: 'docker' }, /PLATFORM_DRIVER must be local or kubernetes/],
    // The kubernetes driver: no cluster configured at all (KUBECONFIG unset, no ~/.kube/config, not in a pod), and bad settings.
    [{ PLATFORM_DRIVER: 'kubernetes', KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '', HOME: join(dir, 'no-home') }, /no Kubernetes configuration: set KUBECONFIG/],
    [{ PLATFORM_DRIVER: 'kubernetes', PLATFORM_K8S_IMAGE: 'Not An Image' }, /PLATFORM_K8S_IMAGE: image "Not An Image" must be \[registry\/\]repository:tag/],
    [{ PLATFORM_DRIVER: 'kubernetes', PLATFORM_K8S_FLUXION_VALUES: '[1]' }, /PLATFORM_K8S_FLUXION_VALUES must be a JSON object/],
    [{ PLATFORM_DRIVER: 'kubernetes', PLATFORM_K8S_TENANT_QUOTA: '{"pods":4}' }, /PLATFORM_K8S_TENANT_QUOTA: pods must be a quantity string/],
    [{ PLATFORM_DRIVER: 'kubernetes', PLATFORM_CHARTS_DIR: join(dir, 'nowhere') }, /PLATFORM_CHARTS_DIR: .*conuredb\/Chart.yaml is missing/],
    [{ PLATFORM_ADMIN_TOKEN: 'short' }, /at least 16 characters/],
  ] as Array<[Record<string, string>, RegExp]>) {
    const r = await run(CONURE_PLATFORM, ['serve'], { ...env, PLATFORM_DATA_DIR: join(dir, 'bad') });
    assert.equal(r.code, 2, JSON.stringify(env));
    assert.match(r.stderr, re);
  }
});

test('daemon start/status/logs/stop and conurectl platform', async () => {
  const port = await freePort();
  const env = { PLATFORM_DATA_DIR: join(dir, 'p'), PORT: String(port), PLATFORM_PORT_RANGE: portRangeFor(join(dir, 'p')) };
  const start = await run(CONURE_PLATFORM, ['daemon', 'start'], env);
  assert.equal(start.code, 0, start.stderr);
  const tokenFile = join(dir, 'p', 'admin-token');
  const token = readFileSync(tokenFile, 'utf8').trim();
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  assert.ok(start.stdout.includes(`http://127.0.0.1:${port}`));
  assert.ok(start.stdout.includes(`Admin token: ${token}`));
  assert.match(start.stdout, /curl -sS -X POST .*\/v1\/databases .*"engine":"fluxion"/);
  // Starting again finds it running.
  assert.equal((await run(CONURE_PLATFORM, ['daemon', 'start'], env)).code, 0);
  const status = await run(CONURE_PLATFORM, ['daemon', 'status'], env);
  assert.match(status.stdout, /"status":"healthy"/);
  assert.match((await run(CONURE_PLATFORM, ['daemon', 'logs'], env)).stdout, /operation_workers_started/);

  const ctl = { CONURE_PLATFORM_URL: `http://127.0.0.1:${port}`, CONURE_PLATFORM_TOKEN: token };
  const created = await run(CONURECTL, ['platform', 'db', 'create', '--engine', 'fluxion', '--tenant', 'cli', '--ram', '512Mi', '--api-key', 'cli-key-0123456789', '--wait'], ctl);
  assert.equal(created.code, 0, created.stderr);
  const out = JSON.parse(created.stdout) as { database: { id: string; status: { phase: string } }; operation: { id: string; state: string } };
  assert.equal(out.operation.state, 'succeeded');
  assert.equal(out.database.status.phase, 'Ready');
  assert.match(created.stderr, /\[#+\] 100% create succeeded/, 'a progress bar on stderr');
  const list = JSON.parse((await run(CONURECTL, ['platform', 'db', 'list'], ctl)).stdout) as Array<{ id: string }>;
  assert.deepEqual(list.map((d) => d.id), [out.database.id]);
  const resize = JSON.parse((await run(CONURECTL, ['platform', 'db', 'resize', out.database.id, '--ram', '1Gi'], ctl)).stdout) as { operation: { id: string } };
  const waited = await run(CONURECTL, ['platform', 'op', 'wait', resize.operation.id], ctl);
  assert.equal(waited.code, 0, waited.stderr);
  assert.equal((JSON.parse(waited.stdout) as { state: string }).state, 'succeeded');
  assert.equal((JSON.parse((await run(CONURECTL, ['platform', 'op', 'get', resize.operation.id], ctl)).stdout) as { type: string }).type, 'resize');
  const spec = (JSON.parse((await run(CONURECTL, ['platform', 'db', 'get', out.database.id], ctl)).stdout) as { spec: { ram: string; storage: string } }).spec;
  assert.deepEqual([spec.ram, spec.storage], ['1Gi', '2Gi']);

  const wrong = await run(CONURECTL, ['platform', 'db', 'list'], { ...ctl, CONURE_PLATFORM_TOKEN: 'wrong-token' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /bearer token is not valid/);
  const bad = await run(CONURECTL, ['platform', 'db', 'scale', out.database.id, '--voters', 'three'], ctl);
  assert.equal(bad.code, 2);

  const stop = await run(CONURE_PLATFORM, ['daemon', 'stop'], env);
  assert.equal(stop.code, 0);
  assert.match(stop.stdout, /stopped/);
  assert.match((await run(CONURE_PLATFORM, ['daemon', 'status'], env)).stdout, /not running/);
});
