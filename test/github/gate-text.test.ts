import { describe, expect, it } from 'vitest';
import { auditNotProducedNote, peopleNote, problemList, regateSummary } from '../../src/github/gate-text.js';
import { landNotes } from '../../src/github/land-patches.js';
import { oneLine } from '../../src/github/untrusted-markdown.js';
import { activeConstructs, renderedText, splitCodeSpans } from './markdown-reader.js';

/**
 * The merge gate and the landing notes quote commit subjects, branch names and paths that anyone who can
 * push wrote. Each must render as exactly that text: no link, image, mention, HTML, table cell or code
 * span of its own.
 */

const HOSTILE = 'fix `x` ](https://evil.example/a) ![p](https://evil.example/p.png) @org/team <img src=x onerror=y> | #12 **now**';
const BRANCH = 'feat`](https://evil.example)@team<b>|x';
const PATH = 'docs/``a`](x)@b<i>|.md';
const SHA = 'a'.repeat(40);

/** A line of free text (a list item's text) renders as `text`, with nothing active. */
function expectInert(md: string, text: string): void {
  expect(activeConstructs(md)).toEqual([]);
  expect(renderedText(md)).toBe(text);
}

/** Every code span of `line` shows one of `texts` verbatim, and nothing outside the spans is active. */
function expectSpansOnly(line: string, texts: readonly string[]): string[] {
  const { spans, outside } = splitCodeSpans(line);
  for (const s of spans) expect(texts.map(oneLine)).toContain(s);
  expect(activeConstructs(outside.replace(/^- /, ''))).toEqual([]);
  return spans;
}

describe('gate texts with hostile commit subjects and paths', () => {
  it('shows each problem (quoting a subject and a path) as plain text', () => {
    const problem = `commit ${SHA.slice(0, 12)} ("${HOSTILE}") changes "${PATH}", which a patch of run r-1 changes too`;
    const [line] = problemList([problem]);
    expect(line!.startsWith('- ')).toBe(true);
    expectInert(line!.slice(2), problem);
  });

  it('shows the subjects of commits people pushed as plain text', () => {
    const lines = peopleNote([{ sha: SHA, subject: HOSTILE }]);
    const item = lines.at(-1)!;
    expect(item.startsWith(`- ${SHA.slice(0, 12)} `)).toBe(true);
    expectInert(item.slice(`- ${SHA.slice(0, 12)} `.length), HOSTILE);
  });

  it('keeps a re-evaluated gate inert too', () => {
    const summary = regateSummary('r-1', [`commit ${SHA.slice(0, 12)} ("${HOSTILE}") is not an audited patch of run r-1`]);
    const item = summary.split('\n').find((l) => l.startsWith('- '))!;
    expectInert(item.slice(2), `commit ${SHA.slice(0, 12)} ("${HOSTILE}") is not an audited patch of run r-1`);
  });
});

describe('the run check’s note on an audit that could not be produced', () => {
  it('shows the error’s message (text from storage and git, over lines) as plain text, after the run id as code', () => {
    const why = `cannot read ${PATH}: ${HOSTILE}\n# not a heading\n> nor a quote`;
    const note = auditNotProducedNote(SHA, 'r-1', why);
    const lead = `Audit: \`agora / audit\` is **failure** on ${SHA.slice(0, 12)}: the audit bundle of run \`r-1\` could not be produced: `;
    expect(note.startsWith(lead)).toBe(true);
    expectInert(note.slice(lead.length), `${why}.`);
  });
});

describe('landing notes with a hostile branch name, paths and reasons', () => {
  const note = landNotes(BRANCH, 2, 'refs/agora/integration/r-1');

  it('shows the branch as code in every note', () => {
    for (const text of [note.deleted(), note.keptMoving(), note.pushed(SHA, null), note.pushed(SHA, SHA)]) {
      expect(expectSpansOnly(text, [BRANCH, 'refs/agora/integration/r-1'])).toContain(BRANCH);
    }
  });

  it('agrees in number with the count of patch commits', () => {
    const one = landNotes('main', 1, 'refs/agora/integration/r-1');
    expect(one.deleted()).toBe('`main` was deleted during the run, so the 1 patch commit was not pushed; it stays at `refs/agora/integration/r-1`.');
    expect(note.deleted()).toContain('so the 2 patch commits were not pushed; they stay at');
  });

  it('shows a rewritten branch’s reason as plain text', () => {
    const text = note.rewritten(HOSTILE);
    const { spans, outside } = splitCodeSpans(text);
    expect(spans).toEqual([BRANCH, 'refs/agora/integration/r-1']);
    expect(activeConstructs(outside)).toEqual([]);
    expect(renderedText(outside)).toContain(HOSTILE);
  });

  it('shows each conflicting path as code', () => {
    const lines = note
      .conflict([
        { path: PATH, item: 'item-a', patchCommit: SHA, changedBy: [SHA] },
        { path: HOSTILE, item: null, patchCommit: SHA, changedBy: [] },
      ])
      .split('\n');
    expect(expectSpansOnly(lines[0]!, [BRANCH, 'refs/agora/integration/r-1'])).toContain(BRANCH);
    expect(expectSpansOnly(lines[1]!, [PATH])).toEqual([PATH]);
    expect(lines[1]).toContain('(item item-a)');
    expect(expectSpansOnly(lines[2]!, [HOSTILE])).toEqual([HOSTILE]);
  });
});
