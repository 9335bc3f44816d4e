/**
 * Loads agora.config.mjs: an ES module exporting `orch` (or a default export with an `orch` property),
 * validated by schema.ts, defaults filled, `configDir` set. Without a config file the built-in defaults
 * apply.
 */
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgoraError, InvalidInputError, type Problem } from '../errors.js';
import { JsonSchemaChecker } from '../problems/json-schema.js';
import { pathBeyondDepth } from '../json/depth.js';
import type { PathSegment } from '../json/path.js';
import { finishProblems, type LocatedProblem } from '../problems/located.js';
import { zodIssuesToProblems } from '../problems/zod-issues.js';
import { dependencyProblems } from './dependencies.js';
import { OrchConfigSchema } from './schema.js';
import type { OrchConfig } from './types.js';

/** The config file looked for in the working directory when none is named. */
export const DEFAULT_CONFIG_FILE = 'agora.config.mjs';

export interface LoadConfigOptions {
  /**
   * The config file (relative to `cwd` or absolute). Null: none, the built-in defaults (a caller that
   * searched and found nothing). Left out: `agora.config.mjs` in `cwd`, if present.
   */
  file?: string | null;
  cwd: string;
}

/** The configuration used when there is no config file. */
export function defaultConfig(cwd: string): OrchConfig {
  return {
    queues: {},
    defaultConcurrency: 4,
    subagents: {},
    shapes: {},
    refNamespace: 'refs/agora/',
    commandTarget: 'local',
    secrets: [],
    configDir: resolve(cwd),
  };
}

/**
 * Loads and validates the config. An explicitly named file that does not exist is an AgoraError
 * `config-not-found`; a module that throws while loading is `config-load-failed`; an `orch` that does
 * not fit the schema is an InvalidInputError `config-invalid` listing every problem by JSON path
 * (`$.orch.subagents.code-edit.command`).
 */
export async function loadConfig(opts: LoadConfigOptions): Promise<OrchConfig> {
  if (opts.file === null) return defaultConfig(opts.cwd);
  const file = resolve(opts.cwd, opts.file ?? DEFAULT_CONFIG_FILE);
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (opts.file === undefined) return defaultConfig(opts.cwd);
    throw new AgoraError(
      'config-not-found',
      `config file not found: ${file}`,
      `check the path, or leave it out to use the ${DEFAULT_CONFIG_FILE} found beside the plan or in the repository (or the built-in defaults when there is none)`,
    );
  }
  if (!info.isFile()) {
    throw new AgoraError('config-not-found', `config path is not a file: ${file}`, `name the config module itself, e.g. ${resolve(file, DEFAULT_CONFIG_FILE)}`);
  }

  const module = await importFresh(file, `${info.mtimeMs}-${info.size}`);
  const orch = pickOrch(module);
  if (orch === undefined) {
    throw new InvalidInputError(
      'config-invalid',
      file,
      [{ path: '$.orch', message: 'missing: the module exports no `orch`; write `export const orch = { … }` (or `export default { orch: { … } }`)' }],
      'see docs/config.md for an example',
    );
  }

  const parsed = OrchConfigSchema.safeParse(orch);
  const located: LocatedProblem[] = parsed.success ? [] : zodIssuesToProblems(parsed.error.issues, OrchConfigSchema, orch, ['orch']);
  if (parsed.success)
    located.push(...schemaProblems(parsed.data), ...dependencyProblems(parsed.data.subagents), ...(await promptProblems(parsed.data, dirname(file))));
  if (!parsed.success || located.length > 0) {
    const problems: Problem[] = finishProblems(located);
    throw new InvalidInputError('config-invalid', file, problems, 'fix each problem at its path in the exported `orch`; docs/config.md describes every field');
  }
  return { ...parsed.data, configDir: dirname(file) };
}

/**
 * Imports the module, bypassing the module cache when the file changed (`version` is part of the URL),
 * so that a long-running process sees edits. Errors thrown while loading become `config-load-failed`.
 */
async function importFresh(file: string, version: string): Promise<Record<string, unknown>> {
  const url = `${pathToFileURL(file).href}?v=${encodeURIComponent(version)}`;
  try {
    return (await import(/* @vite-ignore */ url)) as Record<string, unknown>;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new AgoraError(
      'config-load-failed',
      `loading the config ${file} failed: ${message}`,
      `fix the error in ${file} (it must be an ES module that exports \`orch\`); \`node ${file}\` shows it in full`,
      { cause: error },
    );
  }
}

function pickOrch(module: Record<string, unknown>): unknown {
  if (module.orch !== undefined) return module.orch;
  const fallback = module.default;
  if (fallback !== null && typeof fallback === 'object' && 'orch' in fallback) return (fallback as { orch: unknown }).orch;
  return undefined;
}

/**
 * The deepest schema taken, in levels of objects and arrays. A tool's schema goes into every request an
 * agent makes, and the request's digest and the SDK walk it recursively: a schema nested past this is
 * refused here, naming it, rather than failing each attempt that would send it (no real schema comes near).
 */
export const MAX_SCHEMA_DEPTH = 128;

/** Every input schema and shape must compile (ajv), so that plan validation can rely on them. */
function schemaProblems(config: Omit<OrchConfig, 'configDir'>): LocatedProblem[] {
  const checker = new JsonSchemaChecker();
  const out: LocatedProblem[] = [];
  const check = (schema: Record<string, unknown>, segments: PathSegment[]) => {
    if (pathBeyondDepth(schema, MAX_SCHEMA_DEPTH) !== undefined) {
      out.push({ segments, message: `nests objects and arrays deeper than ${MAX_SCHEMA_DEPTH} levels; flatten it (with $defs and $ref, say)` });
      return;
    }
    const compiled = checker.compile(schema);
    if (compiled instanceof Error) {
      out.push({ segments, message: `is not a valid JSON Schema: ${compiled.message}` });
    }
  };
  for (const [name, subagent] of Object.entries(config.subagents)) {
    if (subagent.inputSchema) check(subagent.inputSchema, ['orch', 'subagents', name, 'inputSchema']);
    if (subagent.outputSchema) check(subagent.outputSchema, ['orch', 'subagents', name, 'outputSchema']);
    (subagent.agent?.tools ?? []).forEach((tool, i) => {
      if (typeof tool !== 'string') check(tool.inputSchema, ['orch', 'subagents', name, 'agent', 'tools', i, 'inputSchema']);
    });
  }
  for (const [name, shape] of Object.entries(config.shapes)) check(shape, ['orch', 'shapes', name]);
  return out;
}

/** Every agent's prompt file must be readable, so that a run does not find out at its first attempt. */
async function promptProblems(config: Omit<OrchConfig, 'configDir'>, configDir: string): Promise<LocatedProblem[]> {
  const out: LocatedProblem[] = [];
  for (const [name, subagent] of Object.entries(config.subagents)) {
    if (!subagent.agent) continue;
    const file = resolve(configDir, subagent.agent.prompt);
    try {
      await access(file);
    } catch {
      out.push({
        segments: ['orch', 'subagents', name, 'agent', 'prompt'],
        message: `prompt file not found: ${file}; create it, or give its path relative to the config's directory ${configDir}`,
      });
    }
  }
  return out;
}
