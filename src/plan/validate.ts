/**
 * Plan validation: structure (the zod schema of schema.ts), then meaning — safe ids and `needs` binding
 * names, unique ids, known and acyclic dependencies, lock keys, known executors and their inputs,
 * subagent input schemas and named shapes (JSON Schema, checked with ajv). Every problem is reported
 * at once, each located by a JSON path (`$.items[2].depends_on[0]`) and saying how to fix it, sorted by
 * path.
 */
import { InvalidInputError, type Problem } from '../errors.js';
import { describeValue, didYouMean, quoteList } from '../problems/describe.js';
import { JsonSchemaChecker, type JsonSchema } from '../problems/json-schema.js';
import { finishProblems, type LocatedProblem } from '../problems/located.js';
import { zodIssuesToProblems } from '../problems/zod-issues.js';
import { findCycles, formatCycle, type GraphItem } from './dag.js';
import { BUILTIN_EXECUTORS } from './executors.js';
import { bindingNameProblem, idProblem } from './ids.js';
import { lockKeyProblem } from './locks.js';
import { checkMatrices, type CheckedMatrices } from './matrix-check.js';
import { expandPlan, fillInputs, hasTemplate } from './matrix.js';
import { matrixFileRefProblems, matrixFileRefs } from './matrix-file.js';
import { PlanSchema, type Plan } from './schema.js';

/** What a plan is checked against: the configured subagents and named input shapes. */
export interface ValidationContext {
  subagents: Record<string, { inputSchema?: JsonSchema }>;
  shapes: Record<string, JsonSchema>;
}

export type ValidationResult = { ok: true; plan: Plan } | { ok: false; problems: Problem[] };

/** At most this many cycles are reported one by one. */
const MAX_REPORTED_CYCLES = 100;

