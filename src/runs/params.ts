import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { MIN_SECRET_LENGTH } from '../config/secrets.js';
import type { ParamValue, RunParams } from '../engine/types.js';
import { AgoraError } from '../errors.js';
import { REDACTED } from '../executors/redact.js';
import { pathInside } from '../path-inside.js';
import { selfIdentity } from '../process-identity.js';

/**
 * Run parameters (`agora orch run --data key=value --data-file params.json --secret-data key=value`):
 * a flat object of string, number and boolean values, recorded in the run's state (`params`) and handed
 * to each worker as the JSON file `$AGORA_PARAMS` points at.
 *
 * Precedence: the data file first, then each `--data` and `--secret-data` replaces the file's value for
 * its key. A key given twice on the command line is refused.
 *
 * A `--secret-data` value never enters the repository: the state records the key with the value `***`
 * (like every redacted secret) and the token of a host-local file, `<gitdir>/agora/params/<token>.json`
 * (mode 0600), that holds the real values; workers get the real value, and their logs, failure reasons
 * and patches are checked for it like any secret.
 *
 * The token is no secret (any run's is in its `run.json`), and a submission is a ref anyone who can push
 * may write: so the store names the one run it belongs to, `{ "run": "<run id>", "secrets": { … } }`,
 * written once the run id is chosen and before the submission exists. Only that run's workers read it,
 * and only that run's end removes it; a store naming no run is refused.
 */

/** What a parameter key may look like. */
const KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const KEY_RULE = 'use 1–64 characters from A–Z a–z 0–9 _ . -, starting with a letter';
/** The most bytes a data file may hold. */
export const MAX_PARAMS_FILE_BYTES = 1024 * 1024;
/** The name of the recorded parameters in a submission's tree. */
export const PARAMS_FILE = 'params.json';

export interface ParamOptions {
  data?: readonly string[];
  dataFile?: string;
  secretData?: readonly string[];
}

/** Parameters as given: the public values and the secret ones apart. */
export interface GivenParams {
  values: Record<string, ParamValue>;
  secrets: Record<string, string>;
}

function paramsError(message: string, hint: string): AgoraError {
  return new AgoraError('params-invalid', message, hint);
}

function fileError(file: string, problem: string, hint: string): AgoraError {
  return new AgoraError('params-file-invalid', `--data-file ${file}: ${problem}`, hint);
}

/** Why `key` is not a parameter key, or undefined. */
export function paramKeyProblem(key: string): string | undefined {
  return KEY.test(key) ? undefined : `key ${JSON.stringify(key)} is not allowed; ${KEY_RULE}`;
}

function isParamValue(v: unknown): v is ParamValue {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

function splitPair(option: string, arg: string): [string, string] {
  const eq = arg.indexOf('=');
  if (eq <= 0) {
    throw paramsError(`${option} ${JSON.stringify(arg)} is not key=value`, `write it as ${option} name=value (the key before the first "=")`);
  }
  const key = arg.slice(0, eq);
  const problem = paramKeyProblem(key);
  if (problem) throw paramsError(`${option} ${JSON.stringify(arg)}: ${problem}`, `rename the parameter; ${KEY_RULE}`);
  return [key, arg.slice(eq + 1)];
}

/** Reads and checks a data file: a JSON object of strings, numbers and booleans. */
export async function readDataFile(file: string): Promise<Record<string, ParamValue>> {
  const info = await stat(file).catch((e: NodeJS.ErrnoException) => {
    throw fileError(file, e.code === 'ENOENT' ? 'no such file' : `cannot be read (${e.code ?? e.message})`, 'pass the path of a JSON file');
  });
  if (!info.isFile()) throw fileError(file, 'is not a file', 'pass the path of a JSON file');
  if (info.size > MAX_PARAMS_FILE_BYTES)
    throw fileError(file, `is ${info.size} bytes, the limit is ${MAX_PARAMS_FILE_BYTES}`, 'pass fewer or shorter parameters');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw fileError(file, `is not JSON (${(e as Error).message})`, 'fix the JSON; the file must hold one object, e.g. { "region": "eu" }');
  }
  return checkValues(parsed, (path, problem, hint) => fileError(file, `${path}: ${problem}`, hint));
}

