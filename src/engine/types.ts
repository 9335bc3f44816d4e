import type { Plan, WorkItem } from '../plan/schema.js';

/** Item lifecycle (DESIGN.md §3). */
export type ItemStatus = 'pending' | 'ready' | 'running' | 'done' | 'failed' | 'skipped' | 'cancelled';
export const TERMINAL_ITEM_STATUSES: ReadonlySet<ItemStatus> = new Set(['done', 'failed', 'skipped', 'cancelled']);

/** Whether an item in `status` has ended (done, failed, skipped or cancelled): nothing moves it again but a retry. */
export function isTerminal(status: ItemStatus): boolean {
  return TERMINAL_ITEM_STATUSES.has(status);
}

/** A run is `running` until every item is terminal; then `done` (all done), `failed` or `cancelled`. */
export type RunStatus = 'running' | 'done' | 'failed' | 'cancelled';

export interface ItemState {
  id: string;
  status: ItemStatus;
  /** Why the item failed, was skipped or cancelled, or why it waits for a retry: something a person can act on. */
  reason?: string;
  /** Attempts started so far (the running attempt's number while running). */
  attempts: number;
  /** Attempts that ended in failure; counted against `retry.maxAttempts`. Lost workers do not count. */
  failures: number;
  /** `git:<commit-id>` of the patch commit, once done. */
  resultRef?: string;
  /** The commit the current (or last) attempt ran on: the integration head at dispatch. */
  base?: string;
  /** Earliest time (epoch ms) a ready item may start: set by a retry's backoff. */
  notBefore?: number;
  /** Deadline (epoch ms) of the running attempt, from `timeoutSeconds`. */
  deadline?: number;
  startedAt?: number;
  finishedAt?: number;
  /** Blob id of the last attempt's (redacted) log, when one was kept. */
  log?: string;
  /** Exit status of the last attempt, when it ran. */
  exitCode?: number | null;
  /** The item that emitted this one at run time (absent for the plan's own items). */
  parent?: string;
  /** How many creations away from the plan: 1 for an item a plan item emitted (absent: 0). */
  hops?: number;
}

/** One item's definition as emitted, with the sha256 of its canonical JSON (computed by the adapter that read it). */
export interface EmittedItem {
  item: WorkItem;
  digest: string;
}

/** Items one attempt emitted (`$AGORA_EMIT/items.json`), validated as a plan fragment by the adapter. */
export interface Emission {
  /** Where the fragment came from, for reasons: `items.json of <item> attempt <n>`. */
  file: string;
  items: EmittedItem[];
}

/**
 * A child attempt one attempt ran (a call to a dependency, `docs/agents.md`), as its audit entry records
 * it: who called whom, at which hop, under which declaration, with digests of what went in and came out.
 */
export interface ChildCall {
  /** The child attempt's id: `<item>.<attempt>/<callee>#<n>`, nested calls longer. */
  call: string;
  /** Who made the call: `<item>.<attempt>` (the item's own worker), or the id of the child that called. */
  parent: string;
  /** The caller's subagent, the dependencies it declared, and the callee's subagent and kind. */
  caller: string;
  declared: string[];
  subagent: string;
  calleeKind: 'agent' | 'command';
  /** The callee's hop (the item is hop 0) and the chain's max_hops. */
  hop: number;
  maxHops: number;
  /** `sha256:` digests of the input's canonical JSON and (outcome ok) of the answer the caller got. */
  input: string;
  output?: string;
  outcome: 'ok' | 'failed' | 'stopped';
  /** The deadline (epoch ms) the child was given, when its caller had one or it has a timeout. */
  deadline?: number;
  startedAt: number;
  finishedAt: number;
}

/** A batch of items that joined the run: who emitted them, in which attempt, at what hop depth. */
export interface EmittedBatch {
  by: string;
  attempt: number;
  hops: number;
  items: EmittedItem[];
}

/** A run parameter's value (`agora orch run --data`). */
export type ParamValue = string | number | boolean;

/** The run's parameters as recorded (src/runs/params.ts): a secret's value is `***`; its real value stays on the submitting host. */
export interface RunParams {
  values: Record<string, ParamValue>;
  /** The keys given with `--secret-data`, sorted. */
  secret?: string[];
  /** Names the host-local file holding the secret values (present exactly when `secret` is). */
  secretStore?: string;
}

