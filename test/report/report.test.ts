import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, makeRepo, tempDir } from '../support/repo.js';
import { scaled } from '../support/eventually.js';
import { HOSTILE, LATER_SECRET, reportRun, type ReportRun } from './run-fixture.js';

/** `agora orch report` on a real run (a failed, a retried and a skipped item, a lock wait): the page's text. */

let run: ReportRun;
let page: string;
let out: string;

beforeAll(async () => {
  run = await reportRun(scaled(120_000));
  out = join(tempDir('agora-report-'), 'not', 'yet', 'run.html');
  const r = await agora(run.repo, ['orch', 'report', run.runId, '--out', out], { REPORT_SECRET: LATER_SECRET });
  expect(r.stderr).toMatch(/wrote .*run\.html \(\d+ KiB\): run report-1 failed, 5 items, audit intact/);
  expect(r.code).toBe(0);
  expect(r.stdout.trim()).toBe(out);
  page = readFileSync(out, 'utf8'); // the missing directories were created
}, scaled(240_000));
afterAll(cleanupTempDirs);

function inline(tag: 'style' | 'script'): string[] {
  return [...page.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]!);
}

describe('agora orch report', () => {
  it('is one file that loads nothing, under a CSP that allows only its own hashed style and script', () => {
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(page)?.[1];
    expect(csp).toContain("default-src 'none'");
    const [style, script] = [inline('style'), inline('script')];
    expect(style).toHaveLength(1);
    expect(script).toHaveLength(1);
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    expect(csp).toContain(`style-src ${hash(style[0]!)}`);
    expect(csp).toContain(`script-src ${hash(script[0]!)}`);
    expect(csp).not.toMatch(/unsafe|https?:|\*/);
    // No reference leaves the page: links are fragments, nothing has a src.
    expect(page).not.toMatch(/<[a-z][^>]*\ssrc=/i);
    for (const m of page.matchAll(/\shref="([^"]*)"/g)) expect(m[1]).toMatch(/^#/);
    expect(page).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg")/);
  });

  it('shows a log and a reason holding </script><img onerror> as text', () => {
    expect(page).not.toContain(HOSTILE);
    expect(page).not.toMatch(/<img/i);
    const escaped = '&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;';
    const log = /<h3>Log of attempt 1<\/h3><pre class="log">([^<]*)<\/pre>/.exec(page.slice(page.indexOf('id="i-3"')))?.[1];
    expect(log).toContain(escaped); // broken's log
    expect(page).toContain(`exited with code 3: ${escaped}`); // its reason
    expect(page.match(/<\/script>/g)).toHaveLength(1); // only the page's own script ends
  });

  it('colours each item by state, marks the retried one, and links nodes to items', () => {
    const node = (id: string) => new RegExp(`<g class="node ([^"]+)"[^>]*><title>${id}: `).exec(page)?.[1];
    expect(node('build')).toBe('st-done');
    expect(node('flaky')).toBe('st-done retried');
    expect(node('broken')).toBe('st-failed');
    expect(node('after-broken')).toBe('st-skipped');
    expect(page).toContain('flaky ↻2');
    expect(page).toContain('<p id="counts">5 items: 1 failed, 1 skipped, 3 done; 1 retried</p>');
  });

  it('shows the verdict, the empty parameters, each patch capped with a note, and log tails', () => {
    expect(page).toContain('<p class="verdict intact">Audit intact: tamper-detecting (same-repository)</p>');
    expect(page).toContain('<p id="no-parameters">none</p>');
    expect(page).toContain('<span class="add">+&lt;b&gt;bold&lt;/b&gt;</span>');
    expect(page).toMatch(/cut: the first 300 of 40\d lines — the whole patch: <code>git show [0-9a-f]{40}<\/code>/);
    expect(page).toMatch(/cut: the last 40 of 102 lines — the whole log: <code>agora orch logs report-1 build --attempt 1<\/code>/);
    expect(page).toContain('<h3>Log of attempt 1</h3><pre class="log">first try fails</pre>');
    expect(page).toContain('<h3>Log of attempt 2</h3><pre class="log">second try passes</pre>');
  });

  it('redacts a secret the config declares even when it was set only after the run', () => {
    expect(page).not.toContain(LATER_SECRET);
    expect(page).toMatch(/\n\*\*\*\nbuilt a\.txt<\/pre>/);
  });

  it('shows who waited for which lock, and how long', () => {
    const waits = /<table id="waits">([\s\S]*?)<\/table>/.exec(page)?.[1] ?? '';
    const rows = [
      ...waits.matchAll(
        /<tr><td><code>(\S+)<\/code> #1<\/td><td><code>(\S+)<\/code><\/td><td><code>(\S+)<\/code> \(<code>(\S+)<\/code>\)<\/td><td>([^<]+)<\/td><\/tr>/g,
      ),
    ];
    const pairs = new Set(rows.map((m) => `${m[1]} ${m[2]} ${m[3]} ${m[4]}`));
    expect(pairs).toEqual(new Set(['combine src build src/a.txt', 'combine src flaky src/b.txt']));
    for (const m of rows) expect(m[5]).toMatch(/^\d+(\.\d+)? (ms|s)$/);
  });
});

