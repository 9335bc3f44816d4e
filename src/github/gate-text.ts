import type { BranchCheck } from '../runs/branch-check.js';
import { codeSpan, plainText } from './untrusted-markdown.js';

/**
 * The texts of the merge gate (`agora / audit`) that quote what people and workers wrote: problems
 * (naming commit subjects, paths, reasons), the commits people pushed under the patches, and the run
 * check's note when the audit could not be produced (quoting an error from storage and git). Pure. Every
 * such string goes through untrusted-markdown.ts, so a subject like `` `](https://x) @team <b> `` renders
 * as exactly that text.
 */

/** A markdown list of problems, each shown as plain text. */
export function problemList(problems: readonly string[]): string[] {
  return problems.map((p) => `- ${plainText(p)}`);
}

/** The gate names the commits people pushed under the replayed patches: they are not audited. */
export function peopleNote(people: BranchCheck['people']): string[] {
  if (people.length === 0) return [];
  return [
    '',
    `Under the patches (replayed onto them) sit ${people.length} commit${people.length === 1 ? '' : 's'} people pushed while the run worked. They touch no patched path; they are **not audited**: review them as usual, or press *Re-run plan* to run the plan on top of them.`,
    ...people.map((c) => `- ${c.sha.slice(0, 12)} ${plainText(c.subject)}`),
  ];
}

/** The summary of a gate re-evaluated after a later push (`regate`). */
export function regateSummary(runId: string, problems: readonly string[]): string {
  return [
    `The branch moved past the audited patches of run ${codeSpan(runId)}. Commits after the plan commit must all be audited patches:`,
    '',
    ...problemList(problems),
    '',
    'Press *Re-run plan* to run the plan again on this commit, or push a new plan commit.',
  ].join('\n');
}

/**
 * The run check's line when the audit of a run could not be produced: the error's message is text from
 * storage and git (paths, object ids, what a file held), shown as plain text.
 */
export function auditNotProducedNote(gateSha: string, runId: string, why: string): string {
  return `Audit: \`agora / audit\` is **failure** on ${gateSha.slice(0, 12)}: the audit bundle of run ${codeSpan(runId)} could not be produced: ${plainText(why)}.`;
}
