/**
 * A run's jobs as a graph: which jobs a job `needs`, the `needs` context it sees, and whether it
 * waits, runs or is skipped (its `if:`, by default `success()`: every needed job succeeded).
 */
import { evaluateCondition } from './conditions.js';
import { ExpressionError, type ExpressionContext } from './expressions.js';
import type { JobRecord, RunRecord } from './model.js';
import type { WorkflowJobSpec } from './workflow.js';

export const needsOf = (spec: WorkflowJobSpec): string[] => (spec.needs === undefined ? [] : typeof spec.needs === 'string' ? [spec.needs] : spec.needs);

/** Whether a completed job counts as succeeded for the jobs after it (a failure under `continue-on-error` does). */
export const succeeded = (j: JobRecord): boolean => j.conclusion === 'success' || (j.conclusion === 'failure' && j.continueOnError);

/** The `needs` context: per needed job id, `success` only when every job of it (all of a matrix) succeeded, and its outputs. */
export function needsContext(run: RunRecord, job: JobRecord): Record<string, { result: string; outputs: Record<string, string> }> {
  const out: Record<string, { result: string; outputs: Record<string, string> }> = {};
  for (const key of needsOf(job.spec)) {
    const jobs = run.jobs.filter((j) => j.key === key);
    const result = jobs.every(succeeded) ? 'success' : jobs.some((j) => j.conclusion === 'cancelled') ? 'cancelled' : jobs.some((j) => j.conclusion === 'failure') ? 'failure' : 'skipped';
    out[key] = { result, outputs: Object.assign({}, ...jobs.map((j) => j.outputs)) as Record<string, string> };
  }
  return out;
}

export type Gate = { decision: 'wait' } | { decision: 'run' } | { decision: 'skip' } | { decision: 'error'; message: string };

/** What a queued job does next, given the run's other jobs. */
export function gate(run: RunRecord, job: JobRecord, ctx: Omit<ExpressionContext, 'needs' | 'steps'>): Gate {
  const needed = run.jobs.filter((j) => needsOf(job.spec).includes(j.key));
  if (needed.some((j) => j.status !== 'completed')) return { decision: 'wait' };
  const status = { success: needed.every(succeeded), failure: needed.some((j) => j.conclusion === 'failure' && !j.continueOnError), cancelled: run.cancelRequested };
  if (job.spec.if === undefined) return { decision: status.success && !status.cancelled ? 'run' : 'skip' };
  try {
    return { decision: evaluateCondition(job.spec.if, { ...ctx, steps: {}, needs: needsContext(run, job) }, status) ? 'run' : 'skip' };
  } catch (e) {
    if (!(e instanceof ExpressionError)) throw e;
    return { decision: 'error', message: `${run.workflow.path}: job '${job.key}' \`if: ${String(job.spec.if)}\`: ${e.message}` };
  }
}
