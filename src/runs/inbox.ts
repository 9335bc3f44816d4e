import { LOST_RACE, retryOnConflict } from '../retry-on-conflict.js';
import { archivedRuns } from './anchor-archive.js';
import { refBlock } from './blocked-refs.js';
import { isMachineError } from './listed-run.js';
import type { OrchConfig } from '../config/types.js';
import { agoraIdentity } from '../git/identity.js';
import type { GitStore, Oid, TreeEntry } from '../git/types.js';
import type { RunParams } from '../engine/types.js';
import { crashPoint } from '../crash-points.js';
import { PARAMS_FILE, parseRecordedParams, recordedSecretStore, removeSecretStore } from './params.js';
import { type Problem, errorMessage, isAgoraError } from '../errors.js';
import { runIdProblem } from '../plan/ids.js';
import { parsePlanText } from '../plan/parse.js';
import type { ValidationResult } from '../plan/validate.js';
import { validatePlanAtCommit } from './matrix-files.js';
import type { RunRefs } from './refs.js';
import { acceptedSubmission, readRunParamsAt, SUBMISSION_TRAILER, writeNewRun, sortTree, type StoredRun } from './state-store.js';
import { trailers } from '../git/trailers.js';
import { randomBytes } from 'node:crypto';

/**
 * The local mailbox: `submit` writes `refs/agora/inbox/<run>` (a commit whose tree holds the plan and
 * whose parent is the run's base); `serve` accepts it into `refs/agora/runs/<run>` or records it under
 * `refs/agora/rejected/<run>` with its errors. Run ids are `<plan.id>-<n>`, unique per repository.
 * The entry's message carries a random `Agora-Nonce`, so no two submissions write the same entry commit,
 * and the run's first state commit, or the rejection, names the entry it handled (`Agora-Submission`):
 * that is how `submit` tells the run or rejection of its own entry from another submission's.
 */

const decoder = new TextDecoder();

export interface Submission {
  runId: string;
  base: Oid;
  inboxCommit: Oid;
}

export async function submitPlan(
  store: GitStore,
  refs: RunRefs,
  args: {
    planText: string;
    planId: string;
    base: Oid;
    now: number;
    params?: RunParams;
    /**
     * Writes the secret parameters' store for the run id the submission is about to take, and returns its
     * token, which `params.secretStore` then names (params.ts: a new one for each run id tried).
     */
    bindSecrets?: (runId: string) => Promise<string>;
    /** Removes the store the last `bindSecrets` wrote: called when the submission fails with no entry naming it. */
    discardSecrets?: () => Promise<void>;
  },
): Promise<Submission> {
  if (args.bindSecrets && !args.params) throw new Error('submitPlan: bindSecrets needs the params whose store it binds');
  const who = agoraIdentity(args.now);
  const planBlob = await store.writeBlob(args.planText);
  const treeWith = async (params: RunParams | undefined) => {
    const entries: TreeEntry[] = [{ mode: '100644', path: 'plan.json', oid: planBlob, type: 'blob' }];
    if (params) entries.push({ mode: '100644', path: PARAMS_FILE, oid: await store.writeBlob(`${JSON.stringify(params, null, 2)}\n`), type: 'blob' });
    return store.writeTree(sortTree(entries));
  };
  const unbound = args.bindSecrets ? undefined : await treeWith(args.params);
  const nonce = randomBytes(16).toString('hex');
  // Whether a store is bound that no entry can bring to a run (none landed yet, or the id was lost to
  // another submission): a failure then removes it, as nothing could use it.
  let unnamed = false;
  try {
    return await retryOnConflict(`the run ids of plan ${args.planId}`, 100, () => submitUnder());
  } catch (e) {
    if (unnamed) await args.discardSecrets?.().catch(() => undefined);
    throw e;
  }

  async function submitUnder(): Promise<Submission | typeof LOST_RACE> {
    const runId = `${args.planId}-${await nextRunNumber(store, refs, args.planId)}`;
    // Before the submission exists: a serve may accept it, and start its workers, at once.
    unnamed = args.bindSecrets !== undefined;
    const token = await args.bindSecrets?.(runId);
    if (args.bindSecrets) crashPoint('secrets-bound'); // a store nothing names yet: the next serve removes it
    const params = token === undefined ? args.params : { ...args.params!, secretStore: token };
    const tree = unbound ?? (await treeWith(params));
    const inboxCommit = await store.writeCommit({
      tree,
      parents: [args.base],
      message: `agora: submit ${runId}\n\nAgora-Run: ${runId}\nAgora-Nonce: ${nonce}\n`,
      author: who,
      committer: who,
    });
    unnamed = false; // from here the entry may exist, even where the swap fails with an error
    if (await store.casRef(refs.inbox(runId), inboxCommit, null)) {
      // A run or a rejection under the id: an earlier submission took the number and was handled
      // meanwhile (a serve would drop this entry unread as already handled), or a serve handled this one
      // between the looks.
      const run = await store.resolveRef(refs.run(runId));
      const rejected = run === null ? await store.resolveRef(refs.rejected(runId)) : null;
      if (run === null && rejected === null) return { runId, base: args.base, inboxCommit };
      // Withdrawn (a serve that handled it has removed it, or is about to), and the next number taken,
      // unless what is under the id handled this very entry.
      await store.deleteRef(refs.inbox(runId), inboxCommit);
      if ((await handledEntry(store, run, rejected)) === inboxCommit) return { runId, base: args.base, inboxCommit };
      // A run that names no entry (accepted by an earlier Agora, say) is this one's if it holds this
      // submission's secret store, whose token was drawn at random for it; one that cannot be read is not.
      if (run !== null && token !== undefined && (await readRunParamsAt(store, runId, run).catch(() => undefined))?.secretStore === token) {
        return { runId, base: args.base, inboxCommit };
      }
    }
    // Lost: the entry never landed, or the id's run or rejection is another submission's (a serve drops
    // this entry unread, also where it could not be deleted): nothing can use the store.
    unnamed = token !== undefined;
    return LOST_RACE;
  }
}

