/**
 * Untrusted text into HTML (pure). Everything a plan, a worker or a person wrote reaches the page only
 * through {@link html}: the five characters that can end a text or an attribute are escaped, and control
 * and bidirectional-override characters (which could hide or reorder what a reader sees) become U+FFFD.
 * Line breaks and tabs stay. Inside `<pre>`, `<code>`, an attribute or an SVG `<text>` this is enough:
 * the page has no context (script, style, URL) into which untrusted text is put.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

// C0 controls but tab and line feed, DEL, C1 controls, and the bidi embeddings, overrides and isolates.
// eslint-disable-next-line no-control-regex
const UNSHOWABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

export function visible(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(UNSHOWABLE, '\uFFFD');
}

export function html(text: string): string {
  return visible(text).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** `text` cut to `max` characters, with `…` when cut. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** 1234 → `1.23 s`; 850 → `850 ms`; 125000 → `2 min 5 s`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const s = Math.round(ms / 1000);
  return s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function isoTime(ms: number | null): string {
  return ms === null
    ? '—'
    : new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}
