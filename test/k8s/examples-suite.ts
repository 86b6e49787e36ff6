/**
 * The examples on the local Kubernetes (registered by cluster.test.ts on one of its clusters):
 *
 * - Time Service: examples/timeservice/k8s/deployment.yaml applied as written, with the local
 *   image in place of conure/timeservice and keinos/sqlite3 (the ServiceMonitor left out: no
 *   Prometheus operator here). The pod serves /api/time; a location is stored; the backup
 *   CronJob, run now, writes a `VACUUM INTO` copy that passes `integrity_check`; the pod is
 *   deleted and the location is still there (the PVC).
 * - Presence registry: charts/conuredb installed with examples/presence-registry/k8s/
 *   conuredb-values.yaml (the guide's 3-node cluster; requests reduced to fit 2 cores), then the
 *   guide's nine checks (scripts/test-etcd-cluster.sh) run through `kubectl exec` in a member
 *   pod with NAMESPACE set: the README's two commands.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { CONURE_IMAGE, REPO, type LocalKubernetes } from './local-kubernetes.js';

const note = (m: string): void => { process.stderr.write(`[k8s-examples ${new Date().toISOString().slice(11, 19)}] ${m}\n`); };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try { const v = await check(); if (v) return v; } catch (err) { last = (err as Error).message; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await sleep(1000);
  }
}

export function examplesSuite(k8s: () => LocalKubernetes): void {
  const kubectl = (args: string[], o: { input?: string; allowFail?: boolean; timeoutMs?: number } = {}): string => k8s().kubectl(args, o).stdout.trim();

  it('Time Service: the manifests as written serve /api/time; the backup CronJob makes a consistent copy; a pod delete keeps the data', async () => {
    const ns = 'timeservice';
    const image = CONURE_IMAGE;
    const docs = parseAllDocuments(readFileSync(join(REPO, 'examples/timeservice/k8s/deployment.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string } | null).filter((d): d is { kind: string } => d !== null);
    const applied = docs.filter((d) => d.kind !== 'ServiceMonitor');
    assert.deepEqual(docs.filter((d) => d.kind === 'ServiceMonitor').length, 1, 'only the ServiceMonitor is left out');
    const yaml = applied.map((d) => stringify(d)).join('---\n').replaceAll('conure/timeservice:0.1.0', image).replaceAll('keinos/sqlite3:3.46.1', image);
    kubectl(['create', 'namespace', ns]);
    try {
      kubectl(['apply', '-n', ns, '-f', '-'], { input: yaml });
      const ready = async (): Promise<{ ip: string; uid: string } | undefined> => {
        const out = kubectl(['get', 'pod', 'timeservice-0', '-n', ns, '-o', 'jsonpath={.status.podIP} {.metadata.uid} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}'], { allowFail: true }).split(' ');
        return out[2] === 'True' && !out[3] ? { ip: out[0]!, uid: out[1]! } : undefined;
      };
      const first = await until('timeservice-0 Ready', 300_000, ready);
      const api = (ip: string, path: string, init?: RequestInit): Promise<{ status: number; json: Record<string, unknown> }> =>
        fetch(`http://${ip}:8080${path}`, { ...init, signal: AbortSignal.timeout(10_000) }).then(async (r) => ({ status: r.status, json: await r.json() as Record<string, unknown> }));
      const time = await api(first.ip, '/api/time?tz=Asia/Tokyo');
      assert.equal(time.status, 200);
      assert.equal(time.json.timezone, 'Asia/Tokyo');
      // Through the Service (port 80), from the host.
      const svc = kubectl(['get', 'service', 'timeservice', '-n', ns, '-o', 'jsonpath={.spec.clusterIP}']);
      const viaSvc = await until('the Service answers', 60_000, () => fetch(`http://${svc}:80/health`, { signal: AbortSignal.timeout(5000) }).then((r) => r.ok));
      assert.ok(viaSvc);
      const post = await api(first.ip, '/api/locations', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'tokyo-office', timezone: 'Asia/Tokyo', description: 'on Kubernetes' }) });
      assert.equal(post.status, 201, JSON.stringify(post.json));
      assert.equal((await api(first.ip, '/api/locations', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'tokyo-office', timezone: 'Asia/Tokyo' }) })).status, 409);
      // The backup CronJob, run now.
      kubectl(['create', 'job', '--from=cronjob/timeservice-backup', 'backup-now', '-n', ns]);
      const outcome = await until('the backup Job to finish', 180_000, () => {
        const st = kubectl(['get', 'job', 'backup-now', '-n', ns, '-o', 'jsonpath={.status.conditions[?(@.type=="Complete")].status}/{.status.conditions[?(@.type=="Failed")].status}'], { allowFail: true });
        return st.startsWith('True/') ? 'succeeded' : st.endsWith('/True') ? 'failed' : undefined;
      });
      assert.equal(outcome, 'succeeded', `the backup Job: ${kubectl(['get', 'events', '-n', ns, '--field-selector', 'involvedObject.kind=Job'], { allowFail: true })}`);
      const log = kubectl(['logs', '-n', ns, 'job/backup-now']);
      assert.match(log, /timeservice_\d{8}-\d{6}\.db/, log);
      note(`backup Job: ${log.split('\n').slice(-1)[0]}`);
      // A pod delete: the StatefulSet recreates it on the same claim, with the data.
      kubectl(['delete', 'pod', 'timeservice-0', '-n', ns, '--wait=false']);
      const second = await until('a new timeservice-0 Ready', 300_000, async () => { const p = await ready(); return p && p.uid !== first.uid ? p : undefined; });
      const kept = await api(second.ip, '/api/locations/tokyo-office');
      assert.equal(kept.status, 200);
      assert.equal(kept.json.description, 'on Kubernetes');
      assert.equal((await api(second.ip, '/api/locations/tokyo-office/time')).status, 200);
    } finally {
      kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFail: true });
    }
  });

  it("presence registry: charts/conuredb with the example's values is the guide's 3-node cluster; the guide's nine checks pass through kubectl exec", async () => {
    const k = k8s();
    const ns = 'chat';
    const rel = 'conuredb';
    const img = CONURE_IMAGE;
    const sets = ['image.registry', img.slice(0, img.indexOf('/')), 'image.repository', img.slice(img.indexOf('/') + 1, img.lastIndexOf(':')), 'image.tag', img.slice(img.lastIndexOf(':') + 1),
      // The example asks 250m/512Mi per member: reduced so the test fits beside the others on 2 cores.
      'voters.resources.requests.cpu', '50m', 'voters.resources.requests.memory', '128Mi'];
    const args: string[] = [];
    for (let i = 0; i < sets.length; i += 2) args.push('--set', `${sets[i]}=${sets[i + 1]}`);
    k.helm(['install', rel, join(REPO, 'charts/conuredb'), '-n', ns, '--create-namespace', '-f', join(REPO, 'examples/presence-registry/k8s/conuredb-values.yaml'), ...args, '--wait', '--timeout', '6m'], { timeoutMs: 420_000 });
    try {
      const pods = kubectl(['get', 'pods', '-n', ns, '-l', 'app.kubernetes.io/name=conuredb', '-o', 'jsonpath={.items[*].metadata.name}']).split(' ').sort();
      assert.deepEqual(pods, ['conure-0', 'conure-1', 'conure-bootstrap-0'], 'three voters, no arbiter');
      assert.equal(kubectl(['get', 'pvc', 'data-conure-0', '-n', ns, '-o', 'jsonpath={.spec.resources.requests.storage}']), '10Gi');
      const r = spawnSync(join(REPO, 'examples/presence-registry/scripts/test-etcd-cluster.sh'), [], {
        encoding: 'utf8', timeout: 300_000,
        // The README's command: etcdctl in the bootstrap pod, against its own client port.
        env: { ...process.env, KUBECTL_POD: 'conure-bootstrap-0', NAMESPACE: ns, ENDPOINTS: 'localhost:2379', KUBECONFIG: k.kubeconfig, PATH: `${k.binDir}:${process.env.PATH}` },
      });
      note(`test-etcd-cluster.sh in ${ns}/conure-bootstrap-0:\n${r.stdout.split('\n').slice(-12).join('\n')}`);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /RESULT: 9 passed, 0 failed/);
    } finally {
      k.helm(['uninstall', rel, '-n', ns, '--wait', '--timeout', '3m'], { allowFail: true, timeoutMs: 240_000 });
      kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFail: true });
    }
  });
}
