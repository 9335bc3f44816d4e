import { z } from 'zod';

/**
 * plan.json: the seed's `Run { id, queue, items }` / `WorkItem { id, executor, inputs, depends_on,
 * resourceLocks, subagentShape? }` exactly, plus optional extensions (docs/plan.md). Extensions never
 * make a seed plan invalid. Structural checks only; DAG, id, binding-name and lock rules live in
 * validate.ts so that every problem is reported at once with its JSON path.
 */

export const ScopePolicySchema = z.enum(['fail', 'discard']);
export type ScopePolicy = z.infer<typeof ScopePolicySchema>;

export const OutputSelectorSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('patch') }),
  z.strictObject({ kind: z.literal('output'), path: z.string().min(1) }),
]);
export type OutputSelector = z.infer<typeof OutputSelectorSchema>;

export const InputBindingSchema = z.strictObject({
  from: z.string(),
  select: OutputSelectorSchema,
});
export type InputBinding = z.infer<typeof InputBindingSchema>;

export const BackoffSchema = z.strictObject({
  /** Delay before the second attempt. */
  initialSeconds: z.number().min(0).max(86_400).default(1),
  /** Each later delay is the previous one times this. */
  factor: z.number().min(1).max(10).default(2),
  maxSeconds: z.number().min(0).max(86_400).default(300),
});
export type Backoff = z.infer<typeof BackoffSchema>;

export const RetrySchema = z.strictObject({
  /** Total attempts including the first (1 = no retry). */
  maxAttempts: z.number().int().min(1).max(100),
  backoff: BackoffSchema.optional(),
});
export type RetryPolicy = z.infer<typeof RetrySchema>;

/** Named lists of values; the item stands for one item per combination (matrix.ts). */
export const MatrixSchema = z.record(z.string(), z.array(z.union([z.string(), z.number(), z.boolean()])).min(1));

export const WorkItemSchema = z.strictObject({
  id: z.string(),
  executor: z.string(),
  inputs: z.record(z.string(), z.unknown()),
  depends_on: z.array(z.string()),
  resourceLocks: z.array(z.string()),
  subagentShape: z.string().optional(),
  // Extensions (all optional).
  /** Binding name → input; names become file names and follow the id rule (checked in validate.ts). */
  needs: z.record(z.string(), InputBindingSchema).optional(),
  timeoutSeconds: z
    .number()
    .positive()
    .max(7 * 86_400)
    .optional(),
  retry: RetrySchema.optional(),
  scope: ScopePolicySchema.optional(),
  /** Fan-out from data: one item per combination of these values (expanded by matrix.ts). */
  matrix: MatrixSchema.optional(),
  /** `always`: runs once its dependencies end in any state, also after a cancel or the run's deadline. */
  if: z.literal('always').optional(),
  /** A failure of this item does not skip its dependents (the run's status names it as allowed). */
  continue_on_error: z.boolean().optional(),
});
export type WorkItem = z.infer<typeof WorkItemSchema>;

export const PlanSchema = z.strictObject({
  id: z.string(),
  queue: z.string(),
  items: z.array(WorkItemSchema),
  // Extensions.
  /** Default for items without their own `scope`: what happens to changes outside the write scope. */
  scope: ScopePolicySchema.optional(),
  /** The run's deadline, in seconds after it is accepted: then running items fail and pending ones are cancelled. */
  timeoutSeconds: z
    .number()
    .positive()
    .max(7 * 86_400)
    .optional(),
  /** How many times over an item may be created by another item (emitted items; docs/plan.md). Default 3. */
  max_hops: z.number().int().min(0).max(10).optional(),
  /** The most items the run may hold, the plan's and every emitted one. Default 1,000 or the plan's own count if larger. */
  max_items: z.number().int().min(1).max(10_000).optional(),
});
export type Plan = z.infer<typeof PlanSchema>;
