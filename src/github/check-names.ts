/**
 * The names and external ids of the App's check runs. An item's check must never take the name or the
 * external id of the App's own checks (the run check `agora` and the gate `agora / audit`): a button
 * pressed on it would do what the App's check does (an item called `audit` would re-run the whole plan).
 * Run and item ids hold to src/plan/ids.ts (letters, digits, `.`, `_`, `-`), so a space or a `:` marks
 * the App's own.
 */

/** The run's check: its summary table and DAG. */
export const RUN_CHECK_NAME = 'agora';
/** The merge gate: the audit bundle verified, on the branch head. */
export const GATE_CHECK_NAME = 'agora / audit';

/** `agora / <item>`, or `agora / item <item>` for the one item id whose check would be the gate. */
export function itemCheckName(itemId: string): string {
  const name = `agora / ${itemId}`;
  return name === GATE_CHECK_NAME ? `agora / item ${itemId}` : name;
}

/** True for the names of every check the App writes. */
export function isAgoraCheckName(name: string): boolean {
  return name === RUN_CHECK_NAME || name.startsWith('agora / ');
}

export function runExternalId(runId: string): string {
  return runId;
}

export function itemExternalId(runId: string, itemId: string): string {
  return `${runId}/${itemId}`;
}

/** `<run>:audit`: no run or item id holds a `:`, so no item's external id can be the gate's. */
export function gateExternalId(runId: string): string {
  return `${runId}:audit`;
}

/** What a check run of the App is about, read from its name and external id; undefined when not ours. */
export type CheckRole = { kind: 'run'; runId: string } | { kind: 'item'; runId: string; itemId: string } | { kind: 'gate' };

export function checkRole(name: string, externalId: string): CheckRole | undefined {
  // The gate is known by its name: no item's check is given that name (gates written before `:audit`
  // carry `<run>/audit`).
  if (name === GATE_CHECK_NAME) return { kind: 'gate' };
  const slash = externalId.indexOf('/');
  if (name === RUN_CHECK_NAME) return externalId !== '' && slash < 0 ? { kind: 'run', runId: externalId } : undefined;
  if (!name.startsWith('agora / ') || slash <= 0 || slash === externalId.length - 1) return undefined;
  return { kind: 'item', runId: externalId.slice(0, slash), itemId: externalId.slice(slash + 1) };
}
