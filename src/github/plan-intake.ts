import { errorMessage } from '../errors.js';
import { mirrorPrefix } from '../git/refspec.js';
import { appendEntries } from '../log/entry.js';
import { newRun } from '../engine/step.js';
import type { Problem } from '../errors.js';
import { agoraIdentity } from '../git/identity.js';
import type { Oid } from '../git/types.js';
import { MAX_PLAN_BYTES, parsePlanText, planTooLarge } from '../plan/parse.js';
import type { Plan } from '../plan/schema.js';
import { validatePlanAtCommit } from '../runs/matrix-files.js';
import { cancelRun } from '../runs/cancel.js';
import { sortTree, writeRun } from '../runs/state-store.js';
import type { EventOutcome, PlanEvent } from './app-events.js';
import type { AppState } from './app-state.js';
import { regate } from './audit-release.js';
import { RUN_CHECK_NAME } from './check-names.js';
import { invalidPlanSummary } from './check-text.js';
import { readAppRun } from './listed-run.js';
import { missingPermissions, permits } from './permissions.js';
import { blobAt, classifyCommit, planPathSlug, runIdFor } from './plan-commit.js';
import { readRepoConfig, REPO_CONFIG_PATH } from './repo-config.js';
import type { RepoContext } from './repo-context.js';
import { startRun } from './run-resume.js';
import { policyProblems } from './worker-policy.js';
import { workflowLockProblems } from './workflow-permission.js';

/**
 * A commit on a branch, taken in: a plan commit starts a run (superseding the runs of older plan commits
 * below it); a later push on a patched branch re-evaluates the gate; an installation that lacks a
 * permission is refused, an invalid plan or `.github/agora.yml` rejected, each with an `agora` check that
 * says why. Every other commit is ignored with a reason code. `rerun` (the gate's Re-run plan button)
 * runs the plan at the commit even though it did not change there.
 */
export async function intakePlanEvent(app: AppState, ev: PlanEvent, opts: { rerun?: boolean } = {}): Promise<EventOutcome> {
  if (app.closed) return { kind: 'ignored', code: 'app-stopping', why: 'the app is stopping' };
  const granted = (await ev.permissions?.()) ?? null;
  const missing = granted ? missingPermissions(granted) : [];
  if (granted && missing.length > 0 && !permits(granted, 'contents', 'read')) return refuse(app, ev, granted, missing, null);
  const repo = await app.repoFor(ev);
  await repo.fetchForEvent(ev.branch, ev.headSha);
  if (granted && missing.length > 0) return refuse(app, ev, granted, missing, repo);
  const config = await readRepoConfig(repo.store, ev.headSha, app.opts.planPath);
  if (!config.ok) return reject(app, ev, repo, REPO_CONFIG_PATH, config.blob ? { blob: config.blob } : config.text, config.problems);
  const planPath = config.planPath;
  let found = await classifyCommit(repo.store, ev.headSha, planPath);
  if (opts.rerun && found.kind === 'ignored') {
    const planBlob = await blobAt(repo.store, ev.headSha, planPath);
    if (!planBlob) return { kind: 'ignored', code: 'no-plan-to-rerun', why: `no ${planPath} at ${ev.headSha.slice(0, 12)} to run again` };
    found = { kind: 'plan', planBlob };
  }
  if (found.kind === 'ignored') {
    if (found.code === 'plan-unchanged') {
      const fetchPatches = (run: string) => repo.store.fetch([mirrorPrefix(repo.refs.patch(run, ''))]);
      const runId = await regate({ octokit: ev.octokit, owner: ev.owner, repo: ev.repo, store: repo.store, refs: repo.refs, head: ev.headSha, fetchPatches });
      if (runId) return { kind: 'regated', runId };
    }
    return { kind: 'ignored', code: found.code, why: found.why };
  }

  // A newer plan commit above this one on the branch (its webhook came first, or this one is a redelivery)
  // runs instead: this older plan must not run after it, nor land its patches on the newer plan's branch.
  const newer = await newerPlanAbove(repo, ev, planPath, found.planBlob);
  if (newer)
    return {
      kind: 'ignored',
      code: 'superseded',
      why: `${planPath} changed again above ${ev.headSha.slice(0, 12)} on ${ev.branch} (at ${newer.slice(0, 12)}): that plan runs instead`,
    };

  // The size from the blob's header first: a plan over the limit is refused without being read.
  const planBytes = await repo.store.objectSize(found.planBlob);
  if (planBytes > MAX_PLAN_BYTES) return reject(app, ev, repo, planPath, { blob: found.planBlob }, planTooLarge(planBytes, planPath).problems);
  const planText = new TextDecoder().decode(await repo.store.readBlob(found.planBlob));
  const checked = await checkPlan(app, repo, planText, planPath, ev.headSha, granted);
  if (!checked.plan) return reject(app, ev, repo, planPath, planText, checked.problems);
  const plan = checked.plan;

  const runId = runIdFor(plan.id, ev.headSha);
  // Reading and checking the plan took a while: a process that began stopping meanwhile writes no run.
  if (app.closed) return { kind: 'ignored', code: 'app-stopping', why: 'the app is stopping' };
  const now = app.opts.clock();
  const concurrency = app.opts.config.queues[plan.queue]?.concurrency ?? app.opts.config.defaultConcurrency;
  const created = newRun(plan, { runId, base: ev.headSha, concurrency, now });
  const stored = await writeRun(repo.store, repo.refs, {
    runId,
    prev: null,
    planText: checked.recordText,
    state: created.run.state,
    entries: appendEntries(null, runId, created.transitions),
    transitions: created.transitions,
    now,
  });
  if (!stored) return { kind: 'exists', runId }; // another delivery or replica created it: nothing to do
  await supersede(app, ev, repo, runId);
  await startRun(app, ev, repo, stored);
  return { kind: 'started', runId };
}

