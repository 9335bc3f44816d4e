/**
 * Serving from the CLI: `agora orch serve` (every submission and run of the repository), and the serving
 * half of `agora orch run` (its one run, or following the serve that already serves the repository), with
 * what each says on stderr about the inbox entries and transitions it meets.
 */
import type { Transition } from '../engine/types.js';
import { AgoraError, InvalidInputError, isAgoraError } from '../errors.js';
import { checkConfiguredSecrets } from '../config/secrets.js';
import { readRejection, submissionFate, type AcceptOutcome } from '../runs/inbox.js';
import type { Oid } from '../git/types.js';
import type { RunRefs } from '../runs/refs.js';
import { Server } from '../runs/server.js';
import { acquireServeLock, serveLockHolder } from '../runs/serve-lock.js';
import { readRun, type StoredRun } from '../runs/state-store.js';
import { attemptContext, createTargets, openContext, type CliContext, type GlobalOptions } from './context.js';
import { replacedSubmission, withdrawnSubmission } from './missing-run.js';
import { progressView, watchUntilTerminal } from './orch-read.js';
import type { Output } from './output.js';
import { serverReports } from './server-reports.js';
import { terminalSafeLine } from './terminal-text.js';

export async function serveVerb(opts: GlobalOptions & { pollMs?: number }, io: Output): Promise<number> {
  const ctx = await openContext(opts);
  checkConfiguredSecrets(ctx.config, process.env); // a secret too short to redact: refuse before anything runs
  const lock = await acquireServeLock(ctx.store.gitdir, Date.now());
  ctx.store.recoverAbandonedLocks(); // the serve lock proves no other agora process recovers them meanwhile
  const targets = await createTargets(ctx);
  // An entry deferred for a blocked ref, or ignored, is met at every pass: each is said once.
  const sayOnce = sayingOnce(io, ctx.refs);
  const server = new Server({
    ...attemptContext(ctx, targets),
    ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
    onAccept: (o) => (o.kind === 'deferred' || o.kind === 'ignored' ? sayOnce(o) : io.err(acceptanceLine(o, ctx.refs))),
    onCommit: (run, transitions) => {
      for (const t of transitions) io.err(describe(run.runId, t));
    },
    ...serverReports(io),
  });
  const abort = new AbortController();
  const stop = (sig: string) => {
    if (abort.signal.aborted) process.exit(130); // a second signal: leave now
    io.err(`${sig}: stopping workers and recording them as interrupted (send again to exit at once)`);
    abort.abort(sig);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    await server.start();
    io.err(`agora serve: serving ${ctx.store.dir ?? ctx.store.gitdir} (pid ${process.pid})`);
    await server.serve(abort.signal);
  } finally {
    await Promise.all(Object.values(targets).map((t) => t.close?.()));
    await lock.release();
  }
  return 0;
}

/**
 * Says what a pass did with an inbox entry on stderr. An entry met at every pass (deferred, ignored) is
 * said once, and again only when what holds it changes: its text names the ref or lock in the way (a
 * lock git left gives the time it was taken, the same at every pass), so another one found once the
 * first is cleared is said too. Once the entry is accepted, rejected or withdrawn it is forgotten: a
 * later submission given the same id is said afresh.
 */
function sayingOnce(io: Output, refs: RunRefs): (o: AcceptOutcome) => void {
  const lastSaid = new Map<string, string>();
  return (o) => {
    const key = `${o.kind} ${o.kind === 'deferred' ? (o.reason ?? '') : ''}`;
    const waits = o.kind === 'deferred' || o.kind === 'ignored';
    if (waits && lastSaid.get(o.runId) === key) return;
    if (waits) lastSaid.set(o.runId, key);
    else lastSaid.delete(o.runId);
    io.err(acceptanceLine(o, refs));
  };
}

/** What a serve says about one inbox entry it looked at (the entry's name and plan are anyone's who may push). */
function acceptanceLine(o: AcceptOutcome, refs: RunRefs): string {
  return terminalSafeLine(acceptanceText(o, refs));
}

function acceptanceText(o: AcceptOutcome, refs: RunRefs): string {
  switch (o.kind) {
    case 'accepted':
      return `accepted ${o.runId}`;
    case 'rejected':
      return `rejected ${o.runId}: ${o.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`;
    case 'withdrawn':
      return `${o.runId} was withdrawn (agora orch cancel) before it was accepted`;
    case 'deferred':
      return `${o.runId} waits: ${o.reason ?? 'a ref stayed locked while it was accepted or rejected'}; it is tried again at every pass`;
    case 'ignored':
      return `ignored the inbox entry ${JSON.stringify(refs.inbox(o.runId))}: not a submission agora made (${o.problem}); remove it with git update-ref -d`;
    case 'already-accepted':
      return `${o.runId} was already accepted`;
  }
}

/** A submission `agora orch run` made: the run id it was given, and the inbox entry (commit) it wrote. */
export interface Submitted {
  runId: string;
  entry: Oid;
}

/**
 * The submitted run to its end: followed like `watch` when an `agora orch serve` serves the repository;
 * served here when nothing does; and when another `agora orch run` holds the repository (it serves only
 * its own run), served here once that one has let go, the wait said once on stderr.
 */
