/** The platform's StepExecutor: engine steps → Driver calls and store records. */
export { PlatformExecutor, engineOf, type PlatformExecutorOptions } from './step-executor.js';
