import type { GitStore, Oid, TreeEntry } from '../git/types.js';
import type { WorkerResult } from './types.js';

/**
 * The one commit by which an attempt run on the `actions` target comes back to the orchestrator: the
 * worker job's own code writes it after the item's container ended, and pushes it to the attempt's
 * result ref. It has no parent (with the base as parent, GitHub would read the commit as deleting the
 * base's workflow files and refuse the push without `workflows` permission); its tree holds
 *
 *   workspace/    the workspace as the job captured it (.gitignore honoured); the base's tree when the item failed
 *   log           the item's output (bounded, as the job's log sink kept it)
 *   result.json   {"base": commit, "exitCode": n|null, "signal"?, "reason"?, "infrastructureFailure"?}
 *   items.json    only when the item succeeded and wrote `$AGORA_EMIT/items.json`: that file, which the job
 *                 checked as the orchestrator would (a regular file within the size limit, no secret's value)
 *
 * The item's command writes only the workspace, the log and items.json; the exit status is what the container
 * engine reported to the job. The orchestrator trusts none of it beyond that: it checks the base, and
 * the patch goes through the same capture, secret search and write-scope check as on any other target.
 */
export interface AttemptResult {
  base: Oid;
  workspace: Oid;
  log: Uint8Array;
  result: WorkerResult;
  /** The items the item emitted (`$AGORA_EMIT/items.json`), if any. */
  emitted?: Uint8Array;
}

const WORKSPACE = 'workspace';
const LOG = 'log';
const RESULT = 'result.json';
const EMITTED = 'items.json';

export async function writeAttemptResult(
  store: GitStore,
  r: {
    runId: string;
    itemId: string;
    attempt: number;
    base: Oid;
    workspace: Oid;
    log: Uint8Array | string;
    result: WorkerResult;
    emitted?: Uint8Array | string;
    now: number;
    by: string;
  },
): Promise<Oid> {
  const entries: TreeEntry[] = [
    ...(r.emitted !== undefined ? [{ mode: '100644', path: EMITTED, oid: await store.writeBlob(r.emitted), type: 'blob' } as const] : []),
    { mode: '100644', path: LOG, oid: await store.writeBlob(r.log), type: 'blob' },
    { mode: '100644', path: RESULT, oid: await store.writeBlob(JSON.stringify({ base: r.base, ...r.result })), type: 'blob' },
    { mode: '040000', path: WORKSPACE, oid: r.workspace, type: 'tree' },
  ];
  const who = { name: 'agora worker', email: 'agora@localhost', timestamp: Math.floor(r.now / 1000), timezoneOffset: 0 };
  return store.writeCommit({
    tree: await store.writeTree(entries),
    parents: [],
    message: `agora: result of ${r.runId}/${r.itemId} attempt ${r.attempt}\n\nAgora-Run: ${r.runId}\nAgora-Item: ${r.itemId}\nAgora-Attempt: ${r.attempt}\nAgora-Worker: ${r.by}\n`,
    author: who,
    committer: who,
  });
}

/** Reads a result commit; a commit of another shape is described in the thrown Error's message. */
export async function readAttemptResult(store: GitStore, oid: Oid): Promise<AttemptResult> {
  const commit = await store.readCommit(oid);
  const entries = new Map((await store.readTree(commit.tree)).map((e) => [e.path, e]));
  const workspace = entries.get(WORKSPACE);
  const log = entries.get(LOG);
  const result = entries.get(RESULT);
  const emitted = entries.get(EMITTED);
  if (workspace?.type !== 'tree' || log?.type !== 'blob' || result?.type !== 'blob') {
    throw new Error(`result commit ${oid} is not an Agora worker's result (workspace/, log and result.json)`);
  }
  if (emitted !== undefined && emitted.type !== 'blob') throw new Error(`result commit ${oid} has an items.json that is not a file`);
  const parsed = JSON.parse(Buffer.from(await store.readBlob(result.oid)).toString('utf8')) as Partial<WorkerResult> & { base?: unknown };
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    !(parsed.exitCode === null || Number.isInteger(parsed.exitCode)) ||
    typeof parsed.base !== 'string' ||
    !/^[0-9a-f]{40}$/.test(parsed.base)
  ) {
    throw new Error(`result commit ${oid} has a result.json without a base commit or an exit code`);
  }
  const out: WorkerResult = { exitCode: parsed.exitCode ?? null };
  if (typeof parsed.signal === 'string') out.signal = parsed.signal;
  if (typeof parsed.reason === 'string') out.reason = parsed.reason;
  if (parsed.infrastructureFailure === true) out.infrastructureFailure = true;
  return {
    base: parsed.base,
    workspace: workspace.oid,
    log: await store.readBlob(log.oid),
    result: out,
    ...(emitted !== undefined ? { emitted: await store.readBlob(emitted.oid) } : {}),
  };
}
