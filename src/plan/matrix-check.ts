/**
 * The plan rules that concern `matrix` items, run by validatePlan on the raw plan: the matrix itself
 * (key names, values usable in ids, no repeated value), the `{{matrix.<key>}}` templates (known keys
 * only, lock keys that stay valid for every value), the ids the combinations get (safe, unique), the
 * run's item budget, and `needs` bindings (which read one item, so cannot name a matrix item).
 * Every problem names the JSON path of the matrix entry (or template) that causes it.
 */
import { formatJsonPath, type PathSegment } from '../json/path.js';
import { describeValue } from '../problems/describe.js';
import type { LocatedProblem } from '../problems/located.js';
import { idProblem } from './ids.js';
import { lockKeyProblem } from './locks.js';
import {
  combinationCount,
  combinationId,
  combinations,
  fillTemplate,
  hasTemplate,
  MAX_RUN_ITEMS,
  templateKeys,
  type Combination,
  type Matrix,
  type MatrixValue,
} from './matrix.js';

const KEY_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const VALUE_TEXT = /^[A-Za-z0-9._-]+$/;

/** The combinations of each matrix item that could be expanded, by item index. */
export type CheckedMatrices = Map<number, { matrix: Matrix; combinations: Combination[] }>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isScalar(value: unknown): value is MatrixValue {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** Problems of one item's matrix as written; the matrix when it has none. */
function readMatrix(raw: unknown, at: PathSegment[], out: LocatedProblem[]): Matrix | undefined {
  if (!isRecord(raw)) return undefined; // the schema reports the type
  const keys = Object.keys(raw);
  if (keys.length === 0) {
    out.push({ segments: at, message: 'the matrix has no keys; give it at least one list of values, like { "shard": ["01", "02"] }, or remove it' });
    return undefined;
  }
  let ok = true;
  for (const key of keys) {
    if (!KEY_NAME.test(key)) {
      out.push({
        segments: [...at, key],
        message: `matrix key ${JSON.stringify(key)} is not a name; use letters, digits and _, starting with a letter (it becomes part of item ids and of {{matrix.${key}}})`,
      });
      ok = false;
    }
    const values = raw[key];
    if (!Array.isArray(values)) {
      ok = false;
      continue;
    }
    const seen = new Map<string, number>();
    values.forEach((value: unknown, j: number) => {
      if (!isScalar(value)) {
        ok = false;
        return;
      }
      const text = String(value);
      if (!VALUE_TEXT.test(text) || text.includes('..')) {
        out.push({
          segments: [...at, key, j],
          message: `matrix value ${describeValue(value)} cannot be part of an item id; use 1 or more of A–Z a–z 0–9 . _ - without "..", like "03" or "linux-x64"`,
        });
        ok = false;
      }
      const earlier = seen.get(text);
      if (earlier !== undefined) {
        out.push({
          segments: [...at, key, j],
          message: `matrix value ${describeValue(value)} is also at ${formatJsonPath([...at, key, earlier])}; two combinations would get one id: remove one`,
        });
        ok = false;
      }
      seen.set(text, j);
    });
  }
  return ok ? (raw as Matrix) : undefined;
}

/** Every string in `value` with its path, for templates. */
function strings(value: unknown, at: PathSegment[], out: Array<{ at: PathSegment[]; text: string }>): void {
  if (typeof value === 'string') {
    if (value.includes('{{')) out.push({ at, text: value });
  } else if (Array.isArray(value)) {
    value.forEach((v: unknown, i: number) => strings(v, [...at, i], out));
  } else if (isRecord(value)) {
    for (const [k, v] of Object.entries(value)) strings(v, [...at, k], out);
  }
}

/** Templates naming a key the item's matrix lacks (or in an item with no matrix). */
function checkTemplateKeys(item: Record<string, unknown>, index: number, matrix: Matrix | undefined, hasMatrix: boolean, out: LocatedProblem[]): void {
  const found: Array<{ at: PathSegment[]; text: string }> = [];
  strings(item.inputs, ['items', index, 'inputs'], found);
  strings(item.resourceLocks, ['items', index, 'resourceLocks'], found);
  for (const { at, text } of found) {
    for (const key of templateKeys(text)) {
      if (!hasMatrix) {
        out.push({
          segments: at,
          message: `{{matrix.${key}}} is used but the item has no matrix; add "matrix": { "${key}": [ … ] } to the item or write the value itself`,
        });
      } else if (matrix && !Object.prototype.hasOwnProperty.call(matrix, key)) {
        out.push({
          segments: at,
          message: `{{matrix.${key}}} names no key of the item's matrix; its keys are ${Object.keys(matrix)
            .map((k) => JSON.stringify(k))
            .join(', ')}`,
        });
      }
    }
  }
}

/** Lock templates: each value alone must give a valid key (located at the value), then each combination. */
function checkLockTemplates(item: Record<string, unknown>, index: number, matrix: Matrix, combos: Combination[], out: LocatedProblem[]): void {
  if (!Array.isArray(item.resourceLocks)) return;
  item.resourceLocks.forEach((lock: unknown, k: number) => {
    if (typeof lock !== 'string' || !hasTemplate(lock)) return;
    const keys = [...new Set(templateKeys(lock))].filter((key) => Object.prototype.hasOwnProperty.call(matrix, key));
    const placeholder = new Map<string, MatrixValue>(keys.map((key) => [key, 'x']));
    const shapeProblem = lockKeyProblem(String(fillTemplate(lock, placeholder)));
    if (shapeProblem) {
      out.push({ segments: ['items', index, 'resourceLocks', k], message: `lock template ${JSON.stringify(lock)}: ${shapeProblem}` });
      return;
    }
    let located = false;
    for (const key of keys) {
      matrix[key]!.forEach((value, j) => {
        const key1 = String(fillTemplate(lock, new Map([...placeholder, [key, value]])));
        const problem = lockKeyProblem(key1);
        if (!problem) return;
        located = true;
        out.push({
          segments: ['items', index, 'matrix', key, j],
          message: `this value makes the lock template ${JSON.stringify(lock)} ($.items[${index}].resourceLocks[${k}]) the key ${JSON.stringify(key1)}: ${problem}; change the value or the template`,
        });
      });
    }
    if (located) return;
    for (const combo of combos) {
      const filled = String(fillTemplate(lock, new Map(combo)));
      const problem = lockKeyProblem(filled);
      if (problem) {
        out.push({
          segments: ['items', index, 'resourceLocks', k],
          message: `for ${describeCombination(combo)} the lock template ${JSON.stringify(lock)} gives ${JSON.stringify(filled)}: ${problem}`,
        });
        return;
      }
    }
  });
}

function describeCombination(combo: Combination): string {
  return combo.map(([k, v]) => `${k}=${String(v)}`).join(', ');
}

/**
 * Checks every matrix of the raw plan (and every template), adds the problems to `out`, and returns the
 * combinations of the matrices that can be expanded (none when the plan is over the item budget).
 */
export function checkMatrices(raw: unknown, out: LocatedProblem[]): CheckedMatrices {
  const checked: CheckedMatrices = new Map();
  if (!isRecord(raw) || !Array.isArray(raw.items)) return checked;
  const rawItems: unknown[] = raw.items;
  const matrices = new Map<number, Matrix>();
  const matrixIds = new Map<string, number>();
  rawItems.forEach((item, index) => {
    if (!isRecord(item)) return;
    const hasMatrix = item.matrix !== undefined;
    const matrix = hasMatrix ? readMatrix(item.matrix, ['items', index, 'matrix'], out) : undefined;
    checkTemplateKeys(item, index, matrix, hasMatrix, out);
    if (matrix) matrices.set(index, matrix);
    if (hasMatrix && typeof item.id === 'string') matrixIds.set(item.id, index);
  });
  if (matrixIds.size === 0) return checked;
  checkBindings(rawItems, matrixIds, out);
  if (!withinBudget(rawItems.length, matrices, out)) return checked;
  const taken = new Map<string, string>();
  rawItems.forEach((item, index) => {
    if (isRecord(item) && typeof item.id === 'string' && item.matrix === undefined) taken.set(item.id.toLowerCase(), `$.items[${index}]`);
  });
  for (const [index, matrix] of matrices) {
    const item = rawItems[index] as Record<string, unknown>;
    if (typeof item.id !== 'string') continue;
    const combos = combinations(matrix);
    if (!checkCombinationIds(item.id, index, combos, taken, out)) continue;
    checkLockTemplates(item, index, matrix, combos, out);
    checked.set(index, { matrix, combinations: combos });
  }
  return checked;
}

/** A `needs` binding reads one item's result; a matrix item is many. */
function checkBindings(rawItems: unknown[], matrixIds: Map<string, number>, out: LocatedProblem[]): void {
  rawItems.forEach((item, index) => {
    if (!isRecord(item) || !isRecord(item.needs)) return;
    for (const [name, binding] of Object.entries(item.needs)) {
      if (!isRecord(binding) || typeof binding.from !== 'string') continue;
      const at = matrixIds.get(binding.from);
      if (at === undefined) continue;
      out.push({
        segments: ['items', index, 'needs', name, 'from'],
        message: `${JSON.stringify(binding.from)} is a matrix item ($.items[${at}].matrix): it stands for many items and a binding reads one; wait for all of them with depends_on and read their results from the workspace`,
      });
    }
  });
}

/** The run's items after expansion must fit in {@link MAX_RUN_ITEMS}; otherwise each matrix is named. */
function withinBudget(itemCount: number, matrices: Map<number, Matrix>, out: LocatedProblem[]): boolean {
  let total = itemCount;
  for (const matrix of matrices.values()) total += combinationCount(matrix) - 1;
  if (total <= MAX_RUN_ITEMS) return true;
  for (const [index, matrix] of matrices) {
    const sizes = Object.entries(matrix)
      .map(([k, v]) => `${v.length} ${k}`)
      .join(' × ');
    out.push({
      segments: ['items', index, 'matrix'],
      message: `expands to ${combinationCount(matrix)} items (${sizes}); with the rest of the plan the run would hold ${total} items, over the budget of ${MAX_RUN_ITEMS}: shorten the lists or split the work into several plans`,
    });
  }
  return false;
}

/** Every combination's id is safe and unique (also ignoring letter case) among all the plan's items. */
function checkCombinationIds(baseId: string, index: number, combos: Combination[], taken: Map<string, string>, out: LocatedProblem[]): boolean {
  for (const combo of combos) {
    const id = combinationId(baseId, combo);
    const problem = idProblem(id);
    if (problem) {
      out.push({
        segments: ['items', index, 'matrix'],
        message: `the combination ${describeCombination(combo)} gets the item ${problem}; shorten the id or the values`,
      });
      return false;
    }
    const folded = id.toLowerCase();
    const other = taken.get(folded);
    if (other !== undefined) {
      out.push({
        segments: ['items', index, 'matrix'],
        message: `the combination ${describeCombination(combo)} gets the id ${JSON.stringify(id)}, which ${other} already has (ids are compared ignoring letter case); rename one of the items`,
      });
      return false;
    }
    taken.set(folded, `the combination ${describeCombination(combo)} of $.items[${index}]`);
  }
  return true;
}