export async function serveOrFollow(ctx: CliContext, submitted: Submitted, opts: { pollMs?: number }, io: Output): Promise<StoredRun> {
  const { runId } = submitted;
  let waitingFor: number | undefined;
  for (;;) {
    const holder = await serveLockHolder(ctx.store.gitdir);
    if (holder === null) {
      if (waitingFor === undefined) io.err(`submitted ${runId}`);
      try {
        return await serveOne(ctx, submitted, opts, io);
      } catch (e) {
        // Another process took the lock between the look and the take: look again at who holds it.
        if (!(isAgoraError(e) && e.code === 'serve-running' && (await serveLockHolder(ctx.store.gitdir)) !== null)) throw e;
        continue;
      }
    }
    if (holder.only === undefined) {
      io.err(`submitted ${runId} to the agora serve already running here (pid ${holder.pid}); watching it`);
      return watchUntilTerminal(ctx, runId, io, { entry: submitted.entry, ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}) });
    }
    // Withdrawn meanwhile (perhaps the id given to another submission, which that run may be serving):
    // said now, not once that run has ended.
    const gone = await unservable(ctx, submitted);
    if (gone) throw gone;
    if (waitingFor !== holder.pid) {
      io.err(`submitted ${runId}; the agora orch run of ${holder.only} (pid ${holder.pid}) holds this repository: ${runId} starts when it ends`);
      waitingFor = holder.pid;
    }
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 200));
  }
}

async function serveOne(ctx: CliContext, submitted: Submitted, opts: { pollMs?: number }, io: Output): Promise<StoredRun> {
  const { runId } = submitted;
  const lock = await acquireServeLock(ctx.store.gitdir, Date.now(), runId);
  const refused = await unservable(ctx, submitted).catch(async (e: unknown) => {
    await lock.release();
    throw e;
  });
  if (refused) {
    await lock.release();
    throw refused;
  }
  ctx.store.recoverAbandonedLocks(); // the serve lock proves no other agora process recovers them meanwhile
  const targets = await createTargets(ctx);
  const view = progressView(io);
  const sayWait = sayingOnce(io, ctx.refs);
  const server = new Server({
    ...attemptContext(ctx, targets),
    only: runId,
    onlyEntry: submitted.entry,
    pollMs: opts.pollMs ?? 200,
    onAccept: (o) => {
      if (o.kind === 'rejected') {
        throw new InvalidInputError('plan-invalid', runId, o.problems, 'fix the plan and submit it again');
      }
      // The run cannot be created until a blocked ref is cleared: said once, and the wait goes on.
      if (o.kind === 'deferred') sayWait(o);
    },
    onCommit: (run, transitions) => view.update(run, transitions),
    ...serverReports(io),
  });
  const abort = new AbortController();
  const onSignal = (sig: string) => (abort.signal.aborted ? process.exit(130) : abort.abort(sig));
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    await server.start();
    await server.serve(abort.signal, (s) => {
      const run = s.run(runId);
      return s.onlyGone || (run !== undefined && run.state.status !== 'running' && s.activeRuns === 0);
    });
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    view.done();
    await Promise.all(Object.values(targets).map((t) => t.close?.()));
    await lock.release();
  }
  if (server.onlyGone) throw (await unservable(ctx, submitted)) ?? replacedSubmission(runId);
  const final = await readRun(ctx.store, ctx.refs, runId);
  if (!final) throw new Error(`run ${runId} vanished`);
  if (abort.signal.aborted) throw new AgoraError('interrupted', `interrupted; ${runId} is still ${final.state.status}`, `resume it with \`agora orch serve\``);
  return final;
}

/**
 * Why there is nothing to serve for the submission, if so: a serve that took it between `submit` and
 * this process's look at the serve lock rejected it (and let go), or `cancel` withdrew it, perhaps
 * with the id given to another submission since. A server serving only that id would wait for it
 * forever, or serve the other submission as this one. A run that a serve ended meanwhile is served: the
 * server settles it (its derived refs and anchor) and is done.
 */
async function unservable(ctx: CliContext, { runId, entry }: Submitted): Promise<AgoraError | undefined> {
  const fate = await submissionFate(ctx.store, ctx.refs, runId, entry);
  if (fate === 'waiting' || fate === 'accepted') return undefined;
  if (fate === 'replaced') return replacedSubmission(runId);
  if (fate === 'withdrawn') return withdrawnSubmission(runId);
  // Its own rejection (the fate read it): a rejection ref is never moved, only pruned with its run id.
  return new InvalidInputError('plan-invalid', runId, (await readRejection(ctx.store, ctx.refs, runId)) ?? [], 'fix the plan and submit it again');
}

/** One line per transition for serve's stderr; a reason can quote a worker's last log line, so it is made terminal-safe. */
function describe(runId: string, t: Transition): string {
  const when = new Date(t.at).toISOString();
  if (t.kind === 'emit') return `${when} ${runId}: ${t.itemId} [attempt ${t.attempt}] emitted ${t.items.map((i) => i.id).join(', ')}`;
  if (t.kind === 'call') return `${when} ${runId}: ${t.itemId} [attempt ${t.attempt}] call ${t.call} (${t.caller} → ${t.subagent}, hop ${t.hop}) ${t.outcome}`;
  return t.kind === 'run'
    ? `${when} ${runId}: run ${t.from} → ${t.to}${t.reason ? ` (${terminalSafeLine(t.reason)})` : ''}`
    : `${when} ${runId}: ${t.itemId} ${t.from} → ${t.to}${t.kind === 'item' && t.attempt ? ` [attempt ${t.attempt}]` : ''}${t.reason ? ` (${terminalSafeLine(t.reason)})` : ''}`;
}
