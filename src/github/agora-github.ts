import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { appendEntries } from '../log/entry.js';
import type { OrchConfig } from '../config/types.js';
import { newRun } from '../engine/step.js';
import { TERMINAL_ITEM_STATUSES, type ItemState } from '../engine/types.js';
import type { Problem } from '../errors.js';
import { commitChanges } from '../git/tree-diff.js';
import { firstParentChain } from '../git/history.js';
import { patchCommitOf } from '../log/result-ref.js';
import { agoraIdentity } from '../git/identity.js';
import type { Oid } from '../git/types.js';
import { MAX_PLAN_BYTES, parsePlanText, planTooLarge } from '../plan/parse.js';
import { validatePlan } from '../plan/validate.js';
import { cancelRun } from '../runs/cancel.js';
import { RunDriver } from '../runs/driver.js';
import { RunLease } from '../runs/lease.js';
import { LeaseKeeper, leaseHoldMs } from '../runs/lease-keeper.js';
import { recordRequest } from '../runs/requests.js';
import type { RunEvent } from '../engine/types.js';
import { logName, readLog, readRun, writeRun, sortTree, type StoredRun } from '../runs/state-store.js';
import { finishAudit, postGate, regate, type AppSigner, type AuditOutcome } from './audit-release.js';
import { conclusionOf, invalidPlanSummary, itemOutput, runConclusion, runSummary } from './check-text.js';
import { checkRole, isAgoraCheckName, itemCheckName, itemExternalId, RUN_CHECK_NAME, runExternalId } from './check-names.js';
import { blobAt, classifyCommit, planPathSlug, runIdFor } from './plan-commit.js';
import { landPatches } from './land-patches.js';
import { RepoContext } from './repo-context.js';
import { readRepoConfig, REPO_CONFIG_PATH } from './repo-config.js';
import { missingPermissions, permits } from './permissions.js';
import { NO_TRUST, offersLocal, policyProblems, secretsFor, type WorkerPolicy } from './worker-policy.js';
import { workflowLockProblems } from './workflow-permission.js';

/**
 * The app's work, independent of Probot: turn a plan commit into a run on GitHub and report it through
 * check runs; when the run ends, push its integration commits onto the branch and publish the audit.
 * Webhook handlers only call {@link AgoraGitHub.onPlanEvent}, which returns at once; the work runs in the
 * background, keyed by repository and commit, so duplicated deliveries are no-ops. All state lives in the
 * repository (refs/agora/*) through the mirror; this object holds only caches and the running drivers.
 */

import type { Octokit } from './octokit.js';

export type { Octokit };

export interface AgoraGitHubOptions {
  /** Where repository mirrors live (disposable). */
  cacheDir: string;
  /** The app's configuration: queues, subagents (which executors this installation offers). */
  config: OrchConfig;
  /** The plan file in the repository (default `plan.json`). */
  planPath?: string;
  /** How audit bundles are signed (a local key, or keyless; see signer-env.ts); unsigned without. */
  signer?: AppSigner;
  /**
   * What repositories' plans may run and with which secrets (worker-policy.ts): `local` only for trusted
   * repository ids, secrets only from what the operator configured per repository. Default: no
   * repository is trusted and none has secrets.
   */
  policy?: WorkerPolicy;
  pollMs?: number;
  /**
   * How long an item that waited must have been running before its check shows `in_progress` (default
   * 1000 ms, GitHub's recommended spacing of writes): a shorter one goes from queued to completed in one
   * write. Items that start at once are created `in_progress`.
   */
  progressDelayMs?: number;
  /** How often the sweep runs (default 60 s): resumes undriven running runs, finds plan commits whose webhook was lost. */
  sweepIntervalMs?: number;
  /**
   * The most items a plan may have on GitHub (default 10,000): each item is a check run, GitHub keeps at
   * most 50,000 per commit, and creates at most 500 an hour per installation (content creation), so a
   * larger plan would take days to show. Locally `agora orch run` has no such limit.
   */
  maxItems?: number;
  /** Repositories (`owner/name`) the sweep covers from the start, before any webhook names them. */
  repositories?: readonly string[];
  /**
   * Run leases (several replicas, one driver per run): how long a lease holds (`ttlMs`, default 60 s; a
   * dead replica's runs are taken over this long after its last renewal; renewed after a third of it), how
   * long a driver goes without pushing its run before it re-reads it from GitHub (`refreshMs`, default 5 s:
   * a cancel recorded by another replica reaches an idle driver this fast, a busy one at its next push),
   * the clock skew tolerated between replicas (`skewMs`, default 2 s), and this process's
   * name in the lease (`holder`, default host/pid/random).
   */
  lease?: { ttlMs?: number; refreshMs?: number; skewMs?: number; holder?: string };
  /** The pause before finishing a run is tried again after GitHub refused it (ms, default 2000; the next is twice that). */
  finishRetryMs?: number;
  clock?: () => number;
  log?: { info(msg: string): void; warn(msg: string): void; error(msg: string): void };
}

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

/** Check run buttons (GitHub: at most 3 per check run; label ≤ 20, identifier ≤ 20, description ≤ 40 chars). */
export const RETRY_ACTION = { label: 'Retry', identifier: 'agora-retry', description: 'Run this item again' } as const;
export { RERUN_ACTION } from './audit-release.js';

/** What one sweep did (for logs and tests). */
export interface SweepReport {
  repositories: number;
  /** Open PR head commits handled because no webhook had brought them. */
  discovered: EventOutcome[];
  /** Running runs nobody in this process was driving, now driven here. */
  resumed: string[];
  errors: string[];
}

/** What a button press came to. */
export type ActionOutcome =
  | { kind: 'ignored'; why: string }
  | { kind: 'recorded'; runId: string; event: RunEvent['type']; resumed: boolean }
  | { kind: 'no-change'; runId: string }
  | { kind: 'not-found'; runId: string }
  /** Re-run plan on a red gate: what running the plan at the gate's commit came to. */
  | { kind: 'rerun'; outcome: EventOutcome };

interface ActiveRun {
  runId: string;
  ev: PlanEvent;
  repo: RepoContext;
  driver: RunDriver;
  runCheck: number;
  itemChecks: Map<string, number>;
  /** The status each item check last showed. */
  reported: Map<string, ItemState['status']>;
  /** GitHub updates, in commit order. */
  updates: Promise<void>;
  /** The newest state not reported yet, and whether a report of it is already queued (reports coalesce). */
  latest: StoredRun | undefined;
  reportQueued: boolean;
  /** A report scheduled for when a started item's check is due to show `in_progress`. */
  laterTimer: NodeJS.Timeout | undefined;
  /** The audit seq of the last state reported (older snapshots are skipped). */
  reportedSeq: number;
  /** Why the last report failed (GitHub refused after retries), until one succeeds. */
  reportError?: string | undefined;
  /** This process's lease on the run (renewed on its own timer), and when the run was last re-read from GitHub. */
  lease: LeaseKeeper;
  refreshedAt: number;
  wake(): void;
}

