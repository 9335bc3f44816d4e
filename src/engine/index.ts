export * from './types.js';
export { newRun, acceptRun, reconcile, step, isTerminal, retryDelayMs, type AcceptOptions, type StepOptions } from './step.js';
export { indexPlan, type PlanIndex } from './plan-index.js';
export { HeldLocks } from './held-locks.js';
