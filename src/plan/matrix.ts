/**
 * Fan-out from data: an item with a `matrix` (named lists of values) stands for one item per combination
 * of values. Expansion is a pure function of the plan, so every reader of a stored plan.json (the
 * engine's state store, the verifier, the App) derives the same items from the same text.
 *
 * - Combinations are taken in the order the keys and values are written, the last key varying fastest.
 * - A combination's item id is the item's id followed by `.<key>-<value>` per key:
 *   `count-words` with `{ "shard": ["03"] }` becomes `count-words.shard-03`. (Brackets, as in
 *   `count-words[shard=03]`, are not allowed in git ref names, which ids become.)
 * - `{{matrix.<key>}}` in `resourceLocks` and in any string inside `inputs` is replaced by the value; a
 *   string that is exactly one template becomes the value itself (a number stays a number).
 * - A dependency on a matrix item (`depends_on`) is a dependency on every one of its combinations.
 */
import { PlanSchema, type Plan, type WorkItem } from './schema.js';

export type MatrixValue = string | number | boolean;
export type Matrix = Record<string, MatrixValue[]>;
export type Combination = ReadonlyArray<readonly [key: string, value: MatrixValue]>;

/** The most items one run may hold after its matrices are expanded. */
export const MAX_RUN_ITEMS = 10_000;

const TEMPLATE_SOURCE = '\\{\\{\\s*matrix\\.([A-Za-z0-9_-]*)\\s*\\}\\}';
/** Global, so only used by replace and matchAll (which never leave state behind in it). */
const TEMPLATE = new RegExp(TEMPLATE_SOURCE, 'g');
const ANY_TEMPLATE = new RegExp(TEMPLATE_SOURCE);
const WHOLE_TEMPLATE = new RegExp(`^${TEMPLATE_SOURCE}$`);

/** True when `text` holds at least one `{{matrix.<key>}}`. */
export function hasTemplate(text: string): boolean {
  return ANY_TEMPLATE.test(text);
}

/** The keys `text` refers to with `{{matrix.<key>}}`, in order, repeated as written. */
export function templateKeys(text: string): string[] {
  return [...text.matchAll(TEMPLATE)].map((m) => m[1]!);
}

/** How many combinations `matrix` has (without listing them). */
export function combinationCount(matrix: Matrix): number {
  let n = 1;
  for (const values of Object.values(matrix)) n *= values.length;
  return n;
}

/** Every combination of `matrix`, keys in written order, the last key varying fastest. */
export function combinations(matrix: Matrix): Combination[] {
  let out: Array<Array<readonly [string, MatrixValue]>> = [[]];
  for (const [key, values] of Object.entries(matrix)) {
    const next: Array<Array<readonly [string, MatrixValue]>> = [];
    for (const prefix of out) for (const value of values) next.push([...prefix, [key, value] as const]);
    out = next;
  }
  return out;
}

/** The id of one combination of the matrix item `baseId`: `count-words.shard-03`. */
export function combinationId(baseId: string, combination: Combination): string {
  let id = baseId;
  for (const [key, value] of combination) id += `.${key}-${String(value)}`;
  return id;
}

/** `text` with every `{{matrix.<key>}}` replaced; a text that is exactly one template gives the value itself. */
export function fillTemplate(text: string, values: ReadonlyMap<string, MatrixValue>): string | MatrixValue {
  if (!text.includes('{{')) return text;
  const whole = WHOLE_TEMPLATE.exec(text);
  if (whole && values.has(whole[1]!)) return values.get(whole[1]!)!;
  return text.replace(TEMPLATE, (all, key: string) => (values.has(key) ? String(values.get(key)) : all));
}

function fillDeep(value: unknown, values: ReadonlyMap<string, MatrixValue>): unknown {
  if (typeof value === 'string') return fillTemplate(value, values);
  if (Array.isArray(value)) return value.map((v) => fillDeep(v, values));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = fillDeep(v, values);
    return out;
  }
  return value;
}

/** An item's `inputs` for one combination: every template in every string filled. */
export function fillInputs(inputs: Record<string, unknown>, combination: Combination): Record<string, unknown> {
  return fillDeep(inputs, new Map(combination)) as Record<string, unknown>;
}

/** The lock keys of one combination: each template filled, as text. */
export function fillLocks(locks: readonly string[], values: ReadonlyMap<string, MatrixValue>): string[] {
  return locks.map((l) => String(fillTemplate(l, values)));
}

/** The ordinary item one combination of the matrix item `item` stands for (without dependencies rewritten). */
function combinationItem(item: WorkItem, combination: Combination): WorkItem {
  const values = new Map(combination);
  const { matrix: _matrix, ...rest } = item;
  return {
    ...rest,
    id: combinationId(item.id, combination),
    inputs: fillInputs(item.inputs, combination),
    resourceLocks: fillLocks(item.resourceLocks, values),
  };
}

/**
 * The plan with every matrix item replaced, in place, by its combinations, and every `depends_on` naming
 * a matrix item replaced by its combinations' ids. A plan without a matrix is returned as it is.
 * Expects a valid plan (validatePlan checks what expansion would produce before it expands).
 */
export function expandPlan(plan: Plan): Plan {
  if (!plan.items.some((i) => i.matrix !== undefined)) return plan;
  const expandedIds = new Map<string, string[]>();
  const items: WorkItem[] = [];
  for (const item of plan.items) {
    if (item.matrix === undefined) {
      items.push(item);
      continue;
    }
    const ids: string[] = [];
    for (const combination of combinations(item.matrix)) {
      const expanded = combinationItem(item, combination);
      ids.push(expanded.id);
      items.push(expanded);
    }
    expandedIds.set(item.id, ids);
  }
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (!item.depends_on.some((d) => expandedIds.has(d))) continue;
    items[i] = { ...item, depends_on: item.depends_on.flatMap((d) => expandedIds.get(d) ?? [d]) };
  }
  return { ...plan, items };
}

/**
 * A plan as stored with a run (plan.json, validated when the run was accepted) → the plan the engine runs:
 * parsed by the schema and expanded. Every reader of a stored plan goes through this, so all see one item
 * list.
 */
export function storedPlan(json: unknown): Plan {
  return expandPlan(PlanSchema.parse(json));
}
