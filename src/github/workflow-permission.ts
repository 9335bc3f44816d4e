/**
 * GitHub refuses a push by an App that creates, changes or deletes a file under `.github/workflows/`
 * unless the installation granted `workflows: write`. A plan item may write workflows only through a lock
 * at or under `.github/workflows` (src/plan/locks.ts), so such a lock is what a plan asks for: without
 * the permission the plan is refused at intake, naming the lock and the fix, instead of running and then
 * failing to land its patches.
 */
import type { Problem } from '../errors.js';
import { isUnderWorkflows } from '../plan/locks.js';
import type { Plan } from '../plan/schema.js';
import { permits } from './permissions.js';

export function workflowLockProblems(plan: Plan, granted: Readonly<Record<string, string | undefined>>): Problem[] {
  if (permits(granted, 'workflows', 'write')) return [];
  const problems: Problem[] = [];
  plan.items.forEach((item, i) => {
    item.resourceLocks.forEach((lock, j) => {
      if (!isUnderWorkflows(lock)) return;
      problems.push({
        path: `$.items[${i}].resourceLocks[${j}]`,
        message:
          `item ${item.id} locks ${JSON.stringify(lock)}, so its patch may change workflow files, which GitHub lets the app push ` +
          `only with the "workflows: write" permission (granted: ${granted.workflows ?? 'none'}); ask the app's owner to add it ` +
          `(and accept it on the installation), or remove the lock`,
      });
    });
  });
  return problems;
}
