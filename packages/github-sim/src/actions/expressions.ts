/**
 * `${{ … }}` and `if:` evaluated with GitHub's own expression engine (`@actions/expressions`): its
 * operators, coercions and functions (contains, startsWith, endsWith, format, join, toJSON,
 * fromJSON, case), with the contexts a runner has and the functions the runner adds — the status
 * functions success(), failure(), always(), cancelled(), and hashFiles() over the job's workspace.
 * The workflow parser already refused what does not parse or names an unknown context or function;
 * what can still go wrong here is a value (fromJSON of bad JSON, say): an ExpressionError.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { data, Evaluator, Lexer, Parser } from '@actions/expressions';
import type { FunctionDefinition } from '@actions/expressions/funcs/info';
import { truthy } from '@actions/expressions/result';
import { globMatch } from './filters.js';

/**
 * A `${{ }}` value of a workflow file: the parser's expression (embedded ones joined with format())
 * and the string as YAML reads it. The runner evaluates the source, one `${{ }}` at a time, so the
 * text around them never goes through the expression lexer (@actions/expressions 0.3.61 unescapes
 * only the first `''` of a string literal, which would mangle a script's quotes).
 */
export class Expr {
  constructor(
    readonly expression: string,
    readonly source: string,
  ) {}

  toString(): string {
    return this.source;
  }
}

/** A workflow value as the parser read it: YAML data with `${{ }}` expressions in it. */
export type Value = string | number | boolean | null | Expr | Value[] | { [key: string]: Value };

export class ExpressionError extends Error {}

/** The values expressions read (a context left out is empty). */
export interface ExpressionContext {
  github: Record<string, unknown>;
  inputs: Record<string, unknown>;
  steps?: Record<string, { outputs: Record<string, string>; outcome?: string; conclusion?: string }>;
  needs?: Record<string, { result: string; outputs: Record<string, string> }>;
  matrix?: Record<string, unknown>;
  secrets?: Record<string, string>;
  env?: Record<string, string>;
  job?: Record<string, unknown>;
  runner?: Record<string, unknown>;
  strategy?: Record<string, unknown>;
  vars?: Record<string, string>;
  /** The job's workspace, for hashFiles() (absent where no runner has the job yet). */
  workspace?: string;
}

/** What the status functions answer where the expression is evaluated. */
export interface Status {
  /** Every previous step (or every needed job) succeeded. */
  success: boolean;
  /** A previous step (or a needed job) failed. */
  failure: boolean;
  /** The run is being cancelled. */
  cancelled: boolean;
}

const CONTEXTS = ['github', 'inputs', 'steps', 'needs', 'matrix', 'secrets', 'env', 'job', 'runner', 'strategy', 'vars'] as const;

const NOT_STARTED: Status = { success: true, failure: false, cancelled: false };

const bool = (v: boolean): data.BooleanData => new data.BooleanData(v);

/** hashFiles(patterns…): GitHub's SHA-256 over the SHA-256 of each matching workspace file, '' when none match. */
function hashFiles(workspace: string | undefined, patterns: string[]): string {
  if (workspace === undefined) throw new ExpressionError('hashFiles() is only available in a step: no workspace exists before a runner has the job');
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === '.git') continue;
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) files.push(full);
    }
  };
  walk(workspace);
  const include = patterns.filter((p) => !p.startsWith('!'));
  const exclude = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
  const matched = files.filter((f) => {
    const rel = relative(workspace, f);
    return include.some((p) => globMatch(p, rel)) && !exclude.some((p) => globMatch(p, rel));
  });
  if (matched.length === 0) return '';
  const all = createHash('sha256');
  for (const f of matched.sort()) all.update(createHash('sha256').update(readFileSync(f)).digest());
  return all.digest('hex');
}

function functions(ctx: ExpressionContext, status: Status): FunctionDefinition[] {
  const fn = (name: string, call: (...args: data.ExpressionData[]) => data.ExpressionData, minArgs = 0, maxArgs = 0): FunctionDefinition => ({
    name,
    minArgs,
    maxArgs,
    call,
  });
  return [
    fn('success', () => bool(status.success && !status.cancelled)),
    fn('failure', () => bool(status.failure)),
    fn('cancelled', () => bool(status.cancelled)),
    fn('always', () => bool(true)),
    fn(
      'hashFiles',
      (...patterns) =>
        new data.StringData(
          hashFiles(
            ctx.workspace,
            patterns.map((p) => p.coerceString()),
          ),
        ),
      1,
      255,
    ),
  ];
}

const toData = (v: unknown): data.ExpressionData => JSON.parse(JSON.stringify(v ?? {}), data.reviver) as data.ExpressionData;
const fromData = (d: data.ExpressionData): unknown => JSON.parse(JSON.stringify(d, data.replacer)) as unknown;

function evaluateData(expression: string, ctx: ExpressionContext, status: Status): data.ExpressionData {
  const funcs = functions(ctx, status);
  try {
    const ast = new Parser(new Lexer(expression).lex().tokens, [...CONTEXTS], funcs).parse();
    const contexts = new data.Dictionary(...CONTEXTS.map((key) => ({ key, value: toData(ctx[key]) })));
    return new Evaluator(ast, contexts, new Map(funcs.map((f) => [f.name.toLowerCase(), f]))).evaluate();
  } catch (e) {
    if (e instanceof ExpressionError) throw e;
    throw new ExpressionError(`\`\${{ ${expression} }}\`: ${(e as Error).message}`);
  }
}

/** Whether an `if:` (as the parser normalised it: `success() && (…)` when it names no status function) holds. */
export function condition(expression: string, ctx: ExpressionContext, status: Status): boolean {
  return truthy(evaluateData(expression, ctx, status));
}

/** A value with every expression in it evaluated (to plain JSON data). */
export function evaluate(value: Value | undefined, ctx: ExpressionContext, status: Status = NOT_STARTED): unknown {
  if (value instanceof Expr) {
    // A value that is one expression keeps its type (an object, a number); text with expressions in it is text.
    const whole = /^\s*\$\{\{([\s\S]*?)\}\}\s*$/.exec(value.source);
    if (whole && !whole[1]!.includes('${{')) return fromData(evaluateData(whole[1]!.trim(), ctx, status));
    return interpolate(value.source, ctx, status);
  }
  if (Array.isArray(value)) return value.map((v) => evaluate(v, ctx, status));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, evaluate(v, ctx, status)]));
  return value;
}

/** A value as the text a runner puts in a script, an input or an environment variable (an object as JSON). */
export function render(value: Value | undefined, ctx: ExpressionContext, status: Status = NOT_STARTED): string {
  return asText(evaluate(value, ctx, status));
}

function asText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v, null, 2);
  return String(v);
}

/** Renders every value of a map. */
export function renderAll(values: Record<string, Value> | undefined, ctx: ExpressionContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(values ?? {})) out[k] = render(v, ctx);
  return out;
}

/** Text with `${{ }}` in it: each expression rendered in place (an object as JSON), as the runner does. */
export function interpolate(text: string, ctx: ExpressionContext, status: Status = NOT_STARTED): string {
  return text.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, inner: string) => asText(fromData(evaluateData(inner.trim(), ctx, status))));
}
