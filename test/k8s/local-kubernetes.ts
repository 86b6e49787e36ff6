/**
 * A real single-node Kubernetes assembled on this machine (docs/kubernetes.md, "The local
 * Kubernetes"). Everything runs as host processes under one run directory:
 *
 *   store (etcd 3.4 | 3-member ConureDB) <- kube-apiserver <- controller-manager, scheduler
 *                                                          <- kubelet -> containerd -> runc
 *                                                          <- kube-proxy (iptables)
 *                                                          <- CoreDNS (host process, node IP:53)
 *
 * Address plan (all inside 198.18.0.0/15, nothing leaves the machine):
 *   node IP    198.19.255.1/32 on `conure0` (a port-less bridge: this kernel has no dummy links)
 *   pods       198.18.0.0/24 on the CNI bridge `conure-br0` (gateway 198.18.0.1, ipMasq false)
 *   services   198.19.0.0/24 (kubernetes 198.19.0.1); cluster DNS at the node IP (CoreDNS)
 * Guards in the mangle table (before any filter/nat rule of kube-proxy or kubelet): CONURE-FWD
 * (FORWARD) drops forwarding into or out of 198.18.0.0/15 unless both ends are inside it, and
 * CONURE-OUT (POSTROUTING) drops any packet with a source in 198.18.0.0/15 headed outside it,
 * so with ip_forward on no pod packet is routed - or masqueraded - off the machine.
 *
 * The run's state (pids, interfaces, netns, previous sysctls) is in <runDir>/state.json, so
 * stop() - or `make k8s-down` from another process, or the next start after a crash - can
 * remove everything: processes, containers, mounts, netns, links, iptables chains, cgroups.
 */
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildConureImage, buildPauseImage, CONURE_IMAGE, PAUSE_IMAGE } from './images.js';

export type Store = 'etcd' | 'conuredb';

export const NODE_NAME = 'conure-node';
export const NODE_IP = '198.19.255.1';
export const NODE_LINK = 'conure0';
export const POD_CIDR = '198.18.0.0/24';
export const POD_GATEWAY = '198.18.0.1';
export const POD_BRIDGE = 'conure-br0';
export const SERVICE_CIDR = '198.19.0.0/24';
export const API_SERVICE_IP = '198.19.0.1';
export const OWN_RANGE = '198.18.0.0/15';
export const CLUSTER_DOMAIN = 'cluster.local';
export const K8S_VERSION = process.env.K8S_VERSION ?? 'v1.32.13';
const FWD_CHAIN = 'CONURE-FWD';
const OUT_CHAIN = 'CONURE-OUT';

/** The repository root (this file compiles to dist/test/k8s/). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CACHE = process.env.CONURE_CACHE ?? '/var/cache/conure';
/** Points at the run directory of the cluster that is up (one at a time on a machine). */
export const CURRENT = join(CACHE, 'k8s', 'current');

export interface StartOptions {
  store?: Store;
  /** Run directory; default a fresh /tmp/conure-k8s-<time>. */
  runDir?: string;
  /** Build and import the conure image (default true). */
  conureImage?: boolean;
  /** Static hostPath PersistentVolumes to create (default 12). */
  volumes?: number;
  /** Children outlive this process (make k8s-up). */
  detached?: boolean;
  log?: (msg: string) => void;
}

export interface RunResult { code: number; stdout: string; stderr: string }

export interface LocalKubernetes {
  runDir: string;
  kubeconfig: string;
  store: Store;
  binDir: string;
  /** kubectl with the cluster's kubeconfig; throws on a non-zero exit unless `allowFail`. */
  kubectl(args: string[], opts?: { input?: string; allowFail?: boolean; timeoutMs?: number }): RunResult;
  helm(args: string[], opts?: { allowFail?: boolean; timeoutMs?: number }): RunResult;
  /** Imports an image archive (OCI layout or docker-archive tar) into containerd's k8s.io namespace. */
  importImage(archive: string): void;
  /** Phase timings in seconds (binaries, images, bring-up). */
  timings: Record<string, number>;
  stop(): Promise<void>;
}

interface State {
  owner: number;
  store: Store;
  runDir: string;
  pids: Record<string, number>;
  links: string[];
  netnsBefore: string[];
  sysctls: Record<string, string>;
  iptables: boolean;
  containerdSock: string;
  /** Host paths that components create outside the run directory, and whether each existed before. */
  hostPaths: Record<string, boolean>;
}

/** Paths that kubelet, containerd's shims and libcni use regardless of their configured roots. */
const HOST_PATHS = ['/var/lib/kubelet', '/var/lib/cni', '/run/containerd', '/var/log/containers', '/var/log/pods'];

const defaultLog = (m: string): void => { process.stderr.write(`[k8s ${new Date().toISOString().slice(11, 19)}] ${m}\n`); };

