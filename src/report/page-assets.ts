import { createHash } from 'node:crypto';

/**
 * The report page's one stylesheet and one script, and the Content-Security-Policy that allows exactly
 * them (by hash) and nothing else: no network, no other script or style, no forms, no base URL. Untrusted
 * text never reaches either: the script reads the page's DOM only through `dataset` and `textContent`.
 */

export const STYLE = `
:root { color-scheme: light; font: 14px/1.45 system-ui, sans-serif; color: #1f2328; }
body { margin: 0 auto; max-width: 1100px; padding: 16px 24px 64px; }
h1 { font-size: 22px; margin: 8px 0; } h2 { font-size: 18px; margin: 0; display: inline; } h3 { font-size: 15px; margin: 14px 0 6px; }
section { margin: 22px 0; } summary { cursor: pointer; }
code, pre, .mono, svg text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 10px; overflow: auto; max-height: 480px; white-space: pre; margin: 4px 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; } dl.facts dt { color: #57606a; } dl.facts dd { margin: 0; }
.badge { display: inline-block; border-radius: 10px; padding: 0 9px; font-size: 13px; color: #fff; vertical-align: middle; }
.note { color: #57606a; font-size: 13px; margin: 4px 0; }
.verdict { font-weight: 600; padding: 8px 12px; border-radius: 6px; }
.verdict.intact { background: #dafbe1; color: #116329; } .verdict.broken { background: #ffebe9; color: #a40e26; }
ul.failures li { margin: 3px 0; }
.scroll { overflow: auto; max-height: 640px; border: 1px solid #d0d7de; border-radius: 6px; margin-top: 8px; }
.legend span { margin-right: 12px; } .legend i { display: inline-block; width: 11px; height: 11px; border-radius: 3px; margin-right: 4px; vertical-align: -1px; }
.st-done { background: #1a7f37; fill: #1a7f37; } .st-failed { background: #cf222e; fill: #cf222e; }
.st-skipped { background: #d0d7de; fill: #d0d7de; } .st-cancelled { background: #6e7781; fill: #6e7781; }
.st-running { background: #0969da; fill: #0969da; } .st-ready { background: #d4a72c; fill: #d4a72c; } .st-pending { background: #eaeef2; fill: #eaeef2; }
.node text { fill: #fff; } .node.st-skipped text, .node.st-pending text, .node.st-ready text { fill: #1f2328; }
.node rect { stroke: #1f2328; stroke-opacity: 0.25; } .node.retried rect { stroke: #bc4c00; stroke-width: 3; stroke-opacity: 1; }
.node.st-skipped rect { stroke-dasharray: 4 3; stroke-opacity: 0.8; }
.node.dim { opacity: 0.15; } .edge { fill: none; stroke: #8c959f; stroke-width: 1.2; } .arrowhead { fill: #8c959f; }
.timeline .label { fill: #1f2328; } .timeline .sub { fill: #57606a; } .tick { stroke: #eaeef2; } .tick-label { fill: #57606a; font-size: 10px; }
.run.out-done { fill: #1a7f37; } .run.out-failed { fill: #cf222e; } .run.out-ready { fill: #bc4c00; } .run.out-cancelled { fill: #6e7781; } .run.out-running { fill: #0969da; }
.ready-wait { fill: #d0d7de; } .hold { fill: #54aeff; } .lock-wait { fill: #d4a72c; }
table { border-collapse: collapse; font-size: 13px; } th, td { text-align: left; padding: 2px 10px 2px 0; border-bottom: 1px solid #eaeef2; vertical-align: top; }
.tools { position: sticky; top: 0; background: #fff; padding: 8px 0; z-index: 1; display: flex; gap: 8px; align-items: center; }
.tools input { flex: 1; max-width: 420px; padding: 4px 8px; font: inherit; }
details.item { border: 1px solid #d0d7de; border-radius: 6px; margin: 4px 0; padding: 4px 10px; }
details.item > summary { list-style-position: inside; }
details.item .dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; }
.reason { white-space: pre-wrap; background: #fff8c5; border-radius: 6px; padding: 4px 8px; }
.diff .add { color: #116329; background: #e6ffec; } .diff .del { color: #a40e26; background: #ffebe9; } .diff .hunk { color: #0550ae; } .diff .meta { color: #57606a; }
.diff span { display: block; }
`;

export const SCRIPT = `
(function () {
  var search = document.getElementById('search');
  var shown = document.getElementById('shown');
  var items = Array.prototype.slice.call(document.querySelectorAll('details.item'));
  var nodes = Array.prototype.slice.call(document.querySelectorAll('svg .node'));
  function apply() {
    var q = search.value.trim().toLowerCase();
    var n = 0;
    items.forEach(function (el) { var hit = !q || el.dataset.search.indexOf(q) >= 0; el.hidden = !hit; if (hit) n++; });
    nodes.forEach(function (g) { g.classList.toggle('dim', Boolean(q) && g.dataset.search.indexOf(q) < 0); });
    shown.textContent = q ? n + ' of ' + items.length + ' items match' : items.length + ' items';
  }
  function openTarget() {
    var el = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (el && el.tagName === 'DETAILS') { el.hidden = false; el.open = true; el.scrollIntoView(); }
  }
  search.addEventListener('input', apply);
  document.getElementById('expand').addEventListener('click', function () { items.forEach(function (el) { if (!el.hidden) el.open = true; }); });
  document.getElementById('collapse').addEventListener('click', function () { items.forEach(function (el) { el.open = false; }); });
  window.addEventListener('hashchange', openTarget);
  apply();
  openTarget();
})();
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src ${sha256(STYLE)}`,
  `script-src ${sha256(SCRIPT)}`,
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
