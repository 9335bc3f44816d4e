/**
 * `agora.config.mjs` exports `orch` (as in the seed): queue concurrency, subagents, input shapes.
 * The file is loaded by src/config/load.ts and validated there; these are the validated shapes.
 */

/** A JSON Schema (draft 2020-12 or 07), checked with ajv. */
export type { JsonSchema } from '../problems/json-schema.js';
import type { JsonSchema } from '../problems/json-schema.js';

export interface DockerOptions {
  image: string;
  /** `none` (default) or `bridge`/a network name: containers have no network unless asked. */
  network?: string;
  /** e.g. `512m`, `1g`. */
  memory?: string;
  cpus?: number;
  pids?: number;
  /** Defaults to 65534:65534 (nobody). */
  user?: string;
}

/** A tool that runs `command` on the item's target with the model's input (JSON) on stdin. */
export interface AgentCommandTool {
  name: string;
  description: string;
  inputSchema: JsonSchema;
  command: string[];
}

export type AgentBuiltinTool = 'read_file' | 'write_file' | 'list_files' | 'bash';

/** A managed-loop subagent (docs/agents.md): the loop and the key stay in the orchestrator. */
export interface AgentConfig {
  /** System prompt file, relative to the config's directory. */
  prompt: string;
  model: string;
  maxTurns: number;
  maxTokens: number;
  /** `strict` (default): no `bash`. */
  mode: 'strict' | 'flexible';
  tools?: (AgentBuiltinTool | AgentCommandTool)[];
  baseURL?: string;
  /** The environment variable holding the API key (default ANTHROPIC_API_KEY). */
  apiKeyEnv: string;
}

export interface SubagentConfig {
  /** argv run in the workspace; `inputs.workerInput` arrives as JSON on stdin and in `$AGORA_INPUT`. Exactly one of `command` and `agent`. */
  command?: string[];
  /** A managed loop instead of a command. */
  agent?: AgentConfig;
  /** JSON Schema the subagent's output must match (an agent's final answer, parsed as JSON). */
  outputSchema?: JsonSchema;
  /** What this subagent does: the description of the tool that calls it, given to a caller's model. */
  description?: string;
  /** Subagents this one may call (checked when the config loads: defined, no cycle). */
  dependencies?: string[];
  /** The max_hops rule for call chains starting at an item of this subagent (default 3; `src/agents/max-hops.ts`). */
  maxHops?: number;
  /** The budget of each call this subagent makes, spent by the callee and everything it calls in turn. */
  callBudget?: { modelCalls?: number; tokens?: number };
  /** Where it runs. Default `local`. */
  target?: TargetChoice;
  /** JSON Schema for `inputs.workerInput`. */
  inputSchema?: JsonSchema;
  /** Names of environment variables passed to the worker as secrets (redacted from logs). */
  secrets?: string[];
  /** Plain environment for the worker. */
  env?: Record<string, string>;
  timeoutSeconds?: number;
  docker?: DockerOptions;
  /** On target `actions`: the runner labels its jobs need (default: the config's `actions.labels`). */
  actions?: { labels?: string[] };
}

/** Where a worker runs: a process here, a container on a Docker engine, or a job on the repository's Actions runners. */
export type TargetChoice = 'local' | 'docker' | 'actions';

/** The `actions` target: each attempt a `workflow_dispatch` of the repository's worker workflow. */
export interface ActionsTargetConfig {
  /** The worker workflow's file name under .github/workflows/. Default `agora-worker.yml`. */
  workflow: string;
  /** The labels a runner needs to take an attempt's job (`runs-on`). Default `[self-hosted, agora]`. */
  labels: string[];
  /** How long a dispatched job may wait for a runner before the attempt fails naming the labels. Default 600. */
  startTimeoutSeconds: number;
}

export interface QueueConfig {
  concurrency: number;
}

export interface OrchConfig {
  queues: Record<string, QueueConfig>;
  /** Queue concurrency for queues not listed in `queues`. */
  defaultConcurrency: number;
  subagents: Record<string, SubagentConfig>;
  /** Named input shapes: a plan item's `subagentShape` picks one; its `inputs` must satisfy it. */
  shapes: Record<string, JsonSchema>;
  /** Ref namespace; default `refs/agora/`. */
  refNamespace: string;
  /** Where `command` items run unless they say otherwise (`inputs.target`). Default `local`. */
  commandTarget: TargetChoice;
  /** Image for `command` items on the docker (or actions) target. */
  commandImage?: string;
  /** The `actions` target's settings, when the config uses it. */
  actions?: ActionsTargetConfig;
  /**
   * Variables of Agora's own environment (`agora orch run`, `serve`) that a plan's `command` items may
   * declare as secrets; none when absent. The App takes them from AGORA_SECRETS_FILE instead.
   */
  secrets?: readonly string[];
  /**
   * Absolute directory of the loaded config file, or the cwd when none was loaded. Workers get it as
   * `$AGORA_CONFIG_DIR`, so that scripts next to the config can be found.
   */
  configDir: string;
}

export { BUILTIN_EXECUTORS } from '../plan/executors.js';
