/**
 * The local Kubernetes (test/k8s/local-kubernetes.ts), brought up ONCE per store for every check
 * here: the node is Ready, a pod of the locally built conure image runs node, a ClusterIP
 * Service reaches a pod, cluster DNS resolves a service name; then one charts/conuredb release
 * goes through, in order: install (2 voters + 1 arbiter), the guide's curl lines, scale to 3,
 * a deleted and an evicted voter rejoining without the membership shrinking, scale to 5 and to
 * 1 with every write readable, helm test, and helm uninstall leaving only the PVCs and the peer
 * Secret; last, charts/fluxiondb installs for a tenant, a WebSocket client writes and reads, and
 * an upgrade keeps the data; then the examples (examples-suite.ts) and the platform's kubernetes
 * driver (platform-suite.ts) (docs/kubernetes.md, "What the suite proves"). STORE=etcd|conuredb
 * picks the apiserver's store; without STORE the suite runs once per store, one after the other.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { CONURE_IMAGE, NODE_NAME, REPO, startLocalKubernetes, type LocalKubernetes, type Store } from './local-kubernetes.js';
import { examplesSuite } from './examples-suite.js';
import { platformSuite } from './platform-suite.js';

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


  // --- charts/conuredb end to end: one release, the tests below run in order on it. ---
  const rel = 'conuredb';
  const chart = join(REPO, 'charts/conuredb');
  const imageSets = ['--set', `image.registry=${imageRegistry}`, '--set', `image.repository=${imageRepo}`, '--set', `image.tag=${imageTag}`, '--set', 'image.pullPolicy=Never'];
  type RaftConfig = { leader: string; servers: { id: string; address: string; suffrage: string }[] };
  /** An HTTP request from inside a member's conured container to its own API (the guide's curl lines). */
  const http = (pod: string, method: string, path: string): { status: number; body: string } => JSON.parse(nodeIn(pod,
    `fetch('http://127.0.0.1:8081' + ${JSON.stringify(path)}, { method: ${JSON.stringify(method)}, signal: AbortSignal.timeout(15000) }).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })))`, 'conured')) as { status: number; body: string };
  const raftConfig = (pod: string): RaftConfig | undefined => {
    const r = k.kubectl(['exec', '-n', ns, pod, '-c', 'conured', '--', 'node', '-e', "fetch('http://127.0.0.1:8081/raft/config', { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((t) => console.log(t))"], { allowFail: true, timeoutMs: 20_000 });
    try { return r.code === 0 ? JSON.parse(r.stdout) as RaftConfig : undefined; } catch { return undefined; }
  };
  const readyMembers = (): Map<string, boolean> => {
    const out = k.kubectl(['get', 'pods', '-n', ns, '-l', `app.kubernetes.io/instance=${rel},app.kubernetes.io/name=conuredb`, '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'], { allowFail: true }).stdout;
    return new Map(out.split('\n').filter(Boolean).map((l) => [l.split('=')[0]!, l.endsWith('=True')]));
  };
  const expectedPods = (voters: number): string[] => ['conure-bootstrap-0', ...Array.from({ length: voters - 1 }, (_, i) => `conure-${i}`), ...(voters % 2 === 0 ? ['conure-arbiter-0'] : [])];
  /** Waits until exactly the pods of `voters` are Ready and every one of them sees the full membership. */
  const converged = async (voters: number, timeoutMs: number): Promise<void> => {
    const pods = expectedPods(voters);
    const suffrages = [...Array(voters).fill('voter'), ...(voters % 2 === 0 ? ['arbiter'] : [])].sort();
    await until(`${pods.length} members Ready (${pods.join(', ')}) and in every member's raft configuration`, timeoutMs, () => {
      const ready = readyMembers();
      if (ready.size !== pods.length || !pods.every((p) => ready.get(p))) return false;
      return pods.every((p) => { const c = raftConfig(p); return c && c.leader && JSON.stringify(c.servers.map((s) => s.suffrage).sort()) === JSON.stringify(suffrages); });
    });
  };
  const pdbMinAvailable = (): string => k.kubectl(['get', 'pdb', 'conure', '-n', ns, '-o', 'jsonpath={.spec.minAvailable}'], { allowFail: true }).stdout.trim();
  const written: string[] = [];
  const writeKeys = (tag: string, n: number): void => {
    for (let i = 0; i < n; i++) {
      const key = `scale-${tag}-${i}`;
      assert.deepEqual(http('conure-bootstrap-0', 'PUT', `/kv?key=${key}&value=v-${key}`), { status: 200, body: 'OK' });
      written.push(key);
    }
  };
  /** Every key written so far, read (linearizable) through `pod`, in one exec. */
  const readAll = (pod: string): void => {
    const got = JSON.parse(nodeIn(pod, `Promise.all(${JSON.stringify(written)}.map((k) => fetch('http://127.0.0.1:8081/kv?key=' + k).then((r) => r.text()))).then((v) => console.log(JSON.stringify(v)))`, 'conured')) as string[];
    assert.deepEqual(got, written.map((key) => `v-${key}`), `all ${written.length} keys through ${pod}`);
  };
  const upgrade = (voters: number): void => {
    const t0 = Date.now();
    note(`helm upgrade --reuse-values --set voters.replicas=${voters}`);
    k.helm(['upgrade', rel, chart, '-n', ns, '--reuse-values', '--set', `voters.replicas=${voters}`, '--wait', '--timeout', '6m'], { timeoutMs: 420_000 });
    note(`helm upgrade to ${voters} returned in ${Math.round((Date.now() - t0) / 1000)}s`);
  };

  it('installs charts/conuredb: all pods Ready and 3 raft members', async () => {
    const t0 = Date.now();
    k.helm(['install', rel, chart, '-n', ns, ...imageSets]);
    await converged(2, 420_000);
    note(`conuredb Ready in ${Math.round((Date.now() - t0) / 1000)}s\n${k.kubectl(['get', 'pods', '-n', ns, '-o', 'wide']).stdout}`);
    // Through the client Service by its DNS name, from another pod.
    const viaSvc = nodeIn('toolbox', `fetch('http://conure.${ns}.svc.cluster.local:8081/raft/config').then((r) => r.json()).then((j) => console.log(j.servers.length))`).trim();
    assert.equal(viaSvc, '3');
    assert.equal(pdbMinAvailable(), '2', 'PDB minAvailable is the quorum of 3');
  });

  it("answers the guide's curl lines (docs/http-api.md) through kubectl exec", () => {
    for (const pod of ['conure-bootstrap-0', 'conure-0']) {
      const key = `guide-${pod}`;
      assert.deepEqual(http(pod, 'PUT', `/kv?key=${key}&value=myvalue`), { status: 200, body: 'OK' });
      assert.deepEqual(http(pod, 'GET', `/kv?key=${key}`), { status: 200, body: 'myvalue' });
      assert.deepEqual(http(pod === 'conure-0' ? 'conure-bootstrap-0' : 'conure-0', 'GET', `/kv?key=${key}`), { status: 200, body: 'myvalue' }, 'read through the other voter');
      assert.deepEqual(http(pod, 'DELETE', `/kv?key=${key}`), { status: 200, body: 'OK' });
      assert.deepEqual(http(pod, 'GET', `/kv?key=${key}`), { status: 200, body: '' }, 'absent key: empty body');
      const status = http(pod, 'GET', '/status');
      assert.equal(status.status, 200);
      const st = JSON.parse(status.body) as { is_leader: boolean; leader: string };
      assert.equal(typeof st.is_leader, 'boolean');
      assert.match(st.leader, /^conure-[a-z0-9-]+\.conure-headless\.[^:]+:7001$|^[^:]+:7001$/);
      const cfg = JSON.parse(http(pod, 'GET', '/raft/config').body) as RaftConfig;
      assert.equal(cfg.leader, st.leader);
      assert.deepEqual(cfg.servers.map((s) => s.suffrage).sort(), ['arbiter', 'voter', 'voter']);
      for (const s of cfg.servers) assert.deepEqual(Object.keys(s).sort(), ['address', 'id', 'suffrage']);
    }
    assert.deepEqual(http('conure-bootstrap-0', 'PUT', '/kv?key=test-body').status, 200);
    // An arbiter holds no data: /kv answers 503.
    assert.equal(http('conure-arbiter-0', 'GET', '/kv?key=x').status, 503);
  });

  it('scales to 3 voters with helm upgrade --reuse-values: the arbiter is removed, writes survive, PDB follows the quorum', async () => {
    writeKeys('2', 5);
    upgrade(3);
    await converged(3, 300_000);
    assert.equal(pdbMinAvailable(), '2');
    for (const p of expectedPods(3)) readAll(p);
    writeKeys('3', 5);
  });

  it('a deleted voter pod and an evicted one restart and rejoin; the membership never shrinks', async () => {
    const uid = (p: string): string => k.kubectl(['get', 'pod', p, '-n', ns, '-o', 'jsonpath={.metadata.uid}'], { allowFail: true }).stdout.trim();
    const disrupt = async (pod: string, how: 'delete' | 'evict'): Promise<void> => {
      const before = uid(pod);
      const t0 = Date.now();
      if (how === 'delete') k.kubectl(['delete', 'pod', pod, '-n', ns, '--wait=false']);
      else {
        // `kubectl drain` of the only node would evict everything; the Eviction API on one pod is what drain calls.
        await until('the PDB to allow a disruption', 60_000, () => Number(k.kubectl(['get', 'pdb', 'conure', '-n', ns, '-o', 'jsonpath={.status.disruptionsAllowed}'], { allowFail: true }).stdout.trim() || '0') >= 1);
        k.kubectl(['create', '--raw', `/api/v1/namespaces/${ns}/pods/${pod}/eviction`, '-f', '-'], { input: JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod, namespace: ns } }) });
      }
      let samples = 0;
      await until(`${pod} (${how === "delete" ? "deleted" : "evicted"}) back, Ready, in the raft configuration`, 240_000, () => {
        const cfg = raftConfig('conure-bootstrap-0');
        if (cfg) { samples++; assert.equal(cfg.servers.length, 3, `membership shrank while ${pod} restarted: ${JSON.stringify(cfg)}`); }
        const now = uid(pod);
        return now !== '' && now !== before && readyMembers().get(pod) === true && raftConfig(pod)?.servers.some((s) => s.id.includes(pod) || s.address.startsWith(`${pod}.`));
      });
      note(`${pod} ${how === "delete" ? "deleted" : "evicted"}: back in ${Math.round((Date.now() - t0) / 1000)}s, membership 3 in all ${samples} samples`);
    };
    await disrupt('conure-1', 'delete');
    await converged(3, 120_000);
    await disrupt('conure-0', 'evict');
    await converged(3, 120_000);
    readAll('conure-0');
  });

  it('quorum loss (docs/operations.md): two voters gone with their volumes; recovery.forceNewCluster brings the survivor back with every write, fresh members join', async () => {
    const t0 = Date.now();
    const ctl = (...args: string[]) => k.kubectl(['exec', '-n', ns, 'conure-bootstrap-0', '-c', 'conured', '--', 'conurectl', '--timeout', '3000', ...args], { allowFail: true, timeoutMs: 60_000 });
    // The loss: conure-0 and conure-1 stop (their preStop keeps them in raft: the desired count is
    // unchanged) and their volumes are deleted. The bootstrap member alone has no quorum.
    k.kubectl(['scale', 'statefulset', 'conure', '-n', ns, '--replicas=0']);
    await until('conure-0 and conure-1 gone', 180_000, () => !readyMembers().has('conure-0') && !readyMembers().has('conure-1'));
    k.kubectl(['delete', 'pvc', 'data-conure-0', 'data-conure-1', '-n', ns, '--wait=true'], { timeoutMs: 120_000 });
    await until('conure-bootstrap-0 without a leader', 60_000, () => ctl('health').code === 1);
    assert.match(ctl('health').stderr, /unhealthy: no reachable member knows a leader/);
    const plan = ctl('recover');
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /recover from conure-bootstrap-0 /);

    note('helm upgrade --reuse-values --set recovery.forceNewCluster=conure-bootstrap-0');
    k.helm(['upgrade', rel, chart, '-n', ns, '--reuse-values', '--set', 'recovery.forceNewCluster=conure-bootstrap-0', '--timeout', '6m'], { timeoutMs: 420_000 });
    // The survivor restarts with the flag and leads alone; the upgrade also brings the
    // StatefulSet back to its 2 replicas (and `kubectl scale` would): fresh pods, empty volumes,
    // that join the new cluster.
    k.kubectl(['scale', 'statefulset', 'conure', '-n', ns, '--replicas=2']);
    await converged(3, 300_000);
    const bootLog = k.kubectl(['logs', '-n', ns, 'conure-bootstrap-0', '-c', 'conured']).stdout;
    assert.match(bootLog, /forced_new_cluster: this member is now the sole voter/);
    assert.match(bootLog, /"removed":\["conure-0","conure-1"\]/);
    for (const p of expectedPods(3)) readAll(p);
    assert.equal(ctl('health').code, 0);
    note(`quorum loss recovered in ${Math.round((Date.now() - t0) / 1000)}s`);
    writeKeys('recovered', 5);
  });

  it('backup.enabled: the CronJob saves a verified snapshot named with its revision; a new release with restore.fromBackup=latest holds every write', async () => {
    const t0 = Date.now();
    note('helm upgrade --reuse-values --set backup.enabled=true');
    k.helm(['upgrade', rel, chart, '-n', ns, '--reuse-values', '--set', 'backup.enabled=true', '--set', 'backup.retention=2', '--set', 'backup.size=1Gi', '--wait', '--timeout', '6m'], { timeoutMs: 420_000 });
    await converged(3, 120_000);
    // A run now, as the schedule would start it.
    k.kubectl(['create', 'job', 'backup-now', '--from=cronjob/conure-backup', '-n', ns]);
    await until('job backup-now complete', 180_000, () => {
      const st = k.kubectl(['get', 'job', 'backup-now', '-n', ns, '-o', 'jsonpath={.status.succeeded}/{.status.failed}'], { allowFail: true }).stdout.trim();
      assert.ok(!/\/[1-9]/.test(st), `the backup Job failed:\n${k.kubectl(['logs', '-n', ns, 'job/backup-now'], { allowFail: true }).stdout}`);
      return st.startsWith('1/');
    });
    const out = k.kubectl(['logs', '-n', ns, 'job/backup-now']).stdout;
    note(out.trim());
    assert.match(out, /^backup: ok: conure-\d{8}T\d{6}Z-r\d+\.db \(revision \d+, \d+ keys, \d+ bytes\); kept 1, pruned 0$/m);

    // A new release, restored from the latest good backup in that claim.
    const rrel = 'conuredb-restored';
    k.helm(['install', rrel, chart, '-n', ns, ...imageSets, '--set', 'fullnameOverride=restored', '--set', 'voters.replicas=1',
      '--set', 'restore.fromBackup=latest', '--set', 'restore.claim=conure-backup', '--set', 'tests.enabled=false', '--wait', '--timeout', '5m'], { timeoutMs: 360_000 });
    try {
      const initLog = k.kubectl(['logs', '-n', ns, 'restored-bootstrap-0', '-c', 'restore-from-backup']).stdout + k.kubectl(['logs', '-n', ns, 'restored-bootstrap-0', '-c', 'restore-from-backup'], { allowFail: true }).stderr;
      note(initLog.trim().split('\n').slice(-2).join(' | '));
      await until('restored-bootstrap-0 leads', 120_000, () => raftConfig('restored-bootstrap-0')?.leader);
      readAll('restored-bootstrap-0');
      assert.deepEqual(raftConfig('restored-bootstrap-0')!.servers.map((x) => x.id), ['restored-bootstrap-0'], 'a new cluster of its own');
    } finally {
      k.helm(['uninstall', rrel, '-n', ns, '--wait', '--timeout', '3m'], { allowFail: true });
    }
    note(`backup and restore in ${Math.round((Date.now() - t0) / 1000)}s`);
  });

  it('scales to 5 then to 1: members join, the pre-upgrade hook removes them first, every write stays readable', async () => {
    upgrade(5);
    await converged(5, 420_000);
    assert.equal(pdbMinAvailable(), '3');
    for (const p of expectedPods(5)) readAll(p);
    writeKeys('5', 5);
    upgrade(1);
    await converged(1, 300_000);
    assert.equal(k.kubectl(['get', 'pdb', '-n', ns, '-o', 'name']).stdout.trim(), '', 'no PDB for a single member');
    const cfg = raftConfig('conure-bootstrap-0')!;
    assert.equal(cfg.servers.length, 1, JSON.stringify(cfg));
    readAll('conure-bootstrap-0');
  });

  it('helm test passes; helm uninstall leaves only the PVCs and the peer Secret', async () => {
    const ht = k.helm(['test', rel, '-n', ns, '--timeout', '5m']);
    assert.match(ht.stdout, /Phase:\s+Succeeded/);
    k.helm(['uninstall', rel, '-n', ns, '--wait', '--timeout', '5m']);
    await until('the conuredb pods gone', 180_000, () => k.kubectl(['get', 'pods', '-n', ns, '-l', `app.kubernetes.io/instance=${rel}`, '-o', 'name'], { allowFail: true }).stdout.trim() === '');
    const left = k.kubectl(['get', 'all,configmap,secret,pdb,serviceaccount,networkpolicy,job,role,rolebinding,pvc', '-n', ns, '-l', `app.kubernetes.io/instance=${rel}`, '-o', 'name']).stdout.trim().split('\n').filter(Boolean).sort();
    note(`left after uninstall: ${left.join(' ')}`);
    const pvcs = left.filter((r) => r.startsWith('persistentvolumeclaim/'));
    const rest = left.filter((r) => !r.startsWith('persistentvolumeclaim/'));
    assert.deepEqual(pvcs, ['conure-backup', 'data-conure-0', 'data-conure-1', 'data-conure-2', 'data-conure-3', 'data-conure-arbiter-0', 'data-conure-bootstrap-0'].map((n) => `persistentvolumeclaim/${n}`));
    assert.equal(rest.length, 1, `only the peer Secret: ${rest.join(' ')}`);
    assert.match(rest[0]!, /^secret\/conure-peer/);
  });
  it('installs charts/fluxiondb for a tenant (sizes reduced): a WebSocket client with the key writes and reads; an upgrade to 1Gi memory keeps the data', async () => {
    const fns = 'fluxiondb-user123';
    const frel = 'db-user123';
    const key = 'abcdefghijklmnop1234';
    const fchart = join(REPO, 'charts/fluxiondb');
    const base = ['--set', `secret.secretKey=${key}`, '--set', 'resources.requests.memory=512Mi', '--set', 'resources.limits.memory=512Mi', '--set', 'persistence.size=1Gi'];
    const t0 = Date.now();
    k.helm(['install', frel, fchart, '--namespace', fns, '--create-namespace', ...base, ...imageSets]);
    const podOf = (): { name: string; uid: string; ready: boolean } | undefined => {
      const out = k.kubectl(['get', 'pods', '-n', fns, '-l', `app.kubernetes.io/instance=${frel}`, '-o', 'jsonpath={range .items[*]}{.metadata.name} {.metadata.uid} {.metadata.deletionTimestamp} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'], { allowFail: true }).stdout;
      const line = out.split('\n').filter(Boolean).map((l) => l.split(' ')).find((f) => f[2] === '' && !f[0]!.endsWith('-test'));
      return line ? { name: line[0]!, uid: line[1]!, ready: line[3] === 'True' } : undefined;
    };
    const first = await until('the fluxiondb pod Ready', 300_000, () => { const p = podOf(); return p?.ready ? p : undefined; });
    note(`fluxiondb Ready in ${Math.round((Date.now() - t0) / 1000)}s (${first.name})`);
    const svc = k.kubectl(['get', 'svc', '-n', fns, '-l', `app.kubernetes.io/instance=${frel}`, '-o', 'jsonpath={.items[0].spec.clusterIP}:{.items[0].spec.ports[0].port}']).stdout.trim();
    assert.match(svc, /^198\.19\.0\.\d+:8080$/);
    // From the host (it routes 198.18.0.0/15) to the Service's ClusterIP, with the repository's `ws`.
    const WebSocket = createRequire(join(REPO, 'package.json'))('ws') as typeof import('ws').default;
    const session = async <T>(apiKey: string, body: (req: (type: string, data: unknown) => Promise<Record<string, unknown>>) => Promise<T>): Promise<T> => {
      const ws = new WebSocket(`ws://${svc}/?${new URLSearchParams({ 'api-key': apiKey, name: 'k8s-test' }).toString()}`);
      const pending = new Map<string, (f: Record<string, unknown>) => void>();
      let n = 0;
      const opened = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no ready frame within 10 s')), 10_000);
        ws.on('error', (e) => { clearTimeout(timer); reject(e); });
        ws.on('unexpected-response', (_q, res) => { clearTimeout(timer); reject(new Error(`upgrade answered ${res.statusCode}`)); });
        ws.on('message', (raw) => {
          const f = JSON.parse(String(raw)) as Record<string, unknown>;
          if (f.type === 'ready') { clearTimeout(timer); resolve(); return; }
          const done = pending.get(f.id as string);
          pending.delete(f.id as string);
          done?.(f);
        });
      });
      try {
        await opened;
        return await body((type, data) => new Promise((resolve, reject) => {
          const id = `r${++n}`;
          const timer = setTimeout(() => reject(new Error(`${type}: no answer within 10 s`)), 10_000);
          pending.set(id, (f) => { clearTimeout(timer); if (f.error) reject(new Error(`${type}: ${String(f.error)}`)); else resolve(f); });
          ws.send(JSON.stringify({ id, type, data: JSON.stringify(data) }));
        }));
      } finally { ws.terminate(); }
    };
    const docs = [1, 2, 3].map((i) => ({ col: 'notes', doc: `d${i}`, ts: 1_700_000_000_000 + i, data: `note ${i} of ${frel}` }));
    const readBack = (): Promise<unknown[]> => session(key, async (req) => Promise.all(docs.map(async (d) => ((await req('qdoc', { col: d.col, doc: d.doc, from: d.ts, to: d.ts })).records as unknown[]))));
    // kube-proxy may take a sync period to program the new Service: retry the first session briefly.
    for (let i = 0; ; i++) { try { await session(key, async (req) => { await req('ins', docs); }); break; } catch (e) { if (i >= 30) throw e; await sleep(1000); } }
    assert.deepEqual(await readBack(), docs.map((d) => [{ ts: d.ts, data: d.data }]));
    await assert.rejects(session('wrong-key-0123456789', async () => undefined), 'a wrong key is refused');
    const allow = k.kubectl(['get', 'storageclass', 'conure-local', '-o', 'jsonpath={.allowVolumeExpansion}']).stdout.trim();
    note(`StorageClass conure-local allowVolumeExpansion=${allow || '(unset)'}`);
    // 1Gi of memory: the pod is replaced, the claim (and the data) stay.
    const t1 = Date.now();
    k.helm(['upgrade', frel, fchart, '-n', fns, '--reuse-values', '--set', 'resources.requests.memory=1Gi', '--set', 'resources.limits.memory=1Gi', '--wait', '--timeout', '5m'], { timeoutMs: 360_000 });
    const second = await until('the upgraded fluxiondb pod Ready', 300_000, () => { const p = podOf(); return p?.ready && p.uid !== first.uid ? p : undefined; });
    note(`fluxiondb upgraded to 1Gi in ${Math.round((Date.now() - t1) / 1000)}s`);
    assert.equal(k.kubectl(['get', 'pod', second.name, '-n', fns, '-o', 'jsonpath={.spec.containers[0].resources.limits.memory}']).stdout.trim(), '1Gi');
    let back: unknown[] = [];
    for (let i = 0; ; i++) { try { back = await readBack(); break; } catch (e) { if (i >= 20) throw e; await sleep(1000); } }
    assert.deepEqual(back, docs.map((d) => [{ ts: d.ts, data: d.data }]));
    // 2Gi of storage: the chart patches its claim up; a shrink is refused by the chart itself.
    const shrink = k.helm(['upgrade', frel, fchart, '-n', fns, '--reuse-values', '--set', 'persistence.size=512Mi'], { allowFail: true });
    assert.notEqual(shrink.code, 0);
    assert.match(shrink.stderr, /smaller than the claim .* already has \(1Gi\)/);
    const grow = k.helm(['upgrade', frel, fchart, '-n', fns, '--reuse-values', '--set', 'persistence.size=2Gi', '--wait', '--timeout', '3m'], { allowFail: true, timeoutMs: 240_000 });
    const claim = (): string => k.kubectl(['get', 'pvc', '-n', fns, '-l', `app.kubernetes.io/instance=${frel}`, '-o', 'jsonpath={.items[0].spec.resources.requests.storage} {.items[0].status.capacity.storage}']).stdout.trim();
    note(`helm upgrade persistence.size=2Gi: exit ${grow.code}; claim (request capacity): ${claim()}; ${grow.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
    if (allow !== 'true') {
      // Static hostPath volumes of a no-provisioner class: the apiserver refuses any resize.
      assert.notEqual(grow.code, 0);
      assert.match(grow.stderr, /only dynamically provisioned pvc can be resized|storageclass that provisions the pvc must support resize/);
    } else assert.equal(grow.code, 0, grow.stderr);
    for (let i = 0; ; i++) { try { back = await readBack(); break; } catch (e) { if (i >= 20) throw e; await sleep(1000); } }
    assert.deepEqual(back, docs.map((d) => [{ ts: d.ts, data: d.data }]), 'the data after the storage upgrade attempt');
  });

  // The examples and the platform's kubernetes driver, once each: the examples on the first
  // store's cluster, the platform on the last one's (with STORE=x, both on that one).
  if (store === stores[0]) examplesSuite(() => k);
  if (store === stores[stores.length - 1]) platformSuite(() => k);
});
