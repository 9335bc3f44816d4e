import type { Problem } from '../errors.js';
import type { RunEvent } from '../engine/types.js';
import type { Oid } from '../git/types.js';
import type { Octokit } from './octokit.js';

/** What reaches the App (events from GitHub, as app.ts reads them) and what handling them came to. */

/** A commit on a branch that may carry a plan: from a push or a pull_request event. */
export interface PlanEvent {
  octokit: Octokit;
  owner: string;
  repo: string;
  /** https clone URL without credentials. */
  cloneUrl: string;
  /** The repository's id (what the operator's trust names: a name can be transferred, an id cannot). */
  repositoryId?: number;
  /** The repository's web URL (links in summaries). */
  htmlUrl: string;
  branch: string;
  headSha: Oid;
  /** A current installation token for git over HTTPS. */
  token: () => Promise<string>;
  /** What the installation's token was granted (`{ checks: 'write', … }`); checked before any work. */
  permissions?: () => Promise<Record<string, string>>;
}

/** What the app needs to reach one repository: its installation client, URLs and a token for git. */
export type RepoHandle = Omit<PlanEvent, 'branch' | 'headSha'>;

/** Opens a repository by full name (`owner/name`) for the sweep; null when the app is not installed there. */
export interface RepoAccess {
  open(fullName: string): Promise<RepoHandle | null>;
  /** Every repository (`owner/name`) the app's installations can reach; the sweep covers them all. */
  list?(): Promise<string[]>;
}

/** A person pressed a check run's button (`requested_action`) or "Re-run" on it (`rerequested`). */
export interface CheckActionEvent extends RepoHandle {
  /**
   * `retry` an item (its check's Retry button or Re-run), or `rerun` the plan on the gate's commit
   * (`agora / audit`'s Re-run plan button, or Re-run on it).
   */
  request: 'retry' | 'rerun';
  /** The check run's name and external id (`<run>` for `agora`, `<run>/<item>` for an item). */
  checkName: string;
  externalId: string;
  headSha: Oid;
  /** The check suite's branch, when GitHub names one. */
  branch: string | null;
  /** Who pressed it (login). */
  by: string;
}

/** A head commit nobody wants run any more: its pull request was closed (merged or not) or its branch deleted. */
export interface HeadAbandonedEvent extends RepoHandle {
  cause: { kind: 'pull-request-closed'; number: number } | { kind: 'branch-deleted' };
  headSha: Oid;
  branch: string | null;
  /** Who closed or deleted it (login). */
  by: string;
}

/** Why a commit starts nothing. */
export type IgnoredEventCode =
  /** The app is closing: nothing new starts. */
  | 'app-stopping'
  /** The installation lacks a permission the app needs (named in `why`, and in an `agora` check where it can be written). */
  | 'missing-permissions'
  /** A commit Agora wrote (patch landing, integration): never a plan commit. */
  | 'agora-commit'
  | 'no-plan-file'
  /** The plan file is as in the first parent: a later push on the branch (the gate is re-evaluated when a run patched it). */
  | 'plan-unchanged'
  /** Re-run plan on a commit that has no plan file. */
  | 'no-plan-to-rerun'
  /** A newer commit on the branch changed the plan file again: its run, not this older plan's, is the one to run. */
  | 'superseded';

/** What handling one event came to (for logs and tests). */
export type EventOutcome =
  | { kind: 'ignored'; code: IgnoredEventCode; why: string }
  | { kind: 'duplicate'; key: string }
  | { kind: 'invalid'; problems: Problem[] }
  | { kind: 'started'; runId: string }
  | { kind: 'exists'; runId: string }
  /** A later push on a patched branch: the gate was re-evaluated on the new head. */
  | { kind: 'regated'; runId: string };

/** Why a button press or an abandoned head does nothing. */
export type IgnoredActionCode =
  | 'app-stopping'
  /** Not a check run of this App (or one whose external id it cannot read). */
  | 'not-agora-check'
  /** The `agora` run check offers no button (a running check's buttons are never shown). */
  | 'run-check-has-no-button'
  /** An item's check offers Retry only. */
  | 'item-offers-only-retry'
  /** Re-run plan on a commit no branch points at any more. */
  | 'no-branch-at-commit'
  /** A deleted branch's commit that another branch still points at: its runs go on. */
  | 'branch-still-at-commit';

/** What a button press (or a closed pull request, a deleted branch) came to. */
export type ActionOutcome =
  | { kind: 'ignored'; code: IgnoredActionCode; why: string }
  | { kind: 'recorded'; runId: string; event: RunEvent['type']; resumed: boolean }
  | { kind: 'no-change'; runId: string }
  | { kind: 'not-found'; runId: string }
  /** Re-run plan on a red gate: what running the plan at the gate's commit came to. */
  | { kind: 'rerun'; outcome: EventOutcome };

/** What one sweep did (for logs and tests). */
export interface SweepReport {
  repositories: number;
  /** Open PR head commits handled because no webhook had brought them. */
  discovered: EventOutcome[];
  /** Running runs nobody in this process was driving, now driven here. */
  resumed: string[];
  /** Ended runs whose driver died before their finish was complete, now finished here. */
  finished: string[];
  errors: string[];
}

/** Told to the `onOutcome` option: what a plan event, a button press or a sweep came to. */
export type AppOutcomeEvent = { kind: 'plan'; outcome: EventOutcome } | { kind: 'action'; outcome: ActionOutcome } | { kind: 'sweep'; report: SweepReport };

/** Just the repository part of an event (what the sweep keeps: no branch or commit). */
export function handleOf(ev: RepoHandle): RepoHandle {
  return {
    octokit: ev.octokit,
    owner: ev.owner,
    repo: ev.repo,
    cloneUrl: ev.cloneUrl,
    htmlUrl: ev.htmlUrl,
    token: ev.token,
    ...(ev.permissions ? { permissions: ev.permissions } : {}),
    ...(ev.repositoryId !== undefined ? { repositoryId: ev.repositoryId } : {}),
  };
}
