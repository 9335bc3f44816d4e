import { JsonSchemaChecker, type JsonSchema } from '../problems/json-schema.js';
import { finishProblems } from '../problems/located.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from './json-depth.js';

/**
 * A subagent's declared outputSchema, applied to what it produced. The reason names every JSON path
 * that does not match, so the person fixing the prompt or the worker sees where.
 */

const checker = new JsonSchemaChecker();

/** Why `output` does not match `schema` (paths from `$`), or undefined when it does. */
export function outputMismatch(schema: JsonSchema, output: unknown, subagent: string): string | undefined {
  const problems = finishProblems(checker.check(schema, output, [], `the outputSchema of subagent "${subagent}"`));
  if (problems.length === 0) return undefined;
  return `output does not match the outputSchema of subagent "${subagent}": ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`;
}

/** An agent's final answer as JSON (a ```json fence around it is allowed), or why it is not JSON. */
export function parseAnswer(answer: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  const fenced = /^\s*```(?:json)?\s*\n([\s\S]*?)\n\s*```\s*$/.exec(answer);
  const text = fenced ? fenced[1]! : answer;
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (e) {
    const start = answer.trim().slice(0, 80);
    return {
      ok: false,
      reason: `the final answer is not JSON (${(e as Error).message}), but the subagent declares an outputSchema; it began: ${JSON.stringify(start)}`,
    };
  }
  // The output is searched for secrets and written as canonical JSON, both by recursion: refused before either.
  if (nestsDeeperThan(value, MAX_JSON_DEPTH)) {
    return { ok: false, reason: `the final answer nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels; an output is at most that deep` };
  }
  return { ok: true, value };
}
