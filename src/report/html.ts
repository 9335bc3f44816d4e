import type { ItemStatus } from '../engine/types.js';
import { clip, duration, html, isoTime } from './escape.js';
import type { ReportData, ReportItem, ReportText } from './model.js';
import { CONTENT_SECURITY_POLICY, SCRIPT, STYLE } from './page-assets.js';
import { dagSvg, searchKey } from './svg-dag.js';
import { attemptsSvg, lockLanesSvg, timeScale } from './svg-timeline.js';

/**
 * The report page: one self-contained HTML document (pure: the same data gives the same bytes). It loads
 * nothing; its Content-Security-Policy allows only its own hashed style and script. It reads without the
 * script too: sections are `<details>`, the DAG and the timeline are SVG laid out here.
 */

const STATUS_ORDER: readonly ItemStatus[] = ['failed', 'cancelled', 'skipped', 'running', 'ready', 'pending', 'done'];
/** Failed items open by default when there are at most this many (else all start collapsed). */
const OPEN_FAILED_MAX = 20;
/** Larger DAGs and timelines start collapsed. */
const OPEN_SECTION_MAX = 300;
const WAIT_ROWS_MAX = 200;

export function renderReport(data: ReportData): string {
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}">`,
    '<meta name="referrer" content="no-referrer">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>agora run ${html(data.runId)}: ${data.status}</title>`,
    `<style>${STYLE}</style>`,
    '</head><body>',
    header(data),
    verdict(data),
    parameters(data),
    dag(data),
    timeline(data),
    items(data),
    `<script>${SCRIPT}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}

function header(d: ReportData): string {
  const counts = STATUS_ORDER.map((s) => [s, d.items.filter((i) => i.status === s).length] as const).filter(([, n]) => n > 0);
  const retried = d.items.filter((i) => i.attempts > 1).length;
  const facts: Array<[string, string]> = [
    ['plan', `<code>${html(d.planId)}</code>`],
    ['queue', `<code>${html(d.queue)}</code>, ${d.concurrency} at a time`],
    ['base', `<code>${d.base}</code>`],
    ['integration head', `<code>${d.integrationHead}</code>`],
    ['accepted', isoTime(d.acceptedAt)],
    ['finished', d.finishedAt === null ? 'not yet' : `${isoTime(d.finishedAt)} (${duration(d.finishedAt - d.acceptedAt)})`],
    ['state commit', `<code>${d.head}</code>`],
    ['report made', isoTime(d.generatedAt)],
  ];
  return [
    `<header><h1>Run <code>${html(d.runId)}</code> <span class="badge st-${d.status === 'done' ? 'done' : d.status === 'running' ? 'running' : d.status === 'cancelled' ? 'cancelled' : 'failed'}" id="run-status">${d.status}</span></h1>`,
    d.reason ? `<p class="reason">${html(d.reason)}</p>` : '',
    `<p id="counts">${d.items.length} items: ${counts.map(([s, n]) => `${n} ${s}`).join(', ')}${retried ? `; ${retried} retried` : ''}</p>`,
    `<dl class="facts">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl></header>`,
  ].join('\n');
}

function verdict(d: ReportData): string {
  const v = d.verdict;
  const problems = v.failures.filter((f) => f.code !== 'not-terminal');
  const line = v.intact ? `Audit intact: ${v.claim} (${v.guarantee})` : `Audit NOT intact: ${problems.length} failure${problems.length === 1 ? '' : 's'}`;
  const rows = v.failures.map((f) => {
    const where = [f.item !== undefined ? `item ${html(f.item)}` : '', f.entry !== undefined ? `entry ${f.entry}` : ''].filter(Boolean).join(', ');
    return `<li><code class="failure-code">${f.code}</code>${f.code === 'not-terminal' ? ' (note)' : ''}${where ? ` (${where})` : ''}: ${html(f.message)}</li>`;
  });
  return [
    '<section id="verdict"><h2>Audit verdict</h2>',
    `<p class="verdict ${v.intact ? 'intact' : 'broken'}">${line}</p>`,
    rows.length ? `<ul class="failures">${rows.join('')}</ul>` : '',
    d.gate
      ? gate(d.gate)
      : '<p class="note">The entries of the run\'s audit log, checked as <code>agora verify --repo</code> checks them (chain, root, anchor, patches, scopes, order, locks, integration). The signed bundle is made by <code>agora orch audit --sign</code>.</p>',
    '</section>',
  ].join('\n');
}

/** The merge gate's verdict, when the App wrote the report beside the bundle it checked. */
function gate(g: NonNullable<ReportData['gate']>): string {
  const head = `The merge gate <code>${html(g.check)}</code> on <code>${html(g.sha)}</code>: <span id="gate-conclusion" class="verdict ${g.conclusion === 'success' ? 'intact' : 'broken'}">${g.conclusion}</span>`;
  return [
    `<p id="gate">${head}${g.problems.length ? `, ${g.problems.length} problem${g.problems.length === 1 ? '' : 's'}:` : ' (the bundle as published verifies, and every commit after the plan commit is an audited patch).'}</p>`,
    g.problems.length ? `<ul class="failures" id="gate-problems">${g.problems.map((p) => `<li>${html(p)}</li>`).join('')}</ul>` : '',
    '<p class="note">The verdict above is the gate\'s check of the audit bundle published beside this report (<code>agora verify</code> on it gives the same).</p>',
  ].join('\n');
}

function parameters(d: ReportData): string {
  const entries = Object.entries(d.parameters);
  const body =
    entries.length === 0
      ? '<p id="no-parameters">none</p>'
      : `<table>${entries.map(([k, v]) => `<tr><th><code>${html(k)}</code></th><td><code>${html(JSON.stringify(v))}</code></td></tr>`).join('')}</table>`;
  return `<section id="parameters"><h2>Parameters</h2>\n${body}</section>`;
}

function legend(): string {
  return `<p class="legend">${['done', 'failed', 'skipped', 'cancelled', 'running', 'ready', 'pending'].map((s) => `<span><i class="st-${s}"></i>${s}</span>`).join('')}<span>thick orange border, ↻n: ran n times</span></p>`;
}

function dag(d: ReportData): string {
  return [
    `<section id="dag"><details${d.items.length <= OPEN_SECTION_MAX ? ' open' : ''}><summary><h2>DAG</h2> <span class="note">dependencies left to right; a node links to its item</span></summary>`,
    legend(),
    `<div class="scroll">${dagSvg(d.items)}</div></details></section>`,
  ].join('\n');
}

function timeline(d: ReportData): string {
  if (d.attempts.length === 0) return '<section id="timeline"><h2>Timeline</h2><p>No item has started.</p></section>';
  const s = timeScale(d);
  const lanes = lockLanesSvg(d, s);
  const waits = [...d.waits].sort((a, b) => b.to - b.from - (a.to - a.from));
  const rows = waits
    .slice(0, WAIT_ROWS_MAX)
    .map(
      (w) =>
        `<tr><td><code>${html(w.itemId)}</code> #${w.attempt}</td><td><code>${html(w.lock)}</code></td><td><code>${html(w.holder)}</code> (<code>${html(w.heldLock)}</code>)</td><td>${duration(w.to - w.from)}</td></tr>`,
    );
  return [
    `<section id="timeline"><details${d.attempts.length <= OPEN_SECTION_MAX ? ' open' : ''}><summary><h2>Timeline</h2> <span class="note">${d.attempts.length} attempts; grey: ready and waiting, then the attempt coloured by how it ended (orange: to be run again)</span></summary>`,
    `<div class="scroll">${attemptsSvg(d, s)}</div>`,
    '<h3>Lock lanes</h3>',
    lanes
      ? `<p class="note">Per contended lock: blue, who held it; amber, who waited for it meanwhile (derived from the audit log: the time an item was ready while another item's attempt held an overlapping lock).</p><div class="scroll">${lanes}</div>`
      : '<p id="no-waits">No item waited for a lock.</p>',
    rows.length
      ? `<table id="waits"><tr><th>waited</th><th>for lock</th><th>held by</th><th>how long</th></tr>${rows.join('')}</table>${waits.length > WAIT_ROWS_MAX ? `<p class="note">the ${WAIT_ROWS_MAX} longest of ${waits.length} waits</p>` : ''}`
      : '',
    '</details></section>',
  ].join('\n');
}

