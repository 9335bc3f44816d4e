import type { IgnoredActionCode } from './app-events.js';
import { checkRole } from './check-names.js';

/** The App's check-run buttons, and what pressing one (or GitHub's Re-run) asks for. Pure. */

/** Check run buttons (GitHub: at most 3 per check run; label ≤ 20, identifier ≤ 20, description ≤ 40 chars). */
export const RETRY_ACTION = { label: 'Retry', identifier: 'agora-retry', description: 'Run this item again' } as const;

export type ButtonRequest = 'retry' | 'rerun';

export type ButtonDecision =
  /** Record a retry of the item in its run's state. */
  | { kind: 'retry-item'; runId: string; itemId: string }
  /** Run the plan again at the gate's commit. */
  | { kind: 'rerun-plan' }
  | { kind: 'ignored'; code: IgnoredActionCode; why: string };

/** What a press on the check run named `checkName` with `externalId` asks for. */
export function decideButton(checkName: string, externalId: string, request: ButtonRequest): ButtonDecision {
  const role = checkRole(checkName, externalId);
  if (!role) return { kind: 'ignored', code: 'not-agora-check', why: `not an agora run or item check: ${checkName}` };
  if (role.kind === 'gate') return { kind: 'rerun-plan' }; // its Re-run plan button, or GitHub's Re-run on it
  if (role.kind === 'run')
    return { kind: 'ignored', code: 'run-check-has-no-button', why: 'the run check offers no button (close the pull request to cancel the run)' };
  if (request !== 'retry') return { kind: 'ignored', code: 'item-offers-only-retry', why: 'an item check offers only Retry' };
  return { kind: 'retry-item', runId: role.runId, itemId: role.itemId };
}
