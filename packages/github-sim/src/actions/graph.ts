/**
 * A run's jobs as a graph: which jobs a job `needs`, the `needs` context it sees, and whether it
 * waits, runs or is skipped (its `if:`, by default `success()`: every needed job succeeded).
 */
import { condition, ExpressionError, type ExpressionContext } from './expressions.js';
import type { JobRecord, RunRecord } from './model.js';

/** Whether a completed job counts as succeeded for the jobs after it (a failure under `continue-on-error` does). */
export const succeeded = (j: JobRecord): boolean => j.conclusion === 'success' || (j.conclusion === 'failure' && j.continueOnError);

/** The `needs` context: per needed job id, `success` only when every job of it (all of a matrix) succeeded, and its outputs. */
export function needsContext(run: RunRecord, job: JobRecord): Record<string, { result: string; outputs: Record<string, string> }> {
  const out: Record<string, { result: string; outputs: Record<string, string> }> = {};
  for (const key of job.spec.needs) {
    const jobs = run.jobs.filter((j) => j.key === key);
    const result = jobs.every(succeeded)
      ? 'success'
      : jobs.some((j) => j.conclusion === 'cancelled')
        ? 'cancelled'
        : jobs.some((j) => j.conclusion === 'failure')
          ? 'failure'
          : 'skipped';
    out[key] = { result, outputs: Object.assign({}, ...jobs.map((j) => j.outputs)) as Record<string, string> };
  }
  return out;
}

export type Gate = { decision: 'wait' } | { decision: 'run' } | { decision: 'skip' } | { decision: 'error'; message: string };

/** What a queued job does next, given the run's other jobs. */
export function gate(run: RunRecord, job: JobRecord, ctx: ExpressionContext): Gate {
  const needed = run.jobs.filter((j) => job.spec.needs.includes(j.key));
  if (needed.some((j) => j.status !== 'completed')) return { decision: 'wait' };
  const status = {
    success: needed.every(succeeded),
    failure: needed.some((j) => j.conclusion === 'failure' && !j.continueOnError),
    cancelled: run.cancelRequested,
  };
  try {
    return { decision: condition(job.spec.if, { ...ctx, needs: needsContext(run, job) }, status) ? 'run' : 'skip' };
  } catch (e) {
    if (!(e instanceof ExpressionError)) throw e;
    return { decision: 'error', message: `${run.workflow.path}: job '${job.key}' \`if: ${job.spec.if}\`: ${e.message}` };
  }
}
