import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { checkConfiguredSecrets } from '../config/secrets.js';
import type { OrchConfig } from '../config/types.js';
import type { RunEvent } from '../engine/types.js';
import { AgoraError, InvalidInputError, errorMessage } from '../errors.js';
import { GitCommandError, runGit } from '../git/git-cli.js';
import { isRefName } from '../git/ref-names.js';
import type { Oid } from '../git/types.js';
import { parsePlanText } from '../plan/parse.js';
import type { Plan } from '../plan/schema.js';
import { matrixFileRefs } from '../plan/matrix-file.js';
import { assertValidPlan, PLAN_INVALID_HINT } from '../plan/validate.js';
import { openLocalStore, type LocalGitStore } from '../git/local-store.js';
import { validatePlanAtCommit } from '../runs/matrix-files.js';
import { cancelRun } from '../runs/cancel.js';
import { recordRequest } from '../runs/requests.js';
import { submitPlan } from '../runs/inbox.js';
import { noParams, paramsFromOptions, recordableParams, type GivenParams, type ParamOptions } from '../runs/params.js';
import type { StoredRun } from '../runs/state-store.js';
import { finishWithdrawals } from '../runs/withdrawal.js';
import { openConfigFor, openContext, type CliContext, type GlobalOptions } from './context.js';
import { runNotFound } from './missing-run.js';
import { statusView, table } from './render.js';
import type { Output } from './output.js';
import { reportLeftovers } from './server-reports.js';
import { serveOrFollow, type Submitted } from './serving.js';
import { terminalSafeLine } from './terminal-text.js';

/** The `agora orch` verbs. Each is thin: it wires adapters together and prints. */

/** Where a plan's matrix files are read: a commit of a repository, described for messages. */
interface ReadAt {
  store: LocalGitStore;
  commit: Oid;
  where: string;
}

/**
 * Reads and validates a plan file. Matrix files (`{ "file": … }`) are read from git objects at the commit
 * `at` gives (a run's base), never from the working tree; `at` is asked only when the plan has them.
 */
export async function readPlanFile(file: string, config: OrchConfig, at?: () => Promise<ReadAt>): Promise<{ text: string; plan: Plan }> {
  const path = resolve(process.cwd(), file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AgoraError(
      'plan-not-found',
      `cannot read plan ${file}: ${code === 'ENOENT' ? 'no such file' : errorMessage(e)}`,
      'pass the path of a plan.json',
      { cause: e },
    );
  }
  const raw = parsePlanText(text, file);
  if (!at || matrixFileRefs(raw).length === 0) return { text, plan: assertValidPlan(raw, config, file) };
  const { store, commit, where } = await at();
  const { result } = await validatePlanAtCommit(store, commit, raw, text, config, where);
  if (!result.ok) throw new InvalidInputError('plan-invalid', file, result.problems, PLAN_INVALID_HINT);
  return { text, plan: result.plan };
}

export async function validateVerb(file: string, g: GlobalOptions, io: Output): Promise<number> {
  const { config, file: configFile, repo } = await openConfigFor(g, file);
  const at = await headOf(repo, file);
  const { plan } = await readPlanFile(file, config, at ? async () => at : undefined);
  const edges = plan.items.reduce((n, i) => n + i.depends_on.length, 0);
  io.err(`config: ${configFile ?? 'built-in defaults (no agora.config.mjs beside the plan, nor above it inside its repository)'}`);
  if (at) io.err(`matrix files: read ${at.where} (the committed files, not the working tree; a run reads them at its base commit)`);
  io.out(`${file}: valid — ${plan.items.length} items, ${edges} dependencies, queue "${plan.queue}"`);
  return 0;
}

/**
 * `validate` has no base: a plan with matrix files reads them at the HEAD commit of the plan's repository.
 * Null when the plan has none; an error when they cannot be read there.
 */
