/**
 * Workflow files: `.github/workflows/*.yml` parsed with `yaml` and checked against the subset of
 * GitHub's workflow syntax the simulator knows (a zod schema: no published workflow schema is
 * available offline). A bad file is a `WorkflowFileError` naming the file and the line, as GitHub
 * reports "Invalid workflow file … (Line: n, Col: m)" and creates no run.
 */
import { LineCounter, parseDocument, isMap, isNode, isScalar, type Document } from 'yaml';
import { z } from 'zod';

/** GitHub's limit on `workflow_dispatch` inputs. */
export const MAX_DISPATCH_INPUTS = 25;

export class WorkflowFileError extends Error {
  constructor(
    readonly path: string,
    readonly line: number,
    readonly column: number,
    readonly problem: string,
  ) {
    super(`Invalid workflow file: ${path} (Line: ${line}, Col: ${column}): ${problem}`);
  }
}

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const stringList = z.union([z.string(), z.array(z.string())]);
const level = z.enum(['read', 'write', 'none']);
const permissions = z.union([z.enum(['read-all', 'write-all']), z.record(z.string(), level)]);
const env = z.record(z.string(), scalar);

const dispatchInput = z.strictObject({
  description: z.string().optional(),
  required: z.boolean().optional(),
  default: scalar.optional(),
  type: z.enum(['string', 'boolean', 'choice', 'number', 'environment']).optional(),
  options: z.array(z.string()).optional(),
  deprecationMessage: z.string().optional(),
});

const refFilter = z
  .strictObject({
    branches: stringList.optional(),
    'branches-ignore': stringList.optional(),
    tags: stringList.optional(),
    'tags-ignore': stringList.optional(),
    paths: stringList.optional(),
    'paths-ignore': stringList.optional(),
    types: stringList.optional(),
  })
  .nullable();

const triggers = z.union([
  z.string(),
  z.array(z.string()),
  z
    .object({
      push: refFilter.optional(),
      pull_request: refFilter.optional(),
      workflow_dispatch: z
        .strictObject({
          inputs: z
            .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'an input id starts with a letter or _ and has only letters, digits, - and _'), dispatchInput)
            .refine((i) => Object.keys(i).length <= MAX_DISPATCH_INPUTS, `a workflow_dispatch may define at most ${MAX_DISPATCH_INPUTS} inputs`)
            .optional(),
        })
        .nullable()
        .optional(),
    })
    .catchall(z.unknown()),
]);

const step = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'a step id starts with a letter or _ and has only letters, digits, - and _').optional(),
    name: z.string().optional(),
    if: scalar.optional(),
    uses: z.string().optional(),
    run: z.string().optional(),
    with: z.record(z.string(), scalar).optional(),
    env: env.optional(),
    shell: z.string().optional(),
    'working-directory': z.string().optional(),
    'continue-on-error': scalar.optional(),
    'timeout-minutes': scalar.optional(),
  })
  .refine((s) => (s.uses === undefined) !== (s.run === undefined), 'a step has exactly one of `uses` and `run`');

const job = z.strictObject({
  name: z.string().optional(),
  'runs-on': z.union([z.string(), z.array(z.string()).min(1), z.strictObject({ group: z.string().optional(), labels: stringList.optional() })]),
  permissions: permissions.optional(),
  env: env.optional(),
  steps: z.array(step).min(1, 'a job needs at least one step'),
  needs: stringList.optional(),
  if: scalar.optional(),
  'timeout-minutes': scalar.optional(),
  outputs: z.record(z.string(), z.string()).optional(),
  strategy: z.unknown().optional(),
  container: z.unknown().optional(),
  services: z.unknown().optional(),
  environment: z.unknown().optional(),
  concurrency: z.unknown().optional(),
  defaults: z.unknown().optional(),
  'continue-on-error': scalar.optional(),
});

