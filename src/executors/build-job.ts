import { agentKeyNames, checkSecretValue } from '../config/secrets.js';
import type { OrchConfig, SubagentConfig } from '../config/types.js';
import { AgoraError } from '../errors.js';
import type { WorkItem } from '../plan/schema.js';
import type { LogSink, WorkerJob } from './types.js';

/** Which target runs a job. */
export type TargetName = 'local' | 'docker' | 'actions';

export interface BuildWorkerJobArgs {
  item: WorkItem;
  config: OrchConfig;
  runId: string;
  attempt: number;
  /** The materialised workspace on this host. */
  workspaceDir: string;
  log: LogSink;
  /** Where declared secrets are looked up: the environment of `agora orch serve`. */
  environment: Record<string, string | undefined>;
  /** The names a `command` item may declare, where `environment` is Agora's own (see AttemptContext). */
  planSecrets?: ReadonlySet<string>;
}

const SUBAGENT_SECRET_HINT = 'export it in the environment of `agora orch serve`';
/** A plan's own secrets come only from what the operator offers (docs/security.md). */
const COMMAND_SECRET_HINT =
  'export it in the environment of `agora orch serve` (or `run`) and list it in orch.secrets of agora.config.mjs; the App: add it to AGORA_SECRETS_FILE for this repository';

/**
 * Turns a work item into the job a target runs, and names the target. Pure (no I/O).
 *
 * - `command`: `/bin/sh -c <inputs.run>`, env `inputs.env`, secrets named by `inputs.secrets`, target
 *   `inputs.target` or the configured `commandTarget`; on docker, image `inputs.image` or `commandImage`.
 * - `dispatch`: the subagent `inputs.subagent` from the config; `inputs.workerInput` goes to stdin and to
 *   `$AGORA_INPUT` as JSON; `$AGORA_CONFIG_DIR` names the config's directory; its declared secrets are
 *   read from `environment`; target `subagent.target` or `local`.
 *
 * Throws AgoraError when a declared secret is not set (`secret-missing`) or is shorter than
 * MIN_SECRET_LENGTH (`secret-too-short`, config/secrets.ts), the subagent is unknown
 * (`subagent-unknown`), the executor is unknown (`executor-unknown`) or an input has the wrong type
 * (`inputs-invalid`).
 */
/**
 * The target an item runs on, if it can be told without building the job: `inputs.target` or the
 * configured `commandTarget` for `command`, the subagent's `target` (default `local`) for `dispatch`.
 */
export function targetNameOf(item: WorkItem, config: OrchConfig): string | undefined {
  if (item.executor === 'command') return String(item.inputs.target ?? config.commandTarget);
  if (item.executor === 'dispatch') return config.subagents[String(item.inputs.subagent)]?.target ?? 'local';
  return undefined;
}

/** A built job, and for `dispatch` the subagent it runs (an agent's loop builds its tools' jobs from this one). */
export interface BuiltJob {
  job: WorkerJob;
  target: TargetName;
  subagent?: SubagentConfig;
}

export function buildWorkerJob(args: BuildWorkerJobArgs): BuiltJob {
  const { item } = args;
  switch (item.executor) {
    case 'command':
      return buildCommandJob(args);
    case 'dispatch':
      return buildDispatchJob(args);
    default:
      throw new AgoraError('executor-unknown', `item ${item.id} uses executor "${item.executor}", which does not exist`, 'use "command" or "dispatch"');
  }
}

function buildCommandJob(args: BuildWorkerJobArgs): { job: WorkerJob; target: TargetName } {
  const { item, config } = args;
  const inputs = item.inputs;
  const run = inputs.run;
  if (typeof run !== 'string' || run.trim() === '') {
    throw invalidInput(item, 'run', 'must be a non-empty shell command');
  }
  const env = optionalStringRecord(item, 'env', inputs.env);
  const secretNames = optionalStringArray(item, 'secrets', inputs.secrets);
  const target = inputs.target ?? config.commandTarget;
  if (target !== 'local' && target !== 'docker' && target !== 'actions') throw invalidInput(item, 'target', 'must be "local", "docker" or "actions"');
  const image = inputs.image ?? config.commandImage;
  if (image !== undefined && typeof image !== 'string') throw invalidInput(item, 'image', 'must be an image name');
  if (target !== 'local' && (image === undefined || image === '')) {
    throw new AgoraError(
      'image-missing',
      `item ${item.id} runs on the ${target} target but names no image`,
      'set inputs.image on the item or commandImage in agora.config.mjs',
    );
  }
  const job: WorkerJob = {
    ...jobBase(args),
    command: ['/bin/sh', '-c', run],
    env,
    ...secretsFor(item, target, commandSecretNames(item, config, target, secretNames, args.planSecrets), args.environment, COMMAND_SECRET_HINT),
  };
  if (target === 'docker') job.options = { image };
  if (target === 'actions') job.options = { image, ...actionsLabels(config.actions?.labels) };
  return { job, target };
}

