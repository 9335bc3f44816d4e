/**
 * `agora init <dir> --template <name>`: a working project from one of the templates shipped in
 * `templates/` (a plan, its config, its workers, a README and a fixture), in a new git repository whose
 * first commit holds them, so that `agora test` passes and `agora orch run plan.json` runs at once.
 * Nothing is overwritten: a directory holding anything but an empty `.git` is refused before a byte is written.
 */
import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgoraError } from '../errors.js';
import { runGit } from '../git/git-cli.js';
import { describeDirectoryProblem, makeDirectory, missingDirectories, type RefuseDirectory } from '../make-directory.js';

/** The templates, in the order `--help` lists them. */
export const TEMPLATES = ['fan-out', 'pipeline', 'map-reduce', 'agent'] as const;
export type TemplateName = (typeof TEMPLATES)[number];

/** `templates/` beside `src/` and `dist/` (this file is `src/init/init.ts` or `dist/init/init.js`). */
export const TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));

export interface InitResult {
  /** The files written, relative to the directory, sorted. */
  files: string[];
  /** The commit holding them. */
  commit: string;
}

export function isTemplateName(name: string): name is TemplateName {
  return (TEMPLATES as readonly string[]).includes(name);
}

export async function initProject(dir: string, template: string, now: number = Date.now()): Promise<InitResult> {
  if (!isTemplateName(template)) {
    throw new AgoraError('template-unknown', `there is no template "${template}"`, `use one of: ${TEMPLATES.join(', ')}`);
  }
  const source = join(TEMPLATES_DIR, template);
  const files = (await walk(source, source)).sort();
  await checkTarget(dir);
  await makeDirectory(dir, refuseDir(dir));
  for (const file of files) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await copyFile(join(source, file), join(dir, file));
  }
  const when = `${Math.floor(now / 1000)} +0000`;
  const env = {
    GIT_AUTHOR_NAME: 'agora init',
    GIT_AUTHOR_EMAIL: 'agora@localhost',
    GIT_COMMITTER_NAME: 'agora init',
    GIT_COMMITTER_EMAIL: 'agora@localhost',
    GIT_AUTHOR_DATE: when,
    GIT_COMMITTER_DATE: when,
  };
  await runGit(['init', '--quiet', '--initial-branch=main'], { cwd: dir });
  await runGit(['add', '--', ...files], { cwd: dir });
  await runGit(['commit', '--quiet', '--no-verify', '-m', `agora init: the ${template} template`], { cwd: dir, env });
  const commit = (await runGit(['rev-parse', 'HEAD'], { cwd: dir })).trim();
  return { files, commit };
}

/** A new directory, or an empty one (a `.git` with no commit yet is fine): never one whose files could be overwritten. */
async function checkTarget(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => null);
  if (info === null) {
    await missingDirectories(dir, refuseDir(dir)); // a path under a file, say: refused before a byte is written
    return;
  }
  if (!info.isDirectory()) throw new AgoraError('init-refused', `${dir} exists and is not a directory`, 'name a new or empty directory');
  const entries = (await readdir(dir)).filter((e) => e !== '.git');
  if (entries.length > 0) {
    const shown = entries.sort().slice(0, 5).join(', ') + (entries.length > 5 ? `, and ${entries.length - 5} more` : '');
    throw new AgoraError(
      'init-refused',
      `${dir} is not empty (${shown}); agora init writes only into a new or empty directory, so it overwrites nothing`,
      'name a new directory, or move those files away',
    );
  }
  if ((await stat(join(dir, '.git')).catch(() => null)) !== null) {
    const head = await runGit(['rev-parse', '--verify', '--quiet', 'HEAD'], { cwd: dir }).catch(() => '');
    if (head.trim() !== '') throw new AgoraError('init-refused', `${dir} is a git repository with commits already`, 'name a new or empty directory');
  }
}

/** The refusal of a directory that cannot be made, naming the path at fault. */
function refuseDir(dir: string): RefuseDirectory {
  return (p) =>
    new AgoraError('init-refused', `${dir} ${describeDirectoryProblem(dir, p)}`, 'name a new or empty directory where one can be created', { cause: p.cause });
}

async function walk(root: string, at: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(at, { withFileTypes: true })) {
    const path = join(at, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(root, path)));
    else if (entry.isFile()) out.push(relative(root, path));
  }
  return out;
}