const workflowSchema = z.strictObject({
  name: z.string().optional(),
  'run-name': z.string().optional(),
  on: triggers,
  permissions: permissions.optional(),
  env: env.optional(),
  defaults: z.unknown().optional(),
  concurrency: z.unknown().optional(),
  jobs: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'a job id starts with a letter or _ and has only letters, digits, - and _'), job)
    .refine((j) => Object.keys(j).length > 0, 'No jobs were defined'),
});

export type Workflow = z.infer<typeof workflowSchema>;
export type WorkflowJobSpec = z.infer<typeof job>;
export type WorkflowStep = z.infer<typeof step>;
export type DispatchInputSpec = z.infer<typeof dispatchInput>;
export type RefFilter = NonNullable<z.infer<typeof refFilter>>;

/** A parsed, checked workflow file. */
export interface WorkflowFile {
  path: string;
  workflow: Workflow;
  /** Trigger name → its configuration (null when given without one). */
  on: Record<string, unknown>;
}

function position(doc: Document, counter: LineCounter, path: (string | number)[]): { line: number; col: number } {
  // The deepest node that exists on the issue's path locates it.
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]);
  }
  return { line: 1, col: 1 };
}

function keyPosition(doc: Document, counter: LineCounter, path: (string | number)[], key: string): { line: number; col: number } {
  const map = path.length === 0 ? doc.contents : doc.getIn(path, true);
  if (isMap(map)) {
    const pair = map.items.find((p) => isScalar(p.key) && p.key.value === key);
    if (pair && isNode(pair.key) && pair.key.range) return counter.linePos(pair.key.range[0]);
  }
  return position(doc, counter, path);
}

/** Parses and checks one workflow file; throws WorkflowFileError naming the file and line. */
export function parseWorkflow(path: string, text: string): WorkflowFile {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: true, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const at = yamlError.linePos?.[0] ?? { line: 1, col: 1 };
    throw new WorkflowFileError(path, at.line, at.col, yamlError.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''));
  }
  // YAML 1.1 readers (GitHub's among them) take a bare `on` key as the string "on"; `yaml` keeps it.
  const parsed = doc.toJS({ maxAliasCount: 100 }) as unknown;
  const result = workflowSchema.safeParse(parsed);
  if (!result.success) {
    // An unknown key is named first (GitHub's "Unexpected value"): a misspelt key also leaves a required one missing.
    const issues = result.error.issues;
    const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
    const at = issue.code === 'unrecognized_keys' ? keyPosition(doc, counter, issue.path as (string | number)[], issue.keys[0]!) : position(doc, counter, issue.path as (string | number)[]);
    const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    const problem = issue.code === 'unrecognized_keys' ? `Unexpected value '${issue.keys[0]}'` : issue.message;
    throw new WorkflowFileError(path, at.line, at.col, `${where}${problem}`);
  }
  const workflow = result.data;
  for (const [id, job] of Object.entries(workflow.jobs)) {
    for (const need of asList(job.needs) ?? []) {
      if (need in workflow.jobs) continue;
      const at = position(doc, counter, ['jobs', id, 'needs']);
      throw new WorkflowFileError(path, at.line, at.col, `Job '${id}' depends on unknown job '${need}'.`);
    }
  }
  const cycle = needsCycle(workflow.jobs);
  if (cycle) {
    const at = position(doc, counter, ['jobs', cycle.job, 'needs']);
    throw new WorkflowFileError(path, at.line, at.col, `Job '${cycle.job}' depends on job '${cycle.need}' which creates a cycle in the dependency graph.`);
  }
  const on: Record<string, unknown> = typeof workflow.on === 'string' ? { [workflow.on]: null } : Array.isArray(workflow.on) ? Object.fromEntries(workflow.on.map((e) => [e, null])) : { ...workflow.on };
  return { path, workflow, on };
}

/** The `runs-on` labels of a job (a group alone is not supported: it has no labels to match). */
export function runsOnLabels(spec: WorkflowJobSpec): string[] {
  const r = spec['runs-on'];
  if (typeof r === 'string') return [r];
  if (Array.isArray(r)) return r;
  const labels = r.labels;
  return labels === undefined ? [] : typeof labels === 'string' ? [labels] : labels;
}

