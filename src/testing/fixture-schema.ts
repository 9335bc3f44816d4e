/**
 * `tests/fixture-*.json`: a plan (or one item) run by `agora test` with mocked results in place of its
 * workers, and what the run must come to. Strict objects, so a misspelt field is reported with its JSON
 * path instead of silently ignored. Whether the fixture fits its plan is checked in fixture-load.ts.
 */
import { z } from 'zod';

/** A dependency call a mock makes: the subagent it calls and the input it hands over. */
export const MockDependencyCallSchema = z.strictObject({
  subagent: z.string().min(1),
  input: z.record(z.string(), z.unknown()).optional(),
});
export type MockDependencyCall = z.infer<typeof MockDependencyCallSchema>;

/**
 * What a mocked worker does: make its `calls` (in order, each through the orchestrator's rules, the callee
 * answered by its own mock), write or delete `files` in its workspace, print `output`, exit with `exit`.
 */
export const MockSchema = z.strictObject({
  /** Printed on the worker's stdout: the item's log, its output. */
  output: z.string().optional(),
  /** Repository path → new content, or null to delete the file. */
  files: z.record(z.string(), z.string().nullable()).optional(),
  /** The worker's exit code: 0 succeeds (the files become the patch), anything else fails the attempt. */
  exit: z.number().int().min(0).max(255).optional(),
  /** Dependency calls, made first and one after another, as an agent's `call_<name>` tool or `agora call` would make them. */
  calls: z.array(MockDependencyCallSchema).optional(),
});
export type Mock = z.infer<typeof MockSchema>;

/** A case of a subagent's mock: applies to the items whose `workerInput` (or the calls whose input) holds every field of `when`. */
export const MockCaseSchema = MockSchema.extend({
  when: z.record(z.string(), z.unknown()),
});
export type MockCase = z.infer<typeof MockCaseSchema>;

/** A subagent's mock: the base result, and cases (the first whose `when` matches overrides the base's fields). */
export const SubagentMockSchema = MockSchema.extend({
  cases: z.array(MockCaseSchema).optional(),
});
export type SubagentMock = z.infer<typeof SubagentMockSchema>;

const TextExpectationSchema = z
  .strictObject({
    equals: z.string().optional(),
    contains: z.union([z.string(), z.array(z.string())]).optional(),
  })
  .refine((t) => t.equals !== undefined || t.contains !== undefined, { message: 'expects nothing: give equals or contains' });
export type TextExpectation = z.infer<typeof TextExpectationSchema>;

export const ITEM_STATES = ['pending', 'ready', 'running', 'done', 'failed', 'skipped', 'cancelled'] as const;
export const RUN_STATES = ['done', 'failed', 'cancelled'] as const;

export const CALL_OUTCOMES = ['ok', 'failed', 'refused'] as const;

/** A dependency call the item's mocks made (its own, then its callees' in turn), in the order they were made. */
export const CallExpectationSchema = z.strictObject({
  subagent: z.string().min(1),
  /** ok: the child answered; failed: it ran and failed or was stopped; refused: a rule kept it from running. */
  outcome: z.enum(CALL_OUTCOMES).optional(),
  /** What the caller was answered: the child's answer, or why it failed or was refused. */
  answer: TextExpectationSchema.optional(),
});
export type CallExpectation = z.infer<typeof CallExpectationSchema>;

export const ItemExpectationSchema = z.strictObject({
  state: z.enum(ITEM_STATES).optional(),
  /** What the item's last attempt printed (its kept log). */
  output: TextExpectationSchema.optional(),
  /** Why it failed or was skipped. */
  reason: TextExpectationSchema.optional(),
  attempts: z.number().int().min(0).optional(),
  /** Every dependency call of its last attempt, nested ones right after the call that made them; the list must match in length and order. */
  calls: z.array(CallExpectationSchema).optional(),
});
export type ItemExpectation = z.infer<typeof ItemExpectationSchema>;

/** A file of the run's integration head (base + every done item's patch). */
export const FileExpectationSchema = z
  .strictObject({
    exists: z.boolean().optional(),
    equals: z.string().optional(),
    contains: z.union([z.string(), z.array(z.string())]).optional(),
  })
  .refine((f) => f.exists !== undefined || f.equals !== undefined || f.contains !== undefined, {
    message: 'expects nothing: give exists, equals or contains',
  });
export type FileExpectation = z.infer<typeof FileExpectationSchema>;

export const ExpectationsSchema = z
  .strictObject({
    run: z.enum(RUN_STATES).optional(),
    items: z.record(z.string(), ItemExpectationSchema).optional(),
    files: z.record(z.string(), FileExpectationSchema).optional(),
  })
  .refine((e) => e.run !== undefined || Object.keys(e.items ?? {}).length > 0 || Object.keys(e.files ?? {}).length > 0, {
    message: 'expects nothing: give run, items or files (a fixture that checks nothing would always pass)',
  });
export type Expectations = z.infer<typeof ExpectationsSchema>;

export const FixtureSchema = z
  .strictObject({
    description: z.string().optional(),
    /** The plan, relative to the fixture file. */
    plan: z.string().min(1).optional(),
    /** Or one item, run as a plan of its own (depends_on and resourceLocks default to []). */
    item: z.record(z.string(), z.unknown()).optional(),
    /** Item id → inputs laid over that item's own (shallow). */
    inputs: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
    mocks: z.strictObject({
      subagents: z.record(z.string(), SubagentMockSchema).optional(),
      items: z.record(z.string(), MockSchema).optional(),
    }),
    expect: ExpectationsSchema,
  })
  .superRefine((f, ctx) => {
    if ((f.plan === undefined) === (f.item === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: f.plan === undefined ? [] : ['item'],
        message:
          f.plan === undefined
            ? 'names no plan: give "plan" (a path relative to the fixture) or "item" (one work item)'
            : 'gives both "plan" and "item": keep one',
      });
    }
  });
export type Fixture = z.infer<typeof FixtureSchema>;
