/**
 * Reads a fixture and fits it to its plan: the fixture's own shape (zod), then whether it matches the
 * plan (every item it names exists, every subagent it mocks is used, every item that may run has a
 * mock, the plan with the fixture's inputs is valid). Every problem is an InvalidInputError
 * `fixture-invalid` naming the fixture file and the JSON path, so nothing runs on a fixture that
 * cannot mean what its author thinks.
 */
import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { OrchConfig } from '../config/types.js';
import { AgoraError, InvalidInputError, errorMessage, type Problem } from '../errors.js';
import { formatJsonPath, type PathSegment } from '../json/path.js';
import { parsePlanText } from '../plan/parse.js';
import type { Plan } from '../plan/schema.js';
import { matrixFileRefs } from '../plan/matrix-file.js';
import { validatePlanAt } from '../plan/validate-at.js';
import { assertValidPlan, PLAN_INVALID_HINT, validatePlan } from '../plan/validate.js';
import { readMatrixFilesOnDisk } from './matrix-files-on-disk.js';
import { didYouMean } from '../problems/describe.js';
import { finishProblems, type LocatedProblem } from '../problems/located.js';
import { zodIssuesToProblems } from '../problems/zod-issues.js';
import { FixtureSchema, type Fixture, type Mock, type MockDependencyCall, type SubagentMock } from './fixture-schema.js';

/** The mock an item's attempts get, and where in the fixture it comes from (for `--verbose` and errors). */
export interface ResolvedMock {
  output: string;
  files: Record<string, string | null>;
  exit: number;
  /** The dependency calls it makes, in order, before its files are written. */
  calls: MockDependencyCall[];
  /** `$.mocks.items.build`, `$.mocks.subagents.count-words.cases[1]`. */
  source: string;
}

export interface LoadedFixture {
  /** The fixture file as the user named it. */
  file: string;
  fixture: Fixture;
  /** The plan with the fixture's inputs laid over it, valid against the config. */
  plan: Plan;
  /** Item id → its mock. Every item of the plan has one. */
  mocks: ReadonlyMap<string, ResolvedMock>;
  /** The mock that answers a dependency call to `subagent` with `input`, or undefined when the fixture has none. */
  calleeMock(subagent: string, input: unknown): ResolvedMock | undefined;
}

const HINT = 'fix each problem at its JSON path in the fixture; docs/testing-plans.md describes every field';

/** Reads and checks `file` against its plan and `config`. Throws `fixture-invalid` (or `plan-invalid` for the plan file itself). */
export async function loadFixture(file: string, config: OrchConfig, cwd: string = process.cwd(), projectDir: string = cwd): Promise<LoadedFixture> {
  const path = resolve(cwd, file);
  const raw = parseFixtureText(await readText(path, file, 'fixture-not-found', 'pass the path of a tests/fixture-*.json file'), file);
  const parsed = FixtureSchema.safeParse(raw);
  if (!parsed.success) throw invalid(file, finishProblems(zodIssuesToProblems(parsed.error.issues, FixtureSchema, raw)));
  const fixture = parsed.data;
  const base =
    fixture.plan !== undefined ? await readPlan(resolve(dirname(path), fixture.plan), file, cwd, config, projectDir) : planOfItem(fixture, file, config);
  const located: LocatedProblem[] = [];
  const plan = withInputs(base, fixture, config, located);
  const mocks = resolveMocks(plan, fixture, config, located);
  checkExpectations(plan, fixture, located);
  if (located.length > 0) throw invalid(file, finishProblems(located));
  const bySubagent = fixture.mocks.subagents ?? {};
  const calleeMock = (subagent: string, input: unknown): ResolvedMock | undefined =>
    Object.hasOwn(bySubagent, subagent) ? subagentMockFor(subagent, bySubagent[subagent]!, input) : undefined;
  return { file, fixture, plan, mocks, calleeMock };
}

function invalid(file: string, problems: Problem[]): InvalidInputError {
  return new InvalidInputError('fixture-invalid', file, problems, HINT);
}