/** The first `needs` edge that closes a cycle (a job waiting, through others, on itself), or null. */
function needsCycle(jobs: Record<string, { needs?: string | string[] | undefined }>): { job: string; need: string } | null {
  const state = new Map<string, 'open' | 'done'>();
  const visit = (id: string): { job: string; need: string } | null => {
    state.set(id, 'open');
    for (const need of asList(jobs[id]?.needs) ?? []) {
      if (state.get(need) === 'open') return { job: id, need };
      const found = state.has(need) ? null : visit(need);
      if (found) return found;
    }
    state.set(id, 'done');
    return null;
  };
  for (const id of Object.keys(jobs)) {
    const found = state.has(id) ? null : visit(id);
    if (found) return found;
  }
  return null;
}

const asList = (v: string | string[] | undefined): string[] | undefined => (v === undefined ? undefined : typeof v === 'string' ? [v] : v);

/** GitHub's filter globs: `*` within a path segment, `**` across them, `?` one character. */
export function globMatch(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^$()|[\]\\{}]/g, '\\$&').replace(/\*\*|\*|\?/g, (t) => (t === '**' ? '.*' : t === '*' ? '[^/]*' : '.'));
  return new RegExp(`^${re}$`).test(value);
}

/**
 * Whether `name` passes an ordered pattern list: the last pattern that matches decides, a `!pattern`
 * excluding (GitHub's rule for `branches`, `tags` and `paths`, where a list may mix both).
 */
function passesList(patterns: string[], name: string): boolean {
  let ok = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) ok = false;
    } else if (globMatch(p, name)) ok = true;
  }
  return ok;
}

function included(name: string, include: string[] | undefined, exclude: string[] | undefined): boolean {
  if (include) return passesList(include, name);
  if (exclude) return !exclude.some((p) => globMatch(p, name));
  return true;
}

/**
 * GitHub's path filters: with `paths`, a run when at least one changed file passes the list; with
 * `paths-ignore`, a run unless every changed file matches an ignored pattern. `changed` null means
 * the change could not be listed, and then the filter does not hold the run back.
 */
export function pathsMatch(filter: RefFilter | null, changed: string[] | null): boolean {
  if (filter === null || changed === null) return true;
  const paths = asList(filter.paths);
  const ignore = asList(filter['paths-ignore']);
  if (paths) return changed.some((f) => passesList(paths, f));
  if (ignore) return !changed.every((f) => ignore.some((p) => globMatch(p, f)));
  return true;
}

/** Whether a push to `ref` triggers the workflow's `push` by its branch and tag filters (paths: `pathsMatch`). */
export function pushMatches(filter: RefFilter | null, ref: string): boolean {
  if (filter === null) return true;
  const f = filter;
  const hasBranch = f.branches !== undefined || f['branches-ignore'] !== undefined;
  const hasTag = f.tags !== undefined || f['tags-ignore'] !== undefined;
  if (ref.startsWith('refs/heads/')) {
    if (hasTag && !hasBranch) return false;
    return included(ref.slice('refs/heads/'.length), asList(f.branches), asList(f['branches-ignore']));
  }
  if (ref.startsWith('refs/tags/')) {
    if (hasBranch && !hasTag) return false;
    return included(ref.slice('refs/tags/'.length), asList(f.tags), asList(f['tags-ignore']));
  }
  return false;
}

/** Whether a pull request event of `action` against `base` triggers the workflow's `pull_request`. */
export function pullRequestMatches(filter: RefFilter | null, action: string, base: string): boolean {
  const types = asList(filter?.types) ?? ['opened', 'synchronize', 'reopened'];
  if (!types.includes(action)) return false;
  return included(base, asList(filter?.branches), asList(filter?.['branches-ignore']));
}