export interface RunState {
  version: 1;
  runId: string;
  queue: string;
  /** Most items running at once (from the queue's configuration at acceptance). */
  concurrency: number;
  status: RunStatus;
  reason?: string;
  acceptedAt: number;
  finishedAt?: number;
  /** The commit the run started from. */
  base: string;
  /** base + the patches of done items, one commit per item, in completion order. */
  integrationHead: string;
  /** Set once by `cancel`; reconcile then cancels every non-terminal item. */
  cancelRequested?: { reason: string; at: number };
  items: Record<string, ItemState>;
  /** Items emitted at run time, in the order they joined (emission.ts); the run's plan is plan.json plus these. */
  emitted?: EmittedBatch[];
  /** The run's parameters, when it was given any (`--data`, `--data-file`, `--secret-data`). */
  params?: RunParams;
}

/** The engine's whole input: the plan (immutable) and the state it acts on. */
export interface Run {
  plan: Plan;
  state: RunState;
}

/** Facts reported to the engine by adapters. Events for an attempt that is no longer running are ignored. */
export type RunEvent =
  | {
      type: 'item-succeeded';
      itemId: string;
      attempt: number;
      /** `git:<commit-id>` of the patch commit. */
      resultRef: string;
      /** The integration head after this item's patch was integrated. */
      integrationHead: string;
      log?: string;
      exitCode?: number | null;
      /** Items the attempt emitted: they join the run in the same step that records it done. */
      emitted?: Emission;
      /** The child attempts it ran (calls to dependencies), each one audited after the item's own transition. */
      calls?: ChildCall[];
    }
  | {
      type: 'item-failed';
      itemId: string;
      attempt: number;
      reason: string;
      /** False when a retry cannot help (e.g. a write outside the scope): fail at once. */
      retryable: boolean;
      log?: string;
      exitCode?: number | null;
      calls?: ChildCall[];
    }
  | {
      /** The worker vanished (e.g. serve was killed): run again as a new attempt, not counted as a failure. */
      type: 'item-lost';
      itemId: string;
      attempt: number;
      reason: string;
    }
  | { type: 'cancel-run'; reason: string }
  | {
      /** A person asks to run a failed or cancelled item again; its skipped dependents become pending. */
      type: 'retry-item';
      itemId: string;
      reason: string;
    }
  | {
      /** Every failed item runs again (and the items skipped because of them), in one step. */
      type: 'retry-failed';
      reason: string;
    };

/** What adapters must do after the new state is durable. Performing an action twice must be harmless. */
export type Action =
  { type: 'start'; itemId: string; attempt: number; base: string; deadline?: number } | { type: 'stop'; itemId: string; attempt: number; reason: string };

/** One state change; the audit log has an entry for each. */
export type Transition =
  | {
      kind: 'item';
      itemId: string;
      from: ItemStatus;
      to: ItemStatus;
      attempt: number;
      at: number;
      reason?: string;
      base?: string;
      resultRef?: string;
      /** The locks the item holds from this transition on (set when it starts running). */
      locks?: string[];
    }
  | { kind: 'run'; from: RunStatus | 'submitted'; to: RunStatus; at: number; reason?: string }
  | {
      /** Items joined the run, emitted by `itemId`'s attempt `attempt` (just recorded done), `hops` creations from the plan. */
      kind: 'emit';
      itemId: string;
      attempt: number;
      at: number;
      hops: number;
      items: Array<{ id: string; digest: string }>;
    }
  | ({
      /** A child attempt `itemId`'s attempt `attempt` ran, written right after that attempt's own outcome. */
      kind: 'call';
      itemId: string;
      attempt: number;
      at: number;
    } & ChildCall);

export interface StepResult {
  run: Run;
  actions: Action[];
  transitions: Transition[];
  /** The next time (epoch ms) the clock alone will change something (a deadline or a backoff), if any. */
  wakeAt?: number;
  /**
   * Ready items (in plan order, at most the run's concurrency) that did not start because the queue was
   * full or another run holds or waits for their locks: what the run records as waiting across runs.
   */
  waiting?: string[];
}