function buildDispatchJob(args: BuildWorkerJobArgs): BuiltJob {
  const { item, config } = args;
  const name = item.inputs.subagent;
  if (typeof name !== 'string' || name === '') throw invalidInput(item, 'subagent', 'must name a subagent');
  const subagent = Object.hasOwn(config.subagents, name) ? config.subagents[name] : undefined;
  if (subagent === undefined) {
    const known = Object.keys(config.subagents);
    throw new AgoraError(
      'subagent-unknown',
      `item ${item.id} dispatches to subagent "${name}", which agora.config.mjs does not define`,
      known.length > 0 ? `use one of: ${known.join(', ')}` : 'define it under orch.subagents in agora.config.mjs',
    );
  }
  const input = JSON.stringify(item.inputs.workerInput ?? {});
  const job: WorkerJob = {
    ...jobBase(args),
    command: [...(subagent.command ?? [])],
    env: { ...subagent.env, AGORA_INPUT: input, AGORA_CONFIG_DIR: config.configDir },
    ...secretsFor(item, subagent.target ?? 'local', subagent.secrets ?? [], args.environment, SUBAGENT_SECRET_HINT),
    stdin: input,
  };
  if (subagent.docker !== undefined) job.options = { ...subagent.docker };
  if (subagent.target === 'actions') job.options = { ...job.options, ...actionsLabels(subagent.actions?.labels ?? config.actions?.labels) };
  return { job, target: subagent.target ?? 'local', subagent };
}

/** The runner labels an `actions` job asks for, when the config names them (the target has a default). */
function actionsLabels(labels: readonly string[] | undefined): { labels?: string[] } {
  return labels === undefined ? {} : { labels: [...labels] };
}

function jobBase(args: BuildWorkerJobArgs): Pick<WorkerJob, 'runId' | 'itemId' | 'attempt' | 'workspaceDir' | 'log'> {
  return {
    runId: args.runId,
    itemId: args.item.id,
    attempt: args.attempt,
    workspaceDir: args.workspaceDir,
    log: args.log,
  };
}

/**
 * The job's secrets: their values from `environment`, except on the `actions` target, where only the
 * names travel (the worker job reads the values from the repository's Actions secrets on the runner,
 * docs/actions.md), so each must be a name GitHub accepts for an Actions secret.
 */
function secretsFor(
  item: WorkItem,
  target: string,
  names: readonly string[],
  environment: Record<string, string | undefined>,
  hint: string,
): Pick<WorkerJob, 'secrets' | 'secretNames'> {
  if (target !== 'actions') return { secrets: lookUpSecrets(item, names, environment, hint) };
  for (const name of names) {
    if (!ACTIONS_SECRET_NAME.test(name) || /^GITHUB_/i.test(name)) {
      throw new AgoraError(
        'inputs-invalid',
        `item ${item.id} declares secret ${JSON.stringify(name)}, which cannot be a GitHub Actions secret (it runs on the actions target)`,
        "name it with letters, digits and _ only, not starting with a digit or GITHUB_, as the repository's Actions secret is named",
      );
    }
  }
  return { secrets: {}, ...(names.length > 0 ? { secretNames: [...names] } : {}) };
}

/** What GitHub accepts as the name of an Actions secret (a name starting with GITHUB_ is refused as well). */
export const ACTIONS_SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A `command` item's secrets, none of them an agent's API key: the loop alone holds it, and the App's
 * secrets for a repository hold it beside the plan's. (On the `actions` target the names are the
 * repository's own Actions secrets, which Agora never holds.)
 */
function commandSecretNames(
  item: WorkItem,
  config: OrchConfig,
  target: string,
  names: readonly string[],
  offered: ReadonlySet<string> | undefined,
): readonly string[] {
  if (target === 'actions') return names;
  const keys = agentKeyNames(config);
  const reserved = names.find((name) => keys.has(name));
  if (reserved !== undefined) {
    throw new AgoraError(
      'secret-reserved',
      `item ${item.id} declares secret ${reserved}, the API key of an agent, which only the orchestrator's loop holds`,
      `remove ${reserved} from the item's inputs.secrets: a worker given it could send it anywhere (an agent item gets the key through its loop)`,
    );
  }
  // Agora's own environment holds what subagents and agents read too: a plan gets only what is offered to it.
  const withheld = offered === undefined ? undefined : names.find((name) => !offered.has(name));
  if (withheld !== undefined) {
    throw new AgoraError('secret-missing', `item ${item.id} needs secret ${withheld}, which agora.config.mjs does not offer to plans`, COMMAND_SECRET_HINT);
  }
  return names;
}

function lookUpSecrets(item: WorkItem, names: readonly string[], environment: Record<string, string | undefined>, hint: string): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const name of names) {
    const value = Object.hasOwn(environment, name) ? environment[name] : undefined;
    if (value === undefined) {
      throw new AgoraError('secret-missing', `item ${item.id} needs secret ${name}, which is not set`, hint);
    }
    checkSecretValue(name, value, `item ${item.id}`);
    secrets[name] = value;
  }
  return secrets;
}

function optionalStringRecord(item: WorkItem, key: string, value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidInput(item, key, 'must be an object of strings');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalidInput(item, `${key}.${k}`, 'must be a string');
    out[k] = v;
  }
  return out;
}

function optionalStringArray(item: WorkItem, key: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) {
    throw invalidInput(item, key, 'must be an array of environment variable names');
  }
  return value as string[];
}

function invalidInput(item: WorkItem, key: string, problem: string): AgoraError {
  return new AgoraError('inputs-invalid', `item ${item.id}: inputs.${key} ${problem}`, `fix inputs.${key} in plan.json`);
}