function sh(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const r = spawnSync(cmd, args, { input: opts.input, encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, env: opts.env ?? process.env, maxBuffer: 64 << 20 });
  const res = { code: r.status ?? (r.error ? 127 : 1), stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
  if (res.code !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} exited ${res.code}:\n${res.stdout}\n${res.stderr}`);
  return res;
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => { const a = s.address(); s.close(() => resolvePort(typeof a === 'object' && a ? a.port : 0)); });
  });
}

/** True while `pid` runs; a zombie (exited, not yet reaped) counts as gone. */
function alive(pid: number): boolean {
  try { process.kill(pid, 0); } catch { return false; }
  try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

/** Waits for `check` to return a truthy value, printing `what` every 10 s; bounded by `timeoutMs`. */
async function waitFor<T>(what: string, timeoutMs: number, check: () => T | undefined | Promise<T | undefined>, log: (m: string) => void, intervalMs = 1000): Promise<T> {
  const t0 = Date.now();
  let lastNote = t0;
  let lastErr: unknown;
  for (;;) {
    try { const v = await check(); if (v) return v; } catch (e) { lastErr = e; }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    if (Date.now() - lastNote >= 10_000) { log(`still waiting for ${what} (${Math.round((Date.now() - t0) / 1000)}s)`); lastNote = Date.now(); }
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------- host set-up and binaries

/** Installs the Debian packages the cluster needs, when missing (scripts/k8s/setup-host.sh). */
export function ensureHost(log = defaultLog): void {
  const r = spawnSync('bash', [join(REPO, 'scripts/k8s/setup-host.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error('scripts/k8s/setup-host.sh failed');
  log('host packages ready');
}

/** Builds the binaries into the cache (a no-op when cached); returns the bin directory. */
export function ensureBinaries(): string {
  const r = spawnSync('bash', [join(REPO, 'scripts/k8s/build-binaries.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', env: { ...process.env, K8S_VERSION } });
  if (r.status !== 0) throw new Error('scripts/k8s/build-binaries.sh failed');
  return r.stdout.trim().split('\n').pop()!;
}

function helmBinary(): string {
  const gobin = process.env.GOBIN ?? join(process.env.HOME ?? '/root', 'go', 'bin');
  const p = join(gobin, 'helm');
  if (existsSync(p)) return p;
  return 'helm';
}

// ---------------------------------------------------------------- certificates

function genCerts(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const o = (args: string[]): void => { sh('openssl', args); };
  const key = (name: string): void => o(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(dir, `${name}.key`)]);
  key('ca');
  o(['req', '-x509', '-new', '-key', join(dir, 'ca.key'), '-subj', '/CN=conure-local-ca', '-days', '30', '-out', join(dir, 'ca.crt')]);
  const leaf = (name: string, subj: string, ext: string): void => {
    key(name);
    o(['req', '-new', '-key', join(dir, `${name}.key`), '-subj', subj, '-out', join(dir, `${name}.csr`)]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    o(['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-days', '30', '-extfile', join(dir, `${name}.ext`), '-out', join(dir, `${name}.crt`)]);
  };
  const client = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n';
  const sans = ['DNS:kubernetes', 'DNS:kubernetes.default', 'DNS:kubernetes.default.svc', `DNS:kubernetes.default.svc.${CLUSTER_DOMAIN}`, 'DNS:localhost', `DNS:${NODE_NAME}`, 'IP:127.0.0.1', `IP:${NODE_IP}`, `IP:${API_SERVICE_IP}`].join(',');
  leaf('apiserver', '/CN=kube-apiserver', `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans}\n`);
  leaf('kubelet-serving', `/CN=${NODE_NAME}`, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:${NODE_NAME},IP:${NODE_IP}\n`);
  leaf('admin', '/O=system:masters/CN=conure-admin', client);
  leaf('apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', client);
  leaf('controller-manager', '/CN=system:kube-controller-manager', client);
  leaf('scheduler', '/CN=system:kube-scheduler', client);
  leaf('kubelet', `/O=system:nodes/CN=system:node:${NODE_NAME}`, client);
  leaf('kube-proxy', '/CN=system:kube-proxy', client);
  o(['genrsa', '-out', join(dir, 'sa.key'), '2048']);
  o(['rsa', '-in', join(dir, 'sa.key'), '-pubout', '-out', join(dir, 'sa.pub')]);
}

function kubeconfig(path: string, server: string, pki: string, user: string): void {
  writeFileSync(path, [
    'apiVersion: v1', 'kind: Config',
    'clusters:', '- name: conure-local', '  cluster:', `    server: ${server}`, `    certificate-authority: ${join(pki, 'ca.crt')}`,
    'users:', `- name: ${user}`, '  user:', `    client-certificate: ${join(pki, `${user}.crt`)}`, `    client-key: ${join(pki, `${user}.key`)}`,
    'contexts:', '- name: conure-local', '  context:', '    cluster: conure-local', `    user: ${user}`, '    namespace: default',
    'current-context: conure-local', '',
  ].join('\n'), { mode: 0o600 });
}

// ---------------------------------------------------------------- network

function iptablesSave(table: string, bin = 'iptables'): string {
  return sh(`${bin}-save`, ['-t', table], { allowFail: true }).stdout;
}