async function headOf(repo: string | null, file: string): Promise<ReadAt | null> {
  let raw: unknown;
  try {
    raw = parsePlanText(await readFile(resolve(process.cwd(), file), 'utf8'), file);
  } catch {
    return null; // readPlanFile reports it
  }
  const refs = matrixFileRefs(raw);
  if (refs.length === 0) return null;
  const entry = `$.items[${refs[0]!.index}].matrix.${refs[0]!.key}`;
  if (repo === null) {
    throw new AgoraError(
      'matrix-file-no-commit',
      `${file}: ${entry} reads ${JSON.stringify(refs[0]!.path)}, but the plan is in no git repository, so there is no commit to read it at`,
      'put the plan and its matrix files in a git repository and commit them (a run reads them at its base commit)',
    );
  }
  const store = await openLocalStore(repo);
  const head = await store.resolveRef('HEAD');
  if (!head) {
    throw new AgoraError(
      'matrix-file-no-commit',
      `${file}: ${entry} reads ${JSON.stringify(refs[0]!.path)}, but the repository has no commits yet, so there is no commit to read it at`,
      'commit the matrix files (a run reads them at its base commit, validate at HEAD)',
    );
  }
  return { store, commit: head, where: `at HEAD (${head.slice(0, 12)})` };
}

export async function submitVerb(file: string, opts: GlobalOptions & SubmitOptions, io: Output): Promise<string> {
  const given = await paramsFromOptions(opts); // bad parameters are refused before anything is read or written
  const ctx = await openContext(opts, file);
  const { runId } = await submit(ctx, file, opts, given);
  io.out(runId);
  return runId;
}

/** What `run` and `submit` take besides the plan: the base, the queue and the run's parameters. */
export interface SubmitOptions extends ParamOptions {
  base?: string;
  queue?: string;
}

/** Submits the plan in `file`: the run id it was given, and the inbox entry it wrote. */
async function submit(ctx: CliContext, file: string, opts: SubmitOptions, given: GivenParams): Promise<Submitted> {
  let base: Oid | undefined;
  let { text, plan } = await readPlanFile(file, ctx.config, async () => {
    base = await resolveBase(ctx, opts.base);
    return { store: ctx.store, commit: base, where: `at base commit ${base.slice(0, 12)}` };
  });
  if (opts.queue && opts.queue !== plan.queue) {
    plan = { ...plan, queue: opts.queue };
    text = `${JSON.stringify(plan, null, 2)}\n`;
  }
  base ??= await resolveBase(ctx, opts.base);
  // Secret values are written to this host's store before the submission exists (params.ts).
  const recorded = noParams(given) ? undefined : recordableParams(given, ctx.scratchDir, ctx.refs.ns);
  const { runId, inboxCommit } = await submitPlan(ctx.store, ctx.refs, {
    planText: text,
    planId: plan.id,
    base,
    now: Date.now(),
    ...(recorded ? { params: recorded.params } : {}),
    ...(recorded?.bind ? { bindSecrets: recorded.bind } : {}),
    ...(recorded?.discard ? { discardSecrets: recorded.discard } : {}),
  });
  return { runId, entry: inboxCommit };
}

async function resolveBase(ctx: CliContext, rev: string | undefined): Promise<Oid> {
  const name = rev ?? 'HEAD';
  // HEAD, a full ref name, a branch or a tag (each tried only where it is a ref name git allows).
  const names = name === 'HEAD' ? ['HEAD'] : [name, `refs/heads/${name}`, `refs/tags/${name}`].filter(isRefName);
  const candidates = /^[0-9a-f]{40}$/.test(name) ? [] : names;
  if (/^[0-9a-f]{40}$/.test(name) && (await ctx.store.hasObject(name))) return name;
  for (const ref of candidates) {
    const oid = await ctx.store.resolveRef(ref);
    if (oid) return oid;
  }
  throw new AgoraError(
    'base-not-found',
    rev ? `--base ${rev} names no commit in this repository` : 'the repository has no commits yet, so a run has no base',
    rev
      ? 'pass HEAD, a branch or tag name, a full ref name or a full 40-character commit id (not an expression such as HEAD~1, nor a short id)'
      : 'commit something first (a run starts from the current HEAD commit)',
  );
}

