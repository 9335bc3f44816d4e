import type { ItemState, RunState, Transition, RunParams } from '../engine/types.js';
import { terminalSafeLine } from './terminal-text.js';

/** JSON shapes printed by `status` and `watch`, and the live table shown on a terminal. */

export interface StatusView {
  runId: string;
  status: RunState['status'];
  reason?: string;
  queue: string;
  base: string;
  integrationHead: string;
  acceptedAt: string;
  finishedAt?: string;
  stateCommit: string;
  /** The run's parameters (a secret one's value is `***`), when it was given any. */
  params?: RunParams['values'];
  items: Array<{
    id: string;
    status: ItemState['status'];
    reason?: string;
    attempts: number;
    resultRef?: string;
    startedAt?: string;
    finishedAt?: string;
    /** An item emitted at run time: the item that emitted it, and how many creations it is from the plan. */
    parent?: string;
    hops?: number;
  }>;
}

export function statusView(state: RunState, stateCommit: string): StatusView {
  return {
    runId: state.runId,
    status: state.status,
    ...(state.reason ? { reason: state.reason } : {}),
    queue: state.queue,
    base: state.base,
    integrationHead: state.integrationHead,
    acceptedAt: iso(state.acceptedAt),
    ...(state.finishedAt ? { finishedAt: iso(state.finishedAt) } : {}),
    stateCommit,
    ...(state.params ? { params: state.params.values } : {}),
    items: Object.values(state.items).map((i) => ({
      id: i.id,
      status: i.status,
      ...(i.reason ? { reason: i.reason } : {}),
      attempts: i.attempts,
      ...(i.resultRef ? { resultRef: i.resultRef } : {}),
      ...(i.startedAt ? { startedAt: iso(i.startedAt) } : {}),
      ...(i.finishedAt ? { finishedAt: iso(i.finishedAt) } : {}),
      ...(i.parent === undefined ? {} : { parent: i.parent, hops: i.hops ?? 1 }),
    })),
  };
}

/** One `watch` line: the run's status, every item's status, and what changed in this update. */
export function watchLine(state: RunState, stateCommit: string, transitions: readonly Transition[]): string {
  return JSON.stringify({
    runId: state.runId,
    status: state.status,
    ...(state.reason ? { reason: state.reason } : {}),
    at: iso(lastTime(state, transitions)),
    stateCommit,
    items: Object.fromEntries(Object.values(state.items).map((i) => [i.id, i.status])),
    resultRefs: Object.fromEntries(Object.values(state.items).flatMap((i) => (i.status === 'done' && i.resultRef ? [[i.id, i.resultRef]] : []))),
    changes: transitions.map((t) => {
      if (t.kind === 'run') return { run: state.runId, from: t.from, to: t.to, ...(t.reason ? { reason: t.reason } : {}) };
      if (t.kind === 'emit') return { item: t.itemId, attempt: t.attempt, emitted: t.items.map((i) => i.id) };
      if (t.kind === 'call') return { item: t.itemId, attempt: t.attempt, call: t.call, subagent: t.subagent, hop: t.hop, outcome: t.outcome };
      const resultRef = t.to === 'done' ? state.items[t.itemId]?.resultRef : undefined;
      return { item: t.itemId, from: t.from, to: t.to, attempt: t.attempt, ...(t.reason ? { reason: t.reason } : {}), ...(resultRef ? { resultRef } : {}) };
    }),
  });
}

const MARK: Record<ItemState['status'], string> = {
  pending: '·',
  ready: '○',
  running: '●',
  done: '✓',
  failed: '✗',
  skipped: '↷',
  cancelled: '⊘',
};

/** The live table for a terminal. */
export function table(state: RunState, now: number): string {
  const items = Object.values(state.items);
  const count = (s: ItemState['status']) => items.filter((i) => i.status === s).length;
  const width = Math.max(4, ...items.map((i) => i.id.length));
  const head =
    `${state.runId}  ${state.status}  ${count('done')}/${items.length} done` +
    (count('running') ? `, ${count('running')} running` : '') +
    (count('failed') ? `, ${count('failed')} failed` : '') +
    (count('skipped') ? `, ${count('skipped')} skipped` : '') +
    (count('cancelled') ? `, ${count('cancelled')} cancelled` : '') +
    `  ${elapsed((state.finishedAt ?? now) - state.acceptedAt)}`;
  const rows = items.map((i) => {
    const detail =
      i.status === 'running'
        ? `attempt ${i.attempts}, ${elapsed(now - (i.startedAt ?? now))}`
        : i.status === 'done'
          ? `${i.resultRef?.slice(0, 16) ?? ''}`
          : (i.reason ?? '');
    return `  ${MARK[i.status]} ${i.id.padEnd(width)}  ${i.status.padEnd(9)} ${oneLine(detail)}`;
  });
  return [head, ...rows].join('\n');
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function lastTime(state: RunState, transitions: readonly Transition[]): number {
  return transitions.length ? transitions[transitions.length - 1]!.at : (state.finishedAt ?? state.acceptedAt);
}

function elapsed(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * Worker-controlled text (reasons name files a worker wrote) on one line, with control characters shown
 * as `�`: an escape sequence in a file name must not drive the terminal the table is drawn on.
 */
function oneLine(text: string): string {
  const flat = terminalSafeLine(text);
  return flat.length > 100 ? `${flat.slice(0, 99)}…` : flat;
}
