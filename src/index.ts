/**
 * Agora's public API as a library: `import { validatePlan, step, verifyBundle } from 'agora'`. This file is
 * the one deliberate list; what it does not export is internal and may change. The GitHub App's factory
 * is a separate entry, `agora/app` (src/app.ts), so that a program using the core does not load Probot.
 */

// Plans: parse plan.json text, then validate it against a config's executors and subagents.
export { MAX_PLAN_BYTES, MAX_PLAN_DEPTH, parsePlanText } from './plan/parse.js';
export { assertValidPlan, validatePlan, type ValidationContext, type ValidationResult } from './plan/validate.js';
export type { Plan, RetryPolicy, WorkItem } from './plan/schema.js';

// The engine: a pure step from (plan, state, events, now) to the next state, the actions and the transitions.
export { acceptRun, isTerminal, newRun, reconcile, step, type AcceptOptions, type StepOptions } from './engine/step.js';
export type { Action, ItemState, ItemStatus, Run, RunEvent, RunState, RunStatus, StepResult, Transition } from './engine/types.js';

// Audit verification: parse a bundle and check it offline against explicit pins and trust material.
export { parseAuditBundle } from './audit/verify/parse.js';
export { verifyBundle } from './audit/verify/pipeline.js';
export type { VerifyOptions } from './audit/verify/options.js';
export { AUDIT_FORMAT, type AuditBundle, type AuditReport } from './audit/bundle.js';

// Errors: every error a user can cause, with its stable code.
export { AgoraError, errorMessage, InvalidInputError, isAgoraError, type AgoraErrorOptions, type Problem } from './errors.js';
export { ERROR_CODES, type ErrorCode, type ErrorCodeInfo } from './error-codes.js';
