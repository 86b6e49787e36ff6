/** The kubernetes driver: the charts' objects, rendered by helm and applied with server-side apply. */
export { KubernetesDriver, type KubernetesDriverOptions } from './kubernetes-driver.js';
export { HelmRenderer, type HelmRendererOptions } from './helm.js';
export { KubeApi } from './kube-api.js';
export * from './manifests.js';
