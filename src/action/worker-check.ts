import { isDeepStrictEqual } from 'node:util';
import type { DockerOptions, OrchConfig } from '../config/types.js';
import { AgoraError, isAgoraError } from '../errors.js';
import { dispatchedJob, recordedJobText, type DispatchedJob } from '../executors/actions-job.js';
import { buildWorkerJob } from '../executors/build-job.js';
import type { LogSink } from '../executors/types.js';
import type { GitStore } from '../git/types.js';
import { patchCommitOf } from '../log/result-ref.js';
import type { WorkItem } from '../plan/schema.js';
import type { RunRefs } from '../runs/refs.js';
import type { StoredRun } from '../runs/state-store.js';

/**
 * `mode: worker` runs what its dispatch says, and a dispatch can come from anyone who can dispatch the
 * worker workflow (`actions: write`), not only from the App. So before it claims the attempt, the job
 * rebuilds the App's job from the item in the run's state (the plan the state commit holds, as the App's
 * driver read it) with the App's own buildWorkerJob, and requires the dispatched one to be it: command,
 * environment, secret names, stdin and container options.
 *
 * What the worker cannot see is the App's config (AGORA_CONFIG, on the App's host). Those parts are taken
 * from the dispatch as they are: for a `command` item only the image, when the item names none
 * (`commandImage`), and that `commandTarget` is `actions` when the item names no target; for a `dispatch`
 * item the subagent's command, env, secrets and docker options, so that there only the item's own part
 * (`workerInput`, as stdin and `$AGORA_INPUT`) is compared. Whatever the config, a dispatch never gets the
 * runner's network or root (worker-inputs.ts).
 */

/**
 * Variables the item's container gets from the docker target itself, whatever the job's env says
 * (`containerEnv` in executors/docker-spec.ts, as the worker runs it: with an emit directory, no call
 * socket, no parameters file). The App's values of some are paths on its own host: not compared.
 */
const SET_BY_CONTAINER = new Set(['AGORA_RUN', 'AGORA_ITEM', 'AGORA_ATTEMPT', 'AGORA_WORKSPACE', 'AGORA_EMIT', 'AGORA_PARAMS', 'AGORA_CALL_SOCKET']);

const NO_LOG: LogSink = { write: () => undefined, close: async () => undefined, tail: () => '' };

const MISMATCH_HINT =
  "the App dispatches the worker workflow with the job it builds from the run's plan, so this dispatch was not the App's or was changed: find who dispatched this workflow run, and review who holds `actions: write` on the repository (docs/actions.md)";

/** Throws `action-dispatch-mismatch`, naming what differs, unless `job` is what the App builds for `itemId`'s `attempt` from `run`. */
export function checkDispatchedJob(run: StoredRun, itemId: string, attempt: number, job: DispatchedJob): void {
  const item = run.plan.items.find((i) => i.id === itemId);
  const why = item === undefined ? `run ${run.runId} has no item ${itemId}` : difference(run, item, attempt, job);
  if (why !== undefined) {
    throw new AgoraError(
      'action-dispatch-mismatch',
      `the job dispatched for ${run.runId}/${itemId} attempt ${attempt} does not match the plan: ${why}; nothing was run`,
      MISMATCH_HINT,
    );
  }
}

function difference(run: StoredRun, item: WorkItem, attempt: number, got: DispatchedJob): string | undefined {
  const needs = item.needs !== undefined && Object.keys(item.needs).length > 0;
  let built;
  try {
    built = buildWorkerJob({ item, config: standInConfig(item, got, needs), runId: run.runId, attempt, workspaceDir: '', log: NO_LOG, environment: {} });
  } catch (e) {
    if (!isAgoraError(e)) throw e;
    return `the App builds no job from the item (${e.message})`;
  }
  if (built.target !== 'actions') return `the plan runs the item on the ${built.target} target, not on the repository's runners`;
  const want = dispatchedJob(built.job);
  if (!isDeepStrictEqual(got.command, want.command)) return `its command is not the one the plan gives the item`;
  const names = new Set([...Object.keys(got.env), ...Object.keys(want.env)]);
  // The App sets $AGORA_NEEDS when the item starts (src/runs/attempt.ts), naming files on its own host.
  if (needs) names.add('AGORA_NEEDS');
  for (const name of [...names].sort()) {
    if (SET_BY_CONTAINER.has(name)) continue;
    const same =
      needs && name === 'AGORA_NEEDS'
        ? needsMatch(run, item, got.env[name])
        : Object.hasOwn(got.env, name) === Object.hasOwn(want.env, name) && got.env[name] === want.env[name];
    if (!same) return `its environment variable ${name} is not the one the plan gives the item`;
  }
  const asked = got.secrets ?? [];
  const declared = want.secrets ?? [];
  const undeclared = asked.filter((name) => !declared.includes(name));
  if (undeclared.length > 0) return `it asks for secret${undeclared.length === 1 ? '' : 's'} ${undeclared.join(', ')}, which the item does not declare`;
  if (!isDeepStrictEqual(asked, declared))
    return `its secrets (${asked.join(', ') || 'none'}) are not the ones the item declares (${declared.join(', ') || 'none'})`;
  if (got.stdin !== want.stdin) return `its stdin is not the one the plan gives the item (a dispatch item's workerInput, none for a command item)`;
  for (const key of [...new Set([...Object.keys(got.options), ...Object.keys(want.options)])].sort()) {
    if (!isDeepStrictEqual(got.options[key], want.options[key])) return `its container option ${key} is not the one the plan gives the item`;
  }
  return undefined;
}

