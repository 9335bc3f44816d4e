/**
 * Workflow files: `.github/workflows/*.yml` parsed and checked by GitHub's own workflow parser
 * (`@actions/workflow-parser`: its workflow schema, its expression checks, its `needs` graph
 * checks). A bad file is a `WorkflowFileError` with the parser's messages, each naming the file,
 * line and column, as GitHub reports "Invalid workflow file … (Line: n, Col: m)" and creates no run.
 * On top of the parser, the simulator refuses what GitHub refuses but the parser lets through
 * (`branches` with `branches-ignore` on one event; more than 25 dispatch inputs), and turns the
 * parser's tokens into the plain model the runtime reads (`${{ }}` kept as `Expr`).
 */
import {
  convertWorkflowTemplate,
  isBasicExpression,
  isBoolean,
  isMapping,
  isNumber,
  isSequence,
  isString,
  NoOperationTraceWriter,
  parseWorkflow as parseWithGitHub,
} from '@actions/workflow-parser';
import { parse as parseYaml } from 'yaml';
import { ErrorPolicy } from '@actions/workflow-parser/model/convert';
import type { EventsConfig, Step as TemplateStep, WorkflowJob } from '@actions/workflow-parser/model/workflow-template';
import type { MappingToken, TemplateToken } from '@actions/workflow-parser/templates/tokens/index';
import { Expr, type Value } from './expressions.js';
import type { RefFilter } from './filters.js';

/** GitHub's limit on `workflow_dispatch` inputs. */
export const MAX_DISPATCH_INPUTS = 25;

/** One problem in a workflow file, where GitHub reports it. */
export interface WorkflowFileProblemAt {
  line: number;
  column: number;
  problem: string;
}

export class WorkflowFileError extends Error {
  constructor(
    readonly path: string,
    /** Every problem found, the first as GitHub lists it first. */
    readonly problems: WorkflowFileProblemAt[],
  ) {
    super(problems.map((p) => `Invalid workflow file: ${path} (Line: ${p.line}, Col: ${p.column}): ${p.problem}`).join('\n'));
  }

  get line(): number {
    return this.problems[0]!.line;
  }

  get column(): number {
    return this.problems[0]!.column;
  }
}

export type PermissionsSpec = 'read-all' | 'write-all' | Record<string, string>;

export interface DispatchInputSpec {
  description?: string;
  required?: boolean;
  default?: string | number | boolean;
  type?: string;
  options?: string[];
}

export interface WorkflowStep {
  /** The id as written, or the one GitHub generates (`__run`, `__actions_checkout`, …). */
  id: string;
  /** Whether the file names the id (only such steps are in the `steps` context). */
  named: boolean;
  name?: Value;
  /** The condition as the parser normalised it (`success()` when the file has none). */
  if: string;
  uses?: string;
  run?: Value;
  with?: Record<string, Value>;
  env?: Record<string, Value>;
  shell?: string;
  'working-directory'?: Value;
  'continue-on-error'?: Value;
  'timeout-minutes'?: Value;
}

export interface WorkflowJobSpec {
  name?: Value;
  'runs-on'?: Value;
  permissions?: PermissionsSpec;
  env?: Record<string, Value>;
  steps: WorkflowStep[];
  needs: string[];
  /** The condition as the parser normalised it (`success() && (…)`, or `success()` when none). */
  if: string;
  'timeout-minutes'?: Value;
  outputs?: Record<string, Value>;
  strategy?: Value;
  container?: Value;
  services?: Value;
  environment?: Value;
  /** A reusable workflow the job calls (the simulator does not run those). */
  uses?: Value;
  'continue-on-error'?: Value;
}

export interface Workflow {
  name?: string;
  permissions?: PermissionsSpec;
  env?: Record<string, Value>;
  jobs: Record<string, WorkflowJobSpec>;
}

/** A parsed, checked workflow file. */
export interface WorkflowFile {
  path: string;
  workflow: Workflow;
  /** Trigger name → its configuration, as the parser converted it (`workflow_dispatch` inputs as written). */
  on: EventsConfig;
}

/**
 * A token as plain data, `${{ }}` as Expr. `plain` is the same node as YAML data: an Expr keeps the
 * string as YAML reads it (the token's own source is the raw document text, block indentation and all).
 */
function toValue(token: TemplateToken, plain: unknown): Value {
  const at = (key: string | number): unknown => (plain !== null && typeof plain === 'object' ? (plain as Record<string | number, unknown>)[key] : undefined);
  if (isBasicExpression(token)) return new Expr(token.expression, typeof plain === 'string' ? plain : `\${{ ${token.expression} }}`);
  if (isMapping(token)) {
    return Object.fromEntries(
      [...token].map((p) => {
        const key = String(toValue(p.key, undefined));
        return [key, toValue(p.value, at(key))];
      }),
    );
  }
  if (isSequence(token)) return [...token].map((t, i) => toValue(t, at(i)));
  if (isString(token) || isNumber(token) || isBoolean(token)) return token.value;
  return null;
}

const entry = (map: TemplateToken | undefined, key: string): TemplateToken | undefined => (map && isMapping(map) ? map.find(key) : undefined);

