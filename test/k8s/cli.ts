/**
 * make k8s-up / k8s-down / k8s-images: the local Kubernetes for manual use.
 *   node dist/test/k8s/cli.js up [--store etcd|conuredb]   leaves the cluster running
 *   node dist/test/k8s/cli.js down                         removes it (and any leftovers)
 *   node dist/test/k8s/cli.js images                       builds the image archives only
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CURRENT, REPO, ensureBinaries, startLocalKubernetes, teardown, type Store } from './local-kubernetes.js';
import { buildConureImage, buildPauseImage } from './images.js';

const [cmd, ...rest] = process.argv.slice(2);
const storeAt = rest.indexOf('--store');
const store = (storeAt >= 0 ? rest[storeAt + 1] : process.env.STORE ?? 'etcd') as Store;

if (cmd === 'up') {
  const k = await startLocalKubernetes({ store, detached: true });
  console.log(`\nThe local Kubernetes is up (store ${k.store}, run directory ${k.runDir}).`);
  console.log(`Timings (s): ${JSON.stringify(k.timings)}`);
  console.log(`  export KUBECONFIG=${k.kubeconfig}`);
  console.log(`  export PATH=${k.binDir}:$PATH   # kubectl and the other components, same version`);
  console.log('  make k8s-down                     # removes everything');
  process.exit(0);
} else if (cmd === 'down') {
  if (!existsSync(CURRENT)) { console.log('no local Kubernetes is up'); process.exit(0); }
  const runDir = readFileSync(CURRENT, 'utf8').trim();
  await teardown(runDir);
} else if (cmd === 'down-run') {
  // The reaper's call: one run directory, after its owner died.
  await teardown(rest[0]!);
} else if (cmd === 'images') {
  const bin = ensureBinaries();
  console.log((await buildPauseImage(join(bin, 'pause'))).archive);
  console.log((await buildConureImage(REPO)).archive);
} else {
  console.error('usage: cli.js up [--store etcd|conuredb] | down | images');
  process.exit(2);
}
