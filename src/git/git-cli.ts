/**
 * The one way Agora runs the `git` CLI (issue 11). Every git child process starts here, so what holds
 * for one command holds for all of them:
 *
 * - a hermetic environment: none of the parent's `GIT_*` variables, no system or global config
 *   (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`), no prompts, no replace objects
 *   (`GIT_NO_REPLACE_OBJECTS=1`), `LC_ALL=C`;
 * - nothing the repository's config (or a file it includes) names is executed: hooks, fsmonitor, pagers,
 *   credential helpers, askpass, ssh and proxy commands, alternate-refs commands and transports other
 *   than http(s) are overridden on the command line (which outranks every config file), and every
 *   `filter.<driver>` the config defines is emptied and made optional before the command runs (a
 *   `.gitattributes` in a tree names a driver; only config can give it a command);
 * - secrets (a token, its encoded header) are passed through the environment, never in arguments, and
 *   scrubbed from everything an error carries;
 * - a failure is a {@link GitCommandError} (an AgoraError, code `git-failed`) naming the command, where it
 *   ran and git's stderr.
 *
 * Forking a large Node process costs milliseconds on the event loop, so a sequence of steps runs in one
 * `/bin/sh` (stopping at the first failure); the arguments reach git as single-quoted words.
 */
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { devNull } from 'node:os';
import { join } from 'node:path';
import { AgoraError, errorMessage } from '../errors.js';
import { runInShell, shellQuote } from './git-shell.js';
import { flushWaitingObjects } from './object-database.js';

/** How git is run: which repository, which work tree, and what the caller adds. */
export interface GitInvocation {
  /** `--git-dir` (absolute). Without it git discovers the repository from `cwd`. */
  gitDir?: string;
  /** `--work-tree` (absolute). */
  workTree?: string;
  /** Where the command runs (default: the process's current directory). */
  cwd?: string;
  /** More `-c key=value` settings; fixed by the caller, never built from untrusted input. */
  config?: readonly string[];
  /** More environment variables (e.g. `GIT_INDEX_FILE`, author and committer). */
  env?: Readonly<Record<string, string>>;
  /** Settings carrying secrets: passed as GIT_CONFIG_KEY_n/VALUE_n, so they never appear in `ps`. */
  secretConfig?: ReadonlyArray<readonly [key: string, value: string]>;
  /** Strings to scrub from errors (besides each secretConfig value). */
  secrets?: readonly string[];
  /** What the user can do when the command fails (the error's hint). */
  hint?: string;
  /**
   * Run in one of the process's long-lived shells (git-shell.ts) instead of a new `/bin/sh` forked from
   * Node: for sequences run per item (workspaces). Ignored when secrets are involved.
   */
  persistentShell?: boolean;
}

/** One step of a sequence: git's arguments, or a fixed shell command (never built from input). */
export type GitStep = readonly string[] | { readonly shell: string };

/** A git command failed: the command (secrets scrubbed), where, git's exit code, stderr and stdout. */
export class GitCommandError extends AgoraError {
  override readonly name: string = 'GitCommandError';
  constructor(
    /** The failing command line as a person would type it (`git merge --ff-only …`). */
    readonly command: string,
    /** The directory it ran in. */
    readonly where: string,
    readonly exitStatus: number | null,
    readonly stderr: string,
    readonly stdout: string,
    hint?: string,
  ) {
    super('git-failed', `${command} failed${exitStatus === null ? '' : ` (exit ${exitStatus})`} in ${where}: ${stderr.trim() || 'no output'}`, hint);
  }
}

/**
 * Settings that outrank the repository's config and keep it from executing anything. `-c` is the
 * highest-precedence scope, so a `.git/config` (or an included file) cannot undo them. Not listed, and
 * why: `uploadpack.packObjectsHook` is honoured only from system, global or command-line config, which
 * the runner leaves empty; `diff.external` and `diff.<driver>.textconv` apply only to diff and log
 * output, which Agora never asks git for (the demo's `log --stat` passes --no-ext-diff --no-textconv);
 * `merge.<driver>.driver` runs only for a true merge, and `--apply` allows a fast-forward only.
 */
