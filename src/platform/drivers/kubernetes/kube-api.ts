/**
 * The few Kubernetes API calls the driver makes, through `@kubernetes/client-node`: server-side
 * apply (field manager `conure-platform`, forced: the platform owns what it applies), read,
 * list by label, delete. Every failure becomes a ConureError: 404 `not_found`, 403
 * `permission_denied`, 409 `conflict`, 400/422 `invalid_argument`, anything else (5xx, a refused
 * connection, a timeout) `unavailable`, which operations retry.
 *
 * Configuration: KUBECONFIG, else the pod's service account (in a pod), else ~/.kube/config.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ApiException, KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { ConureError, type ErrorCode } from '../../../util/index.js';
import { FIELD_MANAGER, type KubeObject } from './manifests.js';

export class KubeApi {
  private readonly api: KubernetesObjectApi;
  /** The API server's URL (for messages). */
  readonly server: string;

  constructor(kubeconfigFile?: string) {
    const kc = new KubeConfig();
    if (kubeconfigFile) kc.loadFromFile(kubeconfigFile);
    else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
    else if (existsSync(join(homedir(), '.kube', 'config'))) kc.loadFromFile(join(homedir(), '.kube', 'config'));
    // loadFromDefault would fall back to http://localhost:8080, which is never what is meant.
    else throw new ConureError('invalid_argument', 'no Kubernetes configuration: set KUBECONFIG, put one at ~/.kube/config, or run in a pod with a service account');
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new ConureError('invalid_argument', 'no Kubernetes cluster configured: set KUBECONFIG, or run in a pod with a service account');
    this.server = cluster.server;
    this.api = KubernetesObjectApi.makeApiClient(kc);
  }

  /**
   * Server-side apply; returns the object as stored. Fields this manager applied before and
   * leaves out now are removed, so a partial object needs its own `fieldManager`.
   */
  async apply(obj: KubeObject, fieldManager = FIELD_MANAGER): Promise<KubeObject> {
    const body = { ...obj, metadata: { ...obj.metadata } };
    delete (body.metadata as Record<string, unknown>).creationTimestamp;
    return this.call(`apply ${describe(obj)}`, () => this.api.patch(body as KubernetesObject, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply)) as Promise<KubeObject>;
  }

  /** Creates `obj` unless an object of that name exists; true when it was created. */
  async createIfAbsent(obj: KubeObject): Promise<boolean> {
    try {
      await this.call(`create ${describe(obj)}`, () => this.api.create(obj as KubernetesObject, undefined, undefined, FIELD_MANAGER));
      return true;
    } catch (err) {
      if ((err as ConureError).code === 'conflict') return false;
      throw err;
    }
  }

  /** The object, or undefined when it does not exist. */
  async read(apiVersion: string, kind: string, name: string, namespace?: string): Promise<KubeObject | undefined> {
    try {
      return await this.call(`read ${kind} ${namespace ? `${namespace}/` : ''}${name}`, () => this.api.read({ apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } })) as KubeObject;
    } catch (err) {
      if ((err as ConureError).code === 'not_found') return undefined;
      throw err;
    }
  }

  /** Objects of `kind` in `namespace` (every namespace when undefined) matching `labelSelector`; all pages. */
  async list(apiVersion: string, kind: string, namespace: string | undefined, labelSelector: string): Promise<KubeObject[]> {
    const items: KubeObject[] = [];
    let token: string | undefined;
    for (let page = 0; page < 1000; page++) {
      const res = await this.call(`list ${kind}`, () => this.api.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector, 500, token));
      for (const it of res.items) items.push({ apiVersion, kind, ...it } as KubeObject);
      token = res.metadata?._continue;
      if (!token) break;
    }
    return items;
  }

  /** Deletes; true when it existed. `Background` lets the garbage collector remove dependents. */
  async delete(apiVersion: string, kind: string, name: string, namespace?: string, propagationPolicy: 'Background' | 'Foreground' = 'Background'): Promise<boolean> {
    try {
      await this.call(`delete ${kind} ${namespace ? `${namespace}/` : ''}${name}`, () => this.api.delete({ apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } }, undefined, undefined, undefined, undefined, propagationPolicy));
      return true;
    } catch (err) {
      if ((err as ConureError).code === 'not_found') return false;
      throw err;
    }
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw kubeError(what, err);
    }
  }
}

function describe(obj: KubeObject): string {
  return `${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name}`;
}

/** A ConureError for a failed call, with the API server's own message. */
export function kubeError(what: string, err: unknown): ConureError {
  if (err instanceof ConureError) return err;
  if (err instanceof ApiException) {
    const code = err.code as number;
    const map: Record<number, ErrorCode> = { 400: 'invalid_argument', 403: 'permission_denied', 404: 'not_found', 409: 'conflict', 410: 'conflict', 422: 'invalid_argument' };
    let message = '';
    try {
      const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: string } | undefined;
      message = body?.message ?? '';
    } catch { message = String(err.body).slice(0, 300); }
    return new ConureError(map[code] ?? 'unavailable', `kubernetes: ${what}: ${code}${message ? ` ${message}` : ''}`);
  }
  return new ConureError('unavailable', `kubernetes: ${what}: ${(err as Error)?.message ?? String(err)}`);
}
