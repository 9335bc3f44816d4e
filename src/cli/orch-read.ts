import { readFile } from 'node:fs/promises';
import logUpdate from 'log-update';
import { childAttemptsOf } from '../agents/dependency-calls.js';
import type { Transition } from '../engine/types.js';
import { AgoraError, InvalidInputError } from '../errors.js';
import { runIdProblem } from '../plan/ids.js';
import type { Oid } from '../git/types.js';
import { patchCommitOf } from '../log/result-ref.js';
import { liveLogPath } from '../runs/attempt.js';
import { readRejection, submissionFate } from '../runs/inbox.js';
import { patchOutput } from '../runs/patches.js';
import { readRunChain } from '../runs/run-chain.js';
import { readListedRunAt } from '../runs/listed-run.js';
import { logName, readLog, readRun, readRunAt, type StoredRun } from '../runs/state-store.js';
import { openContext, type CliContext, type GlobalOptions } from './context.js';
import { replacedSubmission, runNotFound, withdrawnSubmission } from './missing-run.js';
import type { Output } from './output.js';
import { statusView, table, watchLine, type StatusView } from './render.js';
import { terminalSafe } from './terminal-text.js';

/**
 * The `agora orch` verbs that only read a run: `watch` (follow its state commits until it ends), `status`
 * (its state as JSON, with `--calls` its child attempts) and `logs` (an attempt's kept or live log).
 */
export async function watchVerb(runId: string, g: GlobalOptions, io: Output): Promise<number> {
  const ctx = await openContext(g);
  const final = await watchUntilTerminal(ctx, runId, io);
  return final.state.status === 'done' ? 0 : 1;
}

/**
 * Follows the run ref: one JSON line (or a table refresh) per state commit, until the run is terminal.
 * With `entry` (the inbox entry an `agora orch run` wrote), the run followed must be that submission's:
 * a run, rejection or entry of another submission under the id (`cancel` withdrew this one, and the id
 * was given out again) is an error, not this plan's run.
 */
export async function watchUntilTerminal(ctx: CliContext, runId: string, io: Output, opts: { pollMs?: number; entry?: Oid } = {}): Promise<StoredRun> {
  const view = progressView(io);
  let seen: Oid | null = null;
  // Asked until the run is found to be this submission's: once a run holds the id, it keeps it.
  let own = opts.entry === undefined;
  try {
    for (;;) {
      const head = await ctx.store.resolveRef(ctx.refs.run(runId));
      if (!own) {
        // Asked after the run ref is read: a run read there that is another submission's is found so here.
        const fate = await submissionFate(ctx.store, ctx.refs, runId, opts.entry!);
        if (fate === 'replaced') throw replacedSubmission(runId);
        if (fate === 'withdrawn') throw withdrawnSubmission(runId);
        if (fate === 'rejected') throw await rejectedRun(ctx, runId);
        own = fate === 'accepted';
        if (own && !head) continue; // accepted after the run ref was read: read it again now
        // Waiting: its entry is in the inbox, and a run read there (accepted, the entry not yet removed) is its own.
      } else if (!head) {
        const rejected = await readRejection(ctx.store, ctx.refs, runId);
        if (rejected) throw new InvalidInputError('plan-rejected', runId, rejected, 'fix the plan and submit it again');
        if (!(await ctx.store.resolveRef(ctx.refs.inbox(runId)))) {
          // Accepted since the run ref was read (a serve creates the run before it removes the entry)?
          if ((await ctx.store.resolveRef(ctx.refs.run(runId))) !== null) continue;
          throw await runNotFound(ctx, runId);
        }
      }
      if (head && head !== seen) {
        const chain = await newCommits(ctx, runId, head, seen);
        for (const { run, transitions } of chain) view.update(run, transitions);
        seen = head;
        const last = chain[chain.length - 1]!.run;
        if (last.state.status !== 'running') return last;
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 200));
    }
  } finally {
    view.done();
  }
}

/** The rejection of `runId`, with its problems, as an error. */
async function rejectedRun(ctx: CliContext, runId: string): Promise<InvalidInputError> {
  return new InvalidInputError('plan-rejected', runId, (await readRejection(ctx.store, ctx.refs, runId)) ?? [], 'fix the plan and submit it again');
}

/** State commits after `since` up to `head`, oldest first, with the transitions each recorded. */
async function newCommits(ctx: CliContext, runId: string, head: Oid, since: Oid | null) {
  const { entriesOf } = await import('../runs/state-store.js');
  const commits: Oid[] = [];
  for (let at: Oid | undefined = head; at && at !== since;) {
    commits.push(at);
    at = (await ctx.store.readCommit(at)).parents[0];
    if (since === null) break; // first look: just the current state
  }
  const out: Array<{ run: StoredRun; transitions: Transition[] }> = [];
  for (const commit of commits.reverse()) {
    const entries = since === null ? [] : await entriesOf(ctx.store, commit);
    out.push({ run: await readRunAt(ctx.store, runId, commit), transitions: entries });
  }
  return out;
}

export function progressView(io: Output) {
  if (!io.tty) {
    return {
      update: (run: StoredRun, transitions: readonly Transition[]) => io.out(watchLine(run.state, run.head, transitions)),
      done: () => {},
    };
  }
  let last: StoredRun | undefined;
  const timer = setInterval(() => last && logUpdate(table(last.state, Date.now())), 1000);
  return {
    update: (run: StoredRun) => {
      last = run;
      logUpdate(table(run.state, Date.now()));
    },
    done: () => {
      clearInterval(timer);
      // The last table stays on screen as the run's summary (a finished run watched shows it once).
      if (last) logUpdate(table(last.state, Date.now()));
      logUpdate.done();
    },
  };
}