export const SAFE_CONFIG: readonly string[] = [
  `core.hooksPath=${devNull}`, // no hook runs: not .git/hooks, not a hooksPath the config names
  'core.fsmonitor=false',
  'core.useReplaceRefs=false',
  'core.pager=cat',
  `core.attributesFile=${devNull}`,
  'core.askPass=',
  'credential.helper=', // empty resets the list, including URL-scoped helpers read before it
  'core.sshCommand=false',
  'core.gitProxy=false',
  'core.alternateRefsCommand=true', // prints no alternate refs
  'protocol.allow=never', // no ssh, ext::, file:// or remote helpers; only the transports below
  'protocol.https.allow=always',
  'protocol.http.allow=always',
  'submodule.recurse=false',
  'fetch.recurseSubmodules=false',
  'commit.gpgSign=false',
  'tag.gpgSign=false',
  'push.gpgSign=false',
  'merge.verifySignatures=false', // checking a signature runs gpg.program, which the config names
  'gc.auto=0',
  'maintenance.auto=false',
];

/**
 * Before the steps: empties the commands of every filter driver the config defines (and makes it
 * optional), so checkout, add and merge copy content as it is. Config names never contain a newline, so
 * they are read one per line; the values go through GIT_CONFIG_KEY_n/VALUE_n, which keep any character.
 * It costs one more git exec (no Node spawn), so it is left out where {@link mayDefineFilters} proves
 * the repository's config defines none.
 */
const NEUTRALISE_FILTERS = [
  'agora_n=${GIT_CONFIG_COUNT:-0}',
  "IFS='\n'",
  'set -f',
  'for agora_key in $(git "$@" config --name-only --get-regexp \'^filter\\.\' 2>/dev/null || :); do',
  '  agora_driver=${agora_key#filter.}; agora_driver=${agora_driver%.*}',
  '  for agora_var in clean= smudge= process= required=false; do',
  '    export "GIT_CONFIG_KEY_$agora_n=filter.$agora_driver.${agora_var%%=*}" "GIT_CONFIG_VALUE_$agora_n=${agora_var#*=}"',
  '    agora_n=$((agora_n + 1))',
  '  done',
  'done',
  'export GIT_CONFIG_COUNT=$agora_n',
  'unset IFS agora_n agora_key agora_driver agora_var',
  'set +f',
].join('\n');

/** The environment of every git child: the parent's minus GIT_* and SSH_ASKPASS, then the hermetic settings. */
export function gitEnvironment(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('GIT_') && key !== 'SSH_ASKPASS' && value !== undefined) env[key] = value;
  }
  return {
    ...env,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: devNull,
    GIT_TERMINAL_PROMPT: '0',
    GIT_NO_REPLACE_OBJECTS: '1',
    GIT_ATTR_NOSYSTEM: '1',
    LC_ALL: 'C',
    ...extra,
  };
}

/**
 * False only when the repository's config files exist as plain files that mention neither a filter nor
 * an include (which could bring one in from elsewhere), and the git dir is not a linked worktree's
 * (whose config lives in the common dir). Without a git dir (git discovers it) the answer is true.
 */
async function mayDefineFilters(gitDir: string | undefined): Promise<boolean> {
  if (!gitDir) return true;
  if (
    await stat(join(gitDir, 'commondir')).then(
      () => true,
      () => false,
    )
  )
    return true;
  for (const name of ['config', 'config.worktree']) {
    const text = await readFile(join(gitDir, name), 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? '' : null));
    if (text === null || /filter|include/i.test(text)) return true;
  }
  return false;
}

/** Runs one git command and returns its stdout. */
export function runGit(args: readonly string[], how: GitInvocation = {}): Promise<string> {
  return runGitSequence([args], how);
}

