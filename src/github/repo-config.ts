import { parseDocument } from 'yaml';
import { z } from 'zod';
import type { Problem } from '../errors.js';
import type { GitStore, Oid } from '../git/types.js';
import { blobAt } from './plan-commit.js';

/**
 * The repository's own settings for the app, `.github/agora.yml` at the pushed commit. It may say only
 * where the plan is (`plan: ops/plan.json`); what runs, and with which executors and secrets, is the
 * app's configuration (AGORA_CONFIG), never the repository's.
 */

export const REPO_CONFIG_PATH = '.github/agora.yml';

/** The largest `.github/agora.yml` read (it holds one short key): a larger one is refused unread. */
export const MAX_REPO_CONFIG_BYTES = 64 * 1024;

const RepoConfigSchema = z
  .object({
    plan: z
      .string()
      .min(1)
      .refine((p) => p.endsWith('.json'), 'must name a .json file')
      .refine(
        (p) => !p.startsWith('/') && !p.split('/').some((s) => s === '..' || s === '.' || s === ''),
        'must be a relative path inside the repository, without `.` or `..` segments',
      )
      .optional(),
  })
  .strict();

export type RepoConfig =
  | { ok: true; planPath: string; /** Where the plan path came from. */ from: 'repository' | 'app' }
  | { ok: false; problems: Problem[]; text: string; /** The file's blob when it was refused unread (too large); `text` is then empty. */ blob?: Oid };

/** Reads `.github/agora.yml` at `sha`: the plan path it names, else `appPlanPath`; or every problem in it, by path. */
export async function readRepoConfig(store: GitStore & { objectSize(oid: Oid): Promise<number> }, sha: Oid, appPlanPath: string): Promise<RepoConfig> {
  const blob = await blobAt(store, sha, REPO_CONFIG_PATH);
  if (!blob) return { ok: true, planPath: appPlanPath, from: 'app' };
  // The size from the blob's header: a repository cannot make the app load a huge file to parse.
  const bytes = await store.objectSize(blob);
  if (bytes > MAX_REPO_CONFIG_BYTES) {
    return {
      ok: false,
      text: '',
      blob,
      problems: [
        {
          path: REPO_CONFIG_PATH,
          message: `${bytes} bytes is too large (at most ${MAX_REPO_CONFIG_BYTES}); the file may set only \`plan\` (the plan file's path)`,
        },
      ],
    };
  }
  const text = new TextDecoder().decode(await store.readBlob(blob));
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      text,
      problems: doc.errors.map((e) => ({
        path: `${REPO_CONFIG_PATH}${e.linePos?.[0] ? `:${e.linePos[0].line}:${e.linePos[0].col}` : ''}`,
        message: `${e.message.split('\n')[0]}; fix the YAML syntax`,
      })),
    };
  }
  const parsed = RepoConfigSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    return {
      ok: false,
      text,
      problems: parsed.error.issues.map((i) => ({
        path: `${REPO_CONFIG_PATH} $${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`,
        message: i.code === 'unrecognized_keys' ? `${i.message}: the file may set only \`plan\` (the plan file's path)` : i.message,
      })),
    };
  }
  return parsed.data.plan ? { ok: true, planPath: parsed.data.plan, from: 'repository' } : { ok: true, planPath: appPlanPath, from: 'app' };
}