async function readText(path: string, shown: string, code: 'fixture-not-found' | 'plan-not-found', hint: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(e);
    throw new AgoraError(code, `cannot read ${code === 'plan-not-found' ? 'the plan' : 'fixture'} ${shown}: ${why}`, hint, { cause: e });
  }
}

/** JSON with the plan reader's care (size, depth, duplicate keys, a located syntax error), reported as the fixture's. */
function parseFixtureText(text: string, file: string): unknown {
  try {
    return parsePlanText(text, file);
  } catch (e) {
    if (!(e instanceof InvalidInputError)) throw e;
    throw new InvalidInputError('fixture-invalid', file, e.problems, e.hint ?? HINT);
  }
}

async function readPlan(path: string, fixtureFile: string, cwd: string, config: OrchConfig, projectDir: string): Promise<Plan> {
  const shown = relative(cwd, path) || path;
  const text = await readText(path, shown, 'plan-not-found', `fix "plan" in ${fixtureFile}: it is a path relative to the fixture file`);
  const raw = parsePlanText(text, shown);
  if (matrixFileRefs(raw).length === 0) return assertValidPlan(raw, config, shown);
  // The fixture's run starts from the project's files on disk, so its matrix files are read there.
  const reads = await readMatrixFilesOnDisk(projectDir, raw);
  const { result } = validatePlanAt(raw, text, config, reads, "in the project's files on disk (the fixture run's base)");
  if (!result.ok) throw new InvalidInputError('plan-invalid', shown, result.problems, PLAN_INVALID_HINT);
  return result.plan;
}

/** `item` as a plan of its own; its problems are reported at `$.item…`, where the user wrote them. */
function planOfItem(fixture: Fixture, file: string, config: OrchConfig): Plan {
  const item = { depends_on: [], resourceLocks: [], ...fixture.item };
  const result = validatePlan({ id: 'fixture', queue: 'default', items: [item] }, config);
  if (result.ok) return result.plan;
  throw invalid(
    file,
    result.problems.map((p) => ({ path: p.path.startsWith('$.items[0]') ? `$.item${p.path.slice('$.items[0]'.length)}` : p.path, message: p.message })),
  );
}

function itemIds(plan: Plan): string[] {
  return plan.items.map((i) => i.id);
}

function unknownItem(id: string, plan: Plan, what: string): string {
  return `names item "${id}", which the plan does not have${didYouMean(id, itemIds(plan))}; ${what} (items: ${itemIds(plan).join(', ')})`;
}

/** The plan with `inputs` laid over its items' own, checked again against the config. */
function withInputs(plan: Plan, fixture: Fixture, config: OrchConfig, located: LocatedProblem[]): Plan {
  const inputs = fixture.inputs ?? {};
  for (const id of Object.keys(inputs)) {
    if (!plan.items.some((i) => i.id === id)) located.push({ segments: ['inputs', id], message: unknownItem(id, plan, 'key inputs by item id') });
  }
  if (Object.keys(inputs).length === 0) return plan;
  const merged = { ...plan, items: plan.items.map((i) => (Object.hasOwn(inputs, i.id) ? { ...i, inputs: { ...i.inputs, ...inputs[i.id] } } : i)) };
  const result = validatePlan(merged, config);
  if (result.ok) return result.plan;
  for (const p of result.problems) {
    const index = /^\$\.items\[(\d+)\]/.exec(p.path);
    const id = index ? merged.items[Number(index[1])]?.id : undefined;
    const at: PathSegment[] = id !== undefined && Object.hasOwn(inputs, id) ? ['inputs', id] : ['inputs'];
    located.push({ segments: at, message: `with these inputs the plan breaks a rule: ${p.path}: ${p.message}` });
  }
  return plan;
}

/** Why `path` cannot be a file a mock writes, or undefined. */
function repoPathProblem(path: string): string | undefined {
  const how = 'write a file path relative to the repository root, like "src/a.ts"';
  if (path === '' || path.startsWith('/') || path.endsWith('/') || path.includes('\\')) return `is not a relative file path; ${how}`;
  for (const c of path.split('/')) {
    if (c === '' || c === '.' || c === '..') return `has an empty, "." or ".." component; ${how}`;
    if (c.toLowerCase() === '.git') return 'names ".git", which no worker may write';
  }
  return undefined;
}

