/**
 * What a simulated runner does with one job: a fresh work directory, the runner's environment, and
 * each step in turn — `run:` in bash, `uses: actions/checkout@…` as a built-in clone over the
 * simulator's git HTTP, a JavaScript action (`./path` in the workspace or `owner/repo/path@ref` of a
 * simulated repository) under Node 24. Step outputs, `GITHUB_ENV`, `GITHUB_PATH` and the step
 * summary are read back from the runner's files after each step, as the real runner does.
 */
import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runGit } from '../git.js';
import { WorkflowCommands } from './commands.js';
import { condition, ExpressionError, interpolate, render, renderAll, type ExpressionContext, type Value } from './expressions.js';
import type { Conclusion, JobRecord, RunRecord, StepRecord } from './model.js';
import type { WorkflowStep } from './workflow.js';

/** What the runtime hands a runner for one job. */
export interface JobExecution {
  /** A fresh directory the runner owns for this job (removed afterwards). */
  root: string;
  runnerName: string;
  run: RunRecord;
  job: JobRecord;
  repo: { fullName: string; id: number; owner: string; name: string };
  urls: { api: string; git: string; html: string };
  token: string;
  /** The repository's Actions secrets: the `secrets` context beside GITHUB_TOKEN, each value masked in the log. */
  secrets: Record<string, string>;
  node24(): Promise<string>;
  /** Extracts `owner/repo` at `ref` from the simulated repository into a directory; returns it. */
  fetchAction(fullName: string, ref: string, into: string): Promise<void>;
  signal: AbortSignal;
  /** A slow runner's wait before each step (0: none); a cancel or a lost runner ends it. */
  stepDelayMs: number;
  /** The job-level contexts (inputs, matrix, strategy, vars) the runtime evaluated the job with. */
  jobContext: ExpressionContext;
  /** The `needs` context: each needed job's result and outputs. */
  needs: Record<string, { result: string; outputs: Record<string, string> }>;
  /** Set for a job with `id-token: write`: where and with what its steps request OIDC tokens. */
  idTokenRequest: { url: string; token: string } | null;
  /** Called when a step starts or ends (the runtime updates the REST view). */
  changed(): void;
}

/** Waits `ms` (a slow runner), ending early, without an error, when `signal` aborts. */
export async function slowRunner(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return;
  await delay(ms, undefined, { signal }).catch(() => undefined);
}

/** The abort reason of a job whose runner was killed: its processes die at once, with no grace. */
export const RUNNER_LOST = 'runner-lost';
/** The abort reason of a job or step that ran past its `timeout-minutes`. */
export const TIMED_OUT = 'timed-out';

/** A `timeout-minutes` value in milliseconds (fractions of a minute are accepted), or null when unset. */
export function timeoutMs(value: Value | undefined, ctx: ExpressionContext, what: string): number | null {
  if (value === undefined) return null;
  const minutes = Number(render(value, ctx));
  if (!Number.isFinite(minutes) || minutes <= 0) throw new StepFailure(`${what}: timeout-minutes must be a positive number, got '${String(value)}'`);
  return minutes * 60_000;
}

/** A `continue-on-error` value (a boolean, or an expression that renders `true`). */
export function flag(value: Value | undefined, ctx: ExpressionContext): boolean {
  return value !== undefined && render(value, ctx).trim() === 'true';
}

/** The `env` context of a job's steps: the workflow's, the job's, then what steps wrote to GITHUB_ENV. */
function jobEnv(
  workflow: Record<string, Value> | undefined,
  job: Record<string, Value> | undefined,
  fromFiles: Record<string, string>,
  ctx: ExpressionContext,
): Record<string, string> {
  const wf = renderAll(workflow, { ...ctx, env: {} });
  return { ...wf, ...renderAll(job, { ...ctx, env: wf }), ...fromFiles };
}

/** A step failure the job log states (not a simulator bug). */
class StepFailure extends Error {}

