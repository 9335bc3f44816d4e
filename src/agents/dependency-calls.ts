import type { SubagentConfig } from '../config/types.js';
import { JsonSchemaChecker } from '../problems/json-schema.js';
import { finishProblems } from '../problems/located.js';
import { childDeadline, DownstreamBudget } from './call-limits.js';
import { MAX_JSON_DEPTH, nestsDeeperThan, tooDeepRefusal } from './json-depth.js';
import { digest, type AgentEvent } from './loop.js';
import { maxHopsRefusal } from './max-hops.js';
import { withoutHostPaths, type ExtraTools, type ToolResult, type ToolSpec } from './tools.js';

/**
 * A subagent's calls to its `dependencies`: one tool `call_<name>` per dependency (its description and
 * input schema from the dependency's config). A call runs the dependency as a child attempt of the
 * calling attempt, in its slot and on its workspace, after the orchestrator has checked the rules the
 * agent cannot bend: only declared dependencies, max_hops, the caller's remaining time, the downstream
 * budget. A refusal is a tool error the model reads; it never ends the caller's attempt.
 */

export const CALL_TOOL_PREFIX = 'call_';

/** Where a caller stands: the chain that led to it and what it may still hand on. */
export interface CallFrame {
  /** Subagent names, root (the item's subagent) first; the last one is the caller. */
  chain: string[];
  /** The caller's attempt or child attempt: `fix.1`, `fix.1/checker#1`. */
  id: string;
  /** The max_hops of the chain (the root subagent's). */
  maxHops: number;
  /** Epoch ms by which the caller must be done, when it has a deadline. */
  deadline?: number;
  /** The budget the caller spends from, when it is itself a callee. */
  budget?: DownstreamBudget;
}

/** A child attempt as the audit keeps it: its own events, apart from its parent's. */
export interface ChildRecord {
  id: string;
  subagent: string;
  parent: string;
  hop: number;
  deadline?: number;
  outcome: 'ok' | 'failed' | 'stopped';
  reason?: string;
  /** The subagent that called (the parent's), its declared dependencies, and the chain's max_hops, as the call was judged. */
  caller?: string;
  declared?: string[];
  maxHops?: number;
  /** Whether the callee is an agent (it may call on) or a command (it may not). */
  calleeKind?: 'agent' | 'command';
  /** `sha256:` of the canonical JSON of the input, and of the answer the caller got (ok only). */
  input?: string;
  output?: string;
  startedAt?: number;
  finishedAt?: number;
  events: AgentEvent[];
  children: ChildRecord[];
}

export interface ChildRequest {
  subagent: string;
  config: SubagentConfig;
  input: unknown;
  /** The child's own frame (its chain ends with it). */
  frame: CallFrame;
  signal: AbortSignal;
}

export interface ChildRun {
  ok: boolean;
  /** The answer (ok) or why it failed, as the caller's model reads it. */
  content: string;
  events: AgentEvent[];
  children: ChildRecord[];
}

export interface DependencyCallsArgs {
  caller: string;
  subagents: Readonly<Record<string, SubagentConfig>>;
  frame: CallFrame;
  signal: AbortSignal;
  clock: () => number;
  runChild(request: ChildRequest): Promise<ChildRun>;
  /** Told when a child starts (for the log) and when it ends (for the log and the transcript). */
  onStart(child: Pick<ChildRecord, 'id' | 'subagent' | 'parent' | 'hop' | 'deadline'>): void;
  onEnd(record: ChildRecord): void;
}

export class DependencyCalls implements ExtraTools {
  readonly specs: ToolSpec[];
  private readonly declared: readonly string[];
  private readonly counts = new Map<string, number>();
  private readonly checker = new JsonSchemaChecker();

  constructor(private readonly args: DependencyCallsArgs) {
    this.declared = args.subagents[args.caller]?.dependencies ?? [];
    this.specs = this.declared.map((name) => {
      const dep = args.subagents[name]!;
      return {
        name: `${CALL_TOOL_PREFIX}${name}`,
        description:
          dep.description ?? `Call the subagent ${name} with this input; returns its answer. It works on the same files as you, within your write scope.`,
        input_schema: { ...(dep.inputSchema ?? {}), type: 'object' },
      };
    });
  }

  handles(name: string): boolean {
    return name.startsWith(CALL_TOOL_PREFIX);
  }