/** What handling one event came to (for logs and tests). */
export type EventOutcome =
  | { kind: 'ignored'; why: string }
  | { kind: 'duplicate'; key: string }
  | { kind: 'invalid'; problems: Problem[] }
  | { kind: 'started'; runId: string }
  | { kind: 'exists'; runId: string }
  /** A later push on a patched branch: the gate was re-evaluated on the new head. */
  | { kind: 'regated'; runId: string };

export class AgoraGitHub {
  readonly planPath: string;
  private readonly repos = new Map<string, Promise<RepoContext>>();
  private readonly seen = new Set<string>();
  private readonly active = new Map<string, ActiveRun>();
  private readonly work = new Set<Promise<unknown>>();
  private readonly clock: () => number;
  readonly outcomes: EventOutcome[] = [];
  readonly actionOutcomes: ActionOutcome[] = [];
  /** Runs this process drives or is about to (claimed synchronously, so two paths never drive one run). */
  private readonly claimed = new Set<string>();
  /**
   * Repositories the sweep covers, with the last handle an event brought (null: open through access):
   * keyed `#<repository id>` once the id is known, by lowercase full name until then. A name can pass to
   * another repository (rename, then a new one takes the name): the id is what trust and secrets belong to.
   */
  private readonly known = new Map<string, { fullName: string; handle: RepoHandle | null }>();
  private access: RepoAccess | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<SweepReport> | undefined;
  private closed = false;
  private killed = false;
  /** This process's name in run leases. */
  readonly holder: string;
  private readonly leaseTtlMs: number;
  private readonly refreshMs: number;

  constructor(private readonly opts: AgoraGitHubOptions) {
    this.planPath = opts.planPath ?? 'plan.json';
    this.clock = opts.clock ?? Date.now;
    this.holder = opts.lease?.holder ?? `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
    this.leaseTtlMs = opts.lease?.ttlMs ?? 60_000;
    this.refreshMs = opts.lease?.refreshMs ?? 5_000;
    for (const r of opts.repositories ?? []) this.watchRepository(r);
  }

  /** Adds a repository (`owner/name`) to the sweep. */
  watchRepository(fullName: string): void {
    const name = fullName.toLowerCase();
    if (![...this.known.values()].some((k) => k.fullName === name)) this.known.set(name, { fullName: name, handle: null });
  }

  /** Keeps `handle` for the sweep, under its repository id when it has one. */
  private remember(handle: RepoHandle): void {
    const fullName = `${handle.owner}/${handle.repo}`.toLowerCase();
    if (handle.repositoryId === undefined) {
      this.known.set(fullName, { fullName, handle });
      return;
    }
    this.known.delete(fullName);
    this.known.set(`#${handle.repositoryId}`, { fullName, handle });
  }

  /**
   * Sweeps now and then every `sweepIntervalMs` (default 60 s) on an unref'd timer, until close.
   * `access` opens the repositories no event has brought yet (after a restart: the configured ones).
   */
  startSweeping(access: RepoAccess): void {
    this.access = access;
    if (this.sweepTimer || this.closed) return;
    void this.sweep();
    this.sweepTimer = setInterval(() => void this.sweep(), this.opts.sweepIntervalMs ?? 60_000);
    this.sweepTimer.unref();
  }

  /**
   * One pass over the known repositories: open pull requests whose head commit no event brought are
   * handled as if their webhook had arrived (GitHub does not redeliver dropped webhooks), then every run
   * whose state on GitHub (refs/agora/runs/*) is `running` and that no driver here drives is taken over:
   * its dead attempts are recorded lost and run again, and it is finished as usual. Concurrent calls share one pass.
   */
  sweep(): Promise<SweepReport> {
    if (this.sweeping) return this.sweeping;
    const pass = this.track(this.sweepAll()).finally(() => {
      this.sweeping = undefined;
    });
    this.sweeping = pass;
    return pass;
  }

  /**
   * Simulates a crash (tests): stops every worker and every further write, records nothing — the runs stay
   * `running` on GitHub with their attempts, exactly as a killed process leaves them.
   */
  async kill(): Promise<void> {
    this.killed = true;
    this.closed = true;
    clearInterval(this.sweepTimer);
    await Promise.all([...this.active.values()].map((a) => a.driver.shutdown('killed').then(() => a.wake())));
    await this.idle();
  }

  /** A button press: records the request in the run's state (leased push), then drives the run on. */
  onCheckAction(ev: CheckActionEvent): void {
    this.remember(handleOf(ev));
    this.track(
      this.handleAction(ev).then(
        (o) => {
          this.actionOutcomes.push(o);
          this.opts.log?.info(`agora: ${ev.request} by ${ev.by} on ${ev.checkName}: ${o.kind}`);
        },
        (e: unknown) => this.opts.log?.error(`agora: ${ev.request} on ${ev.checkName}: ${(e as Error).stack ?? String(e)}`),
      ),
    );
  }

  /**
   * A pull request closed (merged or not), or a branch deleted, while a run of its head commit still
   * goes: the run is cancelled. This is how a person stops a run on github.com: GitHub shows a check
   * run's buttons only once it has completed, so a running `agora` check can offer no Cancel button.
   */
  onHeadAbandoned(ev: HeadAbandonedEvent): void {
    this.remember(handleOf(ev));
    const what = ev.cause.kind === 'pull-request-closed' ? `pull request #${ev.cause.number} was closed` : `branch ${ev.branch} was deleted`;
    this.track(
      this.cancelRunsAt(ev, `cancelled: ${what} by @${ev.by}`).then(
        (outcomes) => {
          this.actionOutcomes.push(...outcomes);
          this.opts.log?.info(`agora: ${what} by ${ev.by}: ${outcomes.map((o) => o.kind).join(', ') || 'no run to cancel'}`);
        },
        (e: unknown) => this.opts.log?.error(`agora: ${what}: ${(e as Error).stack ?? String(e)}`),
      ),
    );
  }

  /** Accepts an event and returns at once; the work goes on in the background. */
  onPlanEvent(ev: PlanEvent): void {
    this.remember(handleOf(ev));
    const key = `${ev.owner}/${ev.repo}@${ev.headSha}`.toLowerCase();
    if (this.seen.has(key)) {
      this.outcomes.push({ kind: 'duplicate', key });
      return;
    }
    this.seen.add(key);
    this.track(
      this.handle(ev).then(
        (o) => {
          this.outcomes.push(o);
          this.opts.log?.info(`agora: ${key}: ${o.kind}${'runId' in o ? ` ${o.runId}` : ''}${'why' in o ? ` (${o.why})` : ''}`);
        },
        (e: unknown) => {
          this.seen.delete(key); // a later delivery may try again
          this.opts.log?.error(`agora: ${key}: ${(e as Error).stack ?? String(e)}`);
        },
      ),
    );
  }

  /** Resolves when no event handling and no run is in progress. */
  async idle(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }

  get busy(): boolean {
    return this.work.size > 0;
  }

  /** Stops every run's workers (recorded as interrupted) and waits for the background work. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweepTimer);
    await Promise.all([...this.active.values()].map((a) => a.driver.shutdown('the agora app is stopping').then(() => a.wake())));
    await this.idle();
  }

  /** Remote pushes and refused pushes (CAS conflicts) across repositories. */
  async gitStats(): Promise<{ pushes: number; conflicts: number }> {
    let pushes = 0;
    let conflicts = 0;
    for (const r of this.repos.values()) {
      const { store } = await r;
      pushes += store.pushes;
      conflicts += store.conflicts;
    }
    return { pushes, conflicts };
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.work.add(p);
    void p.finally(() => this.work.delete(p)).catch(() => undefined);
    return p;
  }