export async function runVerb(file: string, opts: GlobalOptions & SubmitOptions & { apply?: boolean; pollMs?: number }, io: Output): Promise<number> {
  const given = await paramsFromOptions(opts); // bad parameters are refused before anything is read or written
  const ctx = await openContext(opts, file);
  checkConfiguredSecrets(ctx.config, process.env); // before the plan is submitted
  const submitted = await submit(ctx, file, opts, given);
  return finish(ctx, await serveOrFollow(ctx, submitted, opts, io), opts.apply ?? false, io);
}

async function finish(ctx: CliContext, run: StoredRun, apply: boolean, io: Output): Promise<number> {
  const { state } = run;
  if (!io.tty) io.out(JSON.stringify(statusView(state, run.head)));
  else io.err(table(state, Date.now()));
  const integration = ctx.refs.integration(state.runId);
  // A reason can quote outside text (a cancel's --reason, a pushed request's): shown on one line, escapes made visible.
  io.err(`\nrun ${state.runId}: ${state.status}${state.reason ? ` — ${terminalSafeLine(state.reason)}` : ''}`);
  io.err(`  state:       git log ${ctx.refs.run(state.runId)}`);
  io.err(`  audit:       agora orch audit ${state.runId} --out ${state.runId}.audit.json   (root anchored at ${ctx.refs.anchor(state.runId)})`);
  if (state.integrationHead !== state.base) {
    io.err(`  integration: git log --stat ${state.base.slice(0, 12)}..${integration}`);
    // With --apply the branch is fast-forwarded below (or the refusal says why): no advice to do it by hand.
    if (!apply) io.err(`  apply:       git merge --ff-only ${integration}   (or rerun with --apply)`);
  }
  if (apply) {
    if (state.status !== 'done') {
      throw new AgoraError('apply-refused', `not applying: run ${state.runId} is ${state.status}`, 'apply only a run whose items are all done');
    }
    await applyIntegration(ctx, run, io);
  }
  return state.status === 'done' ? 0 : 1;
}

/**
 * Fast-forwards the checked-out branch onto the run's integration head (only if it is still at the base),
 * with hooks, replace objects, fsmonitor and filters off.
 */
async function applyIntegration(ctx: CliContext, run: StoredRun, io: Output): Promise<void> {
  const cwd = ctx.store.dir;
  if (!cwd) throw new AgoraError('apply-refused', 'cannot --apply in a bare repository', 'use git merge --ff-only in a clone');
  const head = await ctx.store.resolveRef('HEAD');
  if (head === run.state.integrationHead) {
    io.err('  already applied');
    return;
  }
  if (head !== run.state.base) {
    throw new AgoraError(
      'apply-refused',
      `not applying: HEAD moved since the run started (was ${run.state.base.slice(0, 12)}, now ${head?.slice(0, 12)})`,
      `merge it yourself: git merge ${ctx.refs.integration(run.state.runId)}`,
    );
  }
  // The one git runner: no hook (post-merge, reference-transaction), no replace object, no fsmonitor and
  // no filter the repository's config names runs, so what is checked out is the audited integration head.
  try {
    await runGit(['merge', '--ff-only', '--quiet', run.state.integrationHead], { cwd });
  } catch (e) {
    if (!(e instanceof GitCommandError)) throw e;
    throw new AgoraError('apply-failed', `git merge --ff-only failed: ${e.stderr.trim() || e.message}`, 'commit or stash local changes, then retry', {
      cause: e,
    });
  }
  io.err(`  applied: HEAD is now ${run.state.integrationHead.slice(0, 12)}`);
}

