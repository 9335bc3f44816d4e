/** The simulator's Actions objects: self-hosted runners, workflow runs and their jobs. */
import type { Permissions } from '../auth.js';
import type { User } from '../state.js';
import type { Annotation } from './commands.js';
import type { WorkflowFile, WorkflowJobSpec } from './workflow.js';

export type Conclusion = 'success' | 'failure' | 'cancelled' | 'skipped';

/** A registered self-hosted runner. */
export interface SimRunner {
  id: number;
  name: string;
  /** `self-hosted`, `linux`, `x64` and the labels it registered with. */
  labels: string[];
  /** Takes one job, then de-registers (`--ephemeral`). */
  ephemeral: boolean;
  /** The job it runs, or null when idle. */
  busyWith: number | null;
  registered: boolean;
  /** A slow runner: how long it holds a job it was given before starting it (the job stays `queued`). */
  pickupDelayMs: number;
  /** A slow runner: how long each step waits (`queued`) before it starts. */
  stepDelayMs: number;
}

/** How a test (or `npm run sim`) registers a runner. */
export interface RunnerOptions {
  labels?: string[];
  name?: string;
  ephemeral?: boolean;
  /** Fault: the runner takes this long to pick up each job it is given (default 0). */
  pickupDelayMs?: number;
  /** Fault: the runner takes this long before each step of a job (default 0). */
  stepDelayMs?: number;
}

export interface StepRecord {
  name: string;
  number: number;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: Conclusion | null;
  startedAt: string | null;
  completedAt: string | null;
}

export interface JobRecord {
  id: number;
  runId: number;
  runAttempt: number;
  /** The job's id in the workflow file (shared by the jobs of one matrix). */
  key: string;
  /** The job's `strategy` with its expressions evaluated (`{}` when it has none). */
  strategy: { 'fail-fast'?: unknown; 'max-parallel'?: unknown; matrix?: unknown };
  /** This job's matrix combination, or null for a job without `strategy.matrix`. */
  matrix: Record<string, unknown> | null;
  /** Whether its `needs` and `if:` have been decided: `run` (may take a runner) or still `pending`. */
  gate: 'pending' | 'run';
  /** Why the job fails without running (a matrix the simulator cannot expand), or null. */
  refusal: string | null;
  /** `continue-on-error`: a failure of this job does not fail the run or hold back the jobs that need it. */
  continueOnError: boolean;
  /** The job's `outputs`, evaluated when its steps end. */
  outputs: Record<string, string>;
  name: string;
  spec: WorkflowJobSpec;
  labels: string[];
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: Conclusion | null;
  createdAt: string;
  startedAt: string;
  completedAt: string | null;
  runner: SimRunner | null;
  steps: StepRecord[];
  /** Timestamped log lines (what `GET …/jobs/{id}/logs` serves). */
  log: string[];
  /** Annotations from `::error|warning|notice::` workflow commands. */
  annotations: Annotation[];
  /** The step summary written through `GITHUB_STEP_SUMMARY`. */
  summary: string;
  /** Aborts a running job (cancel). */
  abort: AbortController | null;
  /** The job's GITHUB_TOKEN (expired when the job completes). */
  token: string | null;
  tokenPermissions: Permissions;
  /** `id-token: write`: the job may request OIDC tokens. */
  idToken: boolean;
  /** The bearer for ACTIONS_ID_TOKEN_REQUEST_URL while the job runs. */
  idTokenRequest: string | null;
}

export interface RunRecord {
  id: number;
  repo: string;
  workflowId: number;
  workflow: WorkflowFile;
  name: string;
  event: 'push' | 'pull_request' | 'workflow_dispatch';
  /** The commit the run is reported against (a pull request's head). */
  headSha: string;
  headBranch: string | null;
  /** What the job checks out: the head, or a pull request's merge commit. */
  sha: string;
  ref: string;
  runNumber: number;
  runAttempt: number;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: Conclusion | null;
  createdAt: string;
  updatedAt: string;
  runStartedAt: string;
  actor: User;
  inputs: Record<string, unknown>;
  eventPayload: Record<string, unknown>;
  /** The jobs of the current attempt. */
  jobs: JobRecord[];
  cancelRequested: boolean;
}
