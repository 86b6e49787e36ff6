/** The reconciler: desired vs observed → repair operations (leader only, fenced). */
export { Reconciler, type ReconcilerOptions, type PassResult } from './reconciler.js';
