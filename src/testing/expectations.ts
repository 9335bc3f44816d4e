/**
 * Judges a fixture's run against its expectations: one mismatch per expectation not met, each saying
 * what was expected and what happened, with a line diff where a text was to be equal. Pure.
 */
import type { CallExpectation, Expectations, TextExpectation } from './fixture-schema.js';
import type { ActualRun } from './run-fixture.js';
import { lineDiff } from './text-diff.js';

export interface Mismatch {
  /** `run`, `item build: state`, `file out/report.md`, `audit`. */
  what: string;
  /** Lines explaining it: `expected …`, `actual …`, or a diff. */
  lines: string[];
}

export function judge(expect: Expectations, actual: ActualRun): Mismatch[] {
  const out: Mismatch[] = [];
  if (!actual.audit.intact) out.push({ what: 'audit', lines: ['expected: an intact audit of the run', ...actual.audit.failures.map((f) => `actual:   ${f}`)] });
  if (expect.run !== undefined && expect.run !== actual.status) {
    out.push({ what: 'run', lines: [`expected: ${expect.run}`, `actual:   ${actual.status}`, ...unfinishedItems(actual)] });
  }
  for (const [id, want] of Object.entries(expect.items ?? {})) {
    const got = actual.items[id];
    if (got === undefined) continue; // the loader checked that every id is an item of the plan
    if (want.state !== undefined && want.state !== got.state) {
      out.push({ what: `item ${id}: state`, lines: [`expected: ${want.state}`, `actual:   ${got.state}${got.reason ? ` (${got.reason})` : ''}`] });
    }
    if (want.attempts !== undefined && want.attempts !== got.attempts) {
      out.push({ what: `item ${id}: attempts`, lines: [`expected: ${want.attempts}`, `actual:   ${got.attempts}`] });
    }
    if (want.output) out.push(...text(`item ${id}: output`, want.output, got.output, 'no output: the item never ran'));
    if (want.reason) out.push(...text(`item ${id}: reason`, want.reason, got.reason ?? null, 'no reason: the item has none'));
    if (want.calls) out.push(...calls(`item ${id}: calls`, want.calls, got.calls));
  }
  for (const [path, want] of Object.entries(expect.files ?? {})) {
    const got = actual.files[path] ?? null;
    const what = `file ${path}`;
    if (want.exists !== undefined && want.exists !== (got !== null)) {
      out.push({
        what,
        lines: [`expected: ${want.exists ? 'present' : 'absent'} in the integration head`, `actual:   ${got === null ? 'absent' : 'present'}`],
      });
      continue;
    }
    out.push(...text(what, want, got, 'absent from the integration head'));
  }
  return out;
}

/** The calls made, against those expected: first their number and order, then each one's outcome and answer. */
function calls(what: string, want: CallExpectation[], got: ActualRun['items'][string]['calls']): Mismatch[] {
  const line = (c: { subagent: string; outcome?: string }) => `${c.subagent}${c.outcome ? ` (${c.outcome})` : ''}`;
  if (want.length !== got.length || want.some((w, k) => w.subagent !== got[k]!.subagent)) {
    return [
      {
        what,
        lines: [
          `expected: ${want.length === 0 ? 'no calls' : want.map(line).join(', ')}`,
          `actual:   ${got.length === 0 ? 'no calls' : got.map(line).join(', ')}`,
        ],
      },
    ];
  }
  const out: Mismatch[] = [];
  want.forEach((w, k) => {
    const g = got[k]!;
    const at = `${what} [${k}] ${w.subagent}`;
    if (w.outcome !== undefined && w.outcome !== g.outcome) out.push({ what: at, lines: [`expected: ${w.outcome}`, `actual:   ${g.outcome}: ${g.answer}`] });
    if (w.answer) out.push(...text(`${at}: answer`, w.answer, g.answer, 'no answer'));
  });
  return out;
}

/** One line per item that is not done, with its reason. */
function unfinishedItems(actual: ActualRun): string[] {
  return Object.entries(actual.items)
    .filter(([, i]) => i.state !== 'done')
    .map(([id, i]) => `  ${id} ${i.state}${i.reason ? `: ${i.reason}` : ''}`);
}

function text(what: string, want: Pick<TextExpectation, 'equals' | 'contains'>, got: string | null, missing: string): Mismatch[] {
  const out: Mismatch[] = [];
  if (got === null) {
    if (want.equals !== undefined || want.contains !== undefined) out.push({ what, lines: [`actual: ${missing}`] });
    return out;
  }
  if (want.equals !== undefined && want.equals !== got) {
    out.push({ what: `${what} (- expected, + actual)`, lines: lineDiff(want.equals, got) });
  }
  const needles = want.contains === undefined ? [] : Array.isArray(want.contains) ? want.contains : [want.contains];
  for (const needle of needles) {
    if (!got.includes(needle)) out.push({ what, lines: [`expected to contain: ${JSON.stringify(needle)}`, ...shown(got)] });
  }
  return out;
}

/** The actual text, indented, its last 20 lines at most. */
function shown(got: string): string[] {
  const lines = got.replace(/\n$/, '').split('\n');
  const tail = lines.slice(-20);
  return [`actual${lines.length > tail.length ? ` (last ${tail.length} of ${lines.length} lines)` : ''}:`, ...tail.map((l) => `  | ${l}`)];
}
