/**
 * A plan fragment emitted by an item at run time (`$AGORA_EMIT/items.json`: `{ "items": [ … ] }`),
 * validated like a plan: the same item schema and rules (ids, dependencies, cycles, locks, executors and
 * their inputs, matrices), checked as the run's items followed by the fragment's, so `depends_on` may
 * name any item of the run or another emitted item, and an id the run already has is a duplicate. Every
 * lock of an emitted item must lie within the emitter's own locks: an item cannot hand on a write scope
 * (or a resource) it did not hold. Problems are located in the fragment (`$.items[1].depends_on[0]`).
 */
import type { Problem } from '../errors.js';
import { isResourceKey } from './resource-keys.js';
import { normalizeLockKey, pathInScope } from './locks.js';
import type { Plan, WorkItem } from './schema.js';
import { validatePlan, type ValidationContext } from './validate.js';

export type FragmentResult = { ok: true; items: WorkItem[] } | { ok: false; problems: Problem[] };

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** True when the emitter's locks cover `key`: a path within its write scope, a resource at or under one it holds. */
function heldBy(key: string, emitterLocks: readonly string[]): boolean {
  if (!isResourceKey(key)) return pathInScope(key, emitterLocks);
  const k = normalizeLockKey(key);
  return emitterLocks.some((l) => {
    const n = normalizeLockKey(l);
    return isResourceKey(n) && (k === n || k.startsWith(`${n}/`));
  });
}

/**
 * Checks `raw` (the parsed items.json) as a fragment of `plan` (the run's plan: plan.json and what was
 * emitted so far) emitted by `emitter`. On success, returns the fragment's items (matrices expanded).
 */
export function validateFragment(raw: unknown, plan: Plan, emitter: WorkItem, ctx: ValidationContext): FragmentResult {
  if (!isRecord(raw) || !Array.isArray(raw.items)) {
    return { ok: false, problems: [{ path: '$', message: 'must be an object {"items": [ … ]} listing the items to add, each written as in plan.json' }] };
  }
  const extra = Object.keys(raw).filter((k) => k !== 'items');
  if (extra.length > 0) {
    return { ok: false, problems: extra.map((k) => ({ path: `$.${k}`, message: `unknown field ${JSON.stringify(k)}; items.json holds only "items"` })) };
  }
  const n = plan.items.length;
  const ids = plan.items.map((i) => i.id);
  const whole = { id: plan.id, queue: plan.queue, items: [...plan.items, ...raw.items] };
  const result = validatePlan(whole, ctx);
  // Say where in the fragment, and name the run's items by id rather than by their place in a plan nobody wrote.
  const relocate = (text: string) =>
    text.replace(/\$\.items\[(\d+)\]/g, (all, k: string) =>
      Number(k) >= n ? `$.items[${Number(k) - n}]` : `the run's item ${JSON.stringify(ids[Number(k)])}`,
    );
  const problems: Problem[] = result.ok ? [] : result.problems.map((p) => ({ path: relocate(p.path), message: relocate(p.message) }));
  raw.items.forEach((item: unknown, k: number) => {
    if (!isRecord(item) || !Array.isArray(item.resourceLocks)) return;
    item.resourceLocks.forEach((key: unknown, j: number) => {
      if (typeof key !== 'string' || heldBy(key, emitter.resourceLocks)) return;
      problems.push({
        path: `$.items[${k}].resourceLocks[${j}]`,
        message: `lock ${JSON.stringify(key)} is not within the locks of the emitting item ${emitter.id} (${emitter.resourceLocks.map((l) => JSON.stringify(l)).join(', ') || 'none: it is read-only'}); an emitted item may only lock what its emitter held: narrow the lock or add it to the emitter's resourceLocks`,
      });
    });
  });
  if (problems.length > 0 || !result.ok) return { ok: false, problems };
  return { ok: true, items: result.plan.items.slice(n) };
}
