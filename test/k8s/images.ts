/**
 * The local test images, built from root filesystems staged here (no registry, no Docker):
 *
 *   localhost/conure/pause:3.10     /pause (scripts/k8s/pause, static Go) - the sandbox image
 *   localhost/conure/conuredb:dev   /usr/bin/node with the shared libraries ldd names, a static
 *                                   busybox as /bin/sh and the usual applets (the chart's
 *                                   scripts need sh, ls, grep, sleep, ...), /app/{package.json,
 *                                   node_modules, dist/src, src/api/etcd/proto}, and the
 *                                   Dockerfile's conured/conurectl wrappers, user, env and
 *                                   entrypoint (`node /app/dist/src/cli/conured.js`); and, for
 *                                   the platform's kubernetes driver, /usr/local/bin/helm and
 *                                   /app/charts/{conuredb,fluxiondb}; for the examples, the Time
 *                                   Service (/usr/local/bin/timeservice), sqlite3 and etcdctl.
 *
 * The Dockerfile stays the production recipe; this image runs the same entry points. Archives
 * are cached under <cache>/images/ by a key of their inputs (sizes and mtimes), so a warm run
 * only imports them.
 */
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { writeOciArchive } from './oci-image.js';

export const PAUSE_IMAGE = 'localhost/conure/pause:3.10';
export const CONURE_IMAGE = 'localhost/conure/conuredb:dev';

/** Bumped when the conure image's recipe changes, so cached archives are rebuilt. */
const IMAGE_RECIPE = 'conuredb-recipe-6';

export interface BuiltImage { name: string; archive: string; cached: boolean }

function log(msg: string): void { process.stderr.write(`[k8s-images ${new Date().toISOString().slice(11, 19)}] ${msg}\n`); }

/** A digest of the paths' names, sizes and mtimes (recursively): cheap, and changes when they do. */
function treeKey(paths: string[], salt: string): string {
  const h = createHash('sha256').update(`${salt}\n`);
  const walk = (p: string): void => {
    let st;
    try { st = lstatSync(p); } catch { h.update(`${p}:missing\n`); return; }
    h.update(`${p}:${st.mode}:${st.size}:${st.mtimeMs}\n`);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n));
  };
  for (const p of paths) walk(p);
  return h.digest('hex').slice(0, 16);
}

/** The shared libraries a dynamically linked binary loads, as ldd resolves them. */
function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

function copyFileAt(rootfs: string, hostPath: string, mode?: number): void {
  const dest = join(rootfs, hostPath);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(realpathSync(hostPath), dest);
  chmodSync(dest, mode ?? statSync(hostPath).mode & 0o7777);
}

function busybox(): string {
  for (const p of ['/bin/busybox', '/usr/bin/busybox']) if (existsSync(p)) {
    const file = execFileSync('file', ['-L', p], { encoding: 'utf8' });
    if (/statically linked|static-pie/.test(file)) return p;
  }
  throw new Error('a static busybox is needed (apt-get install busybox-static; scripts/k8s/setup-host.sh does)');
}

