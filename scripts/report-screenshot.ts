/**
 * Makes docs/images/report.png, the screenshot docs/cli.md shows: runs the report test's fixture (a
 * failed, a retried, a skipped item and a lock wait) in a temp repository, writes its report, and has
 * Debian's chromium (through playwright-core) photograph the top of the page.
 *
 *   npx tsx scripts/report-screenshot.ts [--chromium /usr/bin/chromium] [--out docs/images/report.png]
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { reportRun } from '../test/report/run-fixture.js';
import { agora, cleanupTempDirs, ROOT, tempDir } from '../test/support/repo.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const executablePath = flag('--chromium', '/usr/bin/chromium');
const out = resolve(flag('--out', join(ROOT, 'docs/images/report.png')));
try {
  const run = await reportRun(300_000);
  const page = join(tempDir('agora-report-shot-'), 'run.html');
  const r = await agora(run.repo, ['orch', 'report', run.runId, '--out', page], {}, 120_000);
  if (r.code !== 0) throw new Error(`agora orch report failed: ${r.stderr}`);
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  try {
    const tab = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
    await tab.goto(pathToFileURL(page).href);
    mkdirSync(dirname(out), { recursive: true });
    await tab.screenshot({ path: out, fullPage: false });
  } finally {
    await browser.close();
  }
  console.log(`wrote ${out}`);
} finally {
  cleanupTempDirs();
}
