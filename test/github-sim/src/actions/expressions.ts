/**
 * `${{ … }}` in a workflow: only plain property paths into the contexts the simulator models —
 * `inputs.*`, `github.*`, `steps.<id>.outputs.<name>` and `secrets.GITHUB_TOKEN`. Anything else
 * (operators, functions, other contexts) is refused with an ExpressionError naming it, never guessed.
 */

export class ExpressionError extends Error {
  constructor(readonly expression: string) {
    super(
      `the simulator cannot evaluate \`\${{ ${expression} }}\`: it evaluates only inputs.*, github.*, matrix.*, steps.<id>.outputs.<name> (and .outcome, .conclusion), needs.<job>.outputs.<name> (and .result) and secrets.GITHUB_TOKEN as plain property paths, and in \`if:\` those compared with == or != to each other or to a literal, combined with !, && and ||, and success(), failure(), always(), cancelled()`,
    );
  }
}

/** The values expressions read. */
export interface ExpressionContext {
  inputs: Record<string, unknown>;
  github: Record<string, unknown>;
  steps: Record<string, { outputs: Record<string, string>; outcome?: string; conclusion?: string }>;
  secrets: { GITHUB_TOKEN: string };
  matrix?: Record<string, unknown>;
  needs?: Record<string, { result: string; outputs: Record<string, string> }>;
}

const PATH = /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_*][A-Za-z0-9_-]*)*$/;

const ROOTS = new Set(['inputs', 'github', 'steps', 'secrets', 'matrix', 'needs']);

/** Whether a property path names something the simulator models (the shape checks of `lookup`). */
function knownPath(root: string, rest: string[]): boolean {
  if (!ROOTS.has(root)) return false;
  if (root === 'steps' || root === 'needs') {
    const leaf = root === 'steps' ? ['outcome', 'conclusion'] : ['result'];
    return (rest.length === 3 && rest[1] === 'outputs') || (rest.length === 2 && leaf.includes(rest[1]!));
  }
  if (root === 'secrets') return rest.length === 1 && rest[0] === 'GITHUB_TOKEN';
  return true;
}

export function lookup(expression: string, ctx: ExpressionContext): unknown {
  if (!PATH.test(expression)) throw new ExpressionError(expression);
  const [root, ...rest] = expression.split('.');
  if (!knownPath(root!, rest)) throw new ExpressionError(expression);
  // As on GitHub, a missing property is null, which renders as the empty string.
  let value: unknown = ctx[root as keyof ExpressionContext];
  for (const key of rest) {
    if (value === null || typeof value !== 'object') return null;
    value = (value as Record<string, unknown>)[key];
  }
  return value ?? null;
}

function render(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value, null, 2);
  return String(value);
}

/** Replaces every `${{ … }}` in `text`; throws ExpressionError on an expression it does not support. */
export function interpolate(text: string, ctx: ExpressionContext): string {
  return text.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, inner: string) => render(lookup(inner.trim(), ctx)));
}

/** Interpolates every value of a map (scalars become strings first). */
export function interpolateAll(values: Record<string, string | number | boolean> | undefined, ctx: ExpressionContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(values ?? {})) out[k] = interpolate(String(v), ctx);
  return out;
}
