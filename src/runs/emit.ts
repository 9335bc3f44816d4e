import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync } from 'node:fs';
import { lstat, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { OrchConfig } from '../config/types.js';
import type { Emission } from '../engine/types.js';
import { isAgoraError } from '../errors.js';
import { EMIT_FILE, MAX_EMIT_BYTES } from '../executors/control-files.js';
import { secretsIn } from '../executors/secret-scan.js';
import { canonicalJson } from '../log/canonical-json.js';
import { validateFragment } from '../plan/fragment.js';
import { parsePlanText } from '../plan/parse.js';
import type { Plan, WorkItem } from '../plan/schema.js';
import { pathInside } from '../path-inside.js';

/**
 * Items emitted at run time: each attempt gets an empty directory of its own, `$AGORA_EMIT`, outside its
 * workspace and the repository (so nothing written there is part of its patch). After the worker
 * succeeded, `items.json` there (if it wrote one) is read and validated as a plan fragment; the engine
 * then decides, against the run's state, whether its items may join (src/engine/emission.ts).
 */

/** `<work dir>/emit/<run>/<item>.<attempt>/`: the ids are validated, and proven here to stay in place. */
export function emitDir(workDir: string, runId: string, itemId: string, attempt: number): string {
  return pathInside(join(workDir, 'emit'), [runId, `${itemId}.${attempt}`], 'run id and item id');
}

/** A fresh, empty directory for the attempt (whatever an earlier process left there goes). */
export async function prepareEmitDir(dir: string): Promise<void> {
  // Usually absent: one call, no round trip through the thread pool. What a crashed attempt of the same
  // number left there (its worker chose how much) is removed asynchronously.
  if (lstatSync(dir, { throwIfNoEntry: false }) !== undefined) await rm(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export type EmitRead = { ok: true; emission?: Emission } | { ok: false; reason: string };

/** sha256 (hex) of an emitted item's canonical JSON: what the audit's `emit` entry names it by. */
export function emittedItemDigest(item: WorkItem): string {
  return createHash('sha256').update(canonicalJson(item)).digest('hex');
}

/** How refusals name an attempt's emitted file. */
export function emitFileLabel(itemId: string, attempt: number): string {
  return `$AGORA_EMIT/${EMIT_FILE} of item ${itemId} attempt ${attempt}`;
}

/**
 * The text of `items.json` in the emit directory `dir` (none when the worker wrote none), or why it
 * cannot be kept: not a regular file, over the size limit, or holding a secret's value. Emitted items
 * are stored in the run's state commits, pushed and audited, where redaction cannot reach; so this runs
 * wherever the values are known (on an `actions` runner, before anything is pushed).
 */
export async function readEmitFile(
  dir: string,
  file: string,
  secrets: Readonly<Record<string, string>>,
): Promise<{ ok: true; text?: string } | { ok: false; reason: string }> {
  const path = join(dir, EMIT_FILE);
  const stat = await lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
  if (!stat) return { ok: true };
  if (!stat.isFile()) return { ok: false, reason: `${file} is not a regular file (a link or a directory): write the fragment itself there` };
  if (stat.size > MAX_EMIT_BYTES)
    return { ok: false, reason: `${file} holds ${stat.size} bytes, over the limit of ${MAX_EMIT_BYTES}: emit fewer or smaller items` };
  const text = await readFile(path, 'utf8');
  const leaked = secretsIn(text, secrets);
  if (leaked.length > 0) {
    return {
      ok: false,
      reason: `${file} holds the value of secret${leaked.length === 1 ? '' : 's'} ${leaked.join(', ')}, so nothing of it was kept: emitted items are stored and audited; name the secrets an emitted item needs in its inputs.secrets instead`,
    };
  }
  return { ok: true, text };
}

/**
 * What the attempt emitted: nothing (no items.json), the validated fragment, or why it is refused. A
 * refusal names the file, the JSON path and the fix; the emitter then fails and nothing joins.
 */
export async function readEmission(
  dir: string,
  plan: Plan,
  item: WorkItem,
  attempt: number,
  config: OrchConfig,
  secrets: Readonly<Record<string, string>> = {},
): Promise<EmitRead> {
  const file = emitFileLabel(item.id, attempt);
  const read = await readEmitFile(dir, file, secrets);
  if (!read.ok) return read;
  if (read.text === undefined) return { ok: true };
  const text = read.text;
  let raw: unknown;
  try {
    raw = parsePlanText(text, file);
  } catch (e) {
    if (!isAgoraError(e)) throw e;
    return { ok: false, reason: e.message + (e.hint ? ` (${e.hint})` : '') };
  }
  const result = validateFragment(raw, plan, item, config);
  if (!result.ok) {
    const listed = result.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
    const count = `${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}`;
    return { ok: false, reason: `${file}: ${count}: ${listed} (fix each at its JSON path; docs/plan.md, "Items emitted at run time")` };
  }
  if (result.items.length === 0) return { ok: true };
  return { ok: true, emission: { file, items: result.items.map((i) => ({ item: i, digest: emittedItemDigest(i) })) } };
}