const stamp = (): string => new Date().toISOString();
const iso = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** `NAME=value` lines and `NAME<<DELIM … DELIM` blocks (GITHUB_OUTPUT / GITHUB_ENV). */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2]!, i + 1);
      if (end < 0) throw new StepFailure(`Matching delimiter not found '${heredoc[2]}'`);
      out[heredoc[1]!] = lines.slice(i + 1, end).join('\n');
      i = end;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new StepFailure(`Invalid format '${line}'`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** How long a cancelled step has after SIGINT before SIGTERM, and after SIGTERM before SIGKILL (as GitHub's runner). */
const CANCEL_SIGINT_GRACE_MS = 7_500;
const CANCEL_SIGTERM_GRACE_MS = 2_500;

/** Spawns one step process in its own process group; a cancel signals the group (see `onAbort`). Resolves the exit code. */
function spawnStep(
  cmd: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; signal: AbortSignal; log: (line: string) => void },
): Promise<number | 'cancelled'> {
  return new Promise((resolvePromise, reject) => {
    if (opts.signal.aborted) return resolvePromise('cancelled');
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let rest = '';
    const onData = (c: Buffer): void => {
      const parts = (rest + c.toString('utf8')).split('\n');
      rest = parts.pop()!;
      for (const p of parts) opts.log(p);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    let escalation: NodeJS.Timeout | undefined;
    const signal = (name: NodeJS.Signals): void => {
      try {
        process.kill(-child.pid!, name);
      } catch {
        /* already gone */
      }
    };
    // A cancelled step gets what GitHub's runner gives it: SIGINT, SIGTERM 7.5 s later, SIGKILL 2.5 s after
    // that. The simulator signals the step's process group where the runner signals the step's own pid.
    // A lost runner's processes die at once.
    const onAbort = (): void => {
      if (opts.signal.reason === RUNNER_LOST) return signal('SIGKILL');
      signal('SIGINT');
      escalation = setTimeout(() => {
        signal('SIGTERM');
        escalation = setTimeout(() => signal('SIGKILL'), CANCEL_SIGTERM_GRACE_MS);
        escalation.unref();
      }, CANCEL_SIGINT_GRACE_MS);
      escalation.unref();
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', reject);
    child.on('close', (code) => {
      opts.signal.removeEventListener('abort', onAbort);
      if (escalation) clearTimeout(escalation);
      if (rest) opts.log(rest);
      resolvePromise(opts.signal.aborted ? 'cancelled' : (code ?? 1));
    });
  });
}

const UNSUPPORTED_STEP_KEYS = ['working-directory'] as const;

function githubContext(x: JobExecution, workspace: string, eventPath: string): Record<string, unknown> {
  const { run, job, repo, urls } = x;
  const refName = run.ref.replace(/^refs\/(heads|tags)\//, '');
  return {
    token: x.token,
    sha: run.sha,
    ref: run.ref,
    ref_name: run.event === 'pull_request' ? run.ref.replace(/^refs\/pull\//, '') : refName,
    ref_type: run.ref.startsWith('refs/tags/') ? 'tag' : 'branch',
    repository: repo.fullName,
    repository_id: String(repo.id),
    repository_owner: repo.owner,
    event_name: run.event,
    event: run.eventPayload,
    event_path: eventPath,
    run_id: String(run.id),
    run_number: String(run.runNumber),
    run_attempt: String(run.runAttempt),
    job: job.key,
    workflow: run.name,
    workflow_ref: `${repo.fullName}/${run.workflow.path}@${run.ref}`,
    actor: run.actor.login,
    triggering_actor: run.actor.login,
    server_url: urls.html,
    api_url: urls.api,
    graphql_url: `${urls.api}/graphql`,
    workspace,
    head_ref: run.event === 'pull_request' ? ((run.eventPayload.pull_request as { head?: { ref?: string } } | undefined)?.head?.ref ?? '') : '',
    base_ref: run.event === 'pull_request' ? ((run.eventPayload.pull_request as { base?: { ref?: string } } | undefined)?.base?.ref ?? '') : '',
  };
}

function runnerEnv(x: JobExecution, gh: Record<string, unknown>, temp: string, root: string): Record<string, string> {
  const env: Record<string, string> = {
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    RUNNER_NAME: x.runnerName,
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_ENVIRONMENT: 'self-hosted',
    RUNNER_TEMP: temp,
    RUNNER_TOOL_CACHE: join(root, 'tool-cache'),
    RUNNER_WORKSPACE: join(root, 'work', x.repo.name),
  };
  const names: Record<string, string> = {
    GITHUB_SHA: 'sha',
    GITHUB_REF: 'ref',
    GITHUB_REF_NAME: 'ref_name',
    GITHUB_REF_TYPE: 'ref_type',
    GITHUB_REPOSITORY: 'repository',
    GITHUB_REPOSITORY_ID: 'repository_id',
    GITHUB_REPOSITORY_OWNER: 'repository_owner',
    GITHUB_EVENT_NAME: 'event_name',
    GITHUB_EVENT_PATH: 'event_path',
    GITHUB_RUN_ID: 'run_id',
    GITHUB_RUN_NUMBER: 'run_number',
    GITHUB_RUN_ATTEMPT: 'run_attempt',
    GITHUB_JOB: 'job',
    GITHUB_WORKFLOW: 'workflow',
    GITHUB_WORKFLOW_REF: 'workflow_ref',
    GITHUB_ACTOR: 'actor',
    GITHUB_TRIGGERING_ACTOR: 'triggering_actor',
    GITHUB_SERVER_URL: 'server_url',
    GITHUB_API_URL: 'api_url',
    GITHUB_GRAPHQL_URL: 'graphql_url',
    GITHUB_WORKSPACE: 'workspace',
    GITHUB_HEAD_REF: 'head_ref',
    GITHUB_BASE_REF: 'base_ref',
  };
  for (const [k, v] of Object.entries(names)) env[k] = String(gh[v] ?? '');
  if (x.idTokenRequest) {
    env.ACTIONS_ID_TOKEN_REQUEST_URL = x.idTokenRequest.url;
    env.ACTIONS_ID_TOKEN_REQUEST_TOKEN = x.idTokenRequest.token;
  }
  return env;
}

/** Runs every step of `x.job`; returns the job's conclusion. Step records are updated in place. */
export async function executeJob(x: JobExecution): Promise<Conclusion> {
  const { job, run } = x;
  // Workflow commands on the steps' output; the job token and the secrets are masked from the start, as on GitHub.
  const commands = new WorkflowCommands((line) => void job.log.push(`${stamp()} ${line}`));
  commands.mask(x.token);
  for (const value of Object.values(x.secrets)) commands.mask(value);
  job.annotations = commands.annotations;
  const log = (line: string): void => commands.log(line);
  const output = (line: string): void => commands.line(line);
  const workspace = join(x.root, 'work', x.repo.name, x.repo.name);
  const temp = join(x.root, 'temp');
  const eventPath = join(temp, '_github_workflow', 'event.json');
  await mkdir(workspace, { recursive: true });
  await mkdir(join(temp, '_github_workflow'), { recursive: true });
  await mkdir(join(x.root, 'tool-cache'), { recursive: true });
  await writeFile(eventPath, JSON.stringify(run.eventPayload));
  const gh = githubContext(x, workspace, eventPath);
  const base = runnerEnv(x, gh, temp, x.root);
  const ctx: StepContext = {
    ...x.jobContext,
    github: gh,
    steps: {},
    secrets: { ...x.secrets, GITHUB_TOKEN: x.token },
    needs: x.needs,
    runner: { name: x.runnerName, os: 'Linux', arch: 'X64', environment: 'self-hosted', temp, tool_cache: base.RUNNER_TOOL_CACHE },
    workspace,
  };
  const fromEnvFiles: Record<string, string> = {};
  const extraPath: string[] = [];
  log(`Runner name: '${x.runnerName}'`);
  log(`GITHUB_TOKEN Permissions: ${JSON.stringify(job.tokenPermissions)}`);
  let failed = false;
  const specs = job.spec.steps;
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!;
    const record = job.steps[i]!;
    // A step's `if:` sees the env of the workflow, the job, earlier GITHUB_ENV writes and its own `env:`.
    const cancelledBefore = x.signal.aborted;
    let runIt = false;
    try {
      ctx.job = { status: cancelledBefore ? 'cancelled' : failed ? 'failure' : 'success' };
      ctx.env = jobEnv(run.workflow.workflow.env, job.spec.env, fromEnvFiles, ctx);
      ctx.env = { ...ctx.env, ...renderAll(spec.env, ctx) };
      // A lost runner runs nothing more; a cancel still runs the steps whose `if:` asks for it (always(), cancelled()).
      runIt = x.signal.reason !== RUNNER_LOST && condition(spec.if, ctx, { success: !failed, failure: failed, cancelled: cancelledBefore });
    } catch (e) {
      if (!(e instanceof ExpressionError)) throw e;
      log(`##[error]${run.workflow.path}: step ${i + 1} \`if: ${spec.if}\`: ${e.message}`);
      failed = true;
    }
    if (!runIt) {
      // A skipped step is reported completed with both times set, as GitHub's payloads carry them.
      record.status = 'completed';
      record.conclusion = 'skipped';
      record.startedAt = record.completedAt = iso();
      if (spec.named) ctx.steps[spec.id] = { outputs: {}, outcome: 'skipped', conclusion: 'skipped' };
      continue;
    }
    await slowRunner(x.stepDelayMs, x.signal);
    record.status = 'in_progress';
    record.startedAt = iso();
    x.changed();
    log(`##[group]${record.name}`);
    // A step's own signal: a cancel of the job reaches it, and so does its own timeout. A step that
    // starts after the cancel (its `if:` asked to run then) is not killed by it, as on GitHub.
    const step = new AbortController();
    const follow = (): void => step.abort(x.signal.reason);
    if (!cancelledBefore) x.signal.addEventListener('abort', follow, { once: true });
    else if (x.signal.reason === RUNNER_LOST) follow();
    let timer: NodeJS.Timeout | undefined;
    let outcome: Conclusion;
    try {
      const limit = timeoutMs(spec['timeout-minutes'], ctx, `step ${i + 1}`);
      if (limit !== null) timer = setTimeout(() => step.abort(TIMED_OUT), limit);
      outcome = await runStep(x, spec, i, { ctx, base, fromEnvFiles, extraPath, workspace, temp, log, output, signal: step.signal });
      if (outcome === 'cancelled' && step.signal.reason === TIMED_OUT) {
        log(`##[error]The action '${record.name}' has timed out after ${String(spec['timeout-minutes'])} minutes.`);
        outcome = 'failure';
      }
    } catch (e) {
      if (!(e instanceof StepFailure) && !(e instanceof ExpressionError)) throw e;
      log(`##[error]${e.message}`);
      outcome = 'failure';
    } finally {
      if (timer) clearTimeout(timer);
      x.signal.removeEventListener('abort', follow);
    }
    log('##[endgroup]');
    // continue-on-error: the step's outcome stays a failure, its conclusion (and the job) go on as success.
    const result = outcome === 'failure' && flag(spec['continue-on-error'], ctx) ? 'success' : outcome;
    if (spec.named) ctx.steps[spec.id] = { outputs: ctx.steps[spec.id]?.outputs ?? {}, outcome, conclusion: result };
    record.status = 'completed';
    record.conclusion = result;
    record.completedAt = iso();
    x.changed();
    if (result === 'failure') failed = true;
  }
  let conclusion: Conclusion = x.signal.aborted ? 'cancelled' : failed ? 'failure' : 'success';
  try {
    job.outputs = renderAll(job.spec.outputs, ctx);
  } catch (e) {
    if (!(e instanceof ExpressionError)) throw e;
    log(`##[error]${run.workflow.path}: job outputs: ${e.message}`);
    conclusion = conclusion === 'success' ? 'failure' : conclusion;
  }
  log(conclusion === 'cancelled' ? '##[error]The operation was canceled.' : `Job ${conclusion === 'success' ? 'succeeded' : 'failed'}`);
  await rm(x.root, { recursive: true, force: true }).catch(() => undefined);
  return conclusion;
}

/** The contexts of a job's steps (`steps` always there). */
type StepContext = ExpressionContext & Required<Pick<ExpressionContext, 'steps'>>;

interface StepScope {
  ctx: StepContext;
  base: Record<string, string>;
  fromEnvFiles: Record<string, string>;
  extraPath: string[];
  workspace: string;
  temp: string;
  log: (line: string) => void;
  /** A line of a step's output (workflow commands are handled here). */
  output: (line: string) => void;
  /** The step's signal: aborted by a cancel of the job or by the step's timeout. */
  signal: AbortSignal;
}

async function runStep(x: JobExecution, spec: WorkflowStep, index: number, s: StepScope): Promise<Conclusion> {
  for (const key of UNSUPPORTED_STEP_KEYS) {
    if (spec[key] !== undefined) throw new StepFailure(`step ${index + 1} uses \`${key}:\`, which the simulator does not support`);
  }
  const files = join(s.temp, '_runner_file_commands');
  await mkdir(files, { recursive: true });
  const f = {
    GITHUB_OUTPUT: join(files, `set_output_${index}`),
    GITHUB_ENV: join(files, `set_env_${index}`),
    GITHUB_PATH: join(files, `add_path_${index}`),
    GITHUB_STEP_SUMMARY: join(files, `step_summary_${index}`),
  };
  for (const p of Object.values(f)) await writeFile(p, '');
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...s.base,
    ...s.ctx.env,
    ...f,
    GITHUB_ACTION: spec.id,
  };
  // The runner's own environment is not the job's: drop what the simulator's host process carries for itself.
  for (const k of Object.keys(env)) if (k.startsWith('VITEST') || k.startsWith('npm_') || k === 'NODE_OPTIONS') delete env[k];
  if (s.extraPath.length > 0) env.PATH = [...s.extraPath].reverse().join(':') + ':' + (env.PATH ?? '');
  const exec = { cwd: s.workspace, env, signal: s.signal, log: s.output };
  let code: number | 'cancelled';
  if (spec.run !== undefined) {
    const shell = spec.shell ?? 'bash';
    if (shell !== 'bash') throw new StepFailure(`step ${index + 1} asks for \`shell: ${shell}\`; the simulator runs only bash`);
    const script = join(s.temp, `step_${index + 1}.sh`);
    await writeFile(script, render(spec.run, s.ctx));
    // `shell: bash` named explicitly adds pipefail; the implicit default is `bash -e {0}`.
    const args = spec.shell === undefined ? ['-e', script] : ['--noprofile', '--norc', '-eo', 'pipefail', script];
    code = await spawnStep('bash', args, exec);
  } else {
    code = await runUses(x, spec, index, s, exec);
  }
  if (code === 'cancelled') return 'cancelled';
  const outputs = parseFileCommands(await readFile(f.GITHUB_OUTPUT, 'utf8'));
  if (spec.named) s.ctx.steps[spec.id] = { outputs };
  Object.assign(s.fromEnvFiles, parseFileCommands(await readFile(f.GITHUB_ENV, 'utf8')));
  s.extraPath.push(...(await readFile(f.GITHUB_PATH, 'utf8')).split('\n').filter(Boolean));
  x.job.summary += await readFile(f.GITHUB_STEP_SUMMARY, 'utf8');
  if (code !== 0) {
    s.log(`##[error]Process completed with exit code ${code}.`);
    return 'failure';
  }
  return 'success';
}

type Exec = { cwd: string; env: Record<string, string>; signal: AbortSignal; log: (line: string) => void };

async function runUses(x: JobExecution, spec: WorkflowStep, index: number, s: StepScope, exec: Exec): Promise<number | 'cancelled'> {
  const uses = spec.uses!;
  const withInputs = renderAll(spec.with, s.ctx);
  if (/^actions\/checkout@/.test(uses)) return checkout(x, withInputs, s, exec);
  let dir: string;
  if (uses.startsWith('./')) {
    dir = resolve(s.workspace, uses);
  } else {
    const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)((?:\/[^@]+)?)@(.+)$/.exec(uses);
    if (!m) throw new StepFailure(`step ${index + 1}: \`uses: ${uses}\` is neither ./<path> nor <owner>/<repo>[/<path>]@<ref>`);
    const into = join(x.root, '_actions', m[1]!, m[2]!, m[4]!.replace(/[^A-Za-z0-9_.-]/g, '_'));
    if (!existsSync(into)) {
      await mkdir(into, { recursive: true });
      await x.fetchAction(`${m[1]}/${m[2]}`, m[4]!, into).catch((e: Error) => {
        throw new StepFailure(`Unable to resolve action \`${uses}\`: ${e.message}`);
      });
    }
    dir = join(into, m[3]!.replace(/^\//, ''));
  }
  const file = ['action.yml', 'action.yaml'].map((n) => join(dir, n)).find((p) => existsSync(p));
  if (!file)
    throw new StepFailure(
      `Can't find 'action.yml' or 'action.yaml' under '${dir}' for \`uses: ${uses}\`${uses.startsWith('./') ? ' (did a checkout step run first?)' : ''}`,
    );
  const action = parseYaml(await readFile(file, 'utf8')) as {
    inputs?: Record<string, { default?: unknown; required?: boolean }>;
    runs?: { using?: string; main?: string; pre?: string; post?: string };
  } | null;
  const runs = action?.runs;
  if (!runs || (runs.using !== 'node24' && runs.using !== 'node20') || typeof runs.main !== 'string') {
    throw new StepFailure(
      `\`${uses}\`: the simulator runs JavaScript actions (runs.using node20 or node24, with runs.main); this one has runs.using ${String(runs?.using)}`,
    );
  }
  if (runs.pre || runs.post) s.log(`##[warning]${uses}: runs.pre and runs.post are not run by the simulator`);
  const env: Record<string, string> = { ...exec.env, GITHUB_ACTION_PATH: dir };
  for (const [name, def] of Object.entries(action?.inputs ?? {})) {
    const value = withInputs[name] ?? (def?.default === undefined ? '' : interpolate(String(def.default), s.ctx));
    env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  }
  for (const [name, value] of Object.entries(withInputs)) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  const node = await x.node24();
  s.log(`Run ${uses} (node ${runs.using} under ${node})`);
  return spawnStep(node, [join(dir, runs.main)], { ...exec, env });
}

/** `actions/checkout` as a built-in: fetch the event's commit over git HTTP with the job token. */
async function checkout(x: JobExecution, inputs: Record<string, string>, s: StepScope, exec: Exec): Promise<number> {
  const repository = inputs.repository || x.repo.fullName;
  const token = inputs.token || x.token;
  const ref = inputs.ref || (repository === x.repo.fullName ? x.run.sha : 'HEAD');
  const dest = resolve(s.workspace, inputs.path ?? '');
  const url = `${x.urls.git}/${repository}`;
  const header = `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
  s.log(`Syncing repository: ${repository} at ${ref}`);
  try {
    await mkdir(dest, { recursive: true });
    await runGit(['init', '-q', dest]);
    await runGit(['-C', dest, 'remote', 'add', 'origin', url]);
    await runGit(['-C', dest, '-c', `http.extraheader=${header}`, 'fetch', '--no-tags', '--depth=1', 'origin', ref]);
    await runGit(['-C', dest, 'checkout', '-q', '--detach', 'FETCH_HEAD']);
    if ((inputs['persist-credentials'] ?? 'true') !== 'false') await runGit(['-C', dest, 'config', '--local', `http.${x.urls.git}/.extraheader`, header]);
  } catch (e) {
    s.log(`##[error]${(e as Error).message}`);
    return 1;
  }
  if (exec.signal.aborted) return 1;
  return 0;
}

/** Fresh step records for a job's steps (names as GitHub shows them). */
export function stepRecords(steps: WorkflowStep[]): StepRecord[] {
  return steps.map((st, i) => ({
    name: st.name !== undefined ? String(st.name) : st.run !== undefined ? `Run ${String(st.run).split('\n')[0]}` : `Run ${st.uses}`,
    number: i + 1,
    status: 'queued',
    conclusion: null,
    startedAt: null,
    completedAt: null,
  }));
}