function fileProblems(mock: Mock, at: PathSegment[], located: LocatedProblem[]): void {
  for (const path of Object.keys(mock.files ?? {})) {
    const problem = repoPathProblem(path);
    if (problem) located.push({ segments: [...at, 'files', path], message: problem });
  }
}

function resolved(mock: Mock, over: Mock, source: PathSegment[]): ResolvedMock {
  return {
    output: over.output ?? mock.output ?? '',
    files: { ...mock.files, ...over.files },
    exit: over.exit ?? mock.exit ?? 0,
    calls: over.calls ?? mock.calls ?? [],
    source: formatJsonPath(source),
  };
}

function subagentOf(plan: Plan, itemId: string): string | undefined {
  const item = plan.items.find((i) => i.id === itemId);
  return item?.executor === 'dispatch' && typeof item.inputs.subagent === 'string' ? item.inputs.subagent : undefined;
}

/** True when `input` holds every field of `when` with an equal value. */
function matches(when: Record<string, unknown>, input: unknown): boolean {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return Object.keys(when).length === 0;
  return Object.entries(when).every(([k, v]) => Object.hasOwn(input, k) && isDeepStrictEqual((input as Record<string, unknown>)[k], v));
}

/** The mock of `name` for `input` (an item's workerInput or a call's input): the first matching case over the base. */
function subagentMockFor(name: string, mock: SubagentMock, input: unknown): ResolvedMock {
  const k = (mock.cases ?? []).findIndex((c) => matches(c.when, input));
  return k < 0 ? resolved({}, mock, ['mocks', 'subagents', name]) : resolved(mock, mock.cases![k]!, ['mocks', 'subagents', name, 'cases', k]);
}

/** Every mock of the fixture with where it stands and the subagent whose calls it makes (undefined: it cannot call). */
function everyMock(plan: Plan, fixture: Fixture): Array<{ mock: Mock; at: PathSegment[]; caller: string | undefined }> {
  const out: Array<{ mock: Mock; at: PathSegment[]; caller: string | undefined }> = [];
  for (const [id, mock] of Object.entries(fixture.mocks.items ?? {})) {
    // A mock of an item the plan lacks is reported as such, not for its calls.
    if (plan.items.some((i) => i.id === id)) out.push({ mock, at: ['mocks', 'items', id], caller: subagentOf(plan, id) });
  }
  for (const [name, mock] of Object.entries(fixture.mocks.subagents ?? {})) {
    out.push({ mock, at: ['mocks', 'subagents', name], caller: name });
    (mock.cases ?? []).forEach((c, k) => out.push({ mock: c, at: ['mocks', 'subagents', name, 'cases', k], caller: name }));
  }
  return out;
}

/**
 * A mock's calls: only a dispatch item's worker can call (through its subagent's dependencies), and a
 * call that the orchestrator would run needs a mock to answer it. A call it would refuse (not a declared
 * dependency, no such subagent) is left to be refused: that is what such a fixture tests.
 */
function callProblems(plan: Plan, fixture: Fixture, config: OrchConfig, located: LocatedProblem[]): void {
  const bySubagent = fixture.mocks.subagents ?? {};
  for (const { mock, at, caller } of everyMock(plan, fixture)) {
    if ((mock.calls ?? []).length === 0) continue;
    if (caller === undefined) {
      located.push({
        segments: [...at, 'calls'],
        message: 'makes calls, but the item runs a command, not a subagent, so it has no dependencies to call; mock a dispatch item, or remove calls',
      });
      continue;
    }
    const declared = config.subagents[caller]?.dependencies ?? [];
    (mock.calls ?? []).forEach((call, k) => {
      if (declared.includes(call.subagent) && !Object.hasOwn(bySubagent, call.subagent)) {
        located.push({
          segments: [...at, 'calls', k, 'subagent'],
          message: `calls "${call.subagent}", a dependency of "${caller}" with no mock to answer it; add mocks.subagents.${call.subagent}`,
        });
      }
    });
  }
}

