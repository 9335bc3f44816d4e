import { canonicalJson } from '../../log/canonical-json.js';
import type { RunParams } from '../../engine/types.js';
import { formatVersion, paramsDigest, type AuditBundle } from '../bundle.js';
import type { Failures } from './failures.js';

/**
 * The run's parameters (v5 `params`): the bundle's digest must be the one of its values (from the bundle
 * alone), and with `--repo` the values must be the ones the run's first state commit records, present
 * in the bundle exactly when the run has parameters (so a bundle cannot drop or invent them).
 */

/** From the bundle alone: `params` only in v5, and its digest is sha256 of its values' canonical JSON. */
export function checkParamsDigest(bundle: AuditBundle, f: Failures): void {
  const params = bundle.params;
  if (params === undefined) return;
  const version = formatVersion(bundle);
  if (version < 5) {
    f.add('params-digest', `the bundle is ${bundle.format}, which records no params (params are v5): it was edited, or made by something other than Agora`);
    return;
  }
  const digest = paramsDigest(params.values);
  if (digest !== params.digest) {
    f.add('params-digest', `params.digest is ${params.digest}, but sha256 of the canonical JSON of params.values is ${digest}`);
  }
}

/**
 * With `--repo`: `stored` is `params` of `run.json` in the run's first state commit `commit` (undefined when
 * the run has none). The bundle's values must be exactly those, compared as canonical JSON.
 */
export function checkStoredParams(bundle: AuditBundle, stored: RunParams | undefined, commit: string, f: Failures): void {
  const bundled = bundle.params?.values;
  const recorded = stored?.values;
  if (recorded === undefined && bundled === undefined) return;
  if (recorded !== undefined && (typeof recorded !== 'object' || recorded === null || Array.isArray(recorded))) {
    f.add('params-mismatch', `the run's first state commit ${commit} records params whose values are not an object`);
    return;
  }
  if (recorded === undefined) {
    f.add('params-mismatch', `the bundle records params, but the run's first state commit ${commit} has none`);
    return;
  }
  if (bundled === undefined) {
    f.add('params-mismatch', `the run's first state commit ${commit} records params (${Object.keys(recorded).join(', ')}), but the bundle has none`);
    return;
  }
  let same: boolean;
  try {
    same = canonicalJson(recorded) === canonicalJson(bundled);
  } catch {
    same = false;
  }
  if (!same) {
    const keys = new Set([...Object.keys(recorded), ...Object.keys(bundled)]);
    const differ = [...keys].filter((k) => !Object.hasOwn(recorded, k) || !Object.hasOwn(bundled, k) || recorded[k] !== bundled[k]).sort();
    f.add('params-mismatch', `the bundle's params differ from those the run's first state commit ${commit} records (keys ${differ.join(', ')})`);
  }
}