/**
 * The inbox entry that the run at `run`, or else the rejection at `rejected`, handled; undefined when it
 * names none or cannot be read (one pushed in any shape is no submission's).
 */
async function handledEntry(store: GitStore, run: Oid | null, rejected: Oid | null, walkLimit?: number): Promise<Oid | undefined> {
  try {
    if (run !== null) return await acceptedSubmission(store, run, walkLimit);
    if (rejected !== null) return trailers((await store.readCommit(rejected)).message).get(SUBMISSION_TRAILER);
  } catch {
    // unreadable: not this submission's
  }
  return undefined;
}

/**
 * What became of the submission whose inbox entry was `entry` (a commit `submitPlan` wrote under
 * `runId`), as the refs say now:
 * - `waiting`: its entry is in the inbox;
 * - `accepted` or `rejected`: the run or the rejection under the id handled it (names it as its entry, or
 *   names none: an Agora from before the `Agora-Submission` trailer accepted or rejected it);
 * - `replaced`: what is under the id is another submission's (the entry was withdrawn, and the next
 *   `submit` was given the id again): an entry, or a run or rejection that names another entry, or one
 *   that cannot be read as a run or a rejection;
 * - `withdrawn`: nothing is under the id (`agora orch cancel` withdrew it).
 *
 * The entry is read first: a serve creates the run, or records the rejection, before it removes the entry.
 * A run's first state commit is found however long the run has grown. A failure of this machine to read
 * (listed-run.ts, `isMachineError`) is thrown, never taken for another submission.
 */
export async function submissionFate(
  store: GitStore,
  refs: RunRefs,
  runId: string,
  entry: Oid,
): Promise<'waiting' | 'accepted' | 'rejected' | 'replaced' | 'withdrawn'> {
  const inbox = await store.resolveRef(refs.inbox(runId));
  if (inbox === entry) return 'waiting';
  const run = await store.resolveRef(refs.run(runId));
  const rejected = run === null ? await store.resolveRef(refs.rejected(runId)) : null;
  if (run === null && rejected === null) return inbox === null ? 'withdrawn' : 'replaced';
  let named: Oid | undefined;
  try {
    named = run !== null ? await acceptedSubmission(store, run, Infinity) : trailers((await store.readCommit(rejected!)).message).get(SUBMISSION_TRAILER);
  } catch (e) {
    if (isMachineError(e)) throw e;
    return 'replaced'; // no run's or rejection's commits: not what a serve made of this entry
  }
  if (named !== undefined && named !== entry) return 'replaced';
  return run !== null ? 'accepted' : 'rejected';
}