/** The simulator's own checks, on the parser's tokens (what GitHub refuses and the parser does not). */
function extraProblems(root: MappingToken): WorkflowFileProblemAt[] {
  const out: WorkflowFileProblemAt[] = [];
  const at = (t: TemplateToken, problem: string): void => void out.push({ line: t.range?.start.line ?? 1, column: t.range?.start.column ?? 1, problem });
  const on = entry(root, 'on');
  if (on && isMapping(on)) {
    for (const { key, value } of on) {
      if (!isMapping(value)) continue;
      for (const filter of ['branches', 'tags', 'paths']) {
        if (value.find(filter) !== undefined && value.find(`${filter}-ignore`) !== undefined)
          at(key, `you may only define one of \`${filter}\` and \`${filter}-ignore\` for a single event`);
      }
    }
    const inputs = entry(entry(on, 'workflow_dispatch'), 'inputs');
    if (inputs && isMapping(inputs) && inputs.count > MAX_DISPATCH_INPUTS)
      at(inputs, `you may only define up to ${MAX_DISPATCH_INPUTS} \`inputs\` for a \`workflow_dispatch\` event`);
  }
  return out;
}

function stepOf(raw: Value, converted: TemplateStep | undefined): WorkflowStep {
  const s = (raw ?? {}) as Record<string, Value>;
  const str = (v: Value | undefined): string | undefined => (v === undefined ? undefined : String(v));
  return {
    ...(s as Omit<WorkflowStep, 'id' | 'named' | 'if' | 'uses' | 'shell'>),
    id: converted?.id ?? str(s.id) ?? '',
    named: s.id !== undefined,
    if: converted?.if?.expression ?? 'success()',
    uses: str(s.uses),
    shell: str(s.shell),
  };
}

function jobOf(raw: Value, converted: WorkflowJob): WorkflowJobSpec {
  const j = (raw ?? {}) as Record<string, Value>;
  const steps = converted.type === 'job' ? converted.steps : [];
  const rawSteps = Array.isArray(j.steps) ? j.steps : [];
  return {
    ...(j as Omit<WorkflowJobSpec, 'steps' | 'needs' | 'if' | 'permissions'>),
    permissions: j.permissions as PermissionsSpec | undefined,
    needs: (converted.needs ?? []).map((n) => n.value),
    if: converted.if.expression,
    steps: rawSteps.map((s, i) => stepOf(s, steps[i])),
  };
}

/** Parses and checks one workflow file; throws WorkflowFileError naming the file, line and column. */
export async function parseWorkflow(path: string, text: string): Promise<WorkflowFile> {
  const parsed = parseWithGitHub({ name: path, content: text }, new NoOperationTraceWriter());
  const root = parsed.value;
  const template = root ? await convertWorkflowTemplate(parsed.context, root, undefined, { errorPolicy: ErrorPolicy.TryConversion }) : undefined;
  // Where the parser's message puts it (its prefix: for an expression, the scalar holding it), else the token's range.
  const problems: WorkflowFileProblemAt[] = parsed.context.errors.getErrors().map((e) => {
    const said = /\(Line: (\d+), Col: (\d+)\)$/.exec(e.prefix ?? '');
    return { line: said ? Number(said[1]) : (e.range?.start.line ?? 1), column: said ? Number(said[2]) : (e.range?.start.column ?? 1), problem: e.rawMessage };
  });
  if (root && isMapping(root)) problems.push(...extraProblems(root));
  if (!root || !isMapping(root) || !template || problems.length > 0) {
    throw new WorkflowFileError(
      path,
      problems.length > 0 ? problems : [{ line: 1, column: 1, problem: 'the file is not a workflow (a mapping at its top level)' }],
    );
  }
  const raw = toValue(root, parseYaml(text, { maxAliasCount: 100 })) as Record<string, Value>;
  const rawJobs = (raw.jobs ?? {}) as Record<string, Value>;
  const jobs: Record<string, WorkflowJobSpec> = {};
  for (const job of template.jobs) jobs[job.id.value] = jobOf(rawJobs[job.id.value] ?? null, job);
  const on: EventsConfig = { ...template.events };
  // The converter keeps only the input types it knows (not `number`): the inputs as written, already schema-checked.
  const rawOn = raw.on;
  const dispatch = rawOn !== null && typeof rawOn === 'object' && !Array.isArray(rawOn) && !(rawOn instanceof Expr) ? rawOn.workflow_dispatch : undefined;
  if (on.workflow_dispatch && dispatch && typeof dispatch === 'object') on.workflow_dispatch = dispatch as EventsConfig['workflow_dispatch'];
  return {
    path,
    workflow: {
      name: typeof raw.name === 'string' ? raw.name : undefined,
      permissions: raw.permissions as PermissionsSpec | undefined,
      env: raw.env as Record<string, Value> | undefined,
      jobs,
    },
    on,
  };
}

/** The dispatch inputs a workflow declares. */
export function dispatchInputs(wf: WorkflowFile): Record<string, DispatchInputSpec> {
  return ((wf.on.workflow_dispatch ?? {}) as { inputs?: Record<string, DispatchInputSpec> }).inputs ?? {};
}

/** An event's filters, or null when the event has none. */
export function eventFilter(wf: WorkflowFile, event: 'push' | 'pull_request'): RefFilter | null {
  return (wf.on[event] as RefFilter | undefined) ?? null;
}