/**
 * Runs the steps one after another in one shell, stopping at the first failure, and returns their
 * stdout (callers make every step but the last quiet).
 */
export async function runGitSequence(steps: readonly GitStep[], how: GitInvocation = {}): Promise<string> {
  // Objects written in-process wait in memory for the next ref update: git must see them too.
  await flushWaitingObjects(how.gitDir);
  const preamble = (await mayDefineFilters(how.gitDir)) ? [NEUTRALISE_FILTERS] : [];
  const common = [...SAFE_CONFIG, ...(how.config ?? [])].flatMap((kv) => ['-c', kv]);
  if (how.gitDir) common.push(`--git-dir=${how.gitDir}`);
  if (how.workTree) common.push(`--work-tree=${how.workTree}`);
  const line = (step: GitStep) => (isShell(step) ? step.shell : `git "$@" ${step.map(shellQuote).join(' ')}`);
  const script = ['set -e', ...preamble, ...steps.map(line)].join('\n');
  const secretEnv: Record<string, string> = {};
  const secretConfig = how.secretConfig ?? [];
  secretConfig.forEach(([key, value], i) => {
    secretEnv[`GIT_CONFIG_KEY_${i}`] = key;
    secretEnv[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  if (secretConfig.length > 0) secretEnv.GIT_CONFIG_COUNT = String(secretConfig.length);
  const secrets = [...(how.secrets ?? []), ...secretConfig.map(([, value]) => value)].filter((s) => s.length > 0);
  const scrub = (text: string) => secrets.reduce((out, secret) => out.split(secret).join('***'), text);
  const where = how.workTree ?? how.cwd ?? how.gitDir ?? process.cwd();
  const failure = (status: number | null, stderr: string, stdout: string, fallback: string) => {
    const command = steps.map((step) => (isShell(step) ? step.shell : ['git', ...step].join(' '))).join(' && ');
    const detail = stderr.trim() || (status === null ? fallback : '');
    return new GitCommandError(scrub(command), where, status, scrub(detail), scrub(stdout), how.hint);
  };
  if (how.persistentShell && secrets.length === 0 && secretConfig.length === 0) {
    const env = gitEnvironment(how.env);
    const result = await runInShell({ script, args: common, cwd: how.cwd ?? process.cwd(), env }).catch((e: unknown) => {
      throw failure(null, '', '', errorMessage(e));
    });
    if (result.status === 0) return result.stdout;
    throw failure(result.status, result.stderr, result.stdout, '');
  }
  return new Promise((done, fail) => {
    execFile(
      '/bin/sh',
      ['-c', script, 'agora-git', ...common],
      { ...(how.cwd ? { cwd: how.cwd } : {}), env: gitEnvironment({ ...how.env, ...secretEnv }), maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return done(String(stdout));
        fail(failure(typeof err.code === 'number' ? err.code : null, String(stderr), String(stdout), err.message));
      },
    );
  });
}

function isShell(step: GitStep): step is { readonly shell: string } {
  return !Array.isArray(step);
}

let cliProbe: Promise<boolean> | null = null;

/** Whether the `git` CLI can be used (probed once per process; AGORA_GIT_CLI=0 says no). */
export function gitCliAvailable(): Promise<boolean> {
  if (process.env.AGORA_GIT_CLI === '0') return Promise.resolve(false);
  cliProbe ??= gitCliVersion().then((v) => v !== null);
  return cliProbe;
}

/**
 * The first line of `git --version` as found on this process's PATH, or null when no working `git` is
 * there. Not cached and blind to AGORA_GIT_CLI: for callers that cannot do without git.
 */
export function gitCliVersion(): Promise<string | null> {
  return new Promise((done) => {
    execFile('git', ['--version'], { env: gitEnvironment(), timeout: 10_000 }, (err, stdout) =>
      done(!err && stdout.startsWith('git version') ? stdout.trim().split('\n')[0]! : null),
    );
  });
}