/**
 * 1 + the highest n among the runs, inbox, rejected and anchor refs named `<planId>-<n>` and the runs
 * `agora orch gc` archived: a pruned run's id is never given to another run (its bundle and its anchored
 * root name it). A ref nested below such a name (`<planId>-<n>/x`, which someone pushed) takes n too:
 * the run's own refs could not be created beside it.
 */
async function nextRunNumber(store: GitStore, refs: RunRefs, planId: string): Promise<bigint> {
  const pattern = new RegExp(`^${planId.replace(/[.]/g, '\\.')}-(\\d+)(?:$|/)`);
  // Exact at any length: a pushed `<planId>-<22 digits>` made the next id `<planId>-1e+22` as a Number.
  let max = 0n;
  const seen = (runId: string) => {
    const m = pattern.exec(runId);
    if (m) {
      const n = BigInt(m[1]!);
      if (n > max) max = n;
    }
  };
  for (const prefix of [refs.runsPrefix, refs.inboxPrefix, refs.rejectedPrefix, refs.anchor('')]) {
    for (const { ref } of await store.listRefs(prefix)) seen(ref.slice(prefix.length));
  }
  for (const runId of await archivedRuns(store, refs)) seen(runId);
  return max + 1n;
}

export type AcceptOutcome =
  | { runId: string; kind: 'accepted'; run: StoredRun }
  | { runId: string; kind: 'rejected'; problems: Problem[] }
  | { runId: string; kind: 'already-accepted' }
  /** Withdrawn by `cancel` while this pass read it: no run. */
  | { runId: string; kind: 'withdrawn' }
  /**
   * Neither accepted nor rejected: a ref stayed locked past the wait, or is blocked (`reason` says which
   * and how to clear it when Agora knows), and the entry stays for a later pass.
   */
  | { runId: string; kind: 'deferred'; reason?: string; code?: string }
  /**
   * Not a submission Agora made: the entry's name is not a run id (someone pushed it). It is left where
   * it is and never served: no run or rejection ref can be named after it.
   */
  | { runId: string; kind: 'ignored'; problem: string };

/**
 * Accepts (or rejects) every submission in the inbox. Safe to run concurrently and repeatedly.
 * `scratchDir` holds this host's secret stores (params.ts): a rejected submission's go with it.
 */
export async function acceptInbox(
  store: GitStore,
  refs: RunRefs,
  config: OrchConfig,
  scratchDir: string,
  now: number,
  /** Accept only this run id (others stay in the inbox), and only from this entry when it is given. */
  only?: { runId: string; entry?: Oid },
): Promise<AcceptOutcome[]> {
  const out: AcceptOutcome[] = [];
  for (const { ref, oid } of await store.listRefs(refs.inboxPrefix)) {
    const runId = ref.slice(refs.inboxPrefix.length);
    if (only !== undefined && (runId !== only.runId || (only.entry !== undefined && oid !== only.entry))) continue;
    const problem = runIdProblem(runId);
    if (problem !== undefined) {
      out.push({ runId, kind: 'ignored', problem });
      continue;
    }
    // One entry whose refs are blocked (a lock nobody releases, a pushed ref its run ref would nest in)
    // must not stop the others, nor the runs being served: it waits for a later pass, with the reason.
    out.push(await acceptOne(store, refs, config, scratchDir, runId, oid, now).catch((e: unknown) => deferredBy(e, runId)));
  }
  return out;
}

function deferredBy(e: unknown, runId: string): AcceptOutcome {
  const block = refBlock(e);
  if (block === null) throw e;
  return { runId, kind: 'deferred', ...block };
}

