/**
 * The limits a call to a dependency runs within, besides max_hops: the time its caller has left, and
 * the caller's downstream budget (model calls, tokens) that the callee and everything it calls spend
 * together. The orchestrator enforces both; the agent is only told.
 */

export interface CallBudgetLimit {
  modelCalls?: number;
  tokens?: number;
}

/**
 * What one call may still spend. A budget inside another (a call made by a callee) spends from both,
 * so a grandchild can never spend more than the call that started it was given.
 */
export class DownstreamBudget {
  private calls = 0;
  private tokens = 0;

  constructor(
    private readonly limit: CallBudgetLimit,
    /** Who set it: `the budget of each call made by planner`. */
    private readonly label: string,
    private readonly outer?: DownstreamBudget,
  ) {}

  /** Why another model call may not be made, or undefined when it may. */
  refusal(): string | undefined {
    const { modelCalls, tokens } = this.limit;
    if (modelCalls !== undefined && this.calls >= modelCalls) return `${this.label} is spent: ${this.calls} of ${modelCalls} model calls made`;
    if (tokens !== undefined && this.tokens >= tokens) return `${this.label} is spent: ${this.tokens} of ${tokens} tokens used`;
    return this.outer?.refusal();
  }

  spend(tokens: number): void {
    this.calls++;
    this.tokens += tokens;
    this.outer?.spend(tokens);
  }
}

/** Below this, a caller's remaining time is too short to hand on: the call is refused. */
export const MIN_CHILD_MS = 1000;

/**
 * When a callee must be done: at most its own timeout, and never later than its caller's deadline less
 * a reserve (a tenth of what is left, at least two seconds), so the caller can still use the failure.
 */
export function childDeadline(
  now: number,
  callerDeadline: number | undefined,
  calleeTimeoutSeconds: number | undefined,
): { deadline?: number; refusal?: string } {
  const own = calleeTimeoutSeconds === undefined ? undefined : now + Math.round(calleeTimeoutSeconds * 1000);
  if (callerDeadline === undefined) return own === undefined ? {} : { deadline: own };
  const left = callerDeadline - now;
  const reserve = Math.max(2 * MIN_CHILD_MS, Math.round(left / 10));
  if (left - reserve < MIN_CHILD_MS)
    return { refusal: `refused: the caller has ${Math.max(0, left)} ms left before its deadline, too little to hand on to a call` };
  const capped = callerDeadline - reserve;
  return { deadline: own === undefined ? capped : Math.min(own, capped) };
}