/** The parts of one item that could be read, whatever else is wrong with it. */
interface ItemView {
  index: number;
  id?: string;
  executor?: string;
  inputs?: Record<string, unknown>;
  dependsOn: Array<{ k: number; id: string }>;
  needs: Array<{ key: string; from: string }>;
  locks: Array<{ k: number; key: string }>;
  subagentShape?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function viewItems(raw: unknown): ItemView[] {
  if (!isRecord(raw) || !Array.isArray(raw.items)) return [];
  const views: ItemView[] = [];
  raw.items.forEach((item: unknown, index: number) => {
    if (!isRecord(item)) return;
    const strings = (value: unknown) => (Array.isArray(value) ? value.flatMap((v: unknown, k: number) => (typeof v === 'string' ? [{ k, v }] : [])) : []);
    const needs = isRecord(item.needs)
      ? Object.entries(item.needs).flatMap(([key, b]) => (isRecord(b) && typeof b.from === 'string' ? [{ key, from: b.from }] : []))
      : [];
    views.push({
      index,
      id: typeof item.id === 'string' ? item.id : undefined,
      executor: typeof item.executor === 'string' ? item.executor : undefined,
      inputs: isRecord(item.inputs) ? item.inputs : undefined,
      dependsOn: strings(item.depends_on).map(({ k, v }) => ({ k, id: v })),
      needs,
      locks: strings(item.resourceLocks).map(({ k, v }) => ({ k, key: v })),
      subagentShape: typeof item.subagentShape === 'string' ? item.subagentShape : undefined,
    });
  });
  return views;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_NAME_RULE = 'use letters, digits and _, not starting with a digit';

function checkIds(raw: unknown, items: ItemView[], out: LocatedProblem[]): void {
  if (isRecord(raw) && typeof raw.id === 'string') {
    const problem = idProblem(raw.id);
    if (problem) out.push({ segments: ['id'], message: `run ${problem}` });
  }
  const first = new Map<string, number>();
  const firstFolded = new Map<string, { index: number; id: string }>();
  for (const item of items) {
    if (item.id === undefined) continue;
    const at = ['items', item.index, 'id'];
    const problem = idProblem(item.id);
    if (problem) out.push({ segments: at, message: `item ${problem}` });
    const earlier = first.get(item.id);
    if (earlier !== undefined) {
      out.push({
        segments: at,
        message: `duplicate item id ${JSON.stringify(item.id)}: $.items[${earlier}] already has it; give every item its own id`,
      });
      continue;
    }
    first.set(item.id, item.index);
    const folded = firstFolded.get(item.id.toLowerCase());
    if (folded) {
      out.push({
        segments: at,
        message: `item id ${JSON.stringify(item.id)} differs from ${JSON.stringify(folded.id)} ($.items[${folded.index}]) only in letter case; their git refs would collide on case-insensitive file systems: rename one`,
      });
    } else {
      firstFolded.set(item.id.toLowerCase(), { index: item.index, id: item.id });
    }
  }
}

/** `needs` binding names become file names (the files `$AGORA_NEEDS` points at): they follow the id rule. */
function checkBindingNames(raw: unknown, out: LocatedProblem[]): void {
  if (!isRecord(raw) || !Array.isArray(raw.items)) return;
  raw.items.forEach((item: unknown, index: number) => {
    if (!isRecord(item) || !isRecord(item.needs)) return;
    for (const name of Object.keys(item.needs)) {
      const problem = bindingNameProblem(name);
      if (problem) out.push({ segments: ['items', index, 'needs', name], message: `needs ${problem}` });
    }
  });
}

function checkDependencies(items: ItemView[], out: LocatedProblem[]): void {
  const known = [...new Set(items.flatMap((i) => (i.id === undefined ? [] : [i.id])))];
  const knownSet = new Set(known);
  const unknown = (id: string) => `unknown item ${JSON.stringify(id)}${didYouMean(id, known)}: no item has this id; the items are ${quoteList(known)}`;
  for (const item of items) {
    for (const { k, id } of item.dependsOn) {
      const at = ['items', item.index, 'depends_on', k];
      if (item.id !== undefined && id === item.id) {
        out.push({ segments: at, message: `the item depends on itself; remove ${JSON.stringify(id)} from depends_on` });
      } else if (!knownSet.has(id)) {
        out.push({ segments: at, message: `${unknown(id)}; fix the id or remove the dependency` });
      }
    }
    for (const { key, from } of item.needs) {
      const at = ['items', item.index, 'needs', key, 'from'];
      if (item.id !== undefined && from === item.id) {
        out.push({ segments: at, message: `the item needs its own output; name an upstream item instead` });
      } else if (!knownSet.has(from)) {
        out.push({ segments: at, message: `${unknown(from)}; name the upstream item whose output this input reads` });
      }
    }
  }
}

function checkCycles(items: ItemView[], out: LocatedProblem[]): void {
  const firstById = new Map<string, ItemView>();
  for (const item of items) if (item.id !== undefined && !firstById.has(item.id)) firstById.set(item.id, item);
  const graph: GraphItem[] = [...firstById.values()].map((item) => ({
    id: item.id!,
    // Self dependencies are reported on their own.
    depends_on: item.dependsOn.map((d) => d.id).filter((d) => d !== item.id),
    needs: Object.fromEntries(item.needs.filter((n) => n.from !== item.id).map((n) => [n.key, { from: n.from, select: { kind: 'patch' as const } }])),
  }));
  const cycles = findCycles(graph, { limit: MAX_REPORTED_CYCLES + 1 });
  for (const cycle of cycles.slice(0, MAX_REPORTED_CYCLES)) {
    const from = firstById.get(cycle[0]!)!;
    const to = cycle[1]!;
    const dep = from.dependsOn.find((d) => d.id === to);
    const need = from.needs.find((n) => n.from === to);
    const segments = dep ? ['items', from.index, 'depends_on', dep.k] : ['items', from.index, 'needs', need?.key ?? '', 'from'];
    out.push({
      segments,
      message: `cycle: ${formatCycle(cycle)}; items in a cycle wait for each other forever: remove one of these dependencies`,
    });
  }
  if (cycles.length > MAX_REPORTED_CYCLES) {
    out.push({ segments: ['items'], message: `more than ${MAX_REPORTED_CYCLES} dependency cycles; only the first ${MAX_REPORTED_CYCLES} are listed` });
  }
}

function checkLocks(items: ItemView[], out: LocatedProblem[]): void {
  for (const item of items) {
    for (const { k, key } of item.locks) {
      if (hasTemplate(key)) continue; // a matrix template: matrix-check.ts checks what it becomes
      const problem = lockKeyProblem(key);
      if (problem) out.push({ segments: ['items', item.index, 'resourceLocks', k], message: problem });
    }
  }
}

function checkCommandInputs(item: ItemView, inputs: Record<string, unknown>, out: LocatedProblem[]): void {
  const base = ['items', item.index, 'inputs'];
  if (!('run' in inputs)) {
    out.push({ segments: [...base, 'run'], message: 'missing: a command item needs inputs.run, the shell command to run (a non-empty string)' });
  } else if (typeof inputs.run !== 'string' || inputs.run.trim() === '') {
    out.push({ segments: [...base, 'run'], message: `must be the shell command to run (a non-empty string), not ${describeValue(inputs.run)}` });
  }
  if ('env' in inputs) {
    if (!isRecord(inputs.env)) {
      out.push({ segments: [...base, 'env'], message: `must be an object of environment variable names to string values, not ${describeValue(inputs.env)}` });
    } else {
      for (const [name, value] of Object.entries(inputs.env)) {
        if (!ENV_NAME.test(name)) {
          out.push({ segments: [...base, 'env', name], message: `${JSON.stringify(name)} is not an environment variable name; ${ENV_NAME_RULE}` });
        }
        if (typeof value !== 'string') {
          out.push({
            segments: [...base, 'env', name],
            message: `must be a string, not ${describeValue(value)}; environment values are text (quote numbers, JSON-encode structures)`,
          });
        }
      }
    }
  }
  if ('secrets' in inputs) {
    if (!Array.isArray(inputs.secrets)) {
      out.push({
        segments: [...base, 'secrets'],
        message: `must be an array of environment variable names, like ["GITHUB_TOKEN"], not ${describeValue(inputs.secrets)}`,
      });
    } else {
      inputs.secrets.forEach((name: unknown, k: number) => {
        if (typeof name !== 'string' || !ENV_NAME.test(name)) {
          out.push({ segments: [...base, 'secrets', k], message: `${describeValue(name)} is not an environment variable name; ${ENV_NAME_RULE}` });
        }
      });
    }
  }
}

function checkDispatchInputs(item: ItemView, inputs: Record<string, unknown>, ctx: ValidationContext, schemas: JsonSchemaChecker, out: LocatedProblem[]): void {
  const base = ['items', item.index, 'inputs'];
  const configured = Object.keys(ctx.subagents);
  const listing =
    configured.length > 0
      ? `the configured subagents are ${quoteList(configured)}`
      : 'no subagents are configured: add one under `orch.subagents` in agora.config.mjs';
  const name = inputs.subagent;
  if (!('subagent' in inputs)) {
    out.push({
      segments: [...base, 'subagent'],
      message: `missing: a dispatch item needs inputs.subagent, the name of a subagent from agora.config.mjs; ${listing}`,
    });
    return;
  }
  if (typeof name !== 'string' || name === '') {
    out.push({ segments: [...base, 'subagent'], message: `must name a subagent (a non-empty string), not ${describeValue(name)}; ${listing}` });
    return;
  }
  const subagent = Object.prototype.hasOwnProperty.call(ctx.subagents, name) ? ctx.subagents[name] : undefined;
  if (!subagent) {
    out.push({ segments: [...base, 'subagent'], message: `unknown subagent ${JSON.stringify(name)}${didYouMean(name, configured)}; ${listing}` });
    return;
  }
  if ('workerInput' in inputs && subagent.inputSchema) {
    out.push(...schemas.check(subagent.inputSchema, inputs.workerInput, [...base, 'workerInput'], `the inputSchema of subagent ${JSON.stringify(name)}`));
  }
}

function checkExecutors(items: ItemView[], ctx: ValidationContext, schemas: JsonSchemaChecker, out: LocatedProblem[]): void {
  const executors: readonly string[] = BUILTIN_EXECUTORS;
  for (const item of items) {
    if (item.executor !== undefined && !executors.includes(item.executor)) {
      out.push({
        segments: ['items', item.index, 'executor'],
        message: `unknown executor ${JSON.stringify(item.executor)}${didYouMean(item.executor, executors)}; the executors are "command" (runs inputs.run in a shell) and "dispatch" (runs the subagent inputs.subagent from agora.config.mjs)`,
      });
    }
    if (item.inputs && item.executor === 'command') checkCommandInputs(item, item.inputs, out);
    if (item.inputs && item.executor === 'dispatch') checkDispatchInputs(item, item.inputs, ctx, schemas, out);
    if (item.subagentShape !== undefined) {
      const shapes = Object.keys(ctx.shapes);
      const shape = Object.prototype.hasOwnProperty.call(ctx.shapes, item.subagentShape) ? ctx.shapes[item.subagentShape] : undefined;
      if (!shape) {
        const listing =
          shapes.length > 0 ? `the configured shapes are ${quoteList(shapes)}` : 'no shapes are configured: add one under `orch.shapes` in agora.config.mjs';
        out.push({
          segments: ['items', item.index, 'subagentShape'],
          message: `unknown shape ${JSON.stringify(item.subagentShape)}${didYouMean(item.subagentShape, shapes)}; ${listing}`,
        });
      } else if (item.inputs) {
        out.push(...schemas.check(shape, item.inputs, ['items', item.index, 'inputs'], `shape ${JSON.stringify(item.subagentShape)}`));
      }
    }
  }
}

/** A matrix item's inputs are checked once per combination, with its templates filled. */
function withCombinations(items: ItemView[], matrices: CheckedMatrices): ItemView[] {
  if (matrices.size === 0) return items;
  return items.flatMap((item) => {
    const m = matrices.get(item.index);
    const inputs = item.inputs;
    if (!m || !inputs) return [item];
    return m.combinations.map((c) => ({ ...item, inputs: fillInputs(inputs, c) }));
  });
}

/**
 * Validates a parsed plan.json against the schema and the rules of docs/plan.md. Reports every problem
 * at once, sorted by JSON path; on success returns the plan with schema defaults filled in and every
 * matrix item expanded into its combinations (matrix.ts).
 */
export function validatePlan(raw: unknown, ctx: ValidationContext): ValidationResult {
  const unresolved = unresolvedMatrixFiles(raw);
  if (unresolved.length > 0) return { ok: false, problems: finishProblems(unresolved) };
  const parsed = PlanSchema.safeParse(raw);
  const located: LocatedProblem[] = parsed.success ? [] : zodIssuesToProblems(parsed.error.issues, PlanSchema, raw);
  // The rules below run on whatever could be read, so structural and semantic problems come together.
  const items = viewItems(raw);
  if (parsed.success && parsed.data.items.length === 0) {
    located.push({ segments: ['items'], message: 'is empty: a plan runs its items, so it needs at least one; add an item (docs/plan.md)' });
  }
  checkIds(raw, items, located);
  checkBindingNames(raw, located);
  checkDependencies(items, located);
  checkCycles(items, located);
  checkLocks(items, located);
  const matrices = checkMatrices(raw, located);
  checkExecutors(withCombinations(items, matrices), ctx, new JsonSchemaChecker(), located);
  const expanded = located.length === 0 && parsed.success ? expandPlan(parsed.data) : undefined;
  if (expanded?.max_items !== undefined && expanded.items.length > expanded.max_items) {
    located.push({
      segments: ['max_items'],
      message: `is ${expanded.max_items}, but the plan itself holds ${expanded.items.length} items (matrices expanded): raise "max_items" to at least ${expanded.items.length} plus what its items may emit, or remove it`,
    });
  }
  if (located.length > 0 || !parsed.success || !expanded) {
    return { ok: false, problems: finishProblems(located) };
  }
  return { ok: true, plan: expanded };
}

/**
 * A matrix list given as `{ "file": … }` is read at the run's base by whoever accepts the run
 * (validate-at.ts) and put in place before validation; validatePlan alone reads no files, so each one it
 * meets is a problem (with the path's own problems, if any).
 */
function unresolvedMatrixFiles(raw: unknown): LocatedProblem[] {
  const refs = matrixFileRefs(raw);
  const located = matrixFileRefProblems(raw);
  for (const ref of refs) {
    located.push({
      segments: ['items', ref.index, 'matrix', ref.key],
      message: `the values come from the file ${JSON.stringify(ref.path)}, which only the plan a run starts from may use (it is read at the run's base commit, by \`agora orch validate\`, \`submit\`, \`serve\` and the App); here nothing reads it: write the values as a list, like ["01", "02"]`,
    });
  }
  return located;
}

/** The hint attached to `plan-invalid` errors. */
export const PLAN_INVALID_HINT = 'fix each problem at its JSON path and submit the plan again; docs/plan.md describes every field and rule';

/**
 * {@link validatePlan}, throwing InvalidInputError `plan-invalid` (with every problem) when the plan is
 * not valid. `source` names the input in the error.
 */
export function assertValidPlan(raw: unknown, ctx: ValidationContext, source: string): Plan {
  const result = validatePlan(raw, ctx);
  if (!result.ok) throw new InvalidInputError('plan-invalid', source, result.problems, PLAN_INVALID_HINT);
  return result.plan;
}
