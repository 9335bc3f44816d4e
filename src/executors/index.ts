/** The executors layer: the worker port, job building, log sinks and the targets that run jobs. */
export type { LogSink, WorkerJob, WorkerResult, WorkerTarget } from './types.js';
export { createRedactor, redactAll, REDACTED, MIN_SECRET_LENGTH, type Redactor } from './redact.js';
export { createLogSink, DEFAULT_LOG_MAX_BYTES, type LogSinkOptions } from './log-sink.js';
export {
  createLocalTarget,
  workerEnvironment,
  pidfilePath,
  INHERITED_ENV_VARS,
  type LocalTargetOptions,
  type WorkerPidRecord,
} from './local-target.js';
export { buildWorkerJob, type BuildWorkerJobArgs, type TargetName } from './build-job.js';
export { createTargets, configWantsDocker, targetScope, type CreateTargetsOptions } from './targets.js';