/**
 * The first commit above `ev.headSha` on the branch (as just fetched) whose plan file differs from this
 * commit's, or null: none does, or the branch head is this commit or not above it (a force push: the
 * event's commit is taken as it is). The first-parent chain is walked down from the head, at most 1,000 commits.
 */
async function newerPlanAbove(repo: RepoContext, ev: PlanEvent, planPath: string, planBlob: Oid): Promise<Oid | null> {
  const head = await repo.store.resolveRef(`refs/heads/${ev.branch}`);
  if (!head || head === ev.headSha) return null;
  const above: Oid[] = [];
  let at: Oid | undefined = head;
  for (let n = 0; at && at !== ev.headSha; n += 1) {
    if (n >= 1000 || !(await repo.store.hasObject(at))) return null;
    above.push(at);
    at = (await repo.store.readCommit(at)).parents[0];
  }
  if (at !== ev.headSha) return null;
  for (const sha of above.reverse()) if ((await blobAt(repo.store, sha, planPath)) !== planBlob) return sha;
  return null;
}

/**
 * The plan, valid and allowed here (size on GitHub, the operator's policy, the installation's grant), or
 * its problems. Matrix files are read from the mirror's objects at the plan commit (the run's base);
 * `recordText` is the plan.json the run records (their values in place).
 */
async function checkPlan(
  app: AppState,
  repo: RepoContext,
  planText: string,
  planPath: string,
  base: Oid,
  granted: Record<string, string> | null,
): Promise<{ plan?: Plan; recordText: string; problems: Problem[] }> {
  const { config, maxItems } = app.opts;
  const recordText = planText;
  try {
    const at = await validatePlanAtCommit(repo.store, base, parsePlanText(planText, planPath), planText, config);
    const result = at.result;
    if (!result.ok) return { recordText, problems: result.problems };
    if (result.plan.items.length > maxItems) {
      return {
        recordText,
        problems: [
          {
            path: '$.items',
            message: `${result.plan.items.length} items is too many for the GitHub App (at most ${maxItems}) (AGORA_MAX_ITEMS); split the plan, or run it locally with \`agora orch run\``,
          },
        ],
      };
    }
    // What the operator does not allow this repository fails the plan here, before anything runs.
    const refused = [
      ...policyProblems(
        result.plan,
        config,
        new Set(Object.keys(repo.attempt.targets)),
        repo.attempt.environment as Record<string, string>,
        app.opts.policy.hostedBy,
      ),
      ...(granted ? workflowLockProblems(result.plan, granted) : []), // unknown grant: the push says it
    ];
    return refused.length > 0 ? { recordText, problems: refused } : { plan: result.plan, recordText: at.recordText, problems: [] };
  } catch (e) {
    return { recordText, problems: (e as { problems?: Problem[] }).problems ?? [{ path: '$', message: errorMessage(e) }] };
  }
}

/**
 * The installation lacks a permission the app needs: a log line names each, and, where the token can
 * read the commit and write checks, an `agora` check on a plan commit that requires action says the same. Nothing runs.
 */