/** Checks a parsed object of parameters; `fail` builds the error for a problem at a JSON path. */
function checkValues(parsed: unknown, fail: (path: string, problem: string, hint: string) => AgoraError): Record<string, ParamValue> {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw fail(
      '$',
      `is ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : `a ${typeof parsed}`}, not an object`,
      'wrap the parameters in one JSON object',
    );
  }
  const out: Record<string, ParamValue> = {};
  for (const [key, value] of Object.entries(parsed)) {
    const path = `$.${key}`;
    const problem = paramKeyProblem(key);
    if (problem) throw fail(path, problem, `rename the parameter; ${KEY_RULE}`);
    if (!isParamValue(value)) {
      const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : typeof value;
      throw fail(path, `is ${what}; a parameter is a string, number or boolean`, 'flatten nested values into keys of their own (e.g. "db.host": "…")');
    }
    out[key] = value;
  }
  return out;
}

/** The parameters the options give, checked; `{}` values when none are given. */
export async function paramsFromOptions(o: ParamOptions): Promise<GivenParams> {
  const fromFile = o.dataFile !== undefined ? await readDataFile(o.dataFile) : {};
  const given = new Map<string, string>();
  const values: Record<string, ParamValue> = { ...fromFile };
  const secrets: Record<string, string> = {};
  const take = (option: string, arg: string): [string, string] => {
    const [key, value] = splitPair(option, arg);
    const earlier = given.get(key);
    if (earlier !== undefined) {
      throw paramsError(`parameter ${key} is given twice (${earlier} and ${option})`, `pass ${key} once`);
    }
    given.set(key, option);
    return [key, value];
  };
  for (const arg of o.data ?? []) {
    const [key, value] = take('--data', arg);
    values[key] = value;
  }
  for (const arg of o.secretData ?? []) {
    const [key, value] = take('--secret-data', arg);
    if (value.replace(/[\r\n]/g, '').length < MIN_SECRET_LENGTH) {
      throw paramsError(
        `--secret-data ${key}: the value is shorter than ${MIN_SECRET_LENGTH} characters, too short to redact from logs reliably`,
        `give ${key} a value of at least ${MIN_SECRET_LENGTH} characters, or pass it with --data if it is not secret`,
      );
    }
    delete values[key];
    secrets[key] = value;
  }
  return { values, secrets };
}

/** True when no parameter is given. */
export function noParams(p: GivenParams): boolean {
  return Object.keys(p.values).length === 0 && Object.keys(p.secrets).length === 0;
}

/** `<scratch>/params/<token>.json`: where a run's secret parameter values are kept on this host. */
function secretStorePath(scratchDir: string, token: string): string {
  return pathInside(join(scratchDir, 'params'), [`${token}.json`], 'secret parameter store token');
}

/**
 * Whether `token` has the form `recordableParams` gives a store's token (32 hex digits). A token read from
 * the repository or from a file on disk becomes a file name: one that is not of this form is never used.
 */
export function isSecretStoreToken(token: unknown): token is string {
  return typeof token === 'string' && /^[0-9a-f]{32}$/.test(token);
}

