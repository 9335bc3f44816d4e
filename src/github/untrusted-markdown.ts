/**
 * Untrusted text (plan keys, JSON paths, messages quoting plan input, reasons, worker logs, paths a worker
 * wrote) into GitHub-flavoured markdown that renders as exactly that text. Pure functions.
 *
 * - `codeSpan`: inline code whose fence is one backtick longer than the longest run inside, so no
 *   content can close it; line breaks become ` ⏎ ` (a code span cannot hold a line break safely).
 * - `plainText`: free text with every markdown construct neutralised: backslash escapes for code,
 *   emphasis, strikethrough, links, images, HTML, entities, math, tables and line-start blocks (headings,
 *   lists, quotes, rules); and an invisible WORD JOINER (U+2060) after `@`, after `#` or `GH-` before a
 *   digit, and inside `http://`, `https://`, `ftp://` and `www.`, because GitHub links mentions, issue
 *   references and bare URLs in the rendered text, where backslashes no longer exist. Ordinary prose
 *   comes out unchanged or with a few backslashes; it reads the same once rendered.
 * - `tableCellText` / `tableCellCode`: the same, on one line, with `|` escaped as tables need.
 * - `codeBlock`: a fenced block whose fence is longer than any backtick run in the content.
 * - `markdownLink`: a link whose text is plain text and whose target is an http(s) URL with every
 *   character that could end or bend the target percent-encoded; anything else is shown as code.
 */

/** Invisible, and breaks GitHub's mention, reference and URL linking where it is inserted. */
export const WORD_JOINER = '\u2060';

/** What a line break becomes where one cannot be kept (code spans, table cells). */
export const LINE_BREAK_MARK = ' ⏎ ';

const LINE_BREAK = /\r\n|\r|\n|\u2028|\u2029/g;

/** Joins the lines of `text` with a visible mark. */
export function oneLine(text: string): string {
  return text.replace(LINE_BREAK, LINE_BREAK_MARK);
}

/** Inline code showing `text` verbatim (on one line), whatever backticks it holds. */
export function codeSpan(text: string): string {
  const content = oneLine(text);
  if (content === '') return '` `';
  const fence = '`'.repeat(longestBacktickRun(content) + 1);
  // A leading or trailing backtick would merge with the fence; CommonMark strips one space on each side.
  const pad = /^`|`$/.test(content) || (content.startsWith(' ') && content.endsWith(' ') && content.trim() !== '') ? ' ' : '';
  return `${fence}${pad}${content}${pad}${fence}`;
}

/** A fenced code block showing `text` verbatim; no line of it can close the fence. */
export function codeBlock(text: string, info = ''): string {
  const body = text.replace(/\r\n?/g, '\n').replace(/\n$/, '');
  const fence = '`'.repeat(Math.max(3, longestBacktickRun(body) + 1));
  return `${fence}${info}\n${body}\n${fence}`;
}

/**
 * A link to `url` labelled `text` (plain text). Only an absolute http(s) URL becomes a link target, with
 * spaces, brackets, quotes and angle brackets percent-encoded so nothing in it can end the target or
 * start a title; any other URL is shown beside the text as inline code, never linked.
 */
export function markdownLink(text: string, url: string): string {
  const label = plainText(oneLine(text)) || 'link';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${label} (${codeSpan(url)})`;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return `${label} (${codeSpan(url)})`;
  const target = parsed.href.replace(/[\s()<>"'`[\]\\]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  return `[${label}](${target})`;
}

/** Free text that renders as itself: no links, images, mentions, references, HTML or formatting. */
export function plainText(text: string): string {
  const lines = text
    .split(LINE_BREAK)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  // A backslash at the end of a line is a hard line break: the lines stay lines, in one paragraph.
  return lines.map(escapeLine).join('\\\n');
}

/** A table cell showing `text` as plain text on one line. */
export function tableCellText(text: string): string {
  // plainText escapes every `|`: a table takes `\|` as a pipe in the cell.
  return plainText(oneLine(text));
}

/** A table cell showing `text` as inline code on one line. */
export function tableCellCode(text: string): string {
  // Tables split rows at `|` before code spans are seen; `\|` is a pipe inside the span.
  return codeSpan(text).replace(/\|/g, '\\|');
}

/** Always escaped: code, emphasis, strikethrough, links and images, HTML, math, tables, escapes. */
const ALWAYS_ESCAPED = new Set(['\\', '`', '*', '~', '[', ']', '<', '$', '|']);

function escapeLine(line: string): string {
  let out = '';
  const chars = [...line];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    const prev = chars[i - 1] ?? '';
    const next = chars[i + 1] ?? '';
    if (ALWAYS_ESCAPED.has(c)) out += `\\${c}`;
    // `_` between letters or digits never starts emphasis (snake_case stays as it is).
    else if (c === '_') out += isWordChar(prev) && isWordChar(next) ? c : '\\_';
    // `&lt;` would render as `<`: keep the ampersand literal where it could start an entity.
    else if (c === '&') out += /^&(#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);/i.test(chars.slice(i, i + 40).join('')) ? '\\&' : c;
    else if (c === '@' && isWordChar(next)) out += `@${WORD_JOINER}`;
    else if (c === '#' && /\d/.test(next)) out += `#${WORD_JOINER}`;
    else out += c;
  }
  out = out
    .replace(/(GH-)(?=\d)/gi, `$1${WORD_JOINER}`)
    .replace(/(https?|ftp)(?=:\/\/)/gi, `$1${WORD_JOINER}`)
    .replace(/(www)(?=\.)/gi, `$1${WORD_JOINER}`);
  return escapeLineStart(out);
}

/** Headings, quotes, list items, rules and setext underlines start at the beginning of a line. */
function escapeLineStart(line: string): string {
  if (/^[#>+\-=]/.test(line)) return `\\${line}`;
  const ordered = /^(\d{1,9})([.)])/.exec(line);
  if (ordered) return `${ordered[1]}\\${line.slice(ordered[1]!.length)}`;
  return line;
}

function isWordChar(c: string): boolean {
  return /^[\p{L}\p{N}]$/u.test(c);
}

function longestBacktickRun(text: string): number {
  let longest = 0;
  for (const run of text.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  return longest;
}
