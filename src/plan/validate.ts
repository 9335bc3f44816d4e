/**
 * Plan validation: structure (the zod schema of schema.ts), then meaning — safe ids and `needs` binding
 * names, unique ids, known and acyclic dependencies, lock keys, known executors and their inputs,
 * subagent input schemas and named shapes (JSON Schema, checked with ajv). Every problem is reported
 * at once, each located by a JSON path (`$.items[2].depends_on[0]`) and saying how to fix it, sorted by
 * path.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { z } from 'zod';
import { BUILTIN_EXECUTORS, type JsonSchema } from '../config/types.js';
import { InvalidInputError, type Problem } from '../errors.js';
import { formatJsonPath, type PathSegment } from '../json/path.js';
import { findCycles, formatCycle, type GraphItem } from './dag.js';
import { bindingNameProblem, idProblem } from './ids.js';
import { lockKeyProblem } from './locks.js';
import { PlanSchema, type Plan } from './schema.js';

/** What a plan is checked against: the configured subagents and named input shapes. */
export interface ValidationContext {
  subagents: Record<string, { inputSchema?: JsonSchema }>;
  shapes: Record<string, JsonSchema>;
}

export type ValidationResult = { ok: true; plan: Plan } | { ok: false; problems: Problem[] };

/** At most this many cycles are reported one by one. */
const MAX_REPORTED_CYCLES = 100;

// ---------------------------------------------------------------------------------------------------
// JSON paths

export { formatJsonPath, type PathSegment };

/** A problem still carrying its path as segments (for sorting). */
export interface LocatedProblem {
  segments: PathSegment[];
  message: string;
}


/** Orders paths segment by segment: indices numerically, keys by code point, parents first. */
export function comparePaths(a: readonly PathSegment[], b: readonly PathSegment[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** Sorted by path (stable for equal paths), duplicates dropped, formatted. */
export function finishProblems(located: readonly LocatedProblem[]): Problem[] {
  const sorted = located
    .map((p, i) => ({ p, i }))
    .sort((x, y) => comparePaths(x.p.segments, y.p.segments) || x.i - y.i);
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const { p } of sorted) {
    const path = formatJsonPath(p.segments);
    const key = `${path}\u0000${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, message: p.message });
  }
  return out;
}

function valueAt(root: unknown, segments: readonly PathSegment[]): { found: boolean; value: unknown } {
  let value = root;
  for (const s of segments) {
    if (value === null || typeof value !== 'object' || !Object.prototype.hasOwnProperty.call(value, s)) {
      return { found: false, value: undefined };
    }
    value = (value as Record<string, unknown>)[String(s)];
  }
  return { found: true, value };
}

/** `a string`, `an array`, `null`, … for messages. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `the string ${JSON.stringify(truncate(value, 40))}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value;
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function quoteList(names: readonly string[], max = 20): string {
  const shown = names.slice(0, max).map((n) => JSON.stringify(n));
  return names.length > max ? `${shown.join(', ')} and ${names.length - max} more` : shown.join(', ');
}

/** ` (did you mean "x"?)` when one candidate is within a small edit distance of `name`. */
function didYouMean(name: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const threshold = Math.max(1, Math.floor(name.length / 3));
  return best !== undefined && bestDistance <= threshold ? ` (did you mean ${JSON.stringify(best)}?)` : '';
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 10) return Infinity;
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      current[j] = d;
    }
    before = previous;
    previous = current;
  }
  return previous[b.length]!;
}

// ---------------------------------------------------------------------------------------------------
// zod issues → problems

type ZodSchema = z.core.$ZodType;

interface ZodDefLike {
  type: string;
  shape?: Record<string, ZodSchema>;
  element?: ZodSchema;
  valueType?: ZodSchema;
  innerType?: ZodSchema;
  options?: ZodSchema[];
  in?: ZodSchema;
}

function defOf(schema: ZodSchema): ZodDefLike {
  return schema._zod.def as unknown as ZodDefLike;
}

