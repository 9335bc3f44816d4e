import type { LocatedProblem } from '../problems/located.js';
import type { SubagentConfig } from './types.js';

/** A dependency is called through the tool `call_<name>`, and the Messages API allows 64 of [A-Za-z0-9_-] in a tool name. */
const CALLABLE_NAME = /^[A-Za-z0-9_-]{1,59}$/;

/**
 * What of an agent, or of a subagent it can reach through its dependencies, runs as a job on the
 * agent's item's target (bash, a command tool, a command dependency), said as a clause; undefined when
 * nothing does. Every child of an agent item runs on the item's own target (docs/agents.md).
 */
function jobOnTarget(subagents: Readonly<Record<string, SubagentConfig>>, start: string): string | undefined {
  const seen = new Set<string>();
  const walk = (name: string): string | undefined => {
    if (seen.has(name)) return undefined;
    seen.add(name);
    const s = subagents[name];
    if (s === undefined) return undefined;
    const who = name === start ? 'it' : `its dependency ${name}`;
    if (s.command) return `${who} is a command`;
    for (const tool of s.agent?.tools ?? []) {
      if (tool === 'bash') return `${who} has the bash tool`;
      if (typeof tool !== 'string') return `${who} has the command tool ${tool.name}`;
    }
    for (const dep of s.dependencies ?? []) {
      const found = walk(dep);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return walk(start);
}

/**
 * Subagents' `dependencies` (the subagents each may call) form a graph that must name only defined
 * subagents and hold no cycle: a call chain that can come back to its start has no bound but max_hops.
 * Each problem is located at the dependency entry that names the unknown subagent or closes the cycle.
 */
export function dependencyProblems(subagents: Readonly<Record<string, SubagentConfig>>): LocatedProblem[] {
  const out: LocatedProblem[] = [];
  const at = (name: string, i: number): LocatedProblem['segments'] => ['orch', 'subagents', name, 'dependencies', i];
  for (const [name, subagent] of Object.entries(subagents)) {
    if (subagent.command && subagent.target === 'actions' && (subagent.dependencies ?? []).length > 0) {
      out.push({
        segments: ['orch', 'subagents', name, 'dependencies'],
        message:
          'a command worker on the actions target cannot call its dependencies: a runner has no channel back to the orchestrator for agora call; run this subagent on the local or docker target, or make it an agent (its loop calls from the orchestrator)',
      });
    }
    if (subagent.agent && subagent.target === 'actions') {
      const job = jobOnTarget(subagents, name);
      if (job !== undefined) {
        out.push({
          segments: ['orch', 'subagents', name, 'target'],
          message: `an agent on the actions target can use its file tools and call agents, but ${job}, which would run as a job beside the item's own on a runner: the actions target runs one job per attempt, the item's own; run this agent on the local or docker target, or remove that`,
        });
      }
    }
    (subagent.dependencies ?? []).forEach((dep, i) => {
      if (!Object.hasOwn(subagents, dep)) {
        out.push({ segments: at(name, i), message: `names subagent "${dep}", which is not defined: define it under orch.subagents, or remove it` });
      } else if (!CALLABLE_NAME.test(dep)) {
        out.push({
          segments: at(name, i),
          message: `names subagent "${dep}", whose name cannot be a tool name (call_${dep}): a callable subagent's name is 1-59 letters, digits, _ or -; rename it`,
        });
      }
    });
  }
  // Depth-first search; an edge to a subagent on the current path closes a cycle (reported once per edge).
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): void => {
    state.set(name, 'open');
    path.push(name);
    (subagents[name]?.dependencies ?? []).forEach((dep, i) => {
      if (!Object.hasOwn(subagents, dep)) return;
      if (state.get(dep) === 'open') {
        const cycle = [...path.slice(path.indexOf(dep)), dep].join(' → ');
        out.push({
          segments: at(name, i),
          message: `makes a cycle of dependencies (${cycle}): a call could come back to a subagent that is already calling; remove one of these dependencies`,
        });
      } else if (!state.has(dep)) visit(dep);
    });
    path.pop();
    state.set(name, 'done');
  };
  for (const name of Object.keys(subagents)) if (!state.has(name)) visit(name);
  return out;
}