async function acceptOne(
  store: GitStore,
  refs: RunRefs,
  config: OrchConfig,
  scratchDir: string,
  runId: string,
  inboxCommit: Oid,
  now: number,
): Promise<AcceptOutcome> {
  const accepted = (await store.resolveRef(refs.run(runId))) !== null;
  if (accepted || (await store.resolveRef(refs.rejected(runId))) !== null) {
    // Rejected, and the inbox entry still here: the process that recorded the rejection stopped before
    // removing the secret parameters (an accepted run keeps them: its workers read them).
    if (!accepted) await removeRejectedSecrets(await inboxParamsText(store, inboxCommit), scratchDir, runId);
    await store.deleteRef(refs.inbox(runId), inboxCommit);
    return { runId, kind: 'already-accepted' };
  }
  const entry = await readEntry(store, inboxCommit);
  const { planText, paramsText, base } = entry;
  const problems: Problem[] = [...entry.problems];
  // Agora never gives a pruned run's id to a submission (nextRunNumber), but anyone who may push can name
  // an inbox entry: as that run it would get what the id still reaches on this host (its secret store).
  if ((await store.resolveRef(refs.anchor(runId))) !== null || (await archivedRuns(store, refs)).includes(runId)) {
    problems.push({ path: '$', message: `run id ${runId} belongs to an anchored run that gc pruned, or is pruning; Agora never gives it to a submission` });
  }
  let params: RunParams | undefined;
  if (paramsText !== undefined) {
    const parsed = parseRecordedParams(paramsText);
    if (parsed.ok) params = parsed.params;
    else problems.push({ path: '$', message: parsed.problem });
  }
  let validated: ValidationResult | undefined;
  // What the run records as its plan.json: the plan as submitted, with any matrix file's values (read at
  // the base commit, never a working tree) written in place of the reference.
  let recordText = planText;
  if (problems.length === 0 && base) {
    try {
      const at = await validatePlanAtCommit(store, base, parsePlanText(planText, refs.inbox(runId)), planText, config);
      validated = at.result;
      recordText = at.recordText;
      if (!validated.ok) problems.push(...validated.problems);
    } catch (e) {
      const p = (e as { problems?: Problem[] }).problems;
      problems.push(...(p ?? [{ path: '$', message: errorMessage(e) }]));
    }
  }
  if (problems.length > 0 || !validated?.ok || !base) {
    // Not recorded (a ref stayed locked past the wait): the entry and its secrets stay for a later pass.
    if (!(await recordRejection(store, refs, { runId, inboxCommit }, planText, problems, now))) return { runId, kind: 'deferred' };
    crashPoint('submission-rejected');
    // No run will read them: the secret values leave the host once the rejection is recorded, and before
    // the inbox entry naming them goes (a crash in between: the next pass removes them, above).
    await removeRejectedSecrets(paramsText, scratchDir, runId);
    await store.deleteRef(refs.inbox(runId), inboxCommit);
    return { runId, kind: 'rejected', problems };
  }
  const plan = validated.plan;
  const concurrency = config.queues[plan.queue]?.concurrency ?? config.defaultConcurrency;
  const run = await writeNewRun(store, refs, {
    runId,
    plan,
    planText: recordText,
    base,
    concurrency,
    now,
    // The entry must still be in place when the run ref is created: a `cancel` that withdrew it meanwhile
    // (and removed its secret store) makes no run.
    submission: { ref: refs.inbox(runId), commit: inboxCommit },
    ...(params ? { params } : {}),
  });
  if (run || (await store.resolveRef(refs.run(runId))) !== null) {
    await store.deleteRef(refs.inbox(runId), inboxCommit);
    return run ? { runId, kind: 'accepted', run } : { runId, kind: 'already-accepted' };
  }
  // No run: the entry was withdrawn (or replaced) meanwhile, or a ref stayed locked past the wait (a git
  // process, another writer), and then the entry stays for a later pass.
  return (await store.resolveRef(refs.inbox(runId))) === inboxCommit ? { runId, kind: 'deferred' } : { runId, kind: 'withdrawn' };
}

/**
 * The secret store token a submission (an inbox commit) names, if any: what `agora orch cancel` removes
 * when it withdraws the submission (withdrawal.ts).
 */
export async function submissionSecretStore(store: GitStore, submission: Oid): Promise<string | undefined> {
  const text = await inboxParamsText(store, submission);
  return text === undefined ? undefined : recordedSecretStore(text);
}

async function inboxParamsText(store: GitStore, inboxCommit: Oid): Promise<string | undefined> {
  return (await readEntry(store, inboxCommit)).paramsText;
}

/**
 * What an inbox entry holds, as `submit` writes it: a commit whose first parent is the base and whose tree
 * has the file `plan.json` and perhaps the file `params.json`. Anyone who may push can write an entry of
 * another shape (a blob, a directory called plan.json): what is missing or of the wrong kind is a problem
 * of that submission, which is rejected, and never an error that stops the serve.
 */
