/**
 * How deep a JSON value nests, measured without recursion. A model (or a worker, through the call
 * socket) chooses a tool's input and an agent's final answer, and every recursive walk of them (the
 * digest's canonical JSON, the SDK's JSON.stringify of the next request, the output's secret search and
 * canonical JSON) overflows the stack at a few thousand levels: a value nested too deeply is refused
 * before anything walks it.
 */

/** The deepest tool or call input, or final answer, taken: in levels of arrays and objects (`{}` is 1, `{"a": [1]}` is 2). */
export const MAX_JSON_DEPTH = 64;

/** True when `value` nests arrays and objects deeper than `limit` levels; stops looking once it does. */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [next, depth] = stack.pop()!;
    if (next === null || typeof next !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(next) ? next : Object.values(next)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** What a tool or a call says to an input nested too deeply. */
export function tooDeepRefusal(): string {
  return `refused: the input nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels; send a flatter input`;
}