/** Whether this host holds a file for the store `token` (whoever it is bound to). */
export async function hasSecretStore(scratchDir: string, token: string): Promise<boolean> {
  if (!isSecretStoreToken(token)) return false;
  try {
    await stat(secretStorePath(scratchDir, token));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * What the run records: the public values, each secret key with the value `***`, the secret keys, and
 * (when there are secrets) the token of the host-local file their values go to. `bind` writes that file
 * for the run id the submission takes, before the submission exists, so no worker ever starts without
 * them, with the ref namespace (`namespace`, `RunRefs.ns`) and the process that submits; it returns the
 * token the submission records. The first bind writes the store `params` names. submitPlan binds again
 * when it has to take another number: each later bind removes the store it wrote before and writes one
 * under a new token, since the lost number's submission may have been read (and its token with it) while
 * it existed, and a store that keeps its token across run ids would be reached by whoever pushed a
 * submission naming it under the next number first. `discard` removes the store the last bind wrote, for a
 * submission that failed with no entry naming it.
 */
export function recordableParams(
  p: GivenParams,
  scratchDir: string,
  namespace: string,
): { params: RunParams; bind?: (runId: string) => Promise<string>; discard?: () => Promise<void> } {
  const secretKeys = Object.keys(p.secrets).sort();
  const values: Record<string, ParamValue> = { ...p.values };
  for (const key of secretKeys) values[key] = REDACTED;
  if (secretKeys.length === 0) return { params: { values: sortKeys(values) } };
  const first = randomBytes(16).toString('hex');
  let bound: { token: string; runId: string } | undefined;
  let firstUsed = false;
  const bind = async (runId: string) => {
    if (bound !== undefined) await removeSecretStore(scratchDir, bound.token, bound.runId);
    const token = firstUsed ? randomBytes(16).toString('hex') : first;
    firstUsed = true;
    await mkdir(join(scratchDir, 'params'), { recursive: true, mode: 0o700 });
    // The namespace and this process: a store whose submit died before its submission existed is removed by
    // the next serve (orphan-secret-stores.ts).
    await writeFileAtomic(secretStorePath(scratchDir, token), `${JSON.stringify({ run: runId, namespace, writer: selfIdentity(), secrets: p.secrets })}\n`, {
      mode: 0o600,
      crashPoint: 'secrets-temp-written', // a whole temporary file: the next serve removes it (orphan-secret-stores.ts)
    });
    bound = { token, runId };
    return token;
  };
  // The store the last bind wrote, removed when no submission names it (submitPlan failed before its entry
  // landed, or withdrew it): its values would otherwise stay until a serve's orphan sweep.
  const discard = async () => {
    if (bound !== undefined) await removeSecretStore(scratchDir, bound.token, bound.runId);
    bound = undefined;
  };
  return { params: { values: sortKeys(values), secret: secretKeys, secretStore: first }, bind, discard };
}

/** The store's values when it names `runId`; why not otherwise (missing, unreadable, another run's, none's). */
async function readStore(scratchDir: string, token: string, runId: string): Promise<{ secrets: Record<string, unknown> } | { problem: string }> {
  const path = secretStorePath(scratchDir, token);
  let doc: { run?: unknown; secrets?: unknown } | null;
  try {
    doc = JSON.parse(await readFile(path, 'utf8')) as { run?: unknown; secrets?: unknown } | null;
  } catch {
    return { problem: `${path} cannot be read` };
  }
  if (doc?.run !== runId || typeof doc.secrets !== 'object' || doc.secrets === null) {
    const whose = typeof doc?.run === 'string' ? `belongs to run ${doc.run}` : 'names no run (an older Agora wrote it)';
    return { problem: `${path} ${whose}, not to ${runId}` };
  }
  return { secrets: doc.secrets as Record<string, unknown> };
}

function sortKeys(values: Record<string, ParamValue>): Record<string, ParamValue> {
  return Object.fromEntries(Object.entries(values).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Parses the `params.json` of a submission (written by `recordableParams`; checked again because the
 * inbox is a ref anyone who can push may write). Returns the problem instead of throwing.
 */
export function parseRecordedParams(text: string): { ok: true; params: RunParams } | { ok: false; problem: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { ok: false, problem: `${PARAMS_FILE} is not JSON` };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { ok: false, problem: `${PARAMS_FILE} is not an object` };
  const { values, secret, secretStore, ...rest } = doc as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return { ok: false, problem: `${PARAMS_FILE} has unknown members ${Object.keys(rest).join(', ')}` };
  let checked: Record<string, ParamValue>;
  try {
    checked = checkValues(values, (path, problem) => new AgoraError('params-invalid', `${PARAMS_FILE} values ${path}: ${problem}`));
  } catch (e) {
    return { ok: false, problem: (e as Error).message };
  }
  const keys = secret === undefined ? [] : secret;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string' && checked[k] === REDACTED)) {
    return { ok: false, problem: `${PARAMS_FILE} secret must list keys whose recorded value is ${REDACTED}` };
  }
  if (keys.length > 0 !== isSecretStoreToken(secretStore)) {
    return { ok: false, problem: `${PARAMS_FILE} secretStore must be a 32-hex token exactly when there are secret keys` };
  }
  return {
    ok: true,
    params: { values: checked, ...(keys.length > 0 ? { secret: keys as string[], secretStore: secretStore as string } : {}) },
  };
}

/**
 * The secret store token a submission's `params.json` names, if it names one in the token's format: read
 * leniently, so that a submission rejected for its `params.json` (another version's members, say) still
 * has its secrets removed with it.
 */
export function recordedSecretStore(text: string): string | undefined {
  try {
    const token = (JSON.parse(text) as { secretStore?: unknown } | null)?.secretStore;
    return isSecretStoreToken(token) ? token : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes `runId`'s host-local secret store (`agora orch gc`, once the run is pruned; `serve`, once it has
 * recorded a submission's rejection; `cancel`, once it has withdrawn a submission: withdrawal.ts). Returns
 * true when a file was removed; a token that is not one `recordableParams` makes (run.json is repository
 * data, a withdrawal marker a file on disk) is left alone, as is a store that is not there
 * (submitted on another host, or removed already) and one that names another run (a pushed submission
 * or run may name any token). A store an older Agora wrote names no run: gc removes it with its run.
 */
export async function removeSecretStore(scratchDir: string, token: string, runId: string): Promise<boolean> {
  if (!isSecretStoreToken(token)) return false;
  try {
    const doc = JSON.parse(await readFile(secretStorePath(scratchDir, token), 'utf8')) as { run?: unknown } | null;
    if (typeof doc?.run === 'string' && doc.run !== runId) return false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    // Not JSON: not a store Agora wrote; gone with the run all the same.
  }
  try {
    await unlink(secretStorePath(scratchDir, token));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * The values a worker gets: the recorded ones with each secret's real value read from this host's
 * store. Throws a plain Error with a reason when the store is gone (the run was submitted on another host,
 * or the file was removed).
 */
export async function workerParams(
  params: RunParams,
  scratchDir: string,
  runId: string,
): Promise<{ values: Record<string, ParamValue>; secrets: Record<string, string> }> {
  if (!params.secret || params.secret.length === 0 || !params.secretStore) return { values: params.values, secrets: {} };
  const path = secretStorePath(scratchDir, params.secretStore);
  const read = await readStore(scratchDir, params.secretStore, runId);
  if ('problem' in read) {
    throw new SecretParamsUnavailable(
      `the run's secret parameters (${params.secret.join(', ')}) are not on this host for it (${read.problem}); submit the run again from the host that serves it`,
    );
  }
  const stored = read.secrets;
  const secrets: Record<string, string> = {};
  for (const key of params.secret) {
    const value = stored[key];
    if (typeof value !== 'string') throw new SecretParamsUnavailable(`secret parameter ${key} is missing from ${path}; submit the run again`);
    secrets[key] = value;
  }
  return { values: { ...params.values, ...secrets }, secrets };
}

export class SecretParamsUnavailable extends Error {}

/**
 * Writes the attempt's `params.json` (mode 0600) under `<work dir>/params/<run>/<item>.<attempt>.json`,
 * outside its workspace and the repository, and returns its path: what `$AGORA_PARAMS` names.
 */
export async function writeParamsFile(workDir: string, runId: string, itemId: string, attempt: number, values: Record<string, ParamValue>): Promise<string> {
  const path = pathInside(join(workDir, 'params'), [runId, `${itemId}.${attempt}.json`], 'run id and item id');
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, `${JSON.stringify(values, null, 2)}\n`, { mode: 0o600 });
  return path;
}
