/**
 * zod issues as located problems that say what to do: a missing field names the field and what it
 * holds, an unknown field lists the known ones (with a "did you mean"), a wrong value says what was
 * expected and what was found.
 */
import type { z } from 'zod';
import type { PathSegment } from '../json/path.js';
import { describeValue, didYouMean, valueAt } from './describe.js';
import type { LocatedProblem } from './located.js';

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
export function zodIssuesToProblems(issues: readonly z.core.$ZodIssue[], schema: ZodSchema, raw: unknown, base: readonly PathSegment[] = []): LocatedProblem[] {
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
