import * as core from '@actions/core';
import { AgoraError } from '../errors.js';
import { actionsNetworkProblem, actionsUserProblem, type DispatchedJob } from '../executors/actions-job.js';
import { ACTIONS_SECRET_NAME } from '../executors/build-job.js';
import { idProblem, runIdProblem } from '../plan/ids.js';
import { readRefNamespace, readToken } from './inputs.js';

/**
 * What `mode: worker` is given by the App's dispatch (the worker workflow passes its `workflow_dispatch`
 * inputs on): which attempt, and the job the App built for it. Every problem names the input and the fix.
 */
export interface WorkerInputs {
  token: string;
  refNamespace: string;
  runId: string;
  itemId: string;
  attempt: number;
  job: WorkerJobSpec;
  /**
   * The values the job's step was given for secrets (`secrets: ${{ toJSON(secrets) }}`: the repository's and
   * the job environment's Actions secrets), by name as GitHub spells it. Only the declared ones are used.
   */
  secrets: Record<string, string>;
}

/**
 * The part of the App's WorkerJob that travels in the dispatch: no secret values. Read for form here; the
 * worker then requires it to be the job the App builds from the run's plan (worker-check.ts).
 */
export type WorkerJobSpec = DispatchedJob;

function id(name: 'run' | 'item'): string {
  const value = core.getInput(name).trim();
  const problem = value === '' ? 'is missing' : name === 'run' ? runIdProblem(value) : idProblem(value);
  if (problem !== undefined) {
    throw new AgoraError(
      'action-input',
      `input \`${name}\` ${JSON.stringify(value)} ${problem}`,
      `pass the ${name} id the App dispatched: \`${name}: \${{ inputs.${name} }}\` (examples/workflows/agora-worker.yml)`,
    );
  }
  return value;
}

export function readWorkerInputs(): WorkerInputs {
  const token = readToken("can push the attempt's claim and result refs (contents: write)");
  const refNamespace = readRefNamespace();
  const runId = id('run');
  const itemId = id('item');
  const attemptText = core.getInput('attempt').trim();
  if (!/^[1-9]\d{0,5}$/.test(attemptText)) {
    throw new AgoraError(
      'action-input',
      `input \`attempt\` is ${JSON.stringify(attemptText)}, which is not an attempt number`,
      'pass the attempt the App dispatched: `attempt: ${{ inputs.attempt }}` (a whole number from 1)',
    );
  }
  return {
    token,
    refNamespace,
    runId,
    itemId,
    attempt: Number(attemptText),
    job: readJob(core.getInput('job')),
    secrets: readSecrets(core.getInput('secrets')),
  };
}

const SECRETS_FIX = 'pass the Actions secrets as JSON: `secrets: ${{ toJSON(secrets) }}` (examples/workflows/agora-worker.yml)';

/** The `secrets` input: empty, or a JSON object of strings (never echoed: it holds the values). */
export function readSecrets(text: string): Record<string, string> {
  if (text.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new AgoraError('action-input', 'input `secrets` is not JSON', SECRETS_FIX);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === 'string')) {
    throw new AgoraError('action-input', 'input `secrets` is not an object of strings', SECRETS_FIX);
  }
  return raw as Record<string, string>;
}

const JOB_FIX = 'pass the job the App dispatched unchanged: `job: ${{ inputs.job }}` (examples/workflows/agora-worker.yml)';

export function readJob(text: string): WorkerJobSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new AgoraError('action-input', 'input `job` is not JSON', JOB_FIX);
  }
  const o = raw as Partial<WorkerJobSpec> | null;
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
  const problem =
    o === null || typeof o !== 'object'
      ? 'is not an object'
      : !strings(o.command) || o.command.length === 0
        ? 'has no `command` (a non-empty array of strings)'
        : typeof o.env !== 'object' || o.env === null || !Object.values(o.env).every((v) => typeof v === 'string')
          ? 'has no `env` object of strings'
          : o.secrets !== undefined && (!strings(o.secrets) || !o.secrets.every((n) => ACTIONS_SECRET_NAME.test(n) && !/^GITHUB_/i.test(n)))
            ? 'has `secrets` that are not Actions secret names (letters, digits and _, not starting with a digit or GITHUB_)'
            : o.stdin !== undefined && typeof o.stdin !== 'string'
              ? 'has a `stdin` that is not a string'
              : typeof o.options !== 'object' || o.options === null || typeof o.options.image !== 'string' || o.options.image === ''
                ? 'names no container `options.image`'
                : undefined;
  if (problem !== undefined) throw new AgoraError('action-input', `input \`job\` ${problem}`, JOB_FIX);
  const job = o as WorkerJobSpec;
  // Whatever the dispatch says, the item's container never gets the runner's network nor root (docs/actions.md).
  const refused = actionsNetworkProblem(job.options.network) ?? actionsUserProblem(job.options.user);
  if (refused !== undefined) {
    throw new AgoraError(
      'action-container-refused',
      `input \`job\` asks for container ${refused}: refused, nothing was run`,
      "the App never dispatches such a job: find who dispatched this workflow run; a subagent on the actions target may set docker.network to none or bridge and docker.user to a numeric uid:gid other than root's",
    );
  }
  return job;
}
