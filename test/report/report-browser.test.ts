import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, tempDir } from '../support/repo.js';
import { scaled } from '../support/eventually.js';
import { HOSTILE, reportRun } from './run-fixture.js';

/**
 * The report as a person sees it: Debian's chromium, driven by playwright-core, opens the report of a run
 * with a failed, a retried and a skipped item. Without chromium the file is skipped with a warning, except
 * under CI, where that is a failure (.ci/run installs the package).
 */

const CHROMIUM = process.env.AGORA_CHROMIUM ?? '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present) {
  const why = `no chromium at ${CHROMIUM}`;
  if (process.env.CI) throw new Error(`${why}; CI must install Debian's chromium package (.ci/run does)`);
  console.warn(`skipping the report's browser test: ${why}; install it with \`apt-get install chromium\` or set AGORA_CHROMIUM`);
}

let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  if (!present) return;
  const run = await reportRun(scaled(120_000));
  const file = join(tempDir('agora-report-browser-'), 'run.html');
  const r = await agora(run.repo, ['orch', 'report', run.runId, '--out', file]);
  expect(r.code, r.stderr).toBe(0);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('dialog', (d) => {
    problems.push(`a dialog opened: ${d.message()}`);
    void d.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (req) => {
    if (!req.url().startsWith('file:')) problems.push(`a request left the page: ${req.url()}`);
  });
  await page.goto(pathToFileURL(file).href);
}, scaled(240_000));

afterAll(async () => {
  await browser?.close();
  cleanupTempDirs();
});

describe.skipIf(!present)('the report in chromium', () => {
  it('colours the DAG by state and marks the retried item', async () => {
    const nodes = await page.$$eval('svg.dag g.node', (gs) =>
      gs.map((g) => {
        // The test's tsconfig has no DOM lib: the page's own getComputedStyle, typed here.
        const style = (globalThis as unknown as { getComputedStyle(e: unknown): { fill: string; stroke: string; strokeWidth: string } }).getComputedStyle;
        const rect = style(g.querySelector('rect'));
        return { id: g.querySelector('title')!.textContent!.split(':')[0], fill: rect.fill, stroke: rect.stroke, width: rect.strokeWidth };
      }),
    );
    const by = new Map(nodes.map((n) => [n.id, n]));
    expect(by.get('build')?.fill).toBe('rgb(26, 127, 55)'); // green
    expect(by.get('combine')?.fill).toBe('rgb(26, 127, 55)');
    expect(by.get('broken')?.fill).toBe('rgb(207, 34, 46)'); // red
    expect(by.get('after-broken')?.fill).toBe('rgb(208, 215, 222)'); // grey
    expect(by.get('flaky')).toMatchObject({ fill: 'rgb(26, 127, 55)', stroke: 'rgb(188, 76, 0)', width: '3px' });
    await expect.poll(() => page.locator('svg.dag text', { hasText: 'flaky ↻2' }).isVisible()).toBe(true);
  });

  it("shows the failed item's reason, markup in it as text, and runs nothing from it", async () => {
    const reason = page.locator('#items details.item[data-status="failed"] .reason');
    expect(await reason.isVisible()).toBe(true);
    expect(await reason.innerText()).toBe(`exited with code 3: ${HOSTILE}`);
    expect(await page.locator('img').count()).toBe(0);
    const log = page.locator('#items details.item[data-status="failed"] pre.log');
    expect(await log.innerText()).toContain(HOSTILE);
  });

  it('shows a diff line once the item is opened', async () => {
    const build = page.locator('details.item', { has: page.locator('code.item-id', { hasText: /^build$/ }) });
    const line = build.locator('pre.diff span.add', { hasText: '+<b>bold</b>' });
    expect(await line.isVisible()).toBe(false);
    await build.locator('summary').click();
    expect(await line.isVisible()).toBe(true);
  });

  it('shows the audit verdict', async () => {
    expect(await page.locator('#verdict .verdict').innerText()).toBe('Audit intact: tamper-detecting (same-repository)');
  });

  it("filters items with the search box (the page's script runs under its CSP)", async () => {
    await page.locator('#search').fill('skipped');
    expect(await page.locator('#shown').innerText()).toBe('1 of 5 items match');
    expect(await page.locator('details.item:visible code.item-id').allInnerTexts()).toEqual(['after-broken']);
    await page.locator('#search').fill('');
    expect(await page.locator('details.item:visible').count()).toBe(5);
  });

  it('made no request, opened no dialog and logged no error (no CSP violation)', () => {
    expect(problems).toEqual([]);
  });
});