  private repoFor(ev: RepoHandle): Promise<RepoContext> {
    const fullName = `${ev.owner}/${ev.repo}`.toLowerCase();
    // By id too: a name can pass to another repository, which must not inherit this one's trust.
    const key = `${fullName}#${ev.repositoryId ?? ''}`;
    const token = ev.token;
    let ctx = this.repos.get(key);
    if (!ctx) {
      ctx = RepoContext.open({
        cacheDir: this.opts.cacheDir,
        fullName,
        ...(ev.repositoryId !== undefined ? { repositoryId: ev.repositoryId } : {}),
        cloneUrl: ev.cloneUrl,
        config: this.opts.config,
        token,
        clock: this.clock,
        offerLocal: offersLocal(this.opts.policy ?? NO_TRUST, ev.repositoryId),
        secrets: secretsFor(this.opts.policy ?? NO_TRUST, ev.repositoryId),
      });
      ctx.catch(() => this.repos.delete(key));
      this.repos.set(key, ctx);
    } else void ctx.then((c) => c.useToken(token));
    return ctx;
  }

  /**
   * A commit on a branch: a plan commit starts a run; a later push on a patched branch re-evaluates the
   * gate. `rerun` (the gate's Re-run plan button) runs the plan at the commit even though it did not change there.
   */
  private async handle(ev: PlanEvent, opts: { rerun?: boolean } = {}): Promise<EventOutcome> {
    if (this.closed) return { kind: 'ignored', why: 'the app is stopping' };
    const granted = (await ev.permissions?.()) ?? null;
    const missing = granted ? missingPermissions(granted) : [];
    if (granted && missing.length > 0 && !permits(granted, 'contents', 'read')) return this.refuse(ev, granted, missing, null);
    const repo = await this.repoFor(ev);
    await repo.fetchForEvent(ev.branch, ev.headSha);
    if (granted && missing.length > 0) return this.refuse(ev, granted, missing, repo);
    const config = await readRepoConfig(repo.store, ev.headSha, this.planPath);
    if (!config.ok) return this.reject(ev, repo, REPO_CONFIG_PATH, config.text, config.problems);
    const planPath = config.planPath;
    let found = await classifyCommit(repo.store, ev.headSha, planPath);
    if (opts.rerun && found.kind === 'ignored') {
      const planBlob = await blobAt(repo.store, ev.headSha, planPath);
      if (!planBlob) return { kind: 'ignored', why: `no ${planPath} at ${ev.headSha.slice(0, 12)} to run again` };
      found = { kind: 'plan', planBlob };
    }
    if (found.kind === 'ignored') {
      if (found.why.endsWith('did not change')) {
        const runId = await regate({ octokit: ev.octokit, owner: ev.owner, repo: ev.repo, store: repo.store, refs: repo.refs, head: ev.headSha });
        if (runId) return { kind: 'regated', runId };
      }
      return found;
    }

    // The size from the blob's header first: a plan over the limit is refused without being read.
    const planBytes = await repo.store.objectSize(found.planBlob);
    if (planBytes > MAX_PLAN_BYTES) return this.reject(ev, repo, planPath, { blob: found.planBlob }, planTooLarge(planBytes, planPath).problems);
    const planText = new TextDecoder().decode(await repo.store.readBlob(found.planBlob));
    const problems: Problem[] = [];
    let plan;
    try {
      const result = validatePlan(parsePlanText(planText, planPath), this.opts.config);
      const maxItems = this.opts.maxItems ?? 10_000;
      if (result.ok && result.plan.items.length > maxItems) {
        problems.push({
          path: '$.items',
          message: `${result.plan.items.length} items is too many for the GitHub App (at most ${maxItems}): each item is a check run, and GitHub creates at most 500 an hour; split the plan, or run it locally with \`agora orch run\``,
        });
      } else if (result.ok) {
        // What the operator does not allow this repository fails the plan here, before anything runs.
        const refused = [
          ...policyProblems(result.plan, this.opts.config, new Set(Object.keys(repo.attempt.targets)), repo.attempt.environment as Record<string, string>),
          ...(granted ? workflowLockProblems(result.plan, granted) : []), // unknown grant: the push says it
        ];
        if (refused.length > 0) problems.push(...refused);
        else plan = result.plan;
      } else problems.push(...result.problems);
    } catch (e) {
      problems.push(...((e as { problems?: Problem[] }).problems ?? [{ path: '$', message: (e as Error).message }]));
    }
    if (!plan) return this.reject(ev, repo, planPath, planText, problems);

    const runId = runIdFor(plan.id, ev.headSha);
    const now = this.clock();
    const concurrency = this.opts.config.queues[plan.queue]?.concurrency ?? this.opts.config.defaultConcurrency;
    const created = newRun(plan, { runId, base: ev.headSha, concurrency, now });
    const stored = await writeRun(repo.store, repo.refs, {
      runId,
      prev: null,
      planText,
      state: created.run.state,
      entries: appendEntries(null, runId, created.transitions),
      transitions: created.transitions,
      now,
    });
    if (!stored) return { kind: 'exists', runId }; // another delivery or replica created it: nothing to do
    await this.supersede(ev, repo, runId);
    await this.startRun(ev, repo, stored);
    return { kind: 'started', runId };
  }

  /**
   * The installation lacks a permission the app needs: a log line names each, and, where the token can
   * read the commit and write checks, a failed `agora` check on a plan commit says the same. Nothing runs.
   */
  private async refuse(ev: PlanEvent, granted: Record<string, string>, missing: string[], repo: RepoContext | null): Promise<EventOutcome> {
    const why = `the installation on ${ev.owner}/${ev.repo} lacks ${missing.map((m) => m.split(' (')[0]).join(', ')}`;
    const fix = "add them in the app's settings (Permissions & events), then accept them on the installation (Settings → GitHub Apps → Configure)";
    this.opts.log?.error(`agora: ${why}: ${missing.join('; ')}. Nothing runs until you ${fix}.`);
    if (repo && permits(granted, 'checks', 'write')) {
      const config = await readRepoConfig(repo.store, ev.headSha, this.planPath);
      const found = await classifyCommit(repo.store, ev.headSha, config.ok ? config.planPath : this.planPath);
      // Once per commit in this process (a lock ref would need the very contents: write that may be missing).
      if (found.kind === 'plan') {
        // GitHub asks a check that requires action for a page to act on: the repository's installed apps.
        await finalRunCheck(
          ev,
          'action_required',
          {
            title: `Missing permission${missing.length === 1 ? '' : 's'}: ${missing.map((m) => m.split(' (')[0]).join(', ')}`,
            summary: [`The plan was not run: the Agora app's installation lacks what it needs.`, '', ...missing.map((m) => `- ${m}`), '', `To fix: ${fix}. Then push again.`].join('\n'),
          },
          undefined,
          `${ev.htmlUrl}/settings/installations`,
        );
      }
    }
    return { kind: 'ignored', why };
  }