/** Each item's mock: its own (`mocks.items`), else its subagent's (the first matching case over the base). */
function resolveMocks(plan: Plan, fixture: Fixture, config: OrchConfig, located: LocatedProblem[]): Map<string, ResolvedMock> {
  const byItem = fixture.mocks.items ?? {};
  const bySubagent = fixture.mocks.subagents ?? {};
  for (const [id, mock] of Object.entries(byItem)) {
    if (!plan.items.some((i) => i.id === id)) located.push({ segments: ['mocks', 'items', id], message: unknownItem(id, plan, 'key item mocks by item id') });
    fileProblems(mock, ['mocks', 'items', id], located);
  }
  const dispatched = new Set(plan.items.map((i) => subagentOf(plan, i.id)).filter((s) => s !== undefined));
  // What a subagent's mock answers: the items that dispatch to it, and the calls mocks make to it.
  const callInputs = new Map<string, unknown[]>();
  for (const { mock } of everyMock(plan, fixture)) {
    for (const call of mock.calls ?? []) callInputs.set(call.subagent, [...(callInputs.get(call.subagent) ?? []), call.input ?? {}]);
  }
  const used = new Set([...dispatched, ...callInputs.keys()]);
  for (const [name, mock] of Object.entries(bySubagent)) {
    if (!used.has(name)) {
      located.push({
        segments: ['mocks', 'subagents', name],
        message: `mocks subagent "${name}", which no dispatch item of the plan uses and no mock calls${didYouMean(name, [...used])}; mock a subagent the plan dispatches to${used.size ? ` (${[...used].join(', ')})` : ''}, or an item under mocks.items`,
      });
    }
    fileProblems(mock, ['mocks', 'subagents', name], located);
    (mock.cases ?? []).forEach((c, k) => {
      fileProblems(c, ['mocks', 'subagents', name, 'cases', k], located);
      const hit =
        plan.items.some((i) => subagentOf(plan, i.id) === name && matches(c.when, i.inputs.workerInput)) ||
        (callInputs.get(name) ?? []).some((input) => matches(c.when, input));
      if (used.has(name) && !hit) {
        located.push({
          segments: ['mocks', 'subagents', name, 'cases', k, 'when'],
          message: `matches no item or call of subagent "${name}": each field must equal the same field of an item's inputs.workerInput or of a mocked call's input`,
        });
      }
    });
  }
  callProblems(plan, fixture, config, located);
  const out = new Map<string, ResolvedMock>();
  for (const item of plan.items) {
    const own = Object.hasOwn(byItem, item.id) ? byItem[item.id] : undefined;
    const name = subagentOf(plan, item.id);
    const sub = name !== undefined && Object.hasOwn(bySubagent, name) ? bySubagent[name] : undefined;
    if (own) out.set(item.id, resolved({}, own, ['mocks', 'items', item.id]));
    else if (sub) out.set(item.id, subagentMockFor(name!, sub, item.inputs.workerInput));
    else {
      located.push({
        segments: ['mocks'],
        message: `item "${item.id}" (${name ? `subagent "${name}"` : `executor "${item.executor}"`}) has no mock; add mocks.items.${item.id}${name ? ` or mocks.subagents.${name}` : ''}`,
      });
    }
  }
  return out;
}

function checkExpectations(plan: Plan, fixture: Fixture, located: LocatedProblem[]): void {
  for (const id of Object.keys(fixture.expect.items ?? {})) {
    if (!plan.items.some((i) => i.id === id))
      located.push({ segments: ['expect', 'items', id], message: unknownItem(id, plan, 'key expectations by item id') });
  }
  for (const path of Object.keys(fixture.expect.files ?? {})) {
    const problem = repoPathProblem(path);
    if (problem) located.push({ segments: ['expect', 'files', path], message: problem });
  }
}
