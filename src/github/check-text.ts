import type { ItemState, ItemStatus, RunState } from '../engine/types.js';
import type { Problem } from '../errors.js';
import type { TreeChange } from '../git/tree-diff.js';
import type { Plan } from '../plan/schema.js';
import { codeBlock, codeSpan, plainText, tableCellCode, tableCellText } from './untrusted-markdown.js';
import { patchCommitOf } from '../log/result-ref.js';

/**
 * What people read in the check runs: the item summaries, the run's table and Mermaid DAG, the invalid
 * plan's problems. Pure functions of the state; every text is kept under GitHub's limit of 65,535 UTF-8 bytes.
 * Every string that a plan, a worker or a person wrote (keys, paths, messages quoting them, reasons, logs)
 * goes through untrusted-markdown.ts, so it renders as text.
 */

/** GitHub's limit for `output.summary` and `output.text`, in UTF-8 bytes (DESIGN.md §7). */
export const CHECK_TEXT_LIMIT = 65_535;

export type CheckConclusion = 'success' | 'failure' | 'skipped' | 'cancelled' | 'neutral';

/** done=success, failed=failure, skipped=skipped, cancelled=cancelled (DESIGN.md §1). */
export function conclusionOf(status: ItemStatus): CheckConclusion | null {
  switch (status) {
    case 'done':
      return 'success';
    case 'failed':
      return 'failure';
    case 'skipped':
      return 'skipped';
    case 'cancelled':
      return 'cancelled';
    default:
      return null;
  }
}

/** The run check's conclusion: success only when every item is done. */
export function runConclusion(state: RunState): CheckConclusion {
  return state.status === 'done' ? 'success' : state.status === 'cancelled' ? 'cancelled' : 'failure';
}

/** Cuts `text` to GitHub's limit in UTF-8 bytes, at a character boundary, saying so at the end. */
export function fitCheckText(text: string, limit = CHECK_TEXT_LIMIT): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= limit) return text;
  const note = "\n\n… (cut to fit GitHub's check-run size limit; the full text is in the run's state ref)";
  let end = limit - Buffer.byteLength(note, 'utf8');
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // bytes[end] continues a character: cut before it starts
  return bytes.subarray(0, end).toString('utf8') + note;
}

/** The failed `agora` check of an invalid plan: every problem by JSON path. */
export function invalidPlanSummary(planPath: string, problems: readonly Problem[], what: 'plan' | 'repository config' = 'plan'): string {
  const lines = [`${codeSpan(planPath)} is not a valid ${what}: ${problems.length} problem${problems.length === 1 ? '' : 's'}. Nothing was scheduled.`, ''];
  lines.push(what === 'plan' ? '| JSON path | problem |' : '| where | problem |', '| --- | --- |');
  for (const p of problems) lines.push(`| ${tableCellCode(clip(p.path))} | ${tableCellText(clip(p.message))} |`);
  lines.push(
    '',
    what === 'plan'
      ? 'Fix each problem at its path and push the plan again (docs/plan.md describes every field).'
      : 'Fix each problem and push again (docs/github-app.md describes `.github/agora.yml`).',
  );
  return fitCheckText(lines.join('\n'));
}

export interface ItemDetails {
  /** Paths the patch changed (empty when it changed nothing or did not finish). */
  changes: readonly TreeChange[];
  /** A URL of the patch commit, if there is one. */
  patchUrl?: string;
  /** The end of the last attempt's log (already redacted when it was stored). */
  logTail?: string;
  /** The page of the worker job that ran the last attempt (the `actions` target), with its full log. */
  jobUrl?: string;
}

