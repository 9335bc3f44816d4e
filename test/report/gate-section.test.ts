import { describe, expect, it } from 'vitest';
import { renderReport } from '../../src/report/html.js';
import type { ReportData } from '../../src/report/model.js';

/**
 * The gate section the App's report carries (src/github/release-report.ts): the gate's conclusion and its
 * problems, which quote commit subjects, paths and reasons people and workers wrote, shown as text.
 */

const HOSTILE = '</script><img src=x onerror=alert(1)> "quoted" & more';

function data(gate?: ReportData['gate']): ReportData {
  return {
    runId: 'r-1',
    planId: 'r',
    queue: 'default',
    concurrency: 1,
    status: 'done',
    reason: null,
    base: 'a'.repeat(40),
    integrationHead: 'b'.repeat(40),
    acceptedAt: 0,
    finishedAt: 1000,
    head: 'c'.repeat(40),
    items: [],
    attempts: [],
    waits: [],
    verdict: { intact: true, claim: 'tamper-detecting', guarantee: 'same-repository', terminal: true, failures: [] },
    parameters: {},
    generatedAt: 1000,
    ...(gate ? { gate } : {}),
  };
}

describe('the report of a finish on GitHub', () => {
  it("shows the gate's conclusion and each problem as text", () => {
    const page = renderReport(
      data({ check: 'agora / audit', sha: 'd'.repeat(40), conclusion: 'failure', problems: [`commit 1234 ${HOSTILE} is not an audited patch`] }),
    );
    expect(page).toContain('<span id="gate-conclusion" class="verdict broken">failure</span>, 1 problem:');
    expect(page).toContain('<li>commit 1234 &lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot; &amp; more is not an audited patch</li>');
    expect(page).not.toContain('<img src=x');
  });

  it('says a green gate is green, and the CLI report (no gate) keeps its own note', () => {
    expect(renderReport(data({ check: 'agora / audit', sha: 'd'.repeat(40), conclusion: 'success', problems: [] }))).toContain(
      '<span id="gate-conclusion" class="verdict intact">success</span> (the bundle as published verifies',
    );
    const cli = renderReport(data());
    expect(cli).not.toContain('gate-conclusion');
    expect(cli).toContain('The signed bundle is made by <code>agora orch audit --sign</code>.');
  });
});
