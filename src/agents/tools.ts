import { randomUUID } from 'node:crypto';
import type { AgentCommandTool, AgentConfig } from '../config/types.js';
import { createLogSink } from '../executors/log-sink.js';
import type { WorkerJob, WorkerTarget } from '../executors/types.js';
import { JsonSchemaChecker, type JsonSchema } from '../problems/json-schema.js';
import { finishProblems } from '../problems/located.js';
import { MAX_JSON_DEPTH, nestsDeeperThan, tooDeepRefusal } from './json-depth.js';
import { listWorkspaceFiles, readWorkspaceFile, ToolRefusal, writeWorkspaceFile } from './workspace-files.js';

/**
 * An agent's tools: what the model is told (name, description, input schema) and what a call does.
 * File tools act on the item's workspace from the orchestrator, confined to it; `bash` and command
 * tools run as jobs on the item's target (local process or container), with the subagent's env and
 * declared secrets but never the API key, which only the loop holds.
 */

export interface ToolSpec {
  name: string;
  description: string;
  input_schema: JsonSchema & { type: 'object' };
}

export interface ToolResult {
  /** What the model reads. */
  content: string;
  isError: boolean;
  /** Refused by a rule (scope, path, schema) rather than failed while running. */
  refused: boolean;
  /** The path a file tool acted on, for the event. */
  path?: string;
  /** The child attempt a dependency call ran, for the event. */
  child?: string;
}

/** Tools the box does not run itself (the calls to dependencies): it lists their specs and hands their calls on. */
export interface ExtraTools {
  readonly specs: ToolSpec[];
  /** True for a name these tools answer for, declared or not (so an undeclared call is refused with its reason). */
  handles(name: string): boolean;
  call(name: string, input: unknown): Promise<ToolResult>;
}

export interface ToolBoxContext {
  workspaceDir: string;
  /** The item's write scope. */
  locks: readonly string[];
  /** The item's target, and a job carrying its env and declared secrets, for bash and command tools. */
  target: WorkerTarget | undefined;
  baseJob: WorkerJob;
  secrets: readonly string[];
  signal: AbortSignal;
}

const TOOL_OUTPUT_BYTES = 32 * 1024;

const PATH_PROPERTY = { type: 'string', description: 'Path relative to the workspace root, like "src/index.ts".' };

const BUILTIN_SPECS: Record<'read_file' | 'write_file' | 'list_files' | 'bash', ToolSpec> = {
  read_file: {
    name: 'read_file',
    description: 'Read a text file of the workspace.',
    input_schema: { type: 'object', properties: { path: PATH_PROPERTY }, required: ['path'], additionalProperties: false },
  },
  write_file: {
    name: 'write_file',
    description: "Create or replace a file of the workspace with the given content. Only paths inside the item's write scope can be written.",
    input_schema: {
      type: 'object',
      properties: { path: PATH_PROPERTY, content: { type: 'string', description: 'The whole new content of the file.' } },
      required: ['path', 'content'],
      additionalProperties: false,
    },
  },
  list_files: {
    name: 'list_files',
    description: 'List the files under a directory of the workspace (default: all of it), directories ending in "/".',
    input_schema: { type: 'object', properties: { path: PATH_PROPERTY }, additionalProperties: false },
  },
  bash: {
    name: 'bash',
    description: "Run a shell command in the workspace root on the item's target; returns its exit code and output.",
    input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'], additionalProperties: false },
  },
};

export const DEFAULT_TOOLS = ['read_file', 'write_file', 'list_files'] as const;

type BuiltinName = keyof typeof BUILTIN_SPECS;

/** What a tool the box runs is: a call goes by this, never by the name, so an operator's tool named like a built-in cannot run the built-in. */
type OwnTool = { kind: 'builtin'; builtin: BuiltinName; spec: ToolSpec } | { kind: 'command'; tool: AgentCommandTool; spec: ToolSpec };

export class ToolBox {
  readonly specs: ToolSpec[];
  private readonly own = new Map<string, OwnTool>();
  private readonly checker = new JsonSchemaChecker();

  constructor(
    agent: AgentConfig,
    private readonly ctx: ToolBoxContext,
    private readonly extra?: ExtraTools,
  ) {
    for (const tool of agent.tools ?? DEFAULT_TOOLS) {
      const entry: OwnTool =
        typeof tool === 'string'
          ? { kind: 'builtin', builtin: tool, spec: BUILTIN_SPECS[tool] }
          : { kind: 'command', tool, spec: { name: tool.name, description: tool.description, input_schema: { ...tool.inputSchema, type: 'object' } } };
      const name = entry.spec.name;
      // The config refuses these (src/config/schema.ts); a box built from an unchecked config refuses them too.
      if (this.own.has(name) || extra?.handles(name)) throw new Error(`the agent's tool name ${name} is given twice, or is a call tool's`);
      this.own.set(name, entry);
    }
    this.specs = [...this.own.values()].map((t) => t.spec);
    if (extra) this.specs.push(...extra.specs);
  }

