/** JSON paths as Agora prints them in problems: `$.items[2].depends_on[0]`, `$.env["A B"]`. */

/** One step of a JSON path: an object key or an array index. */
export type PathSegment = string | number;

/**
 * `['items', 2, 'depends_on', 0]` → `$.items[2].depends_on[0]`. Keys are written with a dot when they
 * are plain (`$.orch.subagents.code-edit.command`), otherwise quoted (`$.env["A B"]`).
 */
export function formatJsonPath(segments: readonly PathSegment[]): string {
  let out = '$';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[^.[\]\s"'\\]+$/.test(s)) out += `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** 1-based line and column (in UTF-16 units) of `offset` in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = text.indexOf('\n'); i !== -1 && i < end; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: end - lineStart + 1 };
}
