/** The project's etcd v3 client; the implementation lives in ./etcd/. */
export * from './etcd/index.js';