export async function cancelVerb(runId: string, opts: GlobalOptions & { reason?: string }, io: Output): Promise<number> {
  const ctx = await openContext(opts);
  const reason = opts.reason ?? `cancelled with agora orch cancel by ${process.env.USER ?? 'a user'}`;
  const outcome = await cancelRun(ctx.store, ctx.refs, runId, reason, Date.now, { scratchDir: ctx.scratchDir });
  // Then what an earlier cancel (of any id) left when it stopped between withdrawing a submission and
  // removing its secret values (src/runs/withdrawal.ts): nothing else names those values any more. After
  // this cancel, not before: a marker left by a cancel stopped before its delete is finished too, if
  // this one withdrew that submission.
  const leftovers = await finishWithdrawals(ctx.store, ctx.refs, ctx.scratchDir);
  const saidBelow = (id: string) => outcome.kind === 'not-found' && id === runId;
  reportLeftovers({ removed: leftovers.removed.filter((id) => !saidBelow(id)), problems: leftovers.problems }, io);
  switch (outcome.kind) {
    case 'not-found':
      if (leftovers.removed.includes(runId)) {
        io.out(`${runId}: withdrawn earlier; its secret parameters, still on this host from a withdrawal left unfinished, are removed now`);
        return 0;
      }
      throw await runNotFound(ctx, runId);
    case 'withdrawn':
      io.out(`${runId}: withdrawn before it was accepted`);
      return 0;
    case 'already-terminal':
      io.out(`${runId} is already ${outcome.status}; nothing to cancel`);
      return 0;
    case 'cancelled': {
      const n = outcome.runningStopped;
      io.out(`${runId}: cancelled${n ? ` (${n} running item${n === 1 ? '' : 's'} will be stopped by serve)` : ''}`);
      return 0;
    }
  }
}

export async function retryVerb(
  runId: string,
  itemId: string | undefined,
  opts: GlobalOptions & { reason?: string; failed?: boolean },
  io: Output,
): Promise<number> {
  if ((itemId === undefined) === !opts.failed) {
    throw new AgoraError(
      'retry-options',
      itemId === undefined
        ? `agora orch retry ${runId}: no item named and no --failed`
        : `agora orch retry ${runId} ${itemId} --failed: an item and --failed together`,
      'name one item (`agora orch retry <run> <item>`) or pass --failed to retry every failed item',
    );
  }
  const ctx = await openContext(opts);
  const reason = opts.reason ?? `retry requested with agora orch retry by ${process.env.USER ?? 'a user'}`;
  const event: RunEvent = itemId === undefined ? { type: 'retry-failed', reason } : { type: 'retry-item', itemId, reason };
  const outcome = await recordRequest(ctx.store, ctx.refs, runId, event, Date.now);
  if (outcome.kind === 'not-found') throw await runNotFound(ctx, runId);
  const state = outcome.run.state;
  if (itemId === undefined) {
    if (outcome.kind === 'no-change') {
      throw new AgoraError(
        'nothing-to-retry',
        `run ${runId} is ${state.status}${state.cancelRequested ? ' (cancelled as a whole)' : ''} and has no failed item to retry`,
        state.cancelRequested
          ? 'submit the plan again'
          : 'retry a cancelled item by its id (`agora orch retry <run> <item>`), or see `agora orch status` for what ended how',
      );
    }
    const retried = outcome.transitions.filter((t) => t.kind === 'item' && t.from === 'failed').length;
    const reopened = outcome.transitions.filter((t) => t.kind === 'item' && t.to === 'pending').length;
    io.out(`${runId}: ${retried} failed item${retried === 1 ? '' : 's'} will run again (${reopened} reopened in all); \`agora orch serve\` picks them up`);
    return 0;
  }
  const item = state.items[itemId];
  if (!item) {
    throw new AgoraError('item-not-found', `run ${runId} has no item ${itemId}`, `items: ${Object.keys(state.items).join(', ')}`);
  }
  if (outcome.kind === 'no-change') {
    throw new AgoraError(
      'retry-refused',
      `${runId}/${itemId} is ${item.status}${state.cancelRequested ? ' in a cancelled run' : ''}: only a failed or cancelled item of a run that was not cancelled can be retried`,
      'retry a failed item, or submit the plan again',
    );
  }
  const reopened = outcome.transitions.filter((t) => t.kind === 'item' && t.to === 'pending').length;
  io.out(`${runId}/${itemId}: will run again (${reopened} item${reopened === 1 ? '' : 's'} reopened); \`agora orch serve\` picks it up`);
  return 0;
}