/**
 * The App's config as far as the worker can tell: the item runs on the actions target (or the App would not
 * have dispatched it), and what only the config says is taken from the dispatch (see above).
 */
function standInConfig(item: WorkItem, got: DispatchedJob, needs: boolean): OrchConfig {
  const image = got.options.image;
  const config: OrchConfig = {
    queues: {},
    defaultConcurrency: 1,
    subagents: {},
    shapes: {},
    refNamespace: 'refs/agora/',
    commandTarget: 'actions',
    ...(typeof image === 'string' ? { commandImage: image } : {}),
    configDir: got.env.AGORA_CONFIG_DIR ?? '',
  };
  if (item.executor === 'dispatch') {
    // What buildWorkerJob adds to the subagent's env is left out of it, so that it is compared.
    const env = Object.fromEntries(
      Object.entries(got.env).filter(([name]) => name !== 'AGORA_INPUT' && name !== 'AGORA_CONFIG_DIR' && !(needs && name === 'AGORA_NEEDS')),
    );
    const subagent = { command: got.command, env, secrets: got.secrets ?? [], target: 'actions' as const, docker: got.options as unknown as DockerOptions };
    // fromEntries: an own property whatever the name (buildWorkerJob looks it up with Object.hasOwn).
    config.subagents = Object.fromEntries([[String(item.inputs.subagent), subagent]]);
  }
  return config;
}

/**
 * `$AGORA_NEEDS` as the App sets it (src/runs/needs.ts): each binding's upstream, kind, path and the
 * upstream's patch commit from the run's state, as the plan says; its `file`, a path on the App's host, is
 * only required to be a string.
 */
function needsMatch(run: StoredRun, item: WorkItem, text: string | undefined): boolean {
  let got: unknown;
  try {
    got = JSON.parse(text ?? '');
  } catch {
    return false;
  }
  if (typeof got !== 'object' || got === null || Array.isArray(got)) return false;
  const withoutFiles: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(got)) {
    if (typeof entry !== 'object' || entry === null || typeof (entry as { file?: unknown }).file !== 'string') return false;
    const { file: _file, ...rest } = entry as Record<string, unknown>;
    withoutFiles[name] = rest;
  }
  const want = Object.fromEntries(
    Object.entries(item.needs ?? {}).map(([name, binding]) => [
      name,
      {
        from: binding.from,
        kind: binding.select.kind,
        commit: patchCommitOf(run.state.items[binding.from]?.resultRef),
        ...(binding.select.kind === 'output' ? { path: binding.select.path } : {}),
      },
    ]),
  );
  return isDeepStrictEqual(withoutFiles, want);
}

/**
 * Throws `action-dispatch-mismatch` unless the App recorded exactly `job` for this attempt, at
 * `refs.dispatch(…)` (fetched into `store`), before it dispatched it. The record is written with the App's
 * push access (`contents: write`), which dispatching (`actions: write`) does not need: a job dispatched by
 * anyone else finds no record, or another job in it, and runs nothing. This covers what
 * {@link checkDispatchedJob} cannot rebuild from the plan (a dispatch item's subagent, a default image).
 */
export async function checkRecordedDispatch(store: GitStore, refs: RunRefs, runId: string, itemId: string, attempt: number, job: DispatchedJob): Promise<void> {
  const ref = refs.dispatch(runId, itemId, attempt);
  const record = await store.resolveRef(ref);
  const text = record === null ? null : await recordedJobText(store, record);
  let recorded: unknown;
  try {
    recorded = text === null ? undefined : JSON.parse(text);
  } catch {
    recorded = undefined;
  }
  if (recorded !== undefined && isDeepStrictEqual(recorded, job)) return;
  throw new AgoraError(
    'action-dispatch-mismatch',
    `the job dispatched for ${runId}/${itemId} attempt ${attempt} is not the one the App recorded at ${ref} (${record === null ? 'there is no record' : 'the record holds another job'}); nothing was run`,
    record === null
      ? `an App older than this Action records no dispatches: upgrade the App before the worker's Action (or pin the Action to the App's version); otherwise ${MISMATCH_HINT}`
      : MISMATCH_HINT,
  );
}