  /**
   * An invalid plan (or `.github/agora.yml`): one failed `agora` check, once per commit (the rejection ref
   * is the lock). `source` is the file at fault, `content` its text or (when it was not read) its blob.
   */
  private async reject(ev: PlanEvent, repo: RepoContext, source: string, content: string | { blob: Oid }, problems: Problem[]): Promise<EventOutcome> {
    const id = `${planPathSlug(source)}-${ev.headSha.slice(0, 12)}`;
    const who = agoraIdentity(this.clock());
    const tree = await repo.store.writeTree(
      sortTree([
        { mode: '100644', path: 'errors.json', oid: await repo.store.writeBlob(`${JSON.stringify({ problems }, null, 2)}\n`), type: 'blob' },
        { mode: '100644', path: source.slice(source.lastIndexOf('/') + 1), oid: typeof content === 'string' ? await repo.store.writeBlob(content) : content.blob, type: 'blob' },
      ]),
    );
    const commit = await repo.store.writeCommit({
      tree,
      parents: [],
      message: `agora: ${id} rejected (${problems.length} problems)\n\nAgora-Run: ${id}\n`,
      author: who,
      committer: who,
    });
    if (!(await repo.store.casRef(repo.refs.rejected(id), commit, null))) return { kind: 'duplicate', key: id };
    await finalRunCheck(
      ev,
      'failure',
      {
        title: `Invalid ${source === REPO_CONFIG_PATH ? source : 'plan'}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`,
        summary: invalidPlanSummary(source, problems, source === REPO_CONFIG_PATH ? 'repository config' : 'plan'),
      },
      id,
    );
    return { kind: 'invalid', problems };
  }

  /**
   * A new plan commit on a branch cancels the running runs of older plan commits below it, whichever
   * replica drives them: the cancel is recorded in the run's state on GitHub (a leased push), and the
   * driver sees it at its next refresh. A run whose plan commit is still the head of some branch (another
   * PR branched off it) is left alone: it is not superseded there. (The mirror holds every run ref:
   * fetchForEvent fetched them.)
   */
  private async supersede(ev: PlanEvent, repo: RepoContext, runId: string): Promise<void> {
    const below = new Set<Oid>();
    let at: Oid | undefined = (await repo.store.readCommit(ev.headSha)).parents[0];
    for (let n = 0; at && n < 1000; n += 1) {
      below.add(at);
      at = (await repo.store.readCommit(at)).parents[0];
    }
    let heads: Set<Oid> | undefined;
    for (const { ref } of await repo.store.listRefs(repo.refs.runsPrefix)) {
      const older = ref.slice(repo.refs.runsPrefix.length);
      if (older === runId) continue;
      const run = await readRun(repo.store, repo.refs, older);
      if (run?.state.status !== 'running' || !below.has(run.state.base)) continue;
      heads ??= new Set((await repo.store.mirror.listRemoteRefs('refs/heads/')).values());
      if (heads.has(run.state.base)) continue;
      const reason = `superseded by a new plan commit ${ev.headSha.slice(0, 12)} on ${ev.branch} (run ${runId})`;
      const outcome = await cancelRun(repo.store, repo.refs, older, reason, this.clock);
      this.opts.log?.info(`agora: ${older}: ${outcome.kind} (${reason})`);
      this.active.get(older)?.wake();
    }
  }

  private async startRun(ev: PlanEvent, repo: RepoContext, stored: StoredRun): Promise<void> {
    if (this.claimed.has(stored.runId)) return;
    this.claimed.add(stored.runId);
    try {
      const lease = await this.takeLease(repo, stored.runId);
      if (!lease) {
        this.claimed.delete(stored.runId);
        return;
      }
      let runCheck: number;
      try {
        runCheck = await this.createRunCheck(ev, stored);
      } catch (e) {
        await lease.stop({ release: !this.killed });
        throw e;
      }
      this.opts.log?.info(`agora: ${stored.runId}: run check created`);
      // Item checks are created by the first report, after the driver's first tick: an item that starts
      // at once is created `in_progress` (one write less), the others `queued`.
      this.drive(ev, repo, stored, runCheck, new Map(), new Map(), lease);
    } catch (e) {
      this.claimed.delete(stored.runId);
      throw e;
    }
  }

  /**
   * Takes over a run no driver in this process drives (after a restart, a lost webhook, a button press
   * on a finished run): finds its check runs on the plan commit (creating the missing ones, and a new
   * `agora` check when the old one is completed), records the dead process's attempts lost, drives it.
   */
  private async resume(handle: RepoHandle, repo: RepoContext, stored: StoredRun, branch: string | null): Promise<boolean> {
    const active = this.active.get(stored.runId);
    if (active) {
      active.wake();
      return false;
    }
    if (this.claimed.has(stored.runId) || this.closed) return false;
    this.claimed.add(stored.runId);
    let lease: LeaseKeeper | null = null;
    try {
      // Another live replica drives it: that one sees what was recorded at its next refresh.
      lease = await this.takeLease(repo, stored.runId);
      if (!lease) {
        this.claimed.delete(stored.runId);
        return false;
      }
      // The newest state, now that nobody else drives it.
      await repo.store.fetch([`+${repo.refs.run(stored.runId)}:${repo.refs.run(stored.runId)}`]);
      stored = (await readRun(repo.store, repo.refs, stored.runId)) ?? stored;
      const { state, plan } = stored;
      if (!(await repo.store.hasObject(state.base))) await repo.store.fetch([state.base]);
      const ev: PlanEvent = { ...handle, headSha: state.base, branch: branch ?? (await branchAt(repo, [state.base, state.integrationHead])) ?? '' };
      const existing = await ev.octokit.paginate(ev.octokit.rest.checks.listForRef, { owner: ev.owner, repo: ev.repo, ref: state.base, filter: 'latest', per_page: 100 });
      const byExternal = new Map(existing.filter((c) => isAgoraCheckName(c.name)).map((c) => [c.external_id ?? '', c]));
      const old = byExternal.get(runExternalId(stored.runId));
      const runCheck = old && old.status !== 'completed' ? old.id : await this.createRunCheck(ev, stored);
      const itemChecks = new Map<string, number>();
      const reported = new Map<string, ItemState['status']>();
      for (const item of plan.items) {
        const c = byExternal.get(itemExternalId(stored.runId, item.id));
        const now = state.items[item.id]!;
        if (!c) itemChecks.set(item.id, await this.createItemCheck(ev, stored, item.id, 'queued'));
        else {
          itemChecks.set(item.id, c.id);
          // A completed check whose item is open again gets a new check run (report() sees "reopened").
          if (c.status === 'completed') reported.set(item.id, TERMINAL_ITEM_STATUSES.has(now.status) ? now.status : 'failed');
        }
      }
      const driver = this.drive(ev, repo, stored, runCheck, itemChecks, reported, lease);
      await driver.recover();
      this.active.get(stored.runId)?.wake();
      this.opts.log?.info(`agora: ${stored.runId}: resumed on ${ev.branch || '(no branch)'}`);
      return true;
    } catch (e) {
      if (!this.active.has(stored.runId)) {
        this.claimed.delete(stored.runId);
        await lease?.stop({ release: !this.killed });
      }
      throw e;
    }
  }

