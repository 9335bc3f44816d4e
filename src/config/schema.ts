/**
 * The zod schema of `orch` in agora.config.mjs. Strict objects, so that a misspelt field is reported
 * instead of silently ignored; defaults are filled here. The output matches OrchConfig (types.ts)
 * except `configDir`, which the loader adds.
 */
import { z } from 'zod';
import { actionsNetworkProblem, actionsUserProblem } from '../executors/actions-job.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_NAME_MESSAGE = 'must be an environment variable name: letters, digits and _, not starting with a digit';

/** Names of environment variables. */
const EnvNameSchema = z.string().regex(ENV_NAME, ENV_NAME_MESSAGE);

/** A JSON Schema document: an object (ajv checks it when the config is loaded). */
export const JsonSchemaSchema = z.record(z.string(), z.unknown());

export const DockerOptionsSchema = z.strictObject({
  image: z.string().min(1),
  network: z.string().min(1).optional(),
  memory: z
    .string()
    .regex(/^\d+(\.\d+)?[bkmgBKMG]?$/, 'must be a size like "512m" or "1g" (a number with an optional b, k, m or g)')
    .optional(),
  cpus: z.number().positive().max(1024).optional(),
  pids: z.number().int().min(1).optional(),
  user: z.string().min(1).optional(),
});

const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** The agent's built-in tools. */
const AGENT_BUILTIN_TOOLS = ['read_file', 'write_file', 'list_files', 'bash'] as const;
/** The names of the tools that call dependencies (`call_<name>`: src/agents/dependency-calls.ts), kept for them. */
const CALL_TOOL_PREFIX = 'call_';

/** A tool the operator gives an agent: its input (JSON, checked against inputSchema) goes to `command`'s stdin on the item's target. */
export const AgentCommandToolSchema = z.strictObject({
  name: z.string().regex(TOOL_NAME, "must be 1-64 letters, digits, _ or - (the Messages API's rule for tool names)"),
  description: z.string().min(1),
  inputSchema: JsonSchemaSchema,
  command: z.array(z.string()).min(1, 'must name a program to run: a non-empty array like ["node", "lint.mjs"]'),
});

/** The managed loop of a subagent of kind `agent` (docs/agents.md). */
export const AgentConfigSchema = z.strictObject({
  /** The system prompt: a file, relative to the config's directory. */
  prompt: z.string().min(1),
  model: z.string().min(1),
  maxTurns: z.number().int().min(1).max(1000).default(20),
  maxTokens: z.number().int().min(1).max(1_000_000).default(4096),
  mode: z.enum(['strict', 'flexible']).default('strict'),
  /** Built-in tool names, or tools that run a command. Default: read_file, write_file, list_files. */
  tools: z.array(z.union([z.enum(AGENT_BUILTIN_TOOLS), AgentCommandToolSchema])).optional(),
  /** Where the loop reaches the Messages API; default the SDK's (or ANTHROPIC_BASE_URL of the serving process). */
  baseURL: z.string().url().optional(),
  /** The environment variable holding the API key; only the loop reads it. Default ANTHROPIC_API_KEY. */
  apiKeyEnv: EnvNameSchema.default('ANTHROPIC_API_KEY'),
});

/** Runner labels (`runs-on`): non-empty, no commas or whitespace. */
const RunnerLabelsSchema = z
  .array(z.string().regex(/^[^\s,]+$/, 'must be one runner label, without spaces or commas'))
  .min(1, 'must name at least one runner label, like ["self-hosted", "agora"]');

export const ActionsTargetSchema = z.strictObject({
  workflow: z
    .string()
    .regex(/^[A-Za-z0-9._-]+\.ya?ml$/, 'must be a file name under .github/workflows/, like "agora-worker.yml"')
    .default('agora-worker.yml'),
  labels: RunnerLabelsSchema.default(['self-hosted', 'agora']),
  startTimeoutSeconds: z.number().positive().max(86_400).default(600),
});