async function readEntry(store: GitStore, inboxCommit: Oid): Promise<Entry> {
  try {
    return await readEntryObjects(store, inboxCommit);
  } catch (e) {
    if (!(isAgoraError(e) && MALFORMED_OBJECT_ERRORS.has(e.code))) throw e;
    const problem = `the submission ${inboxCommit} is not a commit of the shape agora orch submit writes: ${errorMessage(e)}`;
    return { planText: '', paramsText: undefined, base: undefined, problems: [{ path: '$', message: problem }] };
  }
}

interface Entry {
  planText: string;
  paramsText: string | undefined;
  base: Oid | undefined;
  problems: Problem[];
}

/**
 * What reading an object someone wrote in any shape throws (a blob where a commit was expected, a tree entry
 * named `.git`); not `object-corrupt`, a local object cut short, which no push makes.
 */
const MALFORMED_OBJECT_ERRORS: ReadonlySet<string> = new Set(['object-type', 'tree-invalid', 'commit-invalid']);

async function readEntryObjects(store: GitStore, inboxCommit: Oid): Promise<Entry> {
  const problems: Problem[] = [];
  const commit = await store.readCommit(inboxCommit);
  const tree = await store.readTree(commit.tree);
  const file = async (path: string): Promise<string | undefined> => {
    const found = tree.find((e) => e.path === path);
    if (found === undefined) return undefined;
    if (found.type !== 'blob') {
      problems.push({ path: '$', message: `the submission's ${path} is a ${found.type === 'tree' ? 'directory' : found.type}, not a file` });
      return undefined;
    }
    return decoder.decode(await store.readBlob(found.oid));
  };
  const planText = await file('plan.json');
  const paramsText = await file(PARAMS_FILE);
  if (!tree.some((e) => e.path === 'plan.json')) problems.push({ path: '$', message: 'the submission has no plan.json' });
  const base = commit.parents[0];
  if (!base) problems.push({ path: '$', message: 'the submission names no base commit' });
  return { planText: planText ?? '', paramsText, base, problems };
}

/**
 * Removes the secret store a rejected submission's `params.json` names, when the store is that run's (none,
 * already gone, or another run's: nothing; a pushed submission may name any run's token).
 */
async function removeRejectedSecrets(paramsText: string | undefined, scratchDir: string, runId: string): Promise<void> {
  const token = paramsText === undefined ? undefined : recordedSecretStore(paramsText);
  if (token !== undefined) await removeSecretStore(scratchDir, token, runId);
}

/** Records the rejection; false when it could not be (its ref stayed locked) and none is there. */
async function recordRejection(
  store: GitStore,
  refs: RunRefs,
  { runId, inboxCommit }: { runId: string; inboxCommit: Oid },
  planText: string,
  problems: Problem[],
  now: number,
): Promise<boolean> {
  const who = agoraIdentity(now);
  const tree = await store.writeTree(
    sortTree([
      { mode: '100644', path: 'plan.json', oid: await store.writeBlob(planText), type: 'blob' },
      {
        mode: '100644',
        path: 'errors.json',
        oid: await store.writeBlob(`${JSON.stringify({ runId, problems }, null, 2)}\n`),
        type: 'blob',
      },
    ]),
  );
  const commit = await store.writeCommit({
    tree,
    parents: [],
    message: `agora: ${runId} rejected (${problems.length} problem${problems.length === 1 ? '' : 's'})\n\nAgora-Run: ${runId}\n${SUBMISSION_TRAILER}: ${inboxCommit}\n`,
    author: who,
    committer: who,
  });
  return (await store.casRef(refs.rejected(runId), commit, null)) || (await store.resolveRef(refs.rejected(runId))) !== null;
}

/** The problems recorded for a rejected submission, or null if `runId` was not rejected. */
export async function readRejection(store: GitStore, refs: RunRefs, runId: string): Promise<Problem[] | null> {
  const head = await store.resolveRef(refs.rejected(runId));
  if (!head) return null;
  const entry = (await store.readTree((await store.readCommit(head)).tree)).find((e) => e.path === 'errors.json');
  if (!entry) return [];
  return (JSON.parse(decoder.decode(await store.readBlob(entry.oid))) as { problems: Problem[] }).problems;
}
