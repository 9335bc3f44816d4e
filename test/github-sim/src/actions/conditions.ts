/**
 * `if:` on jobs and steps: the status functions success(), failure(), always() and cancelled(),
 * property paths of the modelled contexts, string/number/boolean/null literals, `==`, `!=`, `!`,
 * `&&`, `||` and parentheses. An expression with no status function is GitHub's implicit
 * `success() && (…)`. Anything else is an ExpressionError naming it, never a guess.
 */
import { ExpressionError, lookup, type ExpressionContext } from './expressions.js';

/** What the status functions answer where the condition is evaluated. */
export interface Status {
  /** Every previous step (or every needed job) succeeded: `success()` unless cancelled. */
  success: boolean;
  /** A previous step (or a needed job) failed: `failure()`. */
  failure: boolean;
  /** The run is being cancelled: `cancelled()`. */
  cancelled: boolean;
}

type Token = { kind: 'op'; text: string } | { kind: 'lit'; value: unknown } | { kind: 'path'; text: string } | { kind: 'call'; name: string };

const TOKEN = /\s*(?:(==|!=|&&|\|\||!|\(|\))|'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?)\b|(success|failure|always|cancelled)\(\s*\)|([A-Za-z_][A-Za-z0-9_.*-]*))/y;

function tokenize(text: string, whole: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const m = TOKEN.exec(text);
    if (!m) throw new ExpressionError(whole);
    if (m[1] !== undefined) out.push({ kind: 'op', text: m[1] });
    else if (m[2] !== undefined) out.push({ kind: 'lit', value: m[2].replace(/''/g, "'") });
    else if (m[3] !== undefined) out.push({ kind: 'lit', value: Number(m[3]) });
    else if (m[4] !== undefined) out.push({ kind: 'call', name: m[4] });
    else if (m[5] === 'true' || m[5] === 'false') out.push({ kind: 'lit', value: m[5] === 'true' });
    else if (m[5] === 'null') out.push({ kind: 'lit', value: null });
    else out.push({ kind: 'path', text: m[5]! });
  }
  return out;
}

/** GitHub's loose equality: strings compare case-insensitively; mixed types compare as numbers. */
function equal(a: unknown, b: unknown): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a.toLowerCase() === b.toLowerCase();
  if (typeof a === typeof b) return a === b;
  const num = (v: unknown): number => (v === null ? 0 : typeof v === 'boolean' ? Number(v) : typeof v === 'string' ? (v.trim() === '' ? 0 : Number(v)) : NaN);
  return num(a) === num(b);
}

const truthy = (v: unknown): boolean => !(v === null || v === undefined || v === false || v === 0 || v === '' || Number.isNaN(v));

/** Evaluates an `if:` value (with or without `${{ }}`) to whether the job or step runs. */
export function evaluateCondition(raw: string | number | boolean, ctx: ExpressionContext, status: Status): boolean {
  if (typeof raw !== 'string') return truthy(raw) && status.success && !status.cancelled;
  const whole = raw.trim().replace(/^\$\{\{([\s\S]*)\}\}$/, '$1').trim();
  const tokens = tokenize(whole, whole);
  let i = 0;
  const peek = (): Token | undefined => tokens[i];
  const isOp = (t: Token | undefined, text: string): boolean => t?.kind === 'op' && t.text === text;
  let usesStatus = false;
  const primary = (): unknown => {
    const t = tokens[i++];
    if (!t) throw new ExpressionError(whole);
    if (t.kind === 'lit') return t.value;
    if (t.kind === 'path') return lookup(t.text, ctx);
    if (t.kind === 'call') {
      usesStatus = true;
      return t.name === 'always' ? true : t.name === 'cancelled' ? status.cancelled : t.name === 'failure' ? status.failure : status.success && !status.cancelled;
    }
    if (t.text === '(') {
      const v = or();
      if (!isOp(tokens[i++], ')')) throw new ExpressionError(whole);
      return v;
    }
    if (t.text === '!') return !truthy(primary());
    throw new ExpressionError(whole);
  };
  const comparison = (): unknown => {
    const left = primary();
    const t = peek();
    if (isOp(t, '==') || isOp(t, '!=')) {
      i++;
      const same = equal(left, primary());
      return (t as { text: string }).text === '==' ? same : !same;
    }
    return left;
  };
  const and = (): unknown => {
    let v = comparison();
    while (isOp(peek(), '&&')) {
      i++;
      const r = comparison();
      v = truthy(v) ? r : v;
    }
    return v;
  };
  const or = (): unknown => {
    let v = and();
    while (isOp(peek(), '||')) {
      i++;
      const r = and();
      v = truthy(v) ? v : r;
    }
    return v;
  };
  const value = or();
  if (i !== tokens.length) throw new ExpressionError(whole);
  return usesStatus ? truthy(value) : status.success && !status.cancelled && truthy(value);
}
