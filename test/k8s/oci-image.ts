/**
 * Writes a single-layer OCI image archive (an OCI image layout packed in a tar) from a root
 * filesystem directory, for `ctr -n k8s.io images import`. No registry and no Docker: the
 * layer is made by GNU tar (numeric owners kept as staged, names sorted, mtimes zeroed, so
 * the same tree gives the same digest), and the config, manifest and index are written here.
 *
 *   archive.tar
 *     oci-layout                       {"imageLayoutVersion":"1.0.0"}
 *     index.json                       -> manifest, annotated with the image name
 *     blobs/sha256/<layer>             uncompressed tar of the root filesystem
 *     blobs/sha256/<config>            image config (entrypoint, env, user, rootfs.diff_ids)
 *     blobs/sha256/<manifest>          -> config + layer
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

export interface ImageConfig {
  /** Full reference, e.g. `localhost/conure/conuredb:dev` (containerd names images by it). */
  name: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  exposedPorts?: number[];
  labels?: Record<string, string>;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function sha256(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Packs `rootfs` into an OCI image archive at `out` (written atomically). Returns the manifest
 * digest. `work` is a scratch directory (removed afterwards).
 */
export async function writeOciArchive(rootfs: string, out: string, work: string, cfg: ImageConfig): Promise<string> {
  rmSync(work, { recursive: true, force: true });
  const blobs = join(work, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const layerTmp = join(work, 'layer.tar');
  execFileSync('tar', ['-C', rootfs, '--sort=name', '--mtime=@0', '--numeric-owner', '--xattrs-exclude=*', '-cf', layerTmp, '.'], { stdio: 'inherit' });
  const layerDigest = await sha256File(layerTmp);
  const { size: layerSize } = statSync(layerTmp);
  renameSync(layerTmp, join(blobs, layerDigest));

  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: '1970-01-01T00:00:00Z',
    config: {
      ...(cfg.entrypoint ? { Entrypoint: cfg.entrypoint } : {}),
      ...(cfg.cmd ? { Cmd: cfg.cmd } : {}),
      Env: cfg.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ...(cfg.workingDir ? { WorkingDir: cfg.workingDir } : {}),
      ...(cfg.user ? { User: cfg.user } : {}),
      ...(cfg.exposedPorts ? { ExposedPorts: Object.fromEntries(cfg.exposedPorts.map((p) => [`${p}/tcp`, {}])) } : {}),
      ...(cfg.labels ? { Labels: cfg.labels } : {}),
    },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: 'conure test/k8s/oci-image.ts' }],
  });
  const configDigest = sha256(config);
  writeFileSync(join(blobs, configDigest), config);

  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configDigest}`, size: Buffer.byteLength(config) },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigest}`, size: layerSize }],
  });
  const manifestDigest = sha256(manifest);
  writeFileSync(join(blobs, manifestDigest), manifest);

  const tag = cfg.name.slice(cfg.name.lastIndexOf(':') + 1);
  writeFileSync(join(work, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(work, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${manifestDigest}`,
      size: Buffer.byteLength(manifest),
      platform: { architecture: 'amd64', os: 'linux' },
      annotations: { 'io.containerd.image.name': cfg.name, 'org.opencontainers.image.ref.name': tag },
    }],
  }));
  const tmpOut = `${out}.tmp`;
  execFileSync('tar', ['-C', work, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '-cf', tmpOut, 'oci-layout', 'index.json', 'blobs'], { stdio: 'inherit' });
  renameSync(tmpOut, out);
  rmSync(work, { recursive: true, force: true });
  return `sha256:${manifestDigest}`;
}
