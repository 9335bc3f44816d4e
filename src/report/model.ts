import type { AuditReport } from '../audit/bundle.js';
import type { ItemStatus, RunStatus } from '../engine/types.js';
import type { Attempt, LockWait } from './timeline.js';

/**
 * Everything the report page shows, read from the repository once (collect.ts) and rendered by a pure
 * function (html.ts). Every string in it came from a plan, a worker or a person: untrusted text.
 */

export interface ReportText {
  /** The text shown (already cut to its cap). */
  text: string;
  /** Lines the whole text had, and how many are shown. */
  totalLines: number;
  shownLines: number;
}

export interface ReportLog extends ReportText {
  attempt: number;
}

export interface ReportDiff extends ReportText {
  commit: string;
}

export interface ReportItem {
  id: string;
  status: ItemStatus;
  reason: string | null;
  attempts: number;
  dependsOn: string[];
  locks: string[];
  startedAt: number | null;
  finishedAt: number | null;
  resultRef: string | null;
  /** The tail of each attempt's kept log, oldest attempt first. */
  logs: ReportLog[];
  diff: ReportDiff | null;
}

export interface ReportData {
  runId: string;
  planId: string;
  queue: string;
  concurrency: number;
  status: RunStatus;
  reason: string | null;
  base: string;
  integrationHead: string;
  acceptedAt: number;
  finishedAt: number | null;
  /** The state commit the report was made from. */
  head: string;
  items: ReportItem[];
  attempts: Attempt[];
  waits: LockWait[];
  verdict: AuditReport;
  /**
   * The merge gate's verdict when the report is written by the App at a run's finish (absent from
   * `agora orch report`): its conclusion and problems, as the gate `agora / audit` states them on `sha`.
   */
  gate?: ReportGate;
  /** The run's parameters as recorded in its state (`--data`; a `--secret-data` value is `***`), empty when it has none. */
  parameters: Record<string, unknown>;
  /** When the report was made (epoch ms): the end of the timeline for a run still going. */
  generatedAt: number;
}

export interface ReportGate {
  /** The check run's name (`agora / audit`). */
  check: string;
  sha: string;
  conclusion: 'success' | 'failure';
  problems: string[];
}

/** Caps: enough to see what happened; the whole text is in the repository (`agora orch logs`, `git show`). */
export const LOG_TAIL_LINES = 40;
export const LOG_TAIL_BYTES = 8 * 1024;
export const DIFF_LINES = 300;
export const DIFF_BYTES = 48 * 1024;

/** The last `lines` lines of `text`, at most `bytes` UTF-16 units of them. */
export function tailOf(text: string, lines: number, bytes: number): ReportText {
  const all = splitLines(text);
  let shown = all.slice(-lines);
  while (shown.length > 1 && shown.join('\n').length > bytes) shown = shown.slice(1);
  const joined = shown.join('\n');
  return { text: joined.length > bytes ? joined.slice(-bytes) : joined, totalLines: all.length, shownLines: shown.length };
}

/** The first `lines` lines of `text`, at most `bytes` UTF-16 units of them. */
export function headOf(text: string, lines: number, bytes: number): ReportText {
  const all = splitLines(text);
  let shown = all.slice(0, lines);
  while (shown.length > 1 && shown.join('\n').length > bytes) shown = shown.slice(0, -1);
  const joined = shown.join('\n');
  return { text: joined.length > bytes ? joined.slice(0, bytes) : joined, totalLines: all.length, shownLines: shown.length };
}

function splitLines(text: string): string[] {
  const trimmed = text.replace(/\n$/, '');
  return trimmed === '' ? [] : trimmed.split('\n');
}
