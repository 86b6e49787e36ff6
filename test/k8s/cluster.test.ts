/**
 * Smoke test of the local Kubernetes (test/k8s/local-kubernetes.ts): the node is Ready, a pod
 * of the locally built conure image runs node, a ClusterIP Service reaches a pod, cluster DNS
 * resolves a service name, and charts/conuredb installs (2 voters + 1 arbiter), forms a
 * 3-member raft configuration and uninstalls. STORE=etcd|conuredb picks the apiserver's store;
 * without STORE the suite runs once per store, one cluster after the other.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CONURE_IMAGE, NODE_NAME, REPO, startLocalKubernetes, type LocalKubernetes, type Store } from './local-kubernetes.js';

const stores: Store[] = process.env.STORE ? [process.env.STORE as Store] : ['etcd', 'conuredb'];
const ns = `conure-smoke-${Date.now().toString(36)}`;
// localhost/conure/conuredb:dev -> registry localhost, repository conure/conuredb, tag dev
const imageRegistry = CONURE_IMAGE.slice(0, CONURE_IMAGE.indexOf('/'));
const imageRepo = CONURE_IMAGE.slice(CONURE_IMAGE.indexOf('/') + 1, CONURE_IMAGE.lastIndexOf(':'));
const imageTag = CONURE_IMAGE.slice(CONURE_IMAGE.lastIndexOf(':') + 1);
const note = (m: string): void => { process.stderr.write(`[k8s-test ${new Date().toISOString().slice(11, 19)}] ${m}\n`); };

let k: LocalKubernetes;

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

/** Polls until `check` is truthy, noting progress every 10 s; bounded. */
async function until<T>(what: string, timeoutMs: number, check: () => T | undefined | false): Promise<T> {
  const t0 = Date.now();
  let noted = t0;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) {
      const pods = k.kubectl(['get', 'pods', '-n', ns, '-o', 'wide'], { allowFail: true }).stdout;
      const events = k.kubectl(['get', 'events', '-n', ns, '--sort-by=.lastTimestamp'], { allowFail: true }).stdout.split('\n').slice(-25).join('\n');
      throw new Error(`timed out waiting for ${what}\n${pods}\n${events}`);
    }
    if (Date.now() - noted > 10_000) { note(`waiting for ${what} (${Math.round((Date.now() - t0) / 1000)}s)`); noted = Date.now(); }
    await sleep(1000);
  }
}

function podPhase(name: string): string {
  return k.kubectl(['get', 'pod', name, '-n', ns, '-o', 'jsonpath={.status.phase}'], { allowFail: true }).stdout.trim();
}

function apply(yaml: string): void { k.kubectl(['apply', '-n', ns, '-f', '-'], { input: yaml }); }

/** Runs `node -e <script>` in the toolbox pod; returns stdout. */
function nodeIn(pod: string, script: string, container?: string): string {
  return k.kubectl(['exec', '-n', ns, pod, ...(container ? ['-c', container] : []), '--', 'node', '-e', script], { timeoutMs: 60_000 }).stdout;
}