async function refuse(app: AppState, ev: PlanEvent, granted: Record<string, string>, missing: string[], repo: RepoContext | null): Promise<EventOutcome> {
  const names = missing.map((m) => m.split(' (')[0]).join(', ');
  const why = `the installation on ${ev.owner}/${ev.repo} lacks ${names}`;
  const fix = "add them in the app's settings (Permissions & events), then accept them on the installation (Settings → GitHub Apps → Configure)";
  app.log.error(`agora: ${why}: ${missing.join('; ')}. Nothing runs until you ${fix}.`);
  if (repo && permits(granted, 'checks', 'write')) {
    const config = await readRepoConfig(repo.store, ev.headSha, app.opts.planPath);
    const found = await classifyCommit(repo.store, ev.headSha, config.ok ? config.planPath : app.opts.planPath);
    // Once per commit in this process (a lock ref would need the very contents: write that may be missing).
    if (found.kind === 'plan') {
      // GitHub asks a check that requires action for a page to act on: the repository's installed apps.
      await finalRunCheck(
        ev,
        'action_required',
        {
          title: `Missing permission${missing.length === 1 ? '' : 's'}: ${names}`,
          summary: [
            `The plan was not run: the Agora app's installation lacks what it needs.`,
            '',
            ...missing.map((m) => `- ${m}`),
            '',
            `To fix: ${fix}. Then push again.`,
          ].join('\n'),
        },
        undefined,
        `${ev.htmlUrl}/settings/installations`,
      );
    }
  }
  return { kind: 'ignored', code: 'missing-permissions', why };
}

/**
 * An invalid plan (or `.github/agora.yml`): one failed `agora` check, once per commit (the rejection ref
 * is the lock). `source` is the file at fault, `content` its text or (when it was not read) its blob.
 */
async function reject(
  app: AppState,
  ev: PlanEvent,
  repo: RepoContext,
  source: string,
  content: string | { blob: Oid },
  problems: Problem[],
): Promise<EventOutcome> {
  const id = `${planPathSlug(source)}-${ev.headSha.slice(0, 12)}`;
  const who = agoraIdentity(app.opts.clock());
  const tree = await repo.store.writeTree(
    sortTree([
      { mode: '100644', path: 'errors.json', oid: await repo.store.writeBlob(`${JSON.stringify({ problems }, null, 2)}\n`), type: 'blob' },
      {
        mode: '100644',
        path: source.slice(source.lastIndexOf('/') + 1),
        oid: typeof content === 'string' ? await repo.store.writeBlob(content) : content.blob,
        type: 'blob',
      },
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
  const isConfig = source === REPO_CONFIG_PATH;
  await finalRunCheck(
    ev,
    'failure',
    {
      title: `Invalid ${isConfig ? source : 'plan'}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`,
      summary: invalidPlanSummary(source, problems, isConfig ? 'repository config' : 'plan'),
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
 * fetchForEvent fetched them.) A run id ends in its plan commit's short sha (runIdFor), so only the runs
 * of commits below are read, however many runs the repository keeps.
 */
async function supersede(app: AppState, ev: PlanEvent, repo: RepoContext, runId: string): Promise<void> {
  const below = new Set<Oid>();
  let at: Oid | undefined = (await repo.store.readCommit(ev.headSha)).parents[0];
  for (let n = 0; at && n < 1000; n += 1) {
    below.add(at);
    at = (await repo.store.readCommit(at)).parents[0];
  }
  const shortBelow = new Set([...below].map((sha) => sha.slice(0, 12)));
  let heads: Set<Oid> | undefined;
  for (const { ref } of await repo.store.listRefs(repo.refs.runsPrefix)) {
    const older = ref.slice(repo.refs.runsPrefix.length);
    if (older === runId || !shortBelow.has(older.slice(-12))) continue;
    const run = await readAppRun(app, repo, older); // null also for a ref that holds no run (said once)
    if (run?.state.status !== 'running' || !below.has(run.state.base)) continue;
    heads ??= new Set((await repo.store.mirror.listRemoteRefs('refs/heads/')).values());
    if (heads.has(run.state.base)) continue;
    const reason = `superseded by a new plan commit ${ev.headSha.slice(0, 12)} on ${ev.branch} (run ${runId})`;
    const outcome = await cancelRun(repo.store, repo.refs, older, reason, app.opts.clock);
    app.log.info(`agora: ${older}: ${outcome.kind} (${reason})`);
    app.active.get(older)?.wake();
  }
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