/** Rules in builtin chains that jump to our chains, and the chains themselves, removed. */
function cleanIptables(log: (m: string) => void): void {
  const ours = /^(KUBE-|CNI-|CONURE-)/;
  for (const bin of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat', 'mangle']) {
      const saved = iptablesSave(table, bin);
      if (!saved) continue;
      const chains: string[] = [];
      for (const line of saved.split('\n')) {
        const c = /^:(\S+)/.exec(line);
        if (c && ours.test(c[1]!)) chains.push(c[1]!);
        const rule = /^-A (\S+) (.*)$/.exec(line);
        if (rule && !ours.test(rule[1]!) && /-j (KUBE-|CNI-|CONURE-)\S*/.test(rule[2]!)) {
          spawnSync('bash', ['-c', `${bin} -w -t ${table} -D ${rule[1]} ${rule[2]}`]);
        }
      }
      for (const c of chains) sh(bin, ['-w', '-t', table, '-F', c], { allowFail: true });
      for (const c of chains) sh(bin, ['-w', '-t', table, '-X', c], { allowFail: true });
      if (chains.length > 0) log(`removed ${chains.length} ${bin} ${table} chains`);
    }
  }
}

function sysctl(key: string, value?: string): string {
  const p = join('/proc/sys', key.replace(/\./g, '/'));
  const old = readFileSync(p, 'utf8').trim();
  if (value !== undefined && old !== value) writeFileSync(p, value);
  return old;
}

function setUpNetwork(state: State, log: (m: string) => void): void {
  if (sh('ip', ['link', 'show', NODE_LINK], { allowFail: true }).code !== 0) {
    // A dummy link would do, but this kernel has no dummy driver: a bridge with no ports behaves alike.
    sh('ip', ['link', 'add', NODE_LINK, 'type', 'bridge']);
  }
  state.links.push(NODE_LINK);
  sh('ip', ['addr', 'replace', `${NODE_IP}/32`, 'dev', NODE_LINK]);
  sh('ip', ['link', 'set', NODE_LINK, 'up']);
  state.links.push(POD_BRIDGE); // created by the CNI bridge plugin; removed at the end
  state.sysctls['net.ipv4.ip_forward'] = sysctl('net.ipv4.ip_forward', '1');
  try { state.sysctls['net.bridge.bridge-nf-call-iptables'] = sysctl('net.bridge.bridge-nf-call-iptables', '1'); } catch { log('no br_netfilter: service traffic between pods on the bridge may not be un-NATed'); }
  // In mangle, which runs before filter and nat on the same hooks, so no kube-proxy or kubelet
  // rule (they use filter and nat) can accept or SNAT such a packet first.
  const ipt = (...a: string[]): RunResult => sh('iptables', ['-w', '-t', 'mangle', ...a]);
  state.iptables = true;
  sh('iptables', ['-w', '-t', 'mangle', '-N', FWD_CHAIN], { allowFail: true });
  ipt('-F', FWD_CHAIN);
  ipt('-A', FWD_CHAIN, '-s', OWN_RANGE, '-d', OWN_RANGE, '-j', 'RETURN');
  ipt('-A', FWD_CHAIN, '-s', OWN_RANGE, '-j', 'DROP');
  ipt('-A', FWD_CHAIN, '-d', OWN_RANGE, '-j', 'DROP');
  ipt('-I', 'FORWARD', '1', '-j', FWD_CHAIN);
  sh('iptables', ['-w', '-t', 'mangle', '-N', OUT_CHAIN], { allowFail: true });
  ipt('-F', OUT_CHAIN);
  ipt('-A', OUT_CHAIN, '-s', OWN_RANGE, '!', '-d', OWN_RANGE, '-j', 'DROP');
  ipt('-I', 'POSTROUTING', '1', '-j', OUT_CHAIN);
  state.iptables = true;
}

// ---------------------------------------------------------------- processes

function startProcess(state: State, runDir: string, name: string, cmd: string, args: string[], detached: boolean, env: NodeJS.ProcessEnv = process.env): number {
  const logFile = join(runDir, 'logs', `${name}.log`);
  const fd = openSync(logFile, 'a');
  // Always a process group of its own: a Ctrl-C reaches only the harness, which then stops
  // everything in order. `detached` (make k8s-up) only records that no one owns the run.
  void detached;
  const p = spawn(cmd, args, { stdio: ['ignore', fd, fd], detached: true, env });
  closeSync(fd);
  if (p.pid === undefined) throw new Error(`could not start ${name}`);
  p.unref();
  state.pids[name] = p.pid;
  writeState(state);
  return p.pid;
}

function writeState(state: State): void {
  writeFileSync(join(state.runDir, 'state.json'), JSON.stringify(state, null, 2));
}

async function httpsOk(url: string, pki: string): Promise<boolean> {
  const r = sh('curl', ['-sS', '--max-time', '3', '--cacert', join(pki, 'ca.crt'), '--cert', join(pki, 'admin.crt'), '--key', join(pki, 'admin.key'), url], { allowFail: true, timeoutMs: 5000 });
  return r.code === 0 && r.stdout.trim() === 'ok';
}