  private async resumeIfReopened(ev: PlanEvent, repo: RepoContext, runId: string): Promise<void> {
    await repo.store.fetch([`+${repo.refs.run(runId)}:${repo.refs.run(runId)}`]);
    const after = await readRun(repo.store, repo.refs, runId);
    if (after && after.state.status === 'running') await this.resume(handleOf(ev), repo, after, ev.branch || null);
  }

  /**
   * This process's lease on a run, kept alive from now on by its own timer, or null (logged) while another
   * live replica holds it. The lease is written for at least the configured ttl, longer when round trips
   * to GitHub are slow (see lease-keeper.ts), so it never lands already expired.
   */
  private async takeLease(repo: RepoContext, runId: string): Promise<LeaseKeeper | null> {
    const roundTrips = repo.store.roundTrips;
    const got = await RunLease.acquire(repo.store, repo.refs, runId, {
      holder: this.holder,
      ttlMs: leaseHoldMs(this.leaseTtlMs, roundTrips),
      now: this.clock(),
      ...(this.opts.lease?.skewMs !== undefined ? { skewMs: this.opts.lease.skewMs } : {}),
    });
    if (!got.ok) {
      this.opts.log?.info(`agora: ${runId}: driven by ${got.holder} (lease until ${new Date(got.until).toISOString()})`);
      return null;
    }
    return new LeaseKeeper(got.lease, {
      clock: this.clock,
      ttlMs: this.leaseTtlMs,
      roundTrips,
      onLost: () => this.active.get(runId)?.wake(),
      onError: (e) => this.opts.log?.warn(`agora: ${runId}: renewing the lease failed (will retry): ${(e as Error).message}`),
    });
  }

  /**
   * Between ticks: gives the run up when the lease was lost (another replica found it expired — this
   * process stalled — and drives it now: this one stops its workers and lets go; false), and re-reads the
   * run from GitHub (what other replicas recorded: a cancel, a retry) when this driver has not pushed it
   * for `refreshMs`, counted from the end of the last re-read or push — a push that lands proves the run
   * was not moved by anyone else, and one that is refused re-reads it anyway.
   */
  private async keepLease(active: ActiveRun): Promise<boolean> {
    const { store, refs } = active.repo;
    if (active.lease.lost) {
      const holder = (await RunLease.read(store, refs, active.runId).catch(() => null))?.holder ?? 'another replica';
      this.opts.log?.warn(`agora: ${active.runId}: lease lost to ${holder}; stopping this process's workers`);
      await active.driver.shutdown(`the run is driven by ${holder} now`);
      return false;
    }
    if (this.clock() - active.refreshedAt < this.refreshMs) return true;
    try {
      await store.fetch([`+${refs.run(active.runId)}:${refs.run(active.runId)}`]);
    } catch (e) {
      this.opts.log?.warn(`agora: ${active.runId}: refreshing from GitHub failed (will retry): ${(e as Error).message}`);
    } finally {
      active.refreshedAt = this.clock();
    }
    return true;
  }

  private async createRunCheck(ev: PlanEvent, stored: StoredRun): Promise<number> {
    const res = await ev.octokit.rest.checks.create({
      owner: ev.owner,
      repo: ev.repo,
      head_sha: ev.headSha,
      name: RUN_CHECK_NAME,
      status: 'in_progress',
      external_id: runExternalId(stored.runId),
      output: { title: `Run ${stored.runId}: ${stored.plan.items.length} items`, summary: runSummary(stored.plan, stored.state) },
    });
    return res.data.id;
  }

