import { Ajv, type ErrorObject } from 'ajv';
import { AgoraError, errorMessage } from '../../errors.js';
import { DuplicateKeyError, findDuplicateKey } from '../../json/duplicate-keys.js';
import bundleSchema from '../bundle-schema.json' with { type: 'json' };
import { ACCEPTED_FORMATS, AUDIT_FORMAT_NEWEST, AUDIT_FORMAT_VERSION, type AuditBundle } from '../bundle.js';

/**
 * Step "parse": the text of a bundle file becomes a bundle of a version this verifier knows, or an error
 * that is not a report failure (the file is not a bundle to verify): not JSON, a key repeated in an object,
 * not an Agora bundle, a newer version, a shape the JSON Schema (bundle-schema.json) rejects.
 */

const ajv = new Ajv({ allErrors: false, strict: false });
const validateSchema = ajv.compile(bundleSchema);

/** The JSON Schema of the bundle (src/audit/bundle-schema.json). */
export const AUDIT_BUNDLE_SCHEMA: object = bundleSchema;

/** True when `value` satisfies the bundle's JSON Schema; `problem` names the first violation. */
export function checkBundleSchema(value: unknown): { ok: true } | { ok: false; problem: string } {
  if (validateSchema(value)) return { ok: true };
  return { ok: false, problem: describeSchemaError(validateSchema.errors?.[0]) };
}

function describeSchemaError(e: ErrorObject | undefined): string {
  if (!e) return 'does not match the bundle schema';
  const where = e.instancePath === '' ? '$' : `$${e.instancePath.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.')}`;
  const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : '';
  return `${where}: ${e.message ?? e.keyword}${extra}`;
}

/**
 * Parses the text of an audit bundle file. Not JSON, a key repeated in one object (DuplicateKeyError
 * `bundle-duplicate-key`: parsers would disagree on which one counts), not an Agora audit bundle, a newer
 * format version, or a shape the schema rejects → AgoraError naming `source` and the problem (one line).
 */
export function parseAuditBundle(text: string, source: string): AuditBundle {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AgoraError('bundle-invalid', `${source}: not JSON (${errorMessage(error)})`, 'pass the file `agora orch audit <run> --out FILE` wrote');
  }
  const dup = findDuplicateKey(text);
  if (dup) {
    throw new DuplicateKeyError(
      'bundle-duplicate-key',
      source,
      dup,
      'a bundle Agora writes never repeats a key: this one was edited after it was written; verify the file `agora orch audit <run> --out FILE` wrote',
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new AgoraError(
      'bundle-invalid',
      `${source}: not an Agora audit bundle (expected a JSON object)`,
      'pass the file `agora orch audit <run> --out FILE` wrote',
    );
  }
  const format = (json as { format?: unknown }).format;
  // `v<n>`, n a decimal number without leading zeros: `agora.audit/v02` is no version, a newer one is `v6`.
  const m = typeof format === 'string' ? /^agora\.audit\/v([1-9][0-9]*)$/.exec(format) : null;
  if (!m) {
    throw new AgoraError(
      'bundle-invalid',
      `${source}: not an Agora audit bundle (format is ${JSON.stringify(format ?? null)}, expected ${ACCEPTED_FORMATS.map((f) => JSON.stringify(f)).join(' or ')})`,
      'pass the file `agora orch audit <run> --out FILE` wrote',
    );
  }
  if (Number(m[1]) > AUDIT_FORMAT_VERSION) {
    throw new AgoraError(
      'bundle-version',
      `${source}: audit bundle format ${String(format)} is newer than this agora understands (${AUDIT_FORMAT_NEWEST})`,
      'upgrade agora to verify it',
    );
  }
  const checked = checkBundleSchema(json);
  if (!checked.ok)
    throw new AgoraError(
      'bundle-invalid',
      `${source}: not a valid ${String(format)} bundle: ${checked.problem}`,
      'pass the file `agora orch audit <run> --out FILE` wrote, unmodified',
    );
  return json as AuditBundle;
}
