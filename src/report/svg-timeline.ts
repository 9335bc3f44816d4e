import { clip, duration, html } from './escape.js';
import type { ReportData } from './model.js';
import type { Attempt, LockWait } from './timeline.js';

/**
 * The timeline as inline SVG: one row per attempt (its ready wait, then its run, coloured by how it
 * ended), and one lane per contended lock (who held it, who waited for it). x is time since the run was
 * accepted, on one scale for both.
 */

const LABEL_WIDTH = 230;
const PLOT_WIDTH = 760;
const ROW = 16;
const LANE_MAX = 50;

interface Scale {
  t0: number;
  t1: number;
  x(t: number): number;
}

export function timeScale(data: ReportData): Scale {
  const t0 = Math.min(data.acceptedAt, ...data.attempts.map((a) => a.readyAt ?? a.start));
  const ends = data.attempts.map((a) => a.end ?? data.generatedAt);
  const t1 = Math.max(t0 + 1, data.finishedAt ?? data.generatedAt, ...ends);
  return { t0, t1, x: (t) => LABEL_WIDTH + ((t - t0) / (t1 - t0)) * PLOT_WIDTH };
}

export function attemptsSvg(data: ReportData, s: Scale): string {
  const rows = [...data.attempts].sort((a, b) => a.start - b.start || a.itemId.localeCompare(b.itemId));
  const height = (rows.length + 2) * ROW;
  const out = [svgOpen(height, 'attempts over time'), axis(s, height)];
  const indexOf = new Map(data.items.map((item, i) => [item.id, i]));
  rows.forEach((a, r) => {
    const y = (r + 1) * ROW;
    const end = a.end ?? data.generatedAt;
    out.push(`<a href="#i-${indexOf.get(a.itemId) ?? 0}"><text class="label" x="4" y="${y + 11}">${html(clip(a.itemId, 28))} #${a.attempt}</text></a>`);
    if (a.readyAt !== null && a.readyAt < a.start) {
      out.push(bar(s.x(a.readyAt), s.x(a.start), y + 5, 6, 'ready-wait', `${a.itemId} #${a.attempt} ready, waiting ${duration(a.start - a.readyAt)}`));
    }
    const outcome = a.outcome ?? 'running';
    const what = `${a.itemId} #${a.attempt}: ${outcome === 'ready' ? 'ended, to be run again' : outcome} after ${duration(end - a.start)}${a.reason ? ` — ${clip(a.reason, 300)}` : ''}`;
    out.push(bar(s.x(a.start), s.x(end), y + 2, ROW - 4, `run out-${outcome}`, what));
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Lanes of the locks someone waited for, the longest total wait first; '' when nobody waited. */
export function lockLanesSvg(data: ReportData, s: Scale): string {
  const byLock = new Map<string, LockWait[]>();
  for (const w of data.waits) byLock.set(w.heldLock, [...(byLock.get(w.heldLock) ?? []), w]);
  if (byLock.size === 0) return '';
  const total = (ws: LockWait[]) => ws.reduce((sum, w) => sum + (w.to - w.from), 0);
  const lanes = [...byLock].sort((a, b) => total(b[1]) - total(a[1])).slice(0, LANE_MAX);
  const height = (lanes.length * 2 + 2) * ROW;
  const out = [svgOpen(height, 'lock lanes'), axis(s, height)];
  lanes.forEach(([lock, ws], l) => {
    const y = (l * 2 + 1) * ROW;
    out.push(`<text class="label" x="4" y="${y + 11}">${html(clip(lock, 30))}</text>`);
    out.push(`<text class="label sub" x="4" y="${y + ROW + 11}">waited ${duration(total(ws))}</text>`);
    for (const h of holdersOf(data.attempts, lock)) {
      out.push(bar(s.x(h.start), s.x(h.end ?? data.generatedAt), y + 2, ROW - 4, 'hold', `${h.itemId} #${h.attempt} held ${lock}`));
    }
    for (const w of ws) {
      out.push(
        bar(
          s.x(w.from),
          s.x(w.to),
          y + ROW + 3,
          ROW - 6,
          'lock-wait',
          `${w.itemId} #${w.attempt} waited ${duration(w.to - w.from)} for ${w.lock} (held by ${w.holder})`,
        ),
      );
    }
  });
  out.push('</svg>');
  if (byLock.size > LANE_MAX) out.push(`<p class="note">${byLock.size - LANE_MAX} more contended locks are not drawn; the table below lists every wait.</p>`);
  return out.join('\n');
}

function holdersOf(attempts: readonly Attempt[], lock: string): Attempt[] {
  return attempts.filter((a) => a.locks.includes(lock));
}

function svgOpen(height: number, label: string): string {
  const width = LABEL_WIDTH + PLOT_WIDTH + 10;
  return `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${label}">`;
}

function axis(s: Scale, height: number): string {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const x = LABEL_WIDTH + f * PLOT_WIDTH;
    const end = f === 1 ? ' text-anchor="end"' : '';
    return `<line class="tick" x1="${x}" y1="0" x2="${x}" y2="${height}"/><text class="tick-label" x="${f === 1 ? x - 2 : x + 2}" y="${height - 3}"${end}>+${duration(f * (s.t1 - s.t0))}</text>`;
  });
  return ticks.join('');
}

function bar(x1: number, x2: number, y: number, h: number, cls: string, title: string): string {
  const w = Math.max(1, x2 - x1);
  return `<rect class="${cls}" x="${x1.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${h}"><title>${html(title)}</title></rect>`;
}
