import type { Plan, WorkItem } from '../../src/plan/schema.js';

export function item(id: string, deps: string[] = [], locks: string[] = [], extra: Partial<WorkItem> = {}): WorkItem {
  return { id, executor: 'command', inputs: { run: 'true' }, depends_on: deps, resourceLocks: locks, ...extra };
}

export function plan(items: WorkItem[], id = 'p'): Plan {
  return { id, queue: 'default', items };
}

export const BASE = 'b'.repeat(40);