function items(d: ReportData): string {
  const failed = d.items.filter((i) => i.status === 'failed').length;
  const openFailed = failed <= OPEN_FAILED_MAX;
  return [
    '<section id="items"><h2>Items</h2>',
    '<div class="tools"><input id="search" type="search" placeholder="filter by item id or status (failed, skipped, retried…)" aria-label="filter items"><button id="expand" type="button">expand all</button><button id="collapse" type="button">collapse all</button><span id="shown" class="note"></span></div>',
    d.items.map((item, i) => itemBlock(d.runId, item, i, openFailed && item.status === 'failed')).join('\n'),
    '</section>',
  ].join('\n');
}

function itemBlock(runId: string, item: ReportItem, i: number, open: boolean): string {
  const took = item.startedAt !== null && item.finishedAt !== null ? `, ${duration(item.finishedAt - item.startedAt)}` : '';
  const parts = [
    `<details class="item" id="i-${i}" data-status="${item.status}" data-search="${html(searchKey(item))}"${open ? ' open' : ''}>`,
    `<summary><span class="dot st-${item.status}"></span><code class="item-id">${html(item.id)}</code> — <span class="item-status">${item.status}</span>, ${item.attempts} attempt${item.attempts === 1 ? '' : 's'}${took}</summary>`,
  ];
  if (item.reason) parts.push(`<p class="reason">${html(item.reason)}</p>`);
  parts.push(
    `<dl class="facts"><dt>depends on</dt><dd>${item.dependsOn.length ? item.dependsOn.map((x) => `<code>${html(x)}</code>`).join(', ') : 'nothing'}</dd>` +
      `<dt>locks</dt><dd>${item.locks.length ? item.locks.map((x) => `<code>${html(x)}</code>`).join(', ') : 'none'}</dd>` +
      `<dt>started</dt><dd>${isoTime(item.startedAt)}</dd><dt>finished</dt><dd>${isoTime(item.finishedAt)}</dd>` +
      (item.resultRef ? `<dt>result</dt><dd><code>${html(item.resultRef)}</code></dd>` : '') +
      '</dl>',
  );
  if (item.diff) {
    parts.push(`<h3>Patch <code>${item.diff.commit.slice(0, 12)}</code></h3>`);
    parts.push(`<pre class="diff">${diffLines(item.diff.text)}</pre>`);
    if (item.diff.shownLines < item.diff.totalLines || item.diff.text.length === 0)
      parts.push(`<p class="note">${capNote(item.diff, 'first')} — the whole patch: <code>git show ${item.diff.commit}</code></p>`);
  }
  for (const log of item.logs) {
    parts.push(`<h3>Log of attempt ${log.attempt}</h3><pre class="log">${html(log.text)}</pre>`);
    if (log.shownLines < log.totalLines)
      parts.push(
        `<p class="note">${capNote(log, 'last')} — the whole log: <code>agora orch logs ${html(shellWord(runId))} ${html(shellWord(item.id))} --attempt ${log.attempt}</code></p>`,
      );
  }
  if (item.logs.length === 0 && item.attempts > 0) parts.push('<p class="note">no log kept</p>');
  parts.push('</details>');
  return parts.join('\n');
}

function capNote(t: ReportText, which: 'first' | 'last'): string {
  return t.totalLines === 0 ? 'empty' : `cut: the ${which} ${t.shownLines} of ${t.totalLines} lines`;
}

function diffLines(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const cls =
        line.startsWith('+++') || line.startsWith('---') || line.startsWith('diff ') || line.startsWith('index ')
          ? 'meta'
          : line.startsWith('+')
            ? 'add'
            : line.startsWith('-')
              ? 'del'
              : line.startsWith('@@')
                ? 'hunk'
                : '';
      return `<span${cls ? ` class="${cls}"` : ''}>${html(line) || ' '}</span>`;
    })
    .join('');
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9._/-]+$/.test(s) ? s : `'${clip(s, 80).replace(/'/g, `'\\''`)}'`;
}