/** An item check's title and summary. */
export function itemOutput(runId: string, item: ItemState, details: ItemDetails): { title: string; summary: string } {
  const title = `${item.id}: ${item.status}${item.reason ? ` — ${firstLine(item.reason)}` : ''}`.slice(0, 1000);
  const lines = [`Run ${codeSpan(runId)}, item ${codeSpan(item.id)}: **${item.status}** after ${item.attempts} attempt${item.attempts === 1 ? '' : 's'}.`];
  if (item.reason) lines.push('', `Reason: ${plainText(item.reason)}`);
  const id = patchCommitOf(item.resultRef);
  if (id) {
    lines.push('', `Patch commit: ${details.patchUrl ? `[\`${id.slice(0, 12)}\`](${details.patchUrl})` : `\`${id}\``}`);
  }
  if (details.changes.length > 0) {
    lines.push('', `Changed ${details.changes.length} path${details.changes.length === 1 ? '' : 's'}:`, '');
    for (const c of details.changes.slice(0, 200)) lines.push(`- ${c.before ? (c.after ? 'M' : 'D') : 'A'} ${codeSpan(c.path)}`);
    if (details.changes.length > 200) lines.push(`- … and ${details.changes.length - 200} more`);
  }
  if (details.jobUrl) lines.push('', `Worker job: [attempt ${item.attempts} and its log](${details.jobUrl})`);
  if (details.logTail) lines.push('', 'Log (tail):', '', codeBlock(details.logTail));
  return { title, summary: fitCheckText(lines.join('\n')) };
}

const COLOURS: Record<ItemStatus, string> = {
  pending: 'fill:#eaeef2,color:#24292f',
  ready: 'fill:#ddf4ff,color:#0969da',
  running: 'fill:#fff8c5,color:#9a6700',
  done: 'fill:#2da44e,color:#ffffff',
  failed: 'fill:#cf222e,color:#ffffff',
  skipped: 'fill:#8c959f,color:#ffffff',
  cancelled: 'fill:#57606a,color:#ffffff',
};

/** A Mermaid flowchart of the plan's DAG, each node coloured by its item's state. */
export function mermaidDag(plan: Plan, state: RunState): string {
  const node = new Map(plan.items.map((item, i) => [item.id, `n${i}`]));
  const lines = ['```mermaid', 'flowchart LR'];
  for (const item of plan.items) lines.push(`  ${node.get(item.id)}["${mermaidLabel(item.id)}"]`);
  for (const item of plan.items) {
    for (const dep of item.depends_on) if (node.has(dep)) lines.push(`  ${node.get(dep)} --> ${node.get(item.id)}`);
  }
  const used = new Set<ItemStatus>();
  for (const item of plan.items) used.add(state.items[item.id]?.status ?? 'pending');
  for (const s of used) lines.push(`  classDef ${s} ${COLOURS[s]}`);
  for (const s of used) {
    const ids = plan.items.filter((i) => (state.items[i.id]?.status ?? 'pending') === s).map((i) => node.get(i.id));
    lines.push(`  class ${ids.join(',')} ${s}`);
  }
  lines.push('```');
  return lines.join('\n');
}

/** The run check's summary: status line, item table, DAG, and any notes (push, audit). */
export function runSummary(plan: Plan, state: RunState, notes: readonly string[] = []): string {
  const counts = new Map<ItemStatus, number>();
  for (const i of Object.values(state.items)) counts.set(i.status, (counts.get(i.status) ?? 0) + 1);
  const head = `Run ${codeSpan(state.runId)} is **${state.status}**${state.reason ? ` — ${plainText(state.reason)}` : ''}: ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}.`;
  const table = ['| item | state | attempts | reason |', '| --- | --- | --- | --- |'];
  for (const item of plan.items) {
    const s = state.items[item.id];
    table.push(`| ${tableCellCode(item.id)} | ${s?.status ?? 'pending'} | ${s?.attempts ?? 0} | ${tableCellText(clip(s?.reason ?? ''))} |`);
  }
  const dag = plan.items.length <= 300 ? mermaidDag(plan, state) : `(DAG not drawn: ${plan.items.length} items)`;
  const text = [head, ...(notes.length ? ['', ...notes] : []), '', ...table, '', dag].join('\n');
  return fitCheckText(text);
}

/** A table cell's text is cut before it is escaped, so that no escape is cut in half. */
function clip(text: string, max = 300): string {
  if (text.length <= max) return text;
  const cut = /[\ud800-\udbff]/.test(text[max - 2] ?? '') ? max - 2 : max - 1; // never half a surrogate pair
  return `${text.slice(0, cut)}…`;
}

/** A Mermaid node label: anything but letters, digits, space and `._-` as an entity code, so no `"` ends it. */
function mermaidLabel(text: string): string {
  return text.replace(/[^A-Za-z0-9._ -]/gu, (c) => `#${c.codePointAt(0)};`);
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}