/** The object schemas that may describe the value at `segments` (several for a union). */
function objectSchemasAt(schema: ZodSchema, segments: readonly PathSegment[], raw: unknown): ZodDefLike[] {
  let current: ZodSchema[] = [schema];
  const expand = (list: ZodSchema[], value: unknown): ZodSchema[] => {
    const out: ZodSchema[] = [];
    for (const s of list) {
      const def = defOf(s);
      if (def.innerType) out.push(...expand([def.innerType], value));
      else if (def.type === 'pipe' && def.in) out.push(...expand([def.in], value));
      else if (def.type === 'union' && def.options) out.push(...expand(def.options, value));
      else out.push(s);
    }
    return out;
  };
  for (let i = 0; i <= segments.length; i++) {
    const value = valueAt(raw, segments.slice(0, i)).value;
    current = expand(current, value);
    if (i === segments.length) break;
    const step = segments[i]!;
    const next: ZodSchema[] = [];
    for (const s of current) {
      const def = defOf(s);
      if (def.type === 'object' && def.shape && typeof step === 'string' && def.shape[step]) next.push(def.shape[step]);
      else if (def.type === 'array' && def.element) next.push(def.element);
      else if (def.type === 'record' && def.valueType) next.push(def.valueType);
    }
    current = next;
  }
  const value = valueAt(raw, segments).value;
  const objects = current.map(defOf).filter((d) => d.type === 'object' && d.shape);
  // For a discriminated union, prefer the options whose literal fields match the value.
  const matching = objects.filter((d) =>
    Object.entries(d.shape!).every(([key, field]) => {
      const fd = field._zod.def as unknown as { type: string; values?: unknown[] };
      if (fd.type !== 'literal' || !fd.values) return true;
      const v = valueAt(value, [key]);
      return v.found && fd.values.includes(v.value);
    }),
  );
  return matching.length > 0 ? matching : objects;
}

function describeExpected(expected: string): string {
  switch (expected) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'int':
      return 'an integer';
    case 'boolean':
      return 'true or false';
    case 'array':
      return 'an array';
    case 'object':
    case 'record':
      return 'an object';
    default:
      return expected;
  }
}

/**
 * Maps zod issues to problems under `base`: a missing field says which field and what it holds; an
 * unknown field is named and the known fields listed; a wrong value says what was expected and what
 * was found.
 */
