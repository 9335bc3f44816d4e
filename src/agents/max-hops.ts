/**
 * The max_hops rule for agents calling agents: how long a chain of calls that starts at one item may
 * get. The item's own attempt is hop 0, a dependency it calls hop 1, a dependency that one calls hop 2;
 * a call that would make hop `maxHops + 1` is refused. Items emitted by items follow the same rule
 * (src/engine/emission.ts): hops counted the same way, the same default, the same name.
 */
import { DEFAULT_MAX_HOPS } from '../engine/emission.js';

export const MAX_HOPS_RULE = 'max_hops';

/** The limit when the root subagent names none: the plan's default for emitted items too. */
export const MAX_HOPS_DEFAULT = DEFAULT_MAX_HOPS;

/** Why a call from the end of `chain` (root first) to `callee` breaks max_hops, or undefined when it may go ahead. */
export function maxHopsRefusal(chain: readonly string[], callee: string, maxHops: number): string | undefined {
  const hop = chain.length; // the callee's hop: the root is hop 0
  if (hop <= maxHops) return undefined;
  return `refused by ${MAX_HOPS_RULE} (${maxHops}): calling ${callee} would make hop ${hop} of the chain ${[...chain, callee].join(' → ')}; do this part yourself or answer with what you have`;
}