describe('agora orch report: bad input', () => {
  it('an unknown run id: exit 1, the nearest ids suggested', async () => {
    const r = await agora(run.repo, ['orch', 'report', 'reprot-1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('agora: no run reprot-1 in this repository (did you mean "report-1"?)');
    expect(r.stderr).toContain('hint: the nearest of its 1 runs: report-1');
  });

  it('a repository with no runs: exit 1, saying how to start one', async () => {
    const r = await agora(makeRepo({ 'a.txt': 'a' }), ['orch', 'report', 'nightly-1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('agora: no run nightly-1 in this repository');
    expect(r.stderr).toContain('hint: submit one with `agora orch submit plan.json`');
  });

  it('--out naming a directory: exit 1, report-out, nothing written', async () => {
    const dir = join(tempDir('agora-report-out-'), 'here');
    mkdirSync(dir);
    const r = await agora(run.repo, ['orch', 'report', run.runId, '--out', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`agora: --out ${dir} is a directory`);
    expect(r.stderr).toMatch(/hint: pass the path of a file to write/);
  });

  it('--out naming a pipe: exit 1, report-out, the pipe left a pipe', async () => {
    const fifo = join(tempDir('agora-report-fifo-'), 'fifo');
    execFileSync('mkfifo', [fifo]);
    const r = await agora(run.repo, ['orch', 'report', run.runId, '--out', fifo]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`agora: --out ${fifo} is not a regular file (a device, a pipe or a socket)`);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
  });
});

describe('agora orch audit --out: bad paths', () => {
  it('a path under a file, a directory: exit 1, audit-out, no stack trace; missing directories are made', async () => {
    const file = join(tempDir('agora-audit-file-'), 'a.txt');
    writeFileSync(file, 'a file\n');
    const underFile = await agora(run.repo, ['orch', 'audit', run.runId, '--out', `${file}/bundle.json`]);
    expect(underFile.code).toBe(1);
    expect(underFile.stderr).toContain(`agora: --out ${file}/bundle.json lies under a file`);
    expect(underFile.stderr).toMatch(/hint: pass the path of a file to write, e\.g\. --out audits\/run\.audit\.json/);
    expect(underFile.stderr).not.toContain('internal error');
    const dir = tempDir('agora-audit-out-');
    const isDir = await agora(run.repo, ['orch', 'audit', run.runId, '--out', dir]);
    expect(isDir.code).toBe(1);
    expect(isDir.stderr).toContain(`agora: --out ${dir} is a directory`);
    const deep = join(dir, 'not', 'yet', 'bundle.json');
    expect((await agora(run.repo, ['orch', 'audit', run.runId, '--out', deep])).code).toBe(0);
    expect(JSON.parse(readFileSync(deep, 'utf8')).format).toMatch(/^agora\.audit\//);
  });
});