  private async createItemCheck(ev: PlanEvent, stored: StoredRun, itemId: string, status: 'queued' | 'in_progress'): Promise<number> {
    const item = stored.plan.items.find((i) => i.id === itemId)!;
    const attempts = stored.state.items[itemId]?.attempts ?? 0;
    const res = await ev.octokit.rest.checks.create({
      owner: ev.owner,
      repo: ev.repo,
      head_sha: ev.headSha,
      name: itemCheckName(item.id),
      status,
      external_id: itemExternalId(stored.runId, item.id),
      output:
        status === 'queued'
          ? { title: `${item.id}: queued`, summary: `Run \`${stored.runId}\`, item \`${item.id}\`: waiting for ${item.depends_on.length ? item.depends_on.map((d) => `\`${d}\``).join(', ') : 'a free slot'}.` }
          : { title: `${item.id}: running (attempt ${attempts})`, summary: `Run \`${stored.runId}\`, item \`${item.id}\`: attempt ${attempts} is running.` },
    });
    return res.data.id;
  }

  /** Drives a claimed run in the background until it ends (and again if a button reopens it meanwhile). */
  private drive(
    ev: PlanEvent,
    repo: RepoContext,
    stored: StoredRun,
    runCheck: number,
    itemChecks: Map<string, number>,
    reported: Map<string, ItemState['status']>,
    lease: LeaseKeeper,
  ): RunDriver {
    let wakeUp: (() => void) | undefined;
    let woken = false;
    const wake = () => {
      woken = true;
      wakeUp?.();
    };
    const active: ActiveRun = {
      runId: stored.runId,
      ev,
      repo,
      runCheck,
      itemChecks,
      reported,
      updates: Promise.resolve(),
      latest: undefined,
      reportQueued: false,
      laterTimer: undefined,
      reportedSeq: -1,
      lease,
      refreshedAt: this.clock(),
      wake,
      driver: new RunDriver(stored, repo.attempt, {
        wake,
        onCommit: (run) => {
          active.refreshedAt = this.clock(); // the push landed: GitHub holds exactly this state
          this.enqueueReport(active, run);
        },
      }),
    };
    this.active.set(stored.runId, active);
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        if (woken) {
          woken = false;
          resolve();
          return;
        }
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wakeUp = undefined;
          woken = false;
          resolve();
        }
        wakeUp = done;
      });
    this.track(
      (async () => {
        try {
          let firstTick = true;
          for (;;) {
            for (;;) {
              if (this.killed) return;
              await active.driver.tick();
              if (firstTick) this.enqueueReport(active, active.driver.run); // every item gets its check, even if the tick committed nothing
              firstTick = false;
              if (this.killed) return;
              if (active.driver.run.state.status !== 'running' && !active.driver.busy) break;
              if (this.closed && !active.driver.busy) break;
              const at = active.driver.wakeAt;
              await sleep(Math.min(this.opts.pollMs ?? 500, this.refreshMs, at === undefined ? Infinity : Math.max(0, at - this.clock())));
              if (!this.closed && !(await this.keepLease(active))) return;
            }
            this.enqueueReport(active, active.driver.run); // transitions other writers committed (a cancel)
            await active.updates;
            if (this.killed || active.driver.run.state.status === 'running') return;
            await this.settleReports(active);
            await this.finishPatiently(active);
            // A Retry pressed while the run was finishing (here or on another replica) reopened it: drive it
            // again, with a new run check.
            await repo.store.fetch([`+${repo.refs.run(stored.runId)}:${repo.refs.run(stored.runId)}`]);
            await active.driver.tick();
            if (this.closed || (active.driver.run.state.status as string) !== 'running') return;
            active.runCheck = await this.createRunCheck(ev, active.driver.run);
          }
        } finally {
          clearTimeout(active.laterTimer);
          // A crash (kill) leaves the lease to expire; otherwise the next replica may take the run at once.
          await active.lease.stop({ release: !this.killed });
          this.active.delete(stored.runId);
          this.claimed.delete(stored.runId);
          // A Retry another replica recorded while this one still held the lease found it taken and left the
          // run to its holder: look once more now that the lease is free, and drive the run again if it reopened.
          if (!this.closed && !this.killed) await this.resumeIfReopened(ev, repo, stored.runId);
        }
      })().catch((e: unknown) => this.opts.log?.error(`agora: ${stored.runId}: ${(e as Error).stack ?? String(e)}`)),
    );
    return active.driver;
  }

  private async handleAction(ev: CheckActionEvent): Promise<ActionOutcome> {
    if (this.closed) return { kind: 'ignored', why: 'the app is stopping' };
    const role = checkRole(ev.checkName, ev.externalId);
    if (!role) return { kind: 'ignored', why: `not an agora run or item check: ${ev.checkName}` };
    if (role.kind === 'gate') return this.rerun(ev);
    if (role.kind === 'run') return { kind: 'ignored', why: 'the run check offers no button (close the pull request to cancel the run)' };
    if (ev.request !== 'retry') return { kind: 'ignored', why: 'an item check offers only Retry' };
    const runId = role.runId;
    const event: RunEvent = { type: 'retry-item', itemId: role.itemId, reason: `retried by @${ev.by}` };
    const repo = await this.repoFor(ev);
    await repo.store.fetch([`+${repo.refs.ns}*:${repo.refs.ns}*`]);
    return this.recordAndDrive(ev, repo, runId, event, ev.branch);
  }

  /**
   * Cancels every run still going on the abandoned head commit (run ids end in its short sha). A deleted
   * branch's commit that another branch still points at keeps its runs: that branch still wants them.
   */
  private async cancelRunsAt(ev: HeadAbandonedEvent, reason: string): Promise<ActionOutcome[]> {
    const repo = await this.repoFor(ev);
    const holder = ev.cause.kind === 'branch-deleted' ? await branchAt(repo, [ev.headSha]) : null;
    if (holder !== null) return [{ kind: 'ignored', why: `branch ${holder} still points at ${ev.headSha.slice(0, 12)}` }];
    await repo.store.fetch([`+${repo.refs.ns}*:${repo.refs.ns}*`]);
    const outcomes: ActionOutcome[] = [];
    const suffix = `-${ev.headSha.slice(0, 12)}`;
    for (const { ref } of await repo.store.listRefs(repo.refs.runsPrefix)) {
      const runId = ref.slice(repo.refs.runsPrefix.length);
      if (!runId.endsWith(suffix)) continue;
      const run = await readRun(repo.store, repo.refs, runId);
      if (run?.state.base !== ev.headSha) continue; // a run that already ended comes back as no-change
      outcomes.push(await this.recordAndDrive(ev, repo, runId, { type: 'cancel-run', reason }, ev.branch));
    }
    return outcomes;
  }

  /** Records a person's request in the run's state, then wakes the run's driver here or resumes the run. */
  private async recordAndDrive(ev: RepoHandle, repo: RepoContext, runId: string, event: RunEvent, branch: string | null): Promise<ActionOutcome> {
    // recordRequest writes through the mirror: a leased push; when another writer moved the run, the
    // ref is re-fetched and the event applied again to the new state.
    const outcome = await recordRequest(repo.store, repo.refs, runId, event, this.clock);
    if (outcome.kind === 'not-found') return { kind: 'not-found', runId };
    if (outcome.kind === 'no-change') return { kind: 'no-change', runId };
    const active = this.active.get(runId);
    if (active) {
      active.wake();
      return { kind: 'recorded', runId, event: event.type, resumed: false };
    }
    const resumed = await this.resume(ev, repo, outcome.run, branch);
    return { kind: 'recorded', runId, event: event.type, resumed };
  }

  /**
   * Re-run plan (or Re-run) on the gate: runs the plan at the gate's commit as if it had just been pushed
   * there. The run id comes from the commit, so pressing it twice, or on two replicas, starts one run.
   */
  private async rerun(ev: CheckActionEvent): Promise<ActionOutcome> {
    const repo = await this.repoFor(ev);
    const branch = ev.branch ?? (await branchAt(repo, [ev.headSha]));
    if (!branch) return { kind: 'ignored', why: `no branch points at ${ev.headSha.slice(0, 12)} any more` };
    const outcome = await this.handle({ ...handleOf(ev), branch, headSha: ev.headSha }, { rerun: true });
    this.outcomes.push(outcome);
    return { kind: 'rerun', outcome };
  }

  private async sweepAll(): Promise<SweepReport> {
    const report: SweepReport = { repositories: 0, discovered: [], resumed: [], errors: [] };
    try {
      for (const fullName of (await this.access?.list?.()) ?? []) this.watchRepository(fullName);
    } catch (e) {
      const msg = `agora: sweep: listing the installations' repositories: ${(e as Error).message}`;
      report.errors.push(msg);
      this.opts.log?.warn(msg);
    }
    for (const [key, known] of [...this.known]) {
      if (this.closed) break;
      const { fullName } = known;
      try {
        const handle = known.handle ? await this.stillNamed(key, known.handle) : await this.open(fullName);
        if (!handle) continue;
        report.repositories += 1;
        await this.sweepRepository(handle, report);
      } catch (e) {
        const msg = `agora: sweep of ${fullName}: ${(e as Error).message}`;
        report.errors.push(msg);
        this.opts.log?.warn(msg);
      }
    }
    if (report.discovered.length || report.resumed.length) {
      this.opts.log?.info(`agora: sweep: ${report.discovered.length} commits discovered, resumed ${report.resumed.join(', ') || 'none'}`);
    }
    return report;
  }

  /** Opens `fullName` through the app's access (and remembers it by id); null when the app is not installed there. */
  private async open(fullName: string): Promise<RepoHandle | null> {
    const handle = (await this.access?.open(fullName)) ?? null;
    if (handle) this.remember(handle);
    return handle;
  }

  /**
   * An event's handle, if its name still names its repository. When another repository answers to the
   * name now (the old one was renamed, or deleted, and a new one took the name), the handle is dropped
   * and the name is opened afresh: the new repository gets its own id, trust and secrets, never the old
   * one's. (The renamed repository is found under its new name through the installations' list.)
   */
  private async stillNamed(key: string, handle: RepoHandle): Promise<RepoHandle | null> {
    if (handle.repositoryId === undefined) return handle;
    let id: number | null;
    try {
      id = (await handle.octokit.rest.repos.get({ owner: handle.owner, repo: handle.repo })).data.id;
    } catch (e) {
      if ((e as { status?: number }).status !== 404) throw e;
      id = null;
    }
    if (id === handle.repositoryId) return handle;
    this.known.delete(key);
    const fullName = `${handle.owner}/${handle.repo}`.toLowerCase();
    this.opts.log?.info(`agora: sweep: ${fullName} no longer names repository ${handle.repositoryId}${id === null ? '' : ` (it names ${id} now)`}`);
    return id === null ? null : this.open(fullName);
  }

  private async sweepRepository(handle: RepoHandle, report: SweepReport): Promise<void> {
    const { octokit, owner, repo: name } = handle;
    const fullName = `${owner}/${name}`.toLowerCase();
    // Webhooks GitHub never delivered: the open pull requests' head commits (forks are not ours).
    const pulls = await octokit.paginate(octokit.rest.pulls.list, { owner, repo: name, state: 'open', per_page: 100 });
    for (const pr of pulls) {
      if (this.closed) return;
      if (pr.head.repo?.full_name?.toLowerCase() !== fullName) continue;
      const key = `${fullName}@${pr.head.sha}`.toLowerCase();
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      try {
        const outcome = await this.handle({ ...handle, branch: pr.head.ref, headSha: pr.head.sha });
        this.outcomes.push(outcome);
        report.discovered.push(outcome);
      } catch (e) {
        this.seen.delete(key);
        throw e;
      }
    }
    // Runs left running by a process that died (or a replica that stopped).
    const repo = await this.repoFor(handle);
    await repo.store.fetch([`+${repo.refs.runsPrefix}*:${repo.refs.runsPrefix}*`]);
    for (const { ref } of await repo.store.listRefs(repo.refs.runsPrefix)) {
      const runId = ref.slice(repo.refs.runsPrefix.length);
      if (this.claimed.has(runId) || this.closed) continue;
      const run = await readRun(repo.store, repo.refs, runId);
      if (run?.state.status !== 'running') continue;
      await repo.store.fetch([`+${repo.refs.ns}*:${repo.refs.ns}*`]);
      if (await this.resume(handle, repo, (await readRun(repo.store, repo.refs, runId))!, null)) report.resumed.push(runId);
    }
  }

  /**
   * Item checks follow the state, not the transitions this driver made: a cancel (or any other writer)
   * commits transitions the driver only loads, so each call reports every item whose status moved since
   * the last report.
   */
  private async report(active: ActiveRun, run: StoredRun): Promise<void> {
    const { octokit, owner, repo } = active.ev;
    const seq = run.last?.seq ?? -1;
    if (seq < active.reportedSeq) return; // an older snapshot than one already shown
    active.reportedSeq = seq;
    for (const item of Object.values(run.state.items)) {
      let id = active.itemChecks.get(item.id);
      const before = active.reported.get(item.id);
      if (id === undefined) {
        // First report of a new run: running items are created in progress, waiting ones queued; a terminal
        // one (a cancel came first) is created queued and completed just below.
        const running = item.status === 'running';
        id = await this.createItemCheck(active.ev, run, item.id, running ? 'in_progress' : 'queued');
        active.itemChecks.set(item.id, id);
        if (running) active.reported.set(item.id, item.status);
        if (!TERMINAL_ITEM_STATUSES.has(item.status)) continue;
      }
      if (before === item.status) continue;
      if (before !== undefined && TERMINAL_ITEM_STATUSES.has(before) && !TERMINAL_ITEM_STATUSES.has(item.status)) {
        // Reopened (Retry): a new check run for the new attempt; GitHub keeps the old one in the history.
        const running = item.status === 'running';
        active.itemChecks.set(item.id, await this.createItemCheck(active.ev, run, item.id, running ? 'in_progress' : 'queued'));
        if (running) active.reported.set(item.id, item.status);
        else active.reported.delete(item.id);
        continue;
      }
      if (item.status === 'running' && !TERMINAL_ITEM_STATUSES.has(before ?? 'pending')) {
        const delay = this.opts.progressDelayMs ?? 1000;
        const ranFor = item.startedAt === undefined ? delay : this.clock() - item.startedAt;
        if (ranFor < delay) {
          this.reportLater(active, delay - ranFor);
          continue;
        }
        // It already finished here; the next commit records it, and its report completes the check in one write.
        if (active.driver.hasPendingOutcome(item.id)) continue;
        await octokit.rest.checks.update({
          owner,
          repo,
          check_run_id: id,
          status: 'in_progress',
          ...(item.startedAt ? { started_at: new Date(item.startedAt).toISOString() } : {}),
          output: { title: `${item.id}: running (attempt ${item.attempts})`, summary: `Run \`${run.runId}\`, item \`${item.id}\`: attempt ${item.attempts} is running.` },
        });
        active.reported.set(item.id, item.status); // only once shown: a write that failed is made again next report
      } else if (TERMINAL_ITEM_STATUSES.has(item.status)) {
        const conclusion = conclusionOf(item.status);
        if (!conclusion) continue;
        await octokit.rest.checks.update({
          owner,
          repo,
          check_run_id: id,
          status: 'completed',
          conclusion,
          // Reports coalesce, so an item that ran between two reports was never shown in progress: its start still shows.
          ...(item.startedAt ? { started_at: new Date(item.startedAt).toISOString() } : {}),
          completed_at: new Date(item.finishedAt ?? this.clock()).toISOString(),
          output: itemOutput(run.runId, item, await this.itemDetails(active, run, item)),
          actions: item.status === 'failed' ? [RETRY_ACTION] : [],
        });
        active.reported.set(item.id, item.status);
      }
    }
  }

  private async itemDetails(active: ActiveRun, run: StoredRun, item: ItemState) {
    const { store } = active.repo;
    const patch = patchCommitOf(item.resultRef);
    const changes = patch ? await commitChanges(store, patch) : [];
    const log = item.attempts > 0 ? await readLog(store, run.logsTree, logName(item.id, item.attempts)) : null;
    return {
      changes,
      ...(patch ? { patchUrl: `${active.ev.htmlUrl}/commit/${patch}` } : {}),
      ...(log ? { logTail: log.split('\n').slice(-40).join('\n').slice(-4000) } : {}),
    };
  }

  /** Reports the run's newest state again in `ms` (one timer per run; a report that finds more due schedules again). */
  private reportLater(active: ActiveRun, ms: number): void {
    if (active.laterTimer) return;
    active.laterTimer = setTimeout(() => {
      active.laterTimer = undefined;
      if (this.active.get(active.runId) === active && !this.killed) this.enqueueReport(active, active.driver.run);
    }, ms);
  }

  /**
   * Queues a report of `run` behind the ones in flight. Reports coalesce: while one is being written, later
   * states replace each other and only the newest is reported, so an item that started and finished in
   * between goes from queued to completed in one write (GitHub shows the final state either way).
   */
  private enqueueReport(active: ActiveRun, run: StoredRun): void {
    if (!active.latest || (run.last?.seq ?? -1) >= (active.latest.last?.seq ?? -1)) active.latest = run;
    if (active.reportQueued) return;
    active.reportQueued = true;
    active.updates = active.updates
      .then(() => {
        active.reportQueued = false;
        const newest = active.latest ?? run;
        return this.killed ? undefined : this.report(active, newest);
      })
      .then(
        () => {
          active.reportError = undefined;
        },
        (e: unknown) => {
          // GitHub refused even after the client's retries (e.g. secondary limits under sustained load): the
          // checks not shown yet are written again by the next report; one comes in 2 s if nothing else does.
          active.reportError = (e as Error).message;
          this.opts.log?.info(`agora: ${run.runId}: check update deferred (will try again): ${active.reportError}`);
          this.reportLater(active, 2000);
        },
      );
  }

  /**
   * Before a run's checks are completed: every item check must show its final state. Reports that GitHub
   * refused are made again (3 tries); what still fails is logged by name.
   */
  private async settleReports(active: ActiveRun): Promise<void> {
    const behind = () => Object.values(active.driver.run.state.items).filter((i) => TERMINAL_ITEM_STATUSES.has(i.status) && active.reported.get(i.id) !== i.status);
    for (let tries = 0; tries < 3 && behind().length > 0; tries += 1) {
      this.enqueueReport(active, active.driver.run);
      await active.updates;
    }
    const left = behind();
    if (left.length > 0) this.opts.log?.warn(`agora: ${active.runId}: the checks of ${left.map((i) => i.id).join(', ')} could not be updated: ${active.reportError ?? 'unknown error'}`);
  }

  /**
   * Finishing writes to GitHub several times (branch, release, gate, run check); when GitHub still refuses
   * after the client's own retries (secondary limits under sustained load, an outage), the whole finish is
   * tried again — each step finds what an earlier try did — 3 times, `finishRetryMs` (default 2 s) and twice
   * that apart.
   */
  private async finishPatiently(active: ActiveRun): Promise<void> {
    for (let tries = 1; ; tries += 1) {
      try {
        await this.finish(active);
        return;
      } catch (e) {
        if (tries >= 3 && !this.closed) await this.finishFailed(active, e);
        if (tries >= 3 || this.closed) throw e;
        this.opts.log?.info(`agora: ${active.runId}: finishing failed (will try again): ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, (this.opts.finishRetryMs ?? 2000) * tries));
      }
    }
  }

  /**
   * Finishing failed for good: the run check is completed (failure) and the gate on the plan commit is
   * red, both naming why, so that no check is left in progress. Best effort: GitHub may still refuse.
   */
  private async finishFailed(active: ActiveRun, e: unknown): Promise<void> {
    const run = active.driver.run;
    const { octokit, owner, repo } = active.ev;
    const why = `finishing the run failed 3 times: ${(e as Error).message ?? String(e)}`;
    try {
      await postGate(active.ev, run.state.base, run.runId, 'failure', {
        title: 'Not audited: the run could not be finished',
        summary: `Run \`${run.runId}\` (${run.state.status}): ${why}`,
      });
      await octokit.rest.checks.update({
        owner,
        repo,
        check_run_id: active.runCheck,
        status: 'completed',
        conclusion: 'failure',
        output: { title: `Run ${run.runId}: ${run.state.status}, not finished`, summary: runSummary(run.plan, run.state, [why]) },
        actions: [],
      });
    } catch (err) {
      this.opts.log?.warn(`agora: ${run.runId}: ${why}; the checks could not be completed either: ${(err as Error).message}`);
    }
  }

  /** The run is terminal: push its commits onto the branch, publish the audit, complete the run check. */
  private async finish(active: ActiveRun): Promise<void> {
    const run = active.driver.run;
    const { state, plan } = run;
    const { octokit, owner, repo, branch } = active.ev;
    const notes: string[] = [];
    let audit: AuditOutcome | undefined;
    let landingRefused: string | undefined;
    if (state.status !== 'cancelled') {
      let head: Oid = state.base;
      const commits = await countCommits(active.repo, state.integrationHead, state.base);
      if (state.status === 'done' && commits > 0 && !branch) {
        notes.push(`No branch points at the plan commit any more, so the ${commits} patch commit${commits === 1 ? '' : 's'} stay at \`${active.repo.refs.integration(run.runId)}\`.`);
      } else if (state.status === 'done' && commits > 0) {
        const landed = await landPatches({ store: active.repo.store, refs: active.repo.refs, run: active.driver.run, branch, commits, now: this.clock() });
        if (landed.head) head = landed.head;
        if (landed.refused !== undefined) landingRefused = landed.refused;
        notes.push(landed.note);
      } else if (state.status !== 'done' && commits > 0) {
        notes.push(`The run did not succeed, so its ${commits} patch commit${commits === 1 ? '' : 's'} stay at \`${active.repo.refs.integration(run.runId)}\` and were not pushed.`);
      }
      this.opts.log?.info(`agora: ${run.runId}: branch push done; auditing`);
      audit = await finishAudit({
        octokit,
        owner,
        repo,
        htmlUrl: active.ev.htmlUrl,
        ...(active.ev.repositoryId !== undefined ? { repositoryId: active.ev.repositoryId } : {}),
        store: active.repo.store,
        refs: active.repo.refs,
        run,
        gateSha: head,
        ...(landingRefused !== undefined ? { landingRefused } : {}),
        clock: this.clock,
        ...(this.opts.signer ? { signer: this.opts.signer } : {}),
      });
      notes.push(audit.note);
      this.opts.log?.info(`agora: ${run.runId}: audit ${audit.conclusion}`);
    }
    await octokit.rest.checks.update({
      owner,
      repo,
      check_run_id: active.runCheck,
      status: 'completed',
      conclusion: runConclusion(state),
      output: { title: `Run ${run.runId}: ${state.status}`, summary: runSummary(plan, state, notes) },
      actions: [],
    });
  }
}