function tail(file: string, lines = 30): string {
  try { return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n'); } catch { return ''; }
}

// ---------------------------------------------------------------- the store

async function startStore(state: State, runDir: string, store: Store, detached: boolean, log: (m: string) => void): Promise<string> {
  if (store === 'etcd') {
    const client = await freePort();
    const peer = await freePort();
    mkdirSync(join(runDir, 'etcd'), { recursive: true });
    startProcess(state, runDir, 'etcd', '/usr/bin/etcd', [
      '--name', 'conure-k8s', '--data-dir', join(runDir, 'etcd', 'data'),
      '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `conure-k8s=http://127.0.0.1:${peer}`, '--unsafe-no-fsync', '--quota-backend-bytes', String(2 << 30),
    ], detached, { ...process.env, ETCD_UNSUPPORTED_ARCH: '' });
    await waitFor('etcd health', 30_000, () => sh('curl', ['-fsS', '--max-time', '2', `http://127.0.0.1:${client}/health`], { allowFail: true }).code === 0, log, 300);
    return `http://127.0.0.1:${client}`;
  }
  // ConureDB: 2 voters + 1 arbiter, like `conurectl dev cluster` (src/cli/dev-cluster.ts).
  const conured = join(REPO, 'dist', 'src', 'cli', 'conured.js');
  if (!existsSync(conured)) throw new Error(`${conured} is missing: build first`);
  const members = [
    { id: 'k8s-store-1', role: 'voter', bootstrap: true },
    { id: 'k8s-store-2', role: 'voter', bootstrap: false },
    { id: 'k8s-store-3', role: 'arbiter', bootstrap: false },
  ];
  const ports = [];
  for (let i = 0; i < members.length; i++) ports.push({ http: await freePort(), raft: await freePort(), client: await freePort() });
  const seed = `http://127.0.0.1:${ports[0]!.http}`;
  const secret = join(runDir, 'conuredb-peer-secret');
  writeFileSync(secret, execFileSync('openssl', ['rand', '-hex', '32'], { encoding: 'utf8' }).trim() + '\n', { mode: 0o600 });
  const supportsSecret = sh(process.execPath, [conured, '--help'], { allowFail: true }).stdout.includes('--peer-secret-file');
  for (let i = 0; i < members.length; i++) {
    const m = members[i]!;
    const p = ports[i]!;
    startProcess(state, runDir, `conured-${m.id}`, process.execPath, [conured,
      '--node-id', m.id, '--data-dir', join(runDir, 'conuredb', m.id),
      '--http-addr', `127.0.0.1:${p.http}`, '--raft-addr', `127.0.0.1:${p.raft}`, '--client-addr', `127.0.0.1:${p.client}`,
      '--advertise-http', `127.0.0.1:${p.http}`, '--advertise-raft', `127.0.0.1:${p.raft}`,
      ...(supportsSecret ? ['--peer-secret-file', secret] : []),
      ...(m.bootstrap ? ['--bootstrap'] : ['--join', seed]),
      ...(m.role === 'arbiter' ? ['--role', 'arbiter'] : []),
    ], detached, { ...process.env, CONURE_LOG_LEVEL: 'warn' });
    await waitFor(`ConureDB member ${m.id}`, 60_000, async () => {
      const r = await fetch(`http://127.0.0.1:${p.http}/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
      return r?.ok;
    }, log, 300);
  }
  // The arbiter has no etcd API: the apiserver talks to the voters.
  return ports.slice(0, 2).map((p) => `http://127.0.0.1:${p.client}`).join(',');
}

// ---------------------------------------------------------------- teardown

const teardowns = new Map<string, Promise<void>>();

/** Stops and removes everything a run recorded in <runDir>/state.json. Safe to call twice (and concurrently). */
export function teardown(runDir: string, log = defaultLog, keepRunDir = false): Promise<void> {
  let p = teardowns.get(runDir);
  if (!p) { p = teardownOnce(runDir, log, keepRunDir); teardowns.set(runDir, p); }
  return p;
}

async function teardownOnce(runDir: string, log: (m: string) => void, keepRunDir: boolean): Promise<void> {
  let state: State;
  try { state = JSON.parse(readFileSync(join(runDir, 'state.json'), 'utf8')) as State; } catch { log(`no state in ${runDir}`); return; }
  const t0 = Date.now();
  const kill = async (names: string[], sig: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    for (const n of names) { const pid = state.pids[n]; if (pid && alive(pid)) { try { process.kill(pid, sig); } catch { /* gone */ } } }
    const deadline = Date.now() + 10_000;
    for (const n of names) {
      const pid = state.pids[n];
      while (pid && alive(pid) && Date.now() < deadline) await sleep(50);
      if (pid && alive(pid)) { log(`${n} ignored SIGTERM for 10s: SIGKILL`); try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    log(`stopped ${names.join(', ')} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  };
  // 1. kubelet first (it would restart containers); then every container process, found through
  // the pods' cgroups (SIGKILL: they are disposable, and this takes no help from containerd),
  // then the shims of this containerd (found by its socket path in their command line).
  await kill(['kubelet']);
  const podProcesses = (): Set<number> => {
    const found = new Set<number>();
    const collect = (d: string): void => {
      try { for (const l of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l) found.add(Number(l)); } catch { /* none */ }
      try { for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) collect(join(d, e.name)); } catch { /* gone */ }
    };
    for (const ctl of ['pids', 'memory', 'cpu', 'freezer']) collect(`/sys/fs/cgroup/${ctl}/kubepods`);
    return found;
  };
  for (let round = 0; round < 5; round++) {
    const pids = podProcesses();
    if (pids.size === 0) break;
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    if (round === 0) log(`killed ${pids.size} container processes`);
    await sleep(200);
  }
  const sock = state.containerdSock;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmdline = '';
    try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (cmdline.includes('containerd-shim') && cmdline.includes(sock)) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
  }
  // (the reaper may be this very process: `cli.js down` exec'd by it)
  await kill(Object.keys(state.pids).filter((n) => n !== 'kubelet' && state.pids[n] !== process.pid));
  // 2. the other processes (above). 3. mounts under the run directory, deepest first.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m && (m === runDir || m.startsWith(`${runDir}/`)));
  for (const m of mounts.sort((a, b) => b.length - a.length)) sh('umount', ['-l', m], { allowFail: true });
  if (mounts.length > 0) log(`unmounted ${mounts.length} mounts`);
  // 4. network namespaces made during the run (CNI's cni-*), links, iptables, sysctls.
  let netns: string[] = [];
  try { netns = readdirSync('/var/run/netns'); } catch { /* none */ }
  for (const n of netns.filter((x) => !state.netnsBefore.includes(x) && x.startsWith('cni-'))) {
    sh('ip', ['netns', 'delete', n], { allowFail: true });
  }
  for (const l of [...state.links].reverse()) sh('ip', ['link', 'delete', l], { allowFail: true });
  // veth host ends die with their namespaces; any left over on our bridge:
  if (state.iptables) {
    // kube-proxy's own cleanup first, then whatever KUBE-/CNI-/CONURE- chains remain.
    const kp = join(CACHE, 'k8s', K8S_VERSION, 'bin', 'kube-proxy');
    if (existsSync(kp)) sh(kp, ['--cleanup'], { allowFail: true, timeoutMs: 30_000 });
    cleanIptables(log);
  }
  for (const [k, v] of Object.entries(state.sysctls)) { try { sysctl(k, v); } catch { /* ignore */ } }
  // 5. kubelet's cgroups (cgroup v1: one tree per controller), /var/log/containers links into the run.
  for (const ctl of (() => { try { return readdirSync('/sys/fs/cgroup'); } catch { return []; } })()) {
    const top = join('/sys/fs/cgroup', ctl, 'kubepods');
    const rm = (d: string): void => {
      let entries: string[] = [];
      try { entries = readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name); } catch { return; }
      for (const e of entries) rm(join(d, e));
      try { rmdirSync(d); } catch { /* busy or gone */ }
    };
    if (existsSync(top)) rm(top);
  }
  for (const dir of ['/var/log/containers']) {
    let names: string[] = [];
    try { names = readdirSync(dir); } catch { continue; }
    for (const n of names) { try { if (readlinkSync(join(dir, n)).startsWith(runDir)) rmSync(join(dir, n)); } catch { /* not a link */ } }
  }
  // 6. what components left outside the run directory: libcni's cached results for our network,
  // kubelet's device-plugin socket, the shims' directories; a path that did not exist before the run goes whole.
  try {
    for (const f of readdirSync('/var/lib/cni/results')) {
      const m = /^conure-pods-([0-9a-f]+)-/.exec(f);
      if (m) { rmSync(join('/var/lib/cni/results', f), { force: true }); rmSync(join('/var/lib/cni/results', `cni-loopback-${m[1]}-lo`), { force: true }); }
    }
  } catch { /* none */ }
  rmSync('/var/lib/kubelet/device-plugins/kubelet.sock', { force: true });
  for (const [p, existed] of Object.entries(state.hostPaths ?? {})) if (!existed) rmSync(p, { recursive: true, force: true });
  try { if (readFileSync(CURRENT, 'utf8').trim() === runDir) rmSync(CURRENT); } catch { /* none */ }
  log(`network, iptables and cgroups cleaned (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  if (!keepRunDir) rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
  log(`teardown done in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

// ---------------------------------------------------------------- bring-up

export async function startLocalKubernetes(opts: StartOptions = {}): Promise<LocalKubernetes> {
  const log = opts.log ?? defaultLog;
  const store: Store = opts.store ?? ((process.env.STORE as Store | undefined) || 'etcd');
  if (store !== 'etcd' && store !== 'conuredb') throw new Error(`STORE must be etcd or conuredb, not ${String(store)}`);
  const detached = opts.detached ?? false;
  const timings: Record<string, number> = {};
  let t = Date.now();
  const phase = (name: string): void => { timings[name] = Math.round((Date.now() - t) / 100) / 10; log(`phase ${name}: ${timings[name]}s`); t = Date.now(); };

  if (process.getuid?.() !== 0) throw new Error('the local Kubernetes needs root');
  // One cluster at a time: a previous run whose owner is gone is removed first.
  if (existsSync(CURRENT)) {
    const prev = readFileSync(CURRENT, 'utf8').trim();
    let owner = 0;
    try { owner = (JSON.parse(readFileSync(join(prev, 'state.json'), 'utf8')) as State).owner; } catch { /* no state */ }
    if (owner && alive(owner) && owner !== process.pid && !existsSync(join(prev, 'detached'))) throw new Error(`a local Kubernetes is already up in ${prev} (owner pid ${owner}); make k8s-down first`);
    if (existsSync(join(prev, 'detached'))) throw new Error(`a local Kubernetes (make k8s-up) is up in ${prev}; make k8s-down first`);
    log(`removing the leftovers of ${prev}`);
    await teardown(prev, log);
  }

  ensureHost(log);
  const binDir = ensureBinaries();
  phase('binaries');

  const runDir = opts.runDir ?? join('/tmp', `conure-k8s-${Date.now()}`);
  for (const d of ['logs', 'pki', 'kubelet', 'containerd', 'cni/net.d', 'cni/ipam', 'volumes', 'pod-logs']) mkdirSync(join(runDir, d), { recursive: true });
  mkdirSync(dirname(CURRENT), { recursive: true });
  writeFileSync(CURRENT, runDir);
  if (detached) writeFileSync(join(runDir, 'detached'), '');
  let netnsBefore: string[] = [];
  try { netnsBefore = readdirSync('/var/run/netns'); } catch { /* none yet */ }
  const state: State = { owner: process.pid, store, runDir, pids: {}, links: [], netnsBefore, sysctls: {}, iptables: false, containerdSock: join(runDir, 'containerd', 'containerd.sock'), hostPaths: Object.fromEntries(HOST_PATHS.map((p) => [p, existsSync(p)])) };
  writeState(state);

  // A reaper outlives this process: when the owner dies without stop() (kill -9, a test runner
  // killed under it), it runs `cli.js down` for this run directory within 2 s. After a normal
  // stop() the run directory is gone and it does nothing. A later start kills it with the rest.
  if (!detached) {
    const cli = join(REPO, 'dist', 'test', 'k8s', 'cli.js');
    const reaper = spawn('bash', ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 2; done; [ -f "$1/state.json" ] && exec "$2" "$3" down-run "$1" >>"$4" 2>&1`, 'reaper', runDir, process.execPath, cli, join(CACHE, 'k8s', 'last-reaper.log')], { stdio: 'ignore', detached: true });
    reaper.unref();
    if (reaper.pid) { state.pids.reaper = reaper.pid; writeState(state); }
  }
  const cleanupOnSignal = (sig: NodeJS.Signals): void => {
    // The test runner above may be gone already: the teardown's lines also go to a file.
    const file = join(CACHE, 'k8s', 'last-interrupted-teardown.log');
    const both = (m: string): void => { log(m); try { writeFileSync(file, `${new Date().toISOString()} ${m}\n`, { flag: 'a' }); } catch { /* ignore */ } };
    both(`${sig}: tearing the local Kubernetes in ${runDir} down`);
    process.on('SIGINT', () => { /* already tearing down */ });
    process.on('SIGTERM', () => { /* already tearing down */ });
    void teardown(runDir, both).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  if (!detached) { process.once('SIGINT', cleanupOnSignal); process.once('SIGTERM', cleanupOnSignal); }

  const bin = (n: string): string => join(binDir, n);
  const pki = join(runDir, 'pki');
  try {
    // Images first (no cluster needed), so a broken image fails fast.
    const pauseImage = await buildPauseImage(bin('pause'));
    const conureImage = opts.conureImage === false ? undefined : await buildConureImage(REPO);
    phase('images');

    genCerts(pki);
    setUpNetwork(state, log);
    writeState(state);

    const etcdServers = await startStore(state, runDir, store, detached, log);
    log(`store ${store} up at ${etcdServers}`);

    // kube-apiserver, on the node IP only.
    const apiPort = await freePort(NODE_IP);
    const server = `https://${NODE_IP}:${apiPort}`;
    startProcess(state, runDir, 'kube-apiserver', bin('kube-apiserver'), [
      `--etcd-servers=${etcdServers}`, `--bind-address=${NODE_IP}`, `--advertise-address=${NODE_IP}`, `--secure-port=${apiPort}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`, '--service-node-port-range=30000-32767',
      `--client-ca-file=${pki}/ca.crt`, `--tls-cert-file=${pki}/apiserver.crt`, `--tls-private-key-file=${pki}/apiserver.key`,
      `--kubelet-client-certificate=${pki}/apiserver-kubelet-client.crt`, `--kubelet-client-key=${pki}/apiserver-kubelet-client.key`,
      `--service-account-key-file=${pki}/sa.pub`, `--service-account-signing-key-file=${pki}/sa.key`,
      `--service-account-issuer=https://kubernetes.default.svc.${CLUSTER_DOMAIN}`,
      '--authorization-mode=Node,RBAC', '--allow-privileged=true', '--enable-admission-plugins=NodeRestriction',
      '--kubelet-preferred-address-types=InternalIP', '--profiling=false', '--v=1',
    ], detached);
    await waitFor('kube-apiserver /readyz', 120_000, async () => {
      if (!alive(state.pids['kube-apiserver']!)) throw new Error(`kube-apiserver exited:\n${tail(join(runDir, 'logs/kube-apiserver.log'))}`);
      return httpsOk(`${server}/readyz`, pki);
    }, log);
    log(`kube-apiserver ready at ${server}`);

    const kc = (user: string): string => { const p = join(runDir, `${user}.kubeconfig`); kubeconfig(p, server, pki, user); return p; };
    const adminKc = kc('admin');
    const kubectl = (args: string[], o: { input?: string; allowFail?: boolean; timeoutMs?: number } = {}): RunResult => sh(bin('kubectl'), ['--kubeconfig', adminKc, ...args], o);

    startProcess(state, runDir, 'kube-controller-manager', bin('kube-controller-manager'), [
      `--kubeconfig=${kc('controller-manager')}`, `--authentication-kubeconfig=${join(runDir, 'controller-manager.kubeconfig')}`, `--authorization-kubeconfig=${join(runDir, 'controller-manager.kubeconfig')}`,
      '--bind-address=127.0.0.1', `--secure-port=${await freePort()}`, '--leader-elect=false',
      `--service-cluster-ip-range=${SERVICE_CIDR}`, `--cluster-cidr=${POD_CIDR}`, '--allocate-node-cidrs=false',
      `--root-ca-file=${pki}/ca.crt`, `--service-account-private-key-file=${pki}/sa.key`, '--use-service-account-credentials=true',
      `--cluster-signing-cert-file=${pki}/ca.crt`, `--cluster-signing-key-file=${pki}/ca.key`, '--v=1',
    ], detached);
    startProcess(state, runDir, 'kube-scheduler', bin('kube-scheduler'), [
      `--kubeconfig=${kc('scheduler')}`, `--authentication-kubeconfig=${join(runDir, 'scheduler.kubeconfig')}`, `--authorization-kubeconfig=${join(runDir, 'scheduler.kubeconfig')}`,
      '--bind-address=127.0.0.1', `--secure-port=${await freePort()}`, '--leader-elect=false', '--v=1',
    ], detached);

    // containerd with its own config, root, state and socket.
    const cd = join(runDir, 'containerd');
    writeFileSync(join(cd, 'config.toml'), `version = 2
root = "${cd}/root"
state = "${cd}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "${state.containerdSock}"
[ttrpc]
  address = "${state.containerdSock}.ttrpc"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${cd}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${runDir}/cni/net.d"
    max_conf_num = 1
`);
    writeFileSync(join(runDir, 'cni/net.d/10-conure.conflist'), JSON.stringify({
      cniVersion: '1.0.0', name: 'conure-pods',
      plugins: [{
        type: 'bridge', bridge: POD_BRIDGE, isGateway: true, ipMasq: false, hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: POD_CIDR, gateway: POD_GATEWAY }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(runDir, 'cni/ipam') },
      }],
    }, null, 2));
    startProcess(state, runDir, 'containerd', 'containerd', ['--config', join(cd, 'config.toml')], detached);
    const ctr = (args: string[], o: { allowFail?: boolean; timeoutMs?: number } = {}): RunResult => sh('ctr', ['-a', state.containerdSock, '-n', 'k8s.io', ...args], { timeoutMs: 600_000, ...o });
    await waitFor('containerd', 30_000, () => {
      if (!alive(state.pids.containerd!)) throw new Error(`containerd exited:\n${tail(join(runDir, 'logs/containerd.log'))}`);
      return existsSync(state.containerdSock) && ctr(['version'], { allowFail: true }).code === 0;
    }, log, 300);
    const importImage = (archive: string): void => {
      const t1 = Date.now();
      ctr(['images', 'import', '--no-unpack=false', archive]);
      log(`imported ${archive} in ${((Date.now() - t1) / 1000).toFixed(1)}s`);
    };
    importImage(pauseImage.archive);
    if (conureImage) importImage(conureImage.archive);

    // kubelet.
    const kubeletDir = join(runDir, 'kubelet');
    writeFileSync(join(runDir, 'kubelet-config.yaml'), `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP}
port: ${await freePort(NODE_IP)}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${await freePort()}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://${state.containerdSock}
clusterDNS: [${NODE_IP}]
clusterDomain: ${CLUSTER_DOMAIN}
resolvConf: ""
podLogsDir: ${join(runDir, 'pod-logs')}
tlsCertFile: ${pki}/kubelet-serving.crt
tlsPrivateKeyFile: ${pki}/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${pki}/ca.crt}
authorization:
  mode: Webhook
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
maxPods: 100
registerNode: true
protectKernelDefaults: false
makeIPTablesUtilChains: true
localStorageCapacityIsolation: false
`);
    startProcess(state, runDir, 'kubelet', bin('kubelet'), [
      `--config=${join(runDir, 'kubelet-config.yaml')}`, `--kubeconfig=${kc('kubelet')}`, `--root-dir=${kubeletDir}`,
      `--hostname-override=${NODE_NAME}`, `--node-ip=${NODE_IP}`, `--cert-dir=${join(pki, 'kubelet-certs')}`, '--v=1',
    ], detached);

    // kube-proxy (iptables mode; no masquerade of pod traffic; NodePorts on the node IP only).
    writeFileSync(join(runDir, 'kube-proxy-config.yaml'), `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: ${kc('kube-proxy')}}
hostnameOverride: ${NODE_NAME}
bindAddress: ${NODE_IP}
healthzBindAddress: 127.0.0.1:${await freePort()}
metricsBindAddress: 127.0.0.1:${await freePort()}
mode: iptables
clusterCIDR: ${POD_CIDR}
nodePortAddresses: ["${NODE_IP}/32"]
iptables: {masqueradeAll: false, syncPeriod: 5s, minSyncPeriod: 0s}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`);
    startProcess(state, runDir, 'kube-proxy', bin('kube-proxy'), [`--config=${join(runDir, 'kube-proxy-config.yaml')}`, '--v=1'], detached);

    // CoreDNS as a host process on the node IP: cluster names only, nothing forwarded off the machine.
    writeFileSync(join(runDir, 'Corefile'), `.:53 {
  bind ${NODE_IP}
  errors
  kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
    kubeconfig ${adminKc} conure-local
    pods insecure
    ttl 5
  }
  cache 5
}
`);
    startProcess(state, runDir, 'coredns', bin('coredns'), ['-conf', join(runDir, 'Corefile')], detached);

    await waitFor(`node ${NODE_NAME} Ready`, 180_000, () => {
      for (const n of ['kubelet', 'kube-proxy', 'coredns', 'kube-controller-manager', 'kube-scheduler', 'containerd']) {
        if (!alive(state.pids[n]!)) throw new Error(`${n} exited:\n${tail(join(runDir, `logs/${n}.log`))}`);
      }
      const r = kubectl(['get', 'node', NODE_NAME, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'], { allowFail: true });
      return r.stdout.trim() === 'True';
    }, log, 1000);
    await waitFor('the default service account', 60_000, () => kubectl(['get', 'serviceaccount', 'default', '-n', 'default'], { allowFail: true }).code === 0, log);

    // Storage: a default class bound to static hostPath volumes under the run directory.
    const volumes = opts.volumes ?? 24; // Retain: a released volume is never reused, and the suite claims about 15
    const docs = [`apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: conure-local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: Immediate
reclaimPolicy: Retain`];
    for (let i = 0; i < volumes; i++) {
      const dir = join(runDir, 'volumes', `pv${i}`);
      mkdirSync(dir, { recursive: true, mode: 0o777 });
      sh('chmod', ['0777', dir]);
      docs.push(`apiVersion: v1
kind: PersistentVolume
metadata: {name: conure-local-pv${i}}
spec:
  capacity: {storage: 50Gi}
  accessModes: [ReadWriteOnce, ReadWriteMany, ReadOnlyMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: conure-local
  hostPath: {path: ${dir}, type: Directory}`);
    }
    kubectl(['apply', '-f', '-'], { input: docs.join('\n---\n') });
    phase('bring-up');
    log(`local Kubernetes ${K8S_VERSION} up (store ${store}); KUBECONFIG=${adminKc}`);

    const helmBin = helmBinary();
    return {
      runDir, kubeconfig: adminKc, store, binDir, timings,
      kubectl,
      helm: (args, o = {}) => sh(helmBin, ['--kubeconfig', adminKc, ...args], { timeoutMs: 600_000, ...o, env: { ...process.env, KUBECONFIG: adminKc, HELM_CACHE_HOME: join(runDir, 'helm/cache'), HELM_CONFIG_HOME: join(runDir, 'helm/config'), HELM_DATA_HOME: join(runDir, 'helm/data') } }),
      importImage,
      stop: async () => {
        const t1 = Date.now();
        process.removeListener('SIGINT', cleanupOnSignal);
        process.removeListener('SIGTERM', cleanupOnSignal);
        await teardown(runDir, log, process.env.K8S_KEEP_RUNDIR === '1');
        timings.teardown = Math.round((Date.now() - t1) / 100) / 10;
      },
    };
  } catch (e) {
    log(`bring-up failed: ${String(e)}`);
    log(`logs in ${join(runDir, 'logs')} (kept: K8S_KEEP_RUNDIR=1 keeps the whole run directory)`);
    if (process.env.K8S_KEEP_RUNDIR !== '1') {
      // keep the logs for the failure report
      const keep = join('/tmp', `conure-k8s-failed-logs-${Date.now()}`);
      sh('cp', ['-r', join(runDir, 'logs'), keep], { allowFail: true });
      log(`logs copied to ${keep}`);
    }
    await teardown(runDir, log, process.env.K8S_KEEP_RUNDIR === '1');
    throw e;
  }
}

export { CONURE_IMAGE, PAUSE_IMAGE };