export function zodIssuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  schema: ZodSchema,
  raw: unknown,
  base: readonly PathSegment[] = [],
): LocatedProblem[] {
  const out: LocatedProblem[] = [];
  for (const issue of issues) {
    const path = issue.path.map((s) => (typeof s === 'number' ? s : String(s)));
    const at = [...base, ...path];
    const { found, value } = valueAt(raw, path);
    // A message written into the schema (`.min(1, '…')`) says it best; zod's defaults start like these.
    if (issue.code !== 'unrecognized_keys' && !/^(Invalid|Too small|Too big|Unrecognized)/.test(issue.message)) {
      out.push({ segments: at, message: issue.message });
      continue;
    }
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = [...new Set(objectSchemasAt(schema, path, raw).flatMap((d) => Object.keys(d.shape!)))];
        for (const key of issue.keys) {
          out.push({
            segments: [...at, key],
            message: `unknown field ${JSON.stringify(key)}${didYouMean(key, known)}; the known fields here are ${known.join(', ')}`,
          });
        }
        break;
      }
      case 'invalid_type': {
        const expected = describeExpected(String(issue.expected));
        const field = path[path.length - 1];
        if (!found && path.length > 0) {
          const name = typeof field === 'number' ? `item ${field}` : `field ${JSON.stringify(field)}`;
          out.push({ segments: at, message: `missing required ${name} (${expected}); add it` });
        } else {
          out.push({ segments: at, message: `must be ${expected}, not ${describeValue(value)}` });
        }
        break;
      }
      case 'invalid_value':
        out.push({
          segments: at,
          message: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, not ${describeValue(value)}`,
        });
        break;
      case 'invalid_union': {
        const options = (issue as { options?: unknown[] }).options;
        if (options) {
          out.push({
            segments: at,
            message: found
              ? `must be one of ${options.map((v) => JSON.stringify(v)).join(', ')}, not ${describeValue(value)}`
              : `missing required field ${JSON.stringify(path[path.length - 1])} (one of ${options.map((v) => JSON.stringify(v)).join(', ')}); add it`,
          });
        } else {
          out.push({ segments: at, message: `${issue.message}: none of the allowed forms matches` });
        }
        break;
      }
      case 'too_small':
      case 'too_big': {
        const small = issue.code === 'too_small';
        const limit = small ? issue.minimum : issue.maximum;
        const inclusive = issue.inclusive !== false;
        let message: string;
        if (issue.origin === 'string') {
          message = small && Number(limit) === 1 ? 'must not be empty' : `must have ${small ? 'at least' : 'at most'} ${limit} characters`;
        } else if (issue.origin === 'array' || issue.origin === 'set') {
          message = `must have ${small ? 'at least' : 'at most'} ${limit} item${Number(limit) === 1 ? '' : 's'}`;
        } else {
          const relation = small ? (inclusive ? 'at least' : 'greater than') : inclusive ? 'at most' : 'less than';
          message = `must be ${relation} ${limit}, not ${describeValue(value)}`;
        }
        out.push({ segments: at, message });
        break;
      }
      case 'invalid_key': {
        const nested = issue.issues.map((i) => i.message).join('; ');
        out.push({ segments: at, message: `the key ${JSON.stringify(path[path.length - 1])} is not allowed: ${nested}` });
        break;
      }
      default:
        out.push({ segments: at, message: issue.message });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// JSON Schema (ajv) checks

/**
 * Checks values against JSON Schemas with ajv 8 (`allErrors`, not strict). Each schema is compiled
 * once per checker; the dialect follows `$schema` (2020-12, 2019-09, otherwise draft-07).
 */
export class JsonSchemaChecker {
  private readonly engines = new Map<string, Ajv | Ajv2019 | Ajv2020>();
  private readonly compiled = new Map<object, ValidateFunction | Error>();

  private engineFor(schema: JsonSchema): Ajv | Ajv2019 | Ajv2020 {
    const dialect = typeof schema.$schema === 'string' ? schema.$schema : '';
    const kind = dialect.includes('2020-12') ? '2020' : dialect.includes('2019-09') ? '2019' : '07';
    let engine = this.engines.get(kind);
    if (!engine) {
      const options = { allErrors: true, strict: false, verbose: true, logger: false as const, addUsedSchema: false };
      engine = kind === '2020' ? new Ajv2020(options) : kind === '2019' ? new Ajv2019(options) : new Ajv(options);
      this.engines.set(kind, engine);
    }
    return engine;
  }

  /** The compiled validator, or the reason the schema cannot be compiled. */
  compile(schema: JsonSchema): ValidateFunction | Error {
    let result = this.compiled.get(schema);
    if (!result) {
      try {
        result = this.engineFor(schema).compile(schema);
      } catch (error) {
        result = error instanceof Error ? error : new Error(String(error));
      }
      this.compiled.set(schema, result);
    }
    return result;
  }

  /**
   * Problems of `data` against `schema`, located under `base`. `what` names the schema in messages
   * (`the inputSchema of subagent "code-edit"`).
   */
  check(schema: JsonSchema, data: unknown, base: readonly PathSegment[], what: string): LocatedProblem[] {
    const validate = this.compile(schema);
    if (validate instanceof Error) {
      return [{ segments: [...base], message: `cannot be checked: ${what} is not a valid JSON Schema (${validate.message}); fix it in agora.config.mjs` }];
    }
    if (validate(data)) return [];
    return (validate.errors ?? []).map((e) => ajvErrorToProblem(e, data, base, what));
  }
}

function pointerToSegments(pointer: string, data: unknown): PathSegment[] {
  if (pointer === '') return [];
  const segments: PathSegment[] = [];
  let value = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const segment: PathSegment = Array.isArray(value) && /^\d+$/.test(key) ? Number(key) : key;
    segments.push(segment);
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  }
  return segments;
}

function ajvErrorToProblem(e: ErrorObject, data: unknown, base: readonly PathSegment[], what: string): LocatedProblem {
  const at = [...base, ...pointerToSegments(e.instancePath, data)];
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'required' && typeof params.missingProperty === 'string') {
    return { segments: [...at, params.missingProperty], message: `missing required property ${JSON.stringify(params.missingProperty)} (${what})` };
  }
  if (e.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    const properties = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
    const known = properties ? Object.keys(properties) : [];
    const allowed = known.length > 0 ? `; allowed: ${known.join(', ')}` : '';
    return {
      segments: [...at, params.additionalProperty],
      message: `unknown property ${JSON.stringify(params.additionalProperty)}${didYouMean(params.additionalProperty, known)}, not allowed by ${what}${allowed}`,
    };
  }
  if (e.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    return { segments: at, message: `must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}, not ${describeValue(e.data)} (${what})` };
  }
  if (e.keyword === 'type') {
    return { segments: at, message: `${e.message ?? 'has the wrong type'}, not ${describeValue(e.data)} (${what})` };
  }
  return { segments: at, message: `${e.message ?? `fails "${e.keyword}"`} (${what})` };
}

// ---------------------------------------------------------------------------------------------------
// The plan

/** The parts of one item that could be read, whatever else is wrong with it. */
interface ItemView {
  index: number;
  id?: string;
  executor?: string;
  inputs?: Record<string, unknown>;
  dependsOn: Array<{ k: number; id: string }>;
  needs: Array<{ key: string; from: string }>;
  locks: Array<{ k: number; key: string }>;
  subagentShape?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function viewItems(raw: unknown): ItemView[] {
  if (!isRecord(raw) || !Array.isArray(raw.items)) return [];
  const views: ItemView[] = [];
  raw.items.forEach((item: unknown, index: number) => {
    if (!isRecord(item)) return;
    const strings = (value: unknown) =>
      Array.isArray(value)
        ? value.flatMap((v: unknown, k: number) => (typeof v === 'string' ? [{ k, v }] : []))
        : [];
    const needs = isRecord(item.needs)
      ? Object.entries(item.needs).flatMap(([key, b]) => (isRecord(b) && typeof b.from === 'string' ? [{ key, from: b.from }] : []))
      : [];
    views.push({
      index,
      id: typeof item.id === 'string' ? item.id : undefined,
      executor: typeof item.executor === 'string' ? item.executor : undefined,
      inputs: isRecord(item.inputs) ? item.inputs : undefined,
      dependsOn: strings(item.depends_on).map(({ k, v }) => ({ k, id: v })),
      needs,
      locks: strings(item.resourceLocks).map(({ k, v }) => ({ k, key: v })),
      subagentShape: typeof item.subagentShape === 'string' ? item.subagentShape : undefined,
    });
  });
  return views;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_NAME_RULE = 'use letters, digits and _, not starting with a digit';

function checkIds(raw: unknown, items: ItemView[], out: LocatedProblem[]): void {
  if (isRecord(raw) && typeof raw.id === 'string') {
    const problem = idProblem(raw.id);
    if (problem) out.push({ segments: ['id'], message: `run ${problem}` });
  }
  const first = new Map<string, number>();
  const firstFolded = new Map<string, { index: number; id: string }>();
  for (const item of items) {
    if (item.id === undefined) continue;
    const at = ['items', item.index, 'id'];
    const problem = idProblem(item.id);
    if (problem) out.push({ segments: at, message: `item ${problem}` });
    const earlier = first.get(item.id);
    if (earlier !== undefined) {
      out.push({
        segments: at,
        message: `duplicate item id ${JSON.stringify(item.id)}: $.items[${earlier}] already has it; give every item its own id`,
      });
      continue;
    }
    first.set(item.id, item.index);
    const folded = firstFolded.get(item.id.toLowerCase());
    if (folded) {
      out.push({
        segments: at,
        message: `item id ${JSON.stringify(item.id)} differs from ${JSON.stringify(folded.id)} ($.items[${folded.index}]) only in letter case; their git refs would collide on case-insensitive file systems: rename one`,
      });
    } else {
      firstFolded.set(item.id.toLowerCase(), { index: item.index, id: item.id });
    }
  }
}

/** `needs` binding names become file names (the files `$AGORA_NEEDS` points at): they follow the id rule. */
function checkBindingNames(raw: unknown, out: LocatedProblem[]): void {
  if (!isRecord(raw) || !Array.isArray(raw.items)) return;
  raw.items.forEach((item: unknown, index: number) => {
    if (!isRecord(item) || !isRecord(item.needs)) return;
    for (const name of Object.keys(item.needs)) {
      const problem = bindingNameProblem(name);
      if (problem) out.push({ segments: ['items', index, 'needs', name], message: `needs ${problem}` });
    }
  });
}

function checkDependencies(items: ItemView[], out: LocatedProblem[]): void {
  const known = [...new Set(items.flatMap((i) => (i.id === undefined ? [] : [i.id])))];
  const knownSet = new Set(known);
  const unknown = (id: string) =>
    `unknown item ${JSON.stringify(id)}${didYouMean(id, known)}: no item has this id; the items are ${quoteList(known)}`;
  for (const item of items) {
    for (const { k, id } of item.dependsOn) {
      const at = ['items', item.index, 'depends_on', k];
      if (item.id !== undefined && id === item.id) {
        out.push({ segments: at, message: `the item depends on itself; remove ${JSON.stringify(id)} from depends_on` });
      } else if (!knownSet.has(id)) {
        out.push({ segments: at, message: `${unknown(id)}; fix the id or remove the dependency` });
      }
    }
    for (const { key, from } of item.needs) {
      const at = ['items', item.index, 'needs', key, 'from'];
      if (item.id !== undefined && from === item.id) {
        out.push({ segments: at, message: `the item needs its own output; name an upstream item instead` });
      } else if (!knownSet.has(from)) {
        out.push({ segments: at, message: `${unknown(from)}; name the upstream item whose output this input reads` });
      }
    }
  }
}

function checkCycles(items: ItemView[], out: LocatedProblem[]): void {
  const firstById = new Map<string, ItemView>();
  for (const item of items) if (item.id !== undefined && !firstById.has(item.id)) firstById.set(item.id, item);
  const graph: GraphItem[] = [...firstById.values()].map((item) => ({
    id: item.id!,
    // Self dependencies are reported on their own.
    depends_on: item.dependsOn.map((d) => d.id).filter((d) => d !== item.id),
    needs: Object.fromEntries(
      item.needs.filter((n) => n.from !== item.id).map((n) => [n.key, { from: n.from, select: { kind: 'patch' as const } }]),
    ),
  }));
  const cycles = findCycles(graph, { limit: MAX_REPORTED_CYCLES + 1 });
  for (const cycle of cycles.slice(0, MAX_REPORTED_CYCLES)) {
    const from = firstById.get(cycle[0]!)!;
    const to = cycle[1]!;
    const dep = from.dependsOn.find((d) => d.id === to);
    const need = from.needs.find((n) => n.from === to);
    const segments = dep
      ? ['items', from.index, 'depends_on', dep.k]
      : ['items', from.index, 'needs', need?.key ?? '', 'from'];
    out.push({
      segments,
      message: `cycle: ${formatCycle(cycle)}; items in a cycle wait for each other forever: remove one of these dependencies`,
    });
  }
  if (cycles.length > MAX_REPORTED_CYCLES) {
    out.push({ segments: ['items'], message: `more than ${MAX_REPORTED_CYCLES} dependency cycles; only the first ${MAX_REPORTED_CYCLES} are listed` });
  }
}

function checkLocks(items: ItemView[], out: LocatedProblem[]): void {
  for (const item of items) {
    for (const { k, key } of item.locks) {
      const problem = lockKeyProblem(key);
      if (problem) out.push({ segments: ['items', item.index, 'resourceLocks', k], message: problem });
    }
  }
}

function checkCommandInputs(item: ItemView, inputs: Record<string, unknown>, out: LocatedProblem[]): void {
  const base = ['items', item.index, 'inputs'];
  if (!('run' in inputs)) {
    out.push({ segments: [...base, 'run'], message: 'missing: a command item needs inputs.run, the shell command to run (a non-empty string)' });
  } else if (typeof inputs.run !== 'string' || inputs.run.trim() === '') {
    out.push({ segments: [...base, 'run'], message: `must be the shell command to run (a non-empty string), not ${describeValue(inputs.run)}` });
  }
  if ('env' in inputs) {
    if (!isRecord(inputs.env)) {
      out.push({ segments: [...base, 'env'], message: `must be an object of environment variable names to string values, not ${describeValue(inputs.env)}` });
    } else {
      for (const [name, value] of Object.entries(inputs.env)) {
        if (!ENV_NAME.test(name)) {
          out.push({ segments: [...base, 'env', name], message: `${JSON.stringify(name)} is not an environment variable name; ${ENV_NAME_RULE}` });
        }
        if (typeof value !== 'string') {
          out.push({ segments: [...base, 'env', name], message: `must be a string, not ${describeValue(value)}; environment values are text (quote numbers, JSON-encode structures)` });
        }
      }
    }
  }
  if ('secrets' in inputs) {
    if (!Array.isArray(inputs.secrets)) {
      out.push({ segments: [...base, 'secrets'], message: `must be an array of environment variable names, like ["GITHUB_TOKEN"], not ${describeValue(inputs.secrets)}` });
    } else {
      inputs.secrets.forEach((name: unknown, k: number) => {
        if (typeof name !== 'string' || !ENV_NAME.test(name)) {
          out.push({ segments: [...base, 'secrets', k], message: `${describeValue(name)} is not an environment variable name; ${ENV_NAME_RULE}` });
        }
      });
    }
  }
}

function checkDispatchInputs(
  item: ItemView,
  inputs: Record<string, unknown>,
  ctx: ValidationContext,
  schemas: JsonSchemaChecker,
  out: LocatedProblem[],
): void {
  const base = ['items', item.index, 'inputs'];
  const configured = Object.keys(ctx.subagents);
  const listing =
    configured.length > 0
      ? `the configured subagents are ${quoteList(configured)}`
      : 'no subagents are configured: add one under `orch.subagents` in agora.config.mjs';
  const name = inputs.subagent;
  if (!('subagent' in inputs)) {
    out.push({ segments: [...base, 'subagent'], message: `missing: a dispatch item needs inputs.subagent, the name of a subagent from agora.config.mjs; ${listing}` });
    return;
  }
  if (typeof name !== 'string' || name === '') {
    out.push({ segments: [...base, 'subagent'], message: `must name a subagent (a non-empty string), not ${describeValue(name)}; ${listing}` });
    return;
  }
  const subagent = Object.prototype.hasOwnProperty.call(ctx.subagents, name) ? ctx.subagents[name] : undefined;
  if (!subagent) {
    out.push({ segments: [...base, 'subagent'], message: `unknown subagent ${JSON.stringify(name)}${didYouMean(name, configured)}; ${listing}` });
    return;
  }
  if ('workerInput' in inputs && subagent.inputSchema) {
    out.push(...schemas.check(subagent.inputSchema, inputs.workerInput, [...base, 'workerInput'], `the inputSchema of subagent ${JSON.stringify(name)}`));
  }
}

function checkExecutors(items: ItemView[], ctx: ValidationContext, schemas: JsonSchemaChecker, out: LocatedProblem[]): void {
  const executors: readonly string[] = BUILTIN_EXECUTORS;
  for (const item of items) {
    if (item.executor !== undefined && !executors.includes(item.executor)) {
      out.push({
        segments: ['items', item.index, 'executor'],
        message: `unknown executor ${JSON.stringify(item.executor)}${didYouMean(item.executor, executors)}; the executors are "command" (runs inputs.run in a shell) and "dispatch" (runs the subagent inputs.subagent from agora.config.mjs)`,
      });
    }
    if (item.inputs && item.executor === 'command') checkCommandInputs(item, item.inputs, out);
    if (item.inputs && item.executor === 'dispatch') checkDispatchInputs(item, item.inputs, ctx, schemas, out);
    if (item.subagentShape !== undefined) {
      const shapes = Object.keys(ctx.shapes);
      const shape = Object.prototype.hasOwnProperty.call(ctx.shapes, item.subagentShape) ? ctx.shapes[item.subagentShape] : undefined;
      if (!shape) {
        const listing = shapes.length > 0 ? `the configured shapes are ${quoteList(shapes)}` : 'no shapes are configured: add one under `orch.shapes` in agora.config.mjs';
        out.push({
          segments: ['items', item.index, 'subagentShape'],
          message: `unknown shape ${JSON.stringify(item.subagentShape)}${didYouMean(item.subagentShape, shapes)}; ${listing}`,
        });
      } else if (item.inputs) {
        out.push(...schemas.check(shape, item.inputs, ['items', item.index, 'inputs'], `shape ${JSON.stringify(item.subagentShape)}`));
      }
    }
  }
}

/**
 * Validates a parsed plan.json against the schema and the rules of docs/plan.md. Reports every problem
 * at once, sorted by JSON path; on success returns the plan with schema defaults filled in.
 */
export function validatePlan(raw: unknown, ctx: ValidationContext): ValidationResult {
  const parsed = PlanSchema.safeParse(raw);
  const located: LocatedProblem[] = parsed.success ? [] : zodIssuesToProblems(parsed.error.issues, PlanSchema, raw);
  // The rules below run on whatever could be read, so structural and semantic problems come together.
  const items = viewItems(raw);
  checkIds(raw, items, located);
  checkBindingNames(raw, located);
  checkDependencies(items, located);
  checkCycles(items, located);
  checkLocks(items, located);
  checkExecutors(items, ctx, new JsonSchemaChecker(), located);
  if (located.length > 0 || !parsed.success) {
    return { ok: false, problems: finishProblems(located) };
  }
  return { ok: true, plan: parsed.data };
}

/** The hint attached to `plan-invalid` errors. */
export const PLAN_INVALID_HINT = 'fix each problem at its JSON path and submit the plan again; docs/plan.md describes every field and rule';

/**
 * {@link validatePlan}, throwing InvalidInputError `plan-invalid` (with every problem) when the plan is
 * not valid. `source` names the input in the error.
 */
export function assertValidPlan(raw: unknown, ctx: ValidationContext, source: string): Plan {
  const result = validatePlan(raw, ctx);
  if (!result.ok) throw new InvalidInputError('plan-invalid', source, result.problems, PLAN_INVALID_HINT);
  return result.plan;
}