/** Stages the conure image's root filesystem in `rootfs` (replaced). */
export function stageConureRootfs(repo: string, rootfs: string): void {
  rmSync(rootfs, { recursive: true, force: true });
  for (const d of ['bin', 'etc', 'tmp', 'usr/bin', 'usr/local/bin', 'var/lib/conure', 'app/dist', 'app/src/api/etcd/proto', 'dev', 'proc', 'sys']) mkdirSync(join(rootfs, d), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  // node and its libraries, at the paths ldd names (the loader included).
  const node = realpathSync(process.execPath);
  copyFileAt(rootfs, '/usr/bin/node', 0o755);
  if (node !== '/usr/bin/node') copyFileSync(node, join(rootfs, 'usr/bin/node'));
  for (const lib of sharedLibraries(node)) copyFileAt(rootfs, lib);
  // Native addons in node_modules (lmdb, msgpackr-extract) link libstdc++/libgcc_s/libc: covered above.
  // busybox: /bin/sh and the applets.
  const bb = busybox();
  copyFileSync(bb, join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  const applets = execFileSync(bb, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) {
    const target = join(rootfs, 'bin', a);
    if (!existsSync(target)) symlinkSync('busybox', target);
  }
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n');
  writeFileSync(join(rootfs, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
  writeFileSync(join(rootfs, 'etc/hosts'), '127.0.0.1 localhost\n');
  // The application, laid out as the Dockerfile's runtime stage does.
  const dist = join(repo, 'dist', 'src');
  if (!existsSync(join(dist, 'cli', 'conured.js'))) throw new Error(`${dist}/cli/conured.js is missing: run the build (npx tsc -p tsconfig.json) first`);
  cpSync(dist, join(rootfs, 'app/dist/src'), { recursive: true, filter: (s) => !s.endsWith('.map') && !s.endsWith('.test.js') });
  cpSync(join(repo, 'package.json'), join(rootfs, 'app/package.json'));
  // Production dependencies only, as `npm prune --omit=dev` leaves them: a package the lockfile
  // marks `dev` is skipped with everything under it.
  const modules = realpathSync(join(repo, 'node_modules'));
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages?: Record<string, { dev?: boolean }> };
  cpSync(modules, join(rootfs, 'app/node_modules'), {
    recursive: true, dereference: false,
    filter: (src) => {
      if (src.includes('/.cache')) return false;
      const key = `node_modules${src.slice(modules.length)}`;
      return lock.packages?.[key]?.dev !== true;
    },
  });
  for (const f of readdirSync(join(repo, 'src/api/etcd/proto'))) if (f.endsWith('.proto')) copyFileSync(join(repo, 'src/api/etcd/proto', f), join(rootfs, 'app/src/api/etcd/proto', f));
  for (const [name, js] of [['conurectl', 'conurectl.js'], ['conured', 'conured.js']] as const) {
    writeFileSync(join(rootfs, 'usr/local/bin', name), `#!/bin/sh\nexec node /app/dist/src/cli/${js} "$@"\n`, { mode: 0o755 });
  }
  // The kubernetes driver renders the charts with helm (src/platform/drivers/kubernetes/helm.ts).
  copyBinary(rootfs, helmBinary(), '/usr/local/bin/helm');
  // The examples run from this image too: the Time Service (and sqlite3 for its backup CronJob),
  // and etcdctl for the presence registry's cluster check run in a pod.
  cpSync(join(repo, 'dist', 'examples', 'timeservice'), join(rootfs, 'app/dist/examples/timeservice'), { recursive: true, filter: (f) => !f.endsWith('.map') && !f.endsWith('.test.js') && !f.endsWith('/k8s') });
  writeFileSync(join(rootfs, 'usr/local/bin/timeservice'), '#!/bin/sh\nexec node /app/dist/examples/timeservice/server.js "$@"\n', { mode: 0o755 });
  for (const tool of ['/usr/bin/sqlite3', '/usr/bin/etcdctl']) {
    if (!existsSync(tool)) throw new Error(`${tool} is needed in the image: scripts/setup.sh installs it`);
    copyBinary(rootfs, tool, tool);
  }
  for (const c of ['conuredb', 'fluxiondb']) cpSync(join(repo, 'charts', c), join(rootfs, 'app/charts', c), { recursive: true });
  chownSync(join(rootfs, 'var/lib/conure'), 1000, 1000);
}

/** Copies a host binary to `dest` in the image, with the shared libraries it loads. */
function copyBinary(rootfs: string, hostPath: string, dest: string): void {
  mkdirSync(join(rootfs, dirname(dest)), { recursive: true });
  copyFileSync(realpathSync(hostPath), join(rootfs, dest));
  chmodSync(join(rootfs, dest), 0o755);
  for (const lib of sharedLibraries(hostPath)) if (!existsSync(join(rootfs, lib))) copyFileAt(rootfs, lib);
}

/** helm as `make k8s-binaries` installs it ($(go env GOPATH)/bin), or on PATH. */
export function helmBinary(): string {
  const candidates = [join(process.env.HOME ?? '/root', 'go/bin/helm'), '/root/go/bin/helm'];
  try { candidates.unshift(join(execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim(), 'bin/helm')); } catch { /* no go */ }
  for (const c of candidates) if (existsSync(c)) return realpathSync(c);
  try { return realpathSync(execFileSync('sh', ['-c', 'command -v helm'], { encoding: 'utf8' }).trim()); } catch { throw new Error('helm is needed in the image: run scripts/setup.sh (it installs helm into $(go env GOPATH)/bin)'); }
}

function cacheDir(): string {
  return join(process.env.CONURE_CACHE ?? '/var/cache/conure', 'k8s', 'images');
}

/** Builds (or finds cached) the conure image archive from the repository at `repo`. */
export async function buildConureImage(repo: string): Promise<BuiltImage> {
  const dir = cacheDir();
  mkdirSync(dir, { recursive: true });
  const key = treeKey([join(repo, 'dist', 'src'), join(repo, 'package.json'), join(repo, 'package-lock.json'), join(repo, 'src/api/etcd/proto'), join(repo, 'charts/conuredb'), join(repo, 'charts/fluxiondb'), join(repo, 'dist', 'examples', 'timeservice'), helmBinary(), realpathSync(process.execPath), join(realpathSync(join(repo, 'node_modules')), '.package-lock.json')], IMAGE_RECIPE);
  const archive = join(dir, `conuredb-${key}.oci.tar`);
  if (existsSync(archive)) { log(`conure image cached: ${archive}`); return { name: CONURE_IMAGE, archive, cached: true }; }
  const t0 = Date.now();
  log('staging the conure root filesystem (node, busybox, dist/src, node_modules)');
  const rootfs = join(dir, 'conuredb-rootfs');
  stageConureRootfs(repo, rootfs);
  log('packing the conure image');
  await writeOciArchive(rootfs, archive, join(dir, 'conuredb-work'), {
    name: CONURE_IMAGE,
    entrypoint: ['node', '/app/dist/src/cli/conured.js'],
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_ENV=production', 'CONURE_DATA_DIR=/var/lib/conure'],
    workingDir: '/app',
    user: '1000:1000',
    exposedPorts: [8081, 7001, 2379],
    labels: { 'io.conure.build-key': key },
  });
  rmSync(rootfs, { recursive: true, force: true });
  for (const f of readdirSync(dir)) if (f.startsWith('conuredb-') && f.endsWith('.oci.tar') && join(dir, f) !== archive) rmSync(join(dir, f), { force: true });
  log(`conure image built in ${((Date.now() - t0) / 1000).toFixed(1)}s: ${archive}`);
  return { name: CONURE_IMAGE, archive, cached: false };
}

/** Builds (or finds cached) the pause image from the static binary at `pauseBinary`. */
export async function buildPauseImage(pauseBinary: string): Promise<BuiltImage> {
  const dir = cacheDir();
  mkdirSync(dir, { recursive: true });
  const key = createHash('sha256').update(readFileSync(pauseBinary)).digest('hex').slice(0, 16);
  const archive = join(dir, `pause-${key}.oci.tar`);
  if (existsSync(archive)) return { name: PAUSE_IMAGE, archive, cached: true };
  const rootfs = join(dir, 'pause-rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  mkdirSync(rootfs, { recursive: true });
  copyFileSync(pauseBinary, join(rootfs, 'pause'));
  chmodSync(join(rootfs, 'pause'), 0o755);
  await writeOciArchive(rootfs, archive, join(dir, 'pause-work'), { name: PAUSE_IMAGE, entrypoint: ['/pause'], user: '65535:65535' });
  rmSync(rootfs, { recursive: true, force: true });
  log(`pause image built: ${archive}`);
  return { name: PAUSE_IMAGE, archive, cached: false };
}
