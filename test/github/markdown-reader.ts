/**
 * Just enough of CommonMark/GFM to tell, in tests, whether markdown built from untrusted text renders as
 * that text: splitting a table row, reading a code span and a fenced block, and listing the constructs
 * left active in free text. (Checked by hand against cmark-gfm, GitHub's renderer.)
 */

/**
 * The cells of a table row as GFM (cmark-gfm) splits it: at every pipe that no backslash precedes, with
 * `\|` turned into `|` (one backslash less, even after another backslash) before the cell is parsed.
 */
export function tableCells(row: string): string[] {
  const cells: string[] = [];
  let cell = '';
  for (let i = 0; i < row.length; i++) {
    const c = row[i]!;
    if (c === '\\' && row[i + 1] === '|') {
      cell += '|';
      i++;
    } else if (c === '|') {
      cells.push(cell);
      cell = '';
    } else cell += c;
  }
  cells.push(cell);
  // A row `| a | b |` starts and ends with a pipe: drop the empty ends.
  if (cells[0]?.trim() === '') cells.shift();
  if (cells[cells.length - 1]?.trim() === '') cells.pop();
  return cells.map((x) => x.trim());
}

/**
 * What a text made of exactly one code span shows, or undefined when the text is not one code span (its
 * fence closes early, or something stands outside it).
 */
export function codeSpanContent(md: string): string | undefined {
  const open = /^`+/.exec(md)?.[0];
  if (!open) return undefined;
  // The span ends at the first backtick run of the same length.
  const runs = [...md.slice(open.length).matchAll(/`+/g)];
  const close = runs.find((r) => r[0].length === open.length);
  if (!close || open.length + close.index! + close[0].length !== md.length) return undefined;
  let content = md.slice(open.length, open.length + close.index!);
  if (content.startsWith(' ') && content.endsWith(' ') && content.trim() !== '') content = content.slice(1, -1);
  return content;
}

/** The body of the fenced code block that starts at line `start` of `lines`, and the line after it. */
export function fencedBlock(lines: readonly string[], start: number): { body: string; next: number } | undefined {
  const open = /^ {0,3}(`{3,}|~{3,})/.exec(lines[start] ?? '')?.[1];
  if (!open) return undefined;
  const closing = new RegExp(`^ {0,3}${open[0] === '`' ? '`' : '~'}{${open.length},}\\s*$`);
  for (let i = start + 1; i < lines.length; i++) {
    if (closing.test(lines[i]!)) return { body: lines.slice(start + 1, i).join('\n'), next: i + 1 };
  }
  return undefined;
}

/**
 * Markdown or GitHub constructs still active in `md`, rendered as free text (empty: it renders as text).
 * In a table cell (as `tableCells` returns it) a pipe is plain text: the row was already split.
 */
export function activeConstructs(md: string, where: 'paragraph' | 'table cell' = 'paragraph'): string[] {
  const found: string[] = [];
  // Escaped punctuation is literal; blank it out (with a control character: neither a letter nor a
  // space) so that it matches nothing below.
  const bare = md.replace(/\\[!-/:-@[-`{-~]/g, '\u0001').replace(/\\\n/g, '\n');
  const rules: Array<[string, RegExp]> = [
    ['code, emphasis, strikethrough, link, image, HTML, math or table syntax', where === 'paragraph' ? /[`*~[\]<$|]/ : /[`*~[\]<$]/],
    ['emphasis with _', /(^|[^\p{L}\p{N}])_|_($|[^\p{L}\p{N}])/mu],
    ['an @mention', /@[\p{L}\p{N}]/u],
    ['an issue reference', /#\d|GH-\d/i],
    ['a bare URL', /(https?|ftp):\/\/|www\./i],
    ['an HTML entity', /&(#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);/i],
    ['a heading, quote, list, rule or indented code', /^(\s*[#>+\-=]|\s*\d+[.)]|\s{4})/m],
  ];
  for (const [what, re] of rules) {
    const m = re.exec(bare);
    if (m) found.push(`${what}: ${JSON.stringify(m[0])}`);
  }
  return found;
}

/** The text free-text markdown shows once rendered (escapes and invisible word joiners removed). */
export function renderedText(md: string): string {
  return md
    .replace(/\\\n/g, '\n')
    .replace(/\\([!-/:-@[-`{-~])/g, '$1')
    .replace(/\u2060/g, '');
}

/**
 * Splits a line into its code spans (their contents, as they render) and the text outside them (each
 * span replaced by a space): a backtick run opens a span that the next run of the same length closes; a
 * run with no closing partner, and a backslash-escaped backtick, are literal text.
 */
export function splitCodeSpans(line: string): { spans: string[]; outside: string } {
  const spans: string[] = [];
  let outside = '';
  let at = 0;
  while (at < line.length) {
    const open = /`+/.exec(line.slice(at));
    if (!open) break;
    let start = at + open.index;
    let fence = open[0];
    // A backslash-escaped backtick is literal and opens nothing (the rest of its run may).
    if (/(^|[^\\])(\\\\)*\\$/.test(line.slice(0, start))) {
      start += 1;
      fence = fence.slice(1);
      if (fence === '') {
        outside += line.slice(at, start);
        at = start;
        continue;
      }
    }
    const rest = line.slice(start + fence.length);
    const close = [...rest.matchAll(/`+/g)].find((r) => r[0].length === fence.length);
    if (!close) {
      outside += line.slice(at, start + fence.length);
      at = start + fence.length;
      continue;
    }
    outside += `${line.slice(at, start)} `;
    spans.push(codeSpanContent(fence + rest.slice(0, close.index! + fence.length))!);
    at = start + fence.length + close.index! + fence.length;
  }
  return { spans, outside: outside + line.slice(at) };
}