export const SubagentConfigSchema = z
  .strictObject({
    command: z
      .array(z.string())
      .min(1, 'must name a program to run: a non-empty array like ["node", "edit.mjs"]')
      .refine((argv) => argv[0] !== '', { message: 'the program (the first element) must not be empty', path: [0] })
      .optional(),
    agent: AgentConfigSchema.optional(),
    outputSchema: JsonSchemaSchema.optional(),
    /** What this subagent does, told to the model of an agent that may call it (a dependency's tool description). */
    description: z.string().min(1).optional(),
    dependencies: z.array(z.string().min(1)).optional(),
    /** The max_hops rule for call chains that start at an item of this subagent (docs/agents.md). */
    maxHops: z.number().int().min(0).max(16).optional(),
    /** What each call this subagent makes may spend downstream: model calls and tokens of the callee and its own calls. */
    callBudget: z.strictObject({ modelCalls: z.number().int().min(1).optional(), tokens: z.number().int().min(1).optional() }).optional(),
    target: z.enum(['local', 'docker', 'actions']).optional(),
    inputSchema: JsonSchemaSchema.optional(),
    secrets: z.array(EnvNameSchema).optional(),
    env: z.record(EnvNameSchema, z.string()).optional(),
    timeoutSeconds: z
      .number()
      .positive()
      .max(7 * 86_400)
      .optional(),
    docker: DockerOptionsSchema.optional(),
    actions: z.strictObject({ labels: RunnerLabelsSchema.optional() }).optional(),
  })
  .superRefine((subagent, ctx) => {
    if ((subagent.command === undefined) === (subagent.agent === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: subagent.command === undefined ? ['command'] : ['agent'],
        message:
          subagent.command === undefined
            ? 'missing: a subagent runs either a command (command: ["node", "edit.mjs"]) or a managed loop (agent: { prompt, model })'
            : 'a subagent has either command or agent, not both: remove one',
      });
    }
    const tools = subagent.agent?.tools ?? [];
    if (subagent.agent?.mode !== 'flexible' && tools.includes('bash')) {
      ctx.addIssue({
        code: 'custom',
        path: ['agent', 'tools', tools.indexOf('bash')],
        message: 'bash runs any command in the workspace, so it is only given in flexible mode: set agent.mode to "flexible" or remove bash',
      });
    }
    // A command tool named like a built-in or a call tool would be taken for it: an operator's wrapper named
    // bash must never become the shell, nor one named call_x a call.
    tools.forEach((tool, i) => {
      if (typeof tool === 'string') return;
      const builtin = (AGENT_BUILTIN_TOOLS as readonly string[]).includes(tool.name);
      if (!builtin && !tool.name.startsWith(CALL_TOOL_PREFIX)) return;
      ctx.addIssue({
        code: 'custom',
        path: ['agent', 'tools', i, 'name'],
        message: builtin
          ? `command tool ${tool.name} has the name of a built-in tool (${AGENT_BUILTIN_TOOLS.join(', ')}), which it would be taken for; give it a name of its own, like "${tool.name}_wrapper"`
          : `command tool ${tool.name} starts with ${CALL_TOOL_PREFIX}, which names the tools that call dependencies; give it a name that does not, or declare the subagent to call in dependencies`,
      });
    });
    const names = tools.map((t) => (typeof t === 'string' ? t : t.name));
    names.forEach((name, i) => {
      if (names.indexOf(name) !== i) ctx.addIssue({ code: 'custom', path: ['agent', 'tools', i], message: `tool ${name} is listed twice: keep one` });
    });
    if (subagent.agent !== undefined && subagent.secrets?.includes(subagent.agent.apiKeyEnv)) {
      ctx.addIssue({
        code: 'custom',
        path: ['secrets', subagent.secrets.indexOf(subagent.agent.apiKeyEnv)],
        message: `${subagent.agent.apiKeyEnv} is the agent's API key, which only the loop holds; listed in secrets it would reach the tools' workers: remove it`,
      });
    }
    if ((subagent.target === 'docker' || subagent.target === 'actions') && subagent.docker === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['docker'],
        message: `missing: target "${subagent.target}" needs docker options with an image, like docker: { image: "node:20-slim" }`,
      });
    }
    if (subagent.target === 'actions' && subagent.docker !== undefined) {
      // The worker job on the runner refuses anything else (src/action/worker-inputs.ts): said here, when the config loads.
      const network = actionsNetworkProblem(subagent.docker.network);
      if (network !== undefined) ctx.addIssue({ code: 'custom', path: ['docker', 'network'], message: `${network}: use none or bridge` });
      const user = actionsUserProblem(subagent.docker.user);
      if (user !== undefined)
        ctx.addIssue({ code: 'custom', path: ['docker', 'user'], message: `${user}: give a numeric uid:gid other than root's, or leave it out (65534:65534)` });
    }
  });

export const QueueConfigSchema = z.strictObject({
  concurrency: z.number().int().min(1).max(256),
});

/** A ref namespace: `refs/` then safe components, ending in `/` (added when missing). */
export const RefNamespaceSchema = z
  .string()
  .transform((ns) => (ns.endsWith('/') ? ns : `${ns}/`))
  .refine((ns) => /^refs\/([A-Za-z0-9][A-Za-z0-9_-]*\/)+$/.test(ns), {
    message: 'must look like "refs/agora/": "refs/" then one or more components of letters, digits, _ and -',
  });

export const OrchConfigSchema = z
  .strictObject({
    queues: z.record(z.string().min(1), QueueConfigSchema).default({}),
    defaultConcurrency: z.number().int().min(1).max(256).default(4),
    subagents: z.record(z.string().min(1), SubagentConfigSchema).default({}),
    shapes: z.record(z.string().min(1), JsonSchemaSchema).default({}),
    refNamespace: RefNamespaceSchema.default('refs/agora/'),
    commandTarget: z.enum(['local', 'docker', 'actions']).default('local'),
    commandImage: z.string().min(1).optional(),
    actions: ActionsTargetSchema.optional(),
    secrets: z.array(EnvNameSchema).default([]),
  })
  .superRefine((config, ctx) => {
    // An agent's API key is held by the orchestrator's loop alone: no worker is given it (docs/security.md).
    const keys = new Map<string, string>();
    for (const [name, subagent] of Object.entries(config.subagents)) if (subagent.agent) keys.set(subagent.agent.apiKeyEnv, name);
    const refuse = (path: (string | number)[], secret: string) =>
      ctx.addIssue({
        code: 'custom',
        path,
        message: `${secret} is the API key of agent ${keys.get(secret)}, which only the orchestrator's loop holds; a worker given it as a secret could send it anywhere: remove it`,
      });
    config.secrets.forEach((secret, i) => {
      if (keys.has(secret)) refuse(['secrets', i], secret);
    });
    for (const [name, subagent] of Object.entries(config.subagents)) {
      (subagent.secrets ?? []).forEach((secret, i) => {
        if (keys.has(secret) && subagent.agent?.apiKeyEnv !== secret) refuse(['subagents', name, 'secrets', i], secret);
      });
    }
  });

export type OrchConfigInput = z.input<typeof OrchConfigSchema>;