  async call(name: string, input: unknown): Promise<ToolResult> {
    const { caller, subagents, frame, clock } = this.args;
    const callee = name.slice(CALL_TOOL_PREFIX.length);
    // A worker's input through the call socket is checked here too: the schema check and the digest walk it.
    if (nestsDeeperThan(input, MAX_JSON_DEPTH)) return refused(tooDeepRefusal());
    if (!this.declared.includes(callee)) {
      const which = this.declared.length === 0 ? 'it declares none' : `it may call only ${this.declared.join(', ')}`;
      const what = Object.hasOwn(subagents, callee) ? `${callee} is not a dependency of ${caller}` : `there is no subagent ${JSON.stringify(callee)}`;
      return refused(`refused: ${what}; ${which} (its config's dependencies)`);
    }
    const schema = this.specs.find((s) => s.name === name)!.input_schema;
    const problems = finishProblems(this.checker.check(schema, input, [], `the input schema of ${callee}`));
    if (problems.length > 0)
      return refused(`the input does not match the input schema of ${callee}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
    const hops = maxHopsRefusal(frame.chain, callee, frame.maxHops);
    if (hops) return refused(hops);
    const config = subagents[callee]!;
    const now = clock();
    const time = childDeadline(now, frame.deadline, config.timeoutSeconds);
    if (time.refusal) return refused(time.refusal);
    const callerBudget = subagents[caller]?.callBudget;
    const budget = callerBudget ? new DownstreamBudget(callerBudget, `the budget of a call made by ${caller}`, frame.budget) : frame.budget;
    const spent = budget?.refusal();
    if (spent) return refused(`refused: ${spent}`);

    const inputDigest = digest(input ?? {});
    const n = (this.counts.get(callee) ?? 0) + 1;
    this.counts.set(callee, n);
    const child = {
      id: `${frame.id}/${callee}#${n}`,
      subagent: callee,
      parent: frame.id,
      hop: frame.chain.length,
      ...(time.deadline !== undefined ? { deadline: time.deadline } : {}),
    };
    const abort = new AbortController();
    let timedOut = false;
    const stop = () => abort.abort();
    this.args.signal.addEventListener('abort', stop, { once: true });
    const timer =
      time.deadline === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            abort.abort();
          }, time.deadline - now);
    this.args.onStart(child);
    let run: ChildRun;
    try {
      run = await this.args.runChild({
        subagent: callee,
        config,
        input,
        frame: {
          chain: [...frame.chain, callee],
          id: child.id,
          maxHops: frame.maxHops,
          ...(time.deadline !== undefined ? { deadline: time.deadline } : {}),
          ...(budget ? { budget } : {}),
        },
        signal: abort.signal,
      });
    } catch (e) {
      // Recorded like any failed child (its writes may be in the workspace), never thrown at the caller.
      run = { ok: false, content: `the call failed in the orchestrator: ${withoutHostPaths(e)}`, events: [], children: [] };
    } finally {
      clearTimeout(timer);
      this.args.signal.removeEventListener('abort', stop);
    }
    const outcome = run.ok ? 'ok' : abort.signal.aborted ? 'stopped' : 'failed';
    const reason = timedOut
      ? `stopped at the deadline its caller gave it (${config.timeoutSeconds === undefined ? "the caller's remaining time" : "its timeoutSeconds or the caller's remaining time"})`
      : run.content;
    this.args.onEnd({
      ...child,
      outcome,
      ...(run.ok ? {} : { reason }),
      caller,
      declared: [...this.declared],
      maxHops: frame.maxHops,
      calleeKind: config.agent ? 'agent' : 'command',
      input: inputDigest,
      ...(run.ok ? { output: digest(run.content) } : {}),
      startedAt: now,
      finishedAt: clock(),
      events: run.events,
      children: run.children,
    });
    if (run.ok) return { content: run.content, isError: false, refused: false, child: child.id };
    return { content: `the call to ${callee} (${child.id}) ${outcome}: ${reason}`, isError: true, refused: false, child: child.id };
  }
}

function refused(content: string): ToolResult {
  return { content, isError: true, refused: true };
}

/** One line per child attempt in an item's output (an agent's `transcript.children` or a command's `calls`), nested ones after their parent. */
export function childAttemptsOf(output: unknown): Array<Omit<ChildRecord, 'events' | 'children'>> {
  const o = output as { transcript?: { children?: ChildRecord[] }; calls?: ChildRecord[] } | null | undefined;
  return flattenChildren(o?.transcript?.children ?? o?.calls ?? []);
}

/** Child attempts in pre-order: each one before the calls it made. */
export function flattenChildren(top: readonly ChildRecord[]): Array<Omit<ChildRecord, 'events' | 'children'>> {
  const out: Array<Omit<ChildRecord, 'events' | 'children'>> = [];
  const walk = (records: readonly ChildRecord[]): void => {
    for (const { events: _events, children, ...line } of records) {
      out.push(line);
      walk(children ?? []);
    }
  };
  walk(Array.isArray(top) ? top : []);
  return out;
}