  /** Runs one call. Every failure the model could cause comes back as an error result it can read; none is thrown. */
  async call(name: string, input: unknown): Promise<ToolResult> {
    const args = input !== null && typeof input === 'object' ? (input as Record<string, unknown>) : {};
    const path = typeof args.path === 'string' ? args.path : undefined;
    try {
      // Before anything walks it: the schema check, the digest, the JSON a command gets.
      if (nestsDeeperThan(input, MAX_JSON_DEPTH)) return refusal(tooDeepRefusal());
      const tool = this.own.get(name);
      if (!tool) {
        if (this.extra?.handles(name)) return await this.extra.call(name, input);
        return refusal(`there is no tool named ${JSON.stringify(name)}; the tools are: ${this.specs.map((s) => s.name).join(', ')}`);
      }
      const problems = finishProblems(this.checker.check(tool.spec.input_schema, input, [], `the input schema of ${name}`));
      if (problems.length > 0) {
        return refusal(`the input does not match the tool's input schema: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
      }
      if (tool.kind === 'command') return await this.runOnTarget(tool.tool.command, JSON.stringify(input));
      switch (tool.builtin) {
        case 'read_file':
          return { content: await readWorkspaceFile(this.ctx.workspaceDir, args.path), isError: false, refused: false, path };
        case 'write_file': {
          const bytes = await writeWorkspaceFile(this.ctx.workspaceDir, args.path, args.content, this.ctx.locks);
          return { content: `wrote ${bytes} bytes to ${String(args.path)}`, isError: false, refused: false, path };
        }
        case 'list_files':
          return { content: (await listWorkspaceFiles(this.ctx.workspaceDir, args.path)).join('\n') || '(empty)', isError: false, refused: false, path };
        case 'bash':
          return await this.runOnTarget(['/bin/sh', '-c', String(args.command)], undefined);
      }
    } catch (e) {
      if (e instanceof ToolRefusal) return { ...refusal(e.message), ...(path !== undefined ? { path } : {}) };
      // Not the model's to fix, but not the attempt's end either: the model reads that the tool failed, and
      // never the host's paths (the pool's directory, the server's files).
      return {
        content: `${name} failed: ${withoutHostPaths(e, this.ctx.workspaceDir)}`,
        isError: true,
        refused: false,
        ...(path !== undefined ? { path } : {}),
      };
    }
  }

  private runOnTarget(command: string[], stdin: string | undefined): Promise<ToolResult> {
    return runJobOnTarget(this.ctx, command, stdin);
  }
}

/**
 * What went wrong, for the model: an errno error as its code and system call (its message holds the host
 * path), anything else as its message with the workspace's directory and every other absolute path taken out.
 */
export function withoutHostPaths(e: unknown, workspaceDir?: string): string {
  const errno = e as NodeJS.ErrnoException | null;
  if (errno !== null && typeof errno === 'object' && typeof errno.code === 'string' && typeof errno.syscall === 'string') {
    return `${errno.code} (${errno.syscall})`;
  }
  let message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  if (workspaceDir) message = message.split(`${workspaceDir}/`).join('').split(workspaceDir).join('.');
  return message.replace(/(^|[\s'"`(=:,])\/[^\s'"`),]*/g, '$1<host path>');
}

/** Runs `command` as a job on the item's target (its env and declared secrets, never the key); exit status and redacted output as a tool result. */
export async function runJobOnTarget(
  ctx: Pick<ToolBoxContext, 'target' | 'baseJob' | 'secrets' | 'signal'>,
  command: string[],
  stdin: string | undefined,
  env: Record<string, string> = {},
  subJob: string = `job-${randomUUID()}`,
): Promise<ToolResult> {
  const { target, baseJob } = ctx;
  if (!target) return { content: "this tool cannot run: the item's target is not available to this server", isError: true, refused: false };
  const log = createLogSink({ secrets: [...ctx.secrets], maxBytes: TOOL_OUTPUT_BYTES });
  // Its own name beside the item's worker (which may be running: a command worker calling a dependency).
  const job: WorkerJob = { ...baseJob, command, log, env: { ...baseJob.env, ...env }, subJob };
  // Never the item's call socket or control files: a tool or a dependency must not call or emit as the item.
  delete job.callSocket;
  delete job.onWorkspace;
  delete job.emitDir;
  delete job.paramsFile;
  delete job.env.AGORA_CALL_SOCKET;
  delete job.env.AGORA_EMIT;
  delete job.env.AGORA_PARAMS;
  if (stdin === undefined) delete job.stdin;
  else {
    job.stdin = stdin;
    job.env.AGORA_INPUT = stdin;
  }
  const result = await target.run(job, ctx.signal);
  await log.close();
  const output = log.tail(TOOL_OUTPUT_BYTES);
  const status = result.exitCode === 0 ? 'exit 0' : (result.reason ?? `exit ${result.exitCode}${result.signal ? ` (${result.signal})` : ''}`);
  return { content: `${status}\n${output}`, isError: result.exitCode !== 0, refused: false };
}

function refusal(content: string): ToolResult {
  return { content, isError: true, refused: true };
}