/**
 * `--calls`: every child attempt (dependency call) of the run, by item, from the audit log's call entries
 * (so a failed attempt's children too), with the reason a child failed from a done item's patch output.
 */
async function addChildAttempts(store: CliContext['store'], view: StatusView, head: Oid): Promise<void> {
  const byItem = new Map<string, Array<Record<string, unknown>>>();
  for (const e of (await readRunChain(store, head)).entries) {
    if (e.kind !== 'call') continue;
    const line = {
      attempt: e.attempt,
      id: e.call,
      subagent: e.subagent,
      caller: e.caller,
      parent: e.parent,
      hop: e.hop,
      ...(e.deadline !== undefined ? { deadline: e.deadline } : {}),
      outcome: e.outcome,
    };
    byItem.set(e.itemId, [...(byItem.get(e.itemId) ?? []), line]);
  }
  for (const item of view.items) {
    const calls = byItem.get(item.id);
    if (!calls) continue;
    const commit = item.status === 'done' ? patchCommitOf(item.resultRef) : null;
    if (commit !== null) {
      const reasons = new Map(childAttemptsOf(patchOutput((await store.readCommit(commit)).message)).map((c) => [c.id, c.reason]));
      for (const c of calls) if (reasons.get(String(c.id)) !== undefined) c.reason = reasons.get(String(c.id));
    }
    Object.assign(item, { calls });
  }
}

export async function statusVerb(runId: string | undefined, g: GlobalOptions & { calls?: boolean }, io: Output): Promise<number> {
  const ctx = await openContext(g);
  if (!runId) {
    const runs = [];
    for (const { ref, oid } of await ctx.store.listRefs(ctx.refs.runsPrefix)) {
      const runId = ref.slice(ctx.refs.runsPrefix.length);
      // A ref someone pushed under runs/ is listed as what it is, and never hides the other runs.
      let problem = '';
      const run = await readListedRunAt(ctx.store, ref, runId, oid, (u) => (problem = u.problem));
      runs.push(run ? { runId, status: run.state.status, items: Object.keys(run.state.items).length } : { runId, status: 'unreadable', problem });
    }
    for (const { ref } of await ctx.store.listRefs(ctx.refs.inboxPrefix)) {
      const runId = ref.slice(ctx.refs.inboxPrefix.length);
      const problem = runIdProblem(runId); // an entry agora serve ignores: it never runs
      runs.push(problem === undefined ? { runId, status: 'submitted' } : { runId, status: 'ignored', problem: `not a run id Agora makes (${problem})` });
    }
    for (const { ref } of await ctx.store.listRefs(ctx.refs.rejectedPrefix)) {
      runs.push({ runId: ref.slice(ctx.refs.rejectedPrefix.length), status: 'rejected' });
    }
    io.out(JSON.stringify({ runs }, null, 2));
    return 0;
  }
  const run = await readRun(ctx.store, ctx.refs, runId);
  if (run) {
    const view = statusView(run.state, run.head);
    if (g.calls) await addChildAttempts(ctx.store, view, run.head);
    io.out(JSON.stringify(view, null, 2));
    return 0;
  }
  const rejected = await readRejection(ctx.store, ctx.refs, runId);
  if (rejected) {
    io.out(JSON.stringify({ runId, status: 'rejected', problems: rejected }, null, 2));
    return 1;
  }
  if (await ctx.store.resolveRef(ctx.refs.inbox(runId))) {
    io.out(JSON.stringify({ runId, status: 'submitted', note: 'waiting for `agora orch serve` to accept it' }, null, 2));
    return 0;
  }
  throw await runNotFound(ctx, runId);
}

/**
 * A log is what a worker or a model wrote: its control characters but line breaks and tabs are shown as
 * `�` (on a terminal or not: a pipe to `less` or `tail` ends at one), so an escape sequence in it cannot
 * drive the terminal. `--raw` prints it as kept, for a file or a program that wants the exact text.
 */
export async function logsVerb(runId: string, itemId: string, opts: GlobalOptions & { attempt?: number; raw?: boolean }, io: Output): Promise<number> {
  const ctx = await openContext(opts);
  const run = await readRun(ctx.store, ctx.refs, runId);
  if (!run) throw await runNotFound(ctx, runId);
  const item = run.state.items[itemId];
  if (!item) {
    throw new AgoraError('item-not-found', `run ${runId} has no item ${itemId}`, `items: ${Object.keys(run.state.items).join(', ')}`);
  }
  const attempt = opts.attempt ?? item.attempts;
  if (attempt < 1) {
    if (item.status === 'skipped' || item.status === 'cancelled')
      throw new AgoraError(
        'no-logs',
        `${itemId} never ran: it was ${item.status}${item.reason ? ` (${item.reason})` : ''}, so it has no log`,
        item.status === 'skipped'
          ? `\`agora orch retry ${runId} --failed\` runs the failed items it waited on, and then it`
          : `\`agora orch retry ${runId} ${itemId}\` runs it`,
      );
    throw new AgoraError('no-logs', `${itemId} has not started yet (${item.status})`, 'wait for it to run');
  }
  const print = (log: string): number => {
    const text = log.replace(/\n$/, '');
    io.out(opts.raw ? text : terminalSafe(text));
    return 0;
  };
  const kept = await readLog(ctx.store, run.logsTree, logName(itemId, attempt));
  if (kept !== null) return print(kept);
  let live: string;
  try {
    live = await readFile(liveLogPath(ctx.scratchDir, runId, itemId, attempt), 'utf8');
  } catch {
    throw new AgoraError('no-logs', `no log kept for ${runId}/${itemId} attempt ${attempt}`, `attempts so far: ${item.attempts}`);
  }
  return print(live);
}
