/**
 * Validation of a plan whose matrices may read files: the references are resolved with what an adapter
 * read (matrix-file.ts), then the plan is validated as usual. Pure: the adapter does the reading.
 */
import type { Problem } from '../errors.js';
import { finishProblems } from '../problems/located.js';
import { matrixFileRefs, resolveMatrixFiles, withOrigin, type MatrixFileRead } from './matrix-file.js';
import { validatePlan, type ValidationContext, type ValidationResult } from './validate.js';

export interface ValidatedAt {
  result: ValidationResult;
  /**
   * The text to record as the run's plan.json: `planText` itself when the plan reads no file, otherwise
   * the plan with each file's values written in place of its reference (so every later reader, and the
   * audit, sees the values the run used without reading the repository again).
   */
  recordText: string;
}

/** {@link validatePlan} after resolving every matrix file from `reads` (see {@link resolveMatrixFiles}). */
export function validatePlanAt(raw: unknown, planText: string, ctx: ValidationContext, reads: ReadonlyMap<string, MatrixFileRead>, where: string): ValidatedAt {
  if (matrixFileRefs(raw).length === 0) return { result: validatePlan(raw, ctx), recordText: planText };
  const resolved = resolveMatrixFiles(raw, reads, where);
  if (resolved.problems.length > 0) return { result: { ok: false, problems: finishProblems(resolved.problems) }, recordText: planText };
  const result = validatePlan(resolved.raw, ctx);
  const annotated: ValidationResult = result.ok
    ? result
    : { ok: false, problems: result.problems.map((p: Problem) => ({ ...p, message: withOrigin(p.path, p.message, resolved.origins) })) };
  return { result: annotated, recordText: `${JSON.stringify(resolved.raw, null, 2)}\n` };
}
