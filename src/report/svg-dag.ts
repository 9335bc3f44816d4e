import { clip, html } from './escape.js';
import { layoutDag } from './layout.js';
import type { ReportItem } from './model.js';

/** The DAG as inline SVG: one node per item, coloured by its state (classes `st-<status>`), linked to its entry. */

const LABEL_MAX = 32;

export function dagSvg(items: readonly ReportItem[]): string {
  const index = new Map(items.map((item, i) => [item.id, i]));
  const layout = layoutDag(
    items.map((item) => ({
      label: nodeLabel(item),
      dependsOn: item.dependsOn.map((d) => index.get(d)).filter((i): i is number => i !== undefined),
    })),
  );
  const out = [
    `<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}" role="img" aria-label="the run's DAG">`,
  ];
  out.push(
    '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" class="arrowhead"/></marker></defs>',
  );
  for (const e of layout.edges) {
    const d = e.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
    out.push(`<path class="edge" d="${d}" marker-end="url(#arrow)"/>`);
  }
  layout.nodes.forEach((box, i) => {
    const item = items[i]!;
    const retried = item.attempts > 1 ? ' retried' : '';
    out.push(
      `<a href="#i-${i}"><g class="node st-${item.status}${retried}" data-i="${i}" data-search="${html(searchKey(item))}">` +
        `<title>${html(item.id)}: ${item.status}${item.attempts > 1 ? ` after ${item.attempts} attempts` : ''}${item.reason ? ` (${html(clip(item.reason, 300))})` : ''}</title>` +
        `<rect x="${box.x.toFixed(1)}" y="${box.y.toFixed(1)}" width="${box.width}" height="${box.height}" rx="5"/>` +
        `<text x="${(box.x + 10).toFixed(1)}" y="${(box.y + box.height / 2 + 4).toFixed(1)}">${html(nodeLabel(item))}</text></g></a>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

function nodeLabel(item: ReportItem): string {
  return `${clip(item.id, LABEL_MAX)}${item.attempts > 1 ? ` ↻${item.attempts}` : ''}`;
}

/** What the page's search matches an item by: its id and its status, lower-cased. */
export function searchKey(item: ReportItem): string {
  return `${item.id} ${item.status}${item.attempts > 1 ? ' retried' : ''}`.toLowerCase();
}
