/** JSON Schema checks (ajv) whose failures are located problems, for plans' inputs and config shapes. */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { PathSegment } from '../json/path.js';
import { describeValue, didYouMean } from './describe.js';
import type { LocatedProblem } from './located.js';

/** A JSON Schema document (draft-07, 2019-09 or 2020-12, by its `$schema`). */
export type JsonSchema = Record<string, unknown>;

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