for (const store of stores) describe(`local Kubernetes (store ${store})`, { timeout: 60 * 60_000 }, () => {
  before(async () => {
    k = await startLocalKubernetes({ store });
    k.kubectl(['create', 'namespace', ns]);
    await until('the namespace default service account', 60_000, () => k.kubectl(['get', 'sa', 'default', '-n', ns], { allowFail: true }).code === 0);
  });

  after(async () => {
    if (!k) return;
    const kk = k;
    await kk.stop();
    note(`timings (s), store ${store}: ${JSON.stringify(kk.timings)}`);
  });

  it('has a Ready node', () => {
    const out = k.kubectl(['get', 'nodes', '-o', 'wide']).stdout;
    note(`\n${out}`);
    assert.match(out, new RegExp(`${NODE_NAME}\\s+Ready`));
  });

  it('runs a pod of the local conure image to completion', async () => {
    apply(`apiVersion: v1
kind: Pod
metadata: {name: node-once}
spec:
  restartPolicy: Never
  containers:
  - name: node
    image: ${CONURE_IMAGE}
    imagePullPolicy: Never
    command: [node, -e, "console.log('node ' + process.version + ' ok'); process.exit(0)"]
`);
    const phase = await until('pod node-once to finish', 180_000, () => { const p = podPhase('node-once'); return p === 'Succeeded' || p === 'Failed' ? p : undefined; });
    const logs = k.kubectl(['logs', '-n', ns, 'node-once']).stdout;
    const exit = k.kubectl(['get', 'pod', 'node-once', '-n', ns, '-o', 'jsonpath={.status.containerStatuses[0].state.terminated.exitCode}']).stdout.trim();
    assert.equal(phase, 'Succeeded', logs);
    assert.equal(exit, '0');
    assert.match(logs, /^node v\d+\.\d+\.\d+ ok/);
  });

  it('reaches a pod through a ClusterIP Service, by IP and by DNS name', async () => {
    apply(`apiVersion: v1
kind: Pod
metadata: {name: echo, labels: {app: echo}}
spec:
  containers:
  - name: echo
    image: ${CONURE_IMAGE}
    imagePullPolicy: Never
    command: [node, -e, "require('http').createServer((q, s) => s.end('hello from ' + require('os').hostname())).listen(8080)"]
    ports: [{containerPort: 8080}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: toolbox}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: toolbox
    image: ${CONURE_IMAGE}
    imagePullPolicy: Never
    command: [sleep, "86400"]
`);
    await until('pods echo and toolbox Running', 180_000, () => podPhase('echo') === 'Running' && podPhase('toolbox') === 'Running');
    await until('service echo endpoints', 60_000, () => k.kubectl(['get', 'endpoints', 'echo', '-n', ns, '-o', 'jsonpath={.subsets[0].addresses[0].ip}'], { allowFail: true }).stdout.trim());
    const clusterIP = k.kubectl(['get', 'svc', 'echo', '-n', ns, '-o', 'jsonpath={.spec.clusterIP}']).stdout.trim();
    assert.match(clusterIP, /^198\.19\.0\.\d+$/);
    const fetchScript = (url: string): string => `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((t) => { console.log(t); }, (e) => { console.error(String(e.cause ?? e)); process.exit(1); })`;
    // kube-proxy may take a sync period to program the service: retry briefly.
    let byIp = '';
    await until('the service by ClusterIP', 60_000, () => { const r = k.kubectl(['exec', '-n', ns, 'toolbox', '--', 'node', '-e', fetchScript(`http://${clusterIP}/`)], { allowFail: true }); byIp = r.stdout; return r.code === 0; });
    assert.match(byIp, /hello from echo/);
    const name = `echo.${ns}.svc.cluster.local`;
    const addr = nodeIn('toolbox', `require('dns').promises.lookup(${JSON.stringify(name)}).then((a) => console.log(a.address))`).trim();
    assert.equal(addr, clusterIP, `${name} resolves to the ClusterIP`);
    assert.match(nodeIn('toolbox', fetchScript(`http://${name}/`)), /hello from echo/);
    // The short name through the pod's search path, as the charts' clients use it.
    assert.match(nodeIn('toolbox', fetchScript('http://echo/')), /hello from echo/);
  });

  it('installs charts/conuredb: all pods Ready and 3 raft members; then uninstalls', async () => {
    const t0 = Date.now();
    k.helm(['install', 'conuredb', join(REPO, 'charts/conuredb'), '-n', ns,
      '--set', `image.registry=${imageRegistry}`, '--set', `image.repository=${imageRepo}`, '--set', `image.tag=${imageTag}`, '--set', 'image.pullPolicy=Never']);
    const expected = ['conure-bootstrap-0', 'conure-0', 'conure-arbiter-0'];
    await until('the conuredb pods Ready', 420_000, () => {
      const out = k.kubectl(['get', 'pods', '-n', ns, '-l', 'app.kubernetes.io/instance=conuredb', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'], { allowFail: true }).stdout;
      const ready = out.split('\n').filter((l) => l.endsWith('=True')).map((l) => l.split('=')[0]!);
      return expected.every((p) => ready.includes(p));
    });
    note(`conuredb Ready in ${Math.round((Date.now() - t0) / 1000)}s\n${k.kubectl(['get', 'pods', '-n', ns, '-o', 'wide']).stdout}`);
    for (const pod of expected) {
      const cfg = JSON.parse(nodeIn(pod, "fetch('http://127.0.0.1:8081/raft/config').then((r) => r.text()).then((t) => console.log(t))", 'conured')) as { servers: { id: string; suffrage: string }[] };
      assert.equal(cfg.servers.length, 3, `${pod}: ${JSON.stringify(cfg)}`);
      assert.deepEqual(cfg.servers.map((s) => s.suffrage).sort(), ['arbiter', 'voter', 'voter']);
    }
    // Through the client Service by its DNS name, from another pod.
    const viaSvc = nodeIn('toolbox', `fetch('http://conure.${ns}.svc.cluster.local:8081/raft/config').then((r) => r.json()).then((j) => console.log(j.servers.length))`).trim();
    assert.equal(viaSvc, '3');
    // The chart's own `helm test` pod: a put/get/del round trip and the member counts.
    const ht = k.helm(['test', 'conuredb', '-n', ns, '--timeout', '5m']);
    assert.match(ht.stdout, /Phase:\s+Succeeded/);
    k.helm(['uninstall', 'conuredb', '-n', ns, '--wait', '--timeout', '5m']);
    await until('the conuredb pods gone', 180_000, () => k.kubectl(['get', 'pods', '-n', ns, '-l', 'app.kubernetes.io/instance=conuredb', '-o', 'name'], { allowFail: true }).stdout.trim() === '');
  });
});