/** Commits on the first-parent chain from `head` down to (not including) `base`. */
async function countCommits(repo: RepoContext, head: Oid, base: Oid): Promise<number> {
  const found = await firstParentChain(repo.store, base, head, 100_000);
  if (!found.ok) throw new Error(`integration head ${head} does not descend from the plan commit ${base}: ${found.why}`);
  return found.chain.length;
}

/** The `agora` check of a commit nothing will run for: created completed, in one write. */
async function finalRunCheck(
  ev: PlanEvent,
  conclusion: 'failure' | 'action_required',
  output: { title: string; summary: string },
  externalId?: string,
  detailsUrl?: string,
): Promise<void> {
  await ev.octokit.rest.checks.create({
    owner: ev.owner,
    repo: ev.repo,
    name: RUN_CHECK_NAME,
    head_sha: ev.headSha,
    status: 'completed',
    conclusion,
    ...(externalId ? { external_id: externalId } : {}),
    ...(detailsUrl ? { details_url: detailsUrl } : {}),
    output,
  });
}

function handleOf(ev: RepoHandle): RepoHandle {
  return { octokit: ev.octokit, owner: ev.owner, repo: ev.repo, cloneUrl: ev.cloneUrl, htmlUrl: ev.htmlUrl, token: ev.token, ...(ev.permissions ? { permissions: ev.permissions } : {}), ...(ev.repositoryId !== undefined ? { repositoryId: ev.repositoryId } : {}) };
}

/** The branch (on GitHub) whose head is one of `shas`, tried in order; null when none is. */
async function branchAt(repo: RepoContext, shas: readonly Oid[]): Promise<string | null> {
  const heads = await repo.store.mirror.listRemoteRefs('refs/heads/');
  for (const sha of shas) {
    for (const [ref, oid] of heads) if (oid === sha) return ref.slice('refs/heads/'.length);
  }
  return null;
}
