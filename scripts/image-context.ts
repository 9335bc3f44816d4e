/**
 * `npm run image:context -- [--out DIR] [--host-git]`: prepares the build context of the App's container
 * image (the repository's `Dockerfile`) on the host, so that building the image needs neither a registry
 * for npm packages nor a package manager in the base image:
 *
 *   DIR/Dockerfile      the repository's Dockerfile
 *   DIR/app/            dist/ compiled afresh, package.json, package-lock.json, app.yml, and the
 *                       production node_modules (`npm ci --omit=dev --ignore-scripts --prefer-offline`,
 *                       which needs no network once the npm cache holds the lockfile's packages)
 *   DIR/cache/          an empty directory, copied in as the cache dir owned by the app's user
 *   DIR/git-root/       empty, or with --host-git this host's `git` (the binary, the helpers an http(s)
 *                       fetch and push need, their shared libraries and the templates), laid out from
 *                       `/`, for `--build-arg GIT=host` on a base built from this host's files
 *
 * Then: `docker build -t agora-app DIR` (or `podman build`). See docs/github-app.md.
 */
import { execFile } from 'node:child_process';
import { copyFile, cp, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgoraError } from '../src/errors.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

export interface ImageContextOptions {
  /** The directory to (re)create. */
  out: string;
  /** Copy this host's git into `git-root/` (for `--build-arg GIT=host`). */
  hostGit?: boolean;
}

/** Builds the context at `out` (emptied first) and returns its absolute path. */
export async function prepareImageContext(options: ImageContextOptions): Promise<string> {
  const out = resolve(options.out);
  if (out === ROOT || ROOT.startsWith(`${out}/`)) {
    throw new AgoraError('image-context', `--out ${out} would empty the repository`, 'name a new directory for the build context, e.g. .tmp/image');
  }
  await rm(out, { recursive: true, force: true });
  const app = join(out, 'app');
  await mkdir(app, { recursive: true });
  await mkdir(join(out, 'cache'));
  await mkdir(join(out, 'git-root'));
  await copyFile(join(ROOT, 'Dockerfile'), join(out, 'Dockerfile'));
  for (const f of ['package.json', 'package-lock.json', 'app.yml']) await copyFile(join(ROOT, f), join(app, f));
  await run(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(app, 'dist')],
    ROOT,
    'compiling dist/',
    'fix the type errors it names (npx tsc -p tsconfig.build.json)',
  );
  await run(
    npmCommand(),
    ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'],
    app,
    'installing the production node_modules',
    'without a network, run `npm ci` once where one is reachable so the npm cache holds every package of package-lock.json',
  );
  if (options.hostGit) await copyHostGit(join(out, 'git-root'));
  return out;
}

function npmCommand(): string {
  return process.platform === 'win32' ? 'npm.cmd' : 'npm';
}

/** Runs a build step; a failure is an AgoraError naming the step, its output and the fix. */
function run(cmd: string, args: string[], cwd: string, step: string, hint: string): Promise<string> {
  return new Promise((done, fail) => {
    execFile(cmd, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return done(String(stdout));
      const said = `${String(stdout)}${String(stderr)}`.trim().split('\n').slice(-20).join('\n');
      fail(new AgoraError('image-context', `${step} failed (${cmd} ${args.join(' ')} in ${cwd}): ${said || err.message}`, hint));
    });
  });
}

/**
 * This host's git, enough for what the App runs (init, config, fetch and push over http(s), read-tree,
 * write-tree, checkout-index, ls-files): `git`, its `git-remote-http(s)` helpers, every shared library
 * `ldd` lists for them, and the templates `git init` copies. Libraries are this host's, so the result
 * suits a base image made from this host's files (the test's `localhost/agora-node:test`), not an
 * arbitrary distribution.
 */
async function copyHostGit(root: string): Promise<void> {
  const hint = 'install git on the host, or build with the default --build-arg GIT=apt on a Debian-based image';
  const gitPath = (await run('/bin/sh', ['-c', 'command -v git'], ROOT, 'finding git on the host', hint)).trim();
  const execPath = (await run(gitPath, ['--exec-path'], ROOT, 'asking git for its exec path', hint)).trim();
  const binaries = [gitPath, join(execPath, 'git'), join(execPath, 'git-remote-http'), join(execPath, 'git-remote-https')];
  const files = new Set<string>();
  for (const bin of binaries) {
    if (!(await exists(bin))) continue;
    files.add(bin);
    const listed = await run('ldd', [bin], ROOT, `listing the libraries of ${bin}`, hint);
    for (const m of listed.matchAll(/(\/[^\s)]+)/g)) files.add(m[1]!);
  }
  for (const file of files) {
    await mkdir(join(root, dirname(file)), { recursive: true });
    await copyFile(file, join(root, file)); // follows symlinks: the image gets the library itself
  }
  const templates = join(dirname(dirname(execPath)), 'share/git-core/templates');
  const templatesAt = (await exists(templates)) ? templates : '/usr/share/git-core/templates';
  if (await exists(templatesAt)) await cp(templatesAt, join(root, templatesAt), { recursive: true, dereference: true });
}

function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function main(argv: string[]): Promise<void> {
  let out = join(ROOT, '.tmp/image');
  let hostGit = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--out' && argv[i + 1]) out = argv[(i += 1)]!;
    else if (arg === '--host-git') hostGit = true;
    else throw new AgoraError('image-context', `unknown argument ${arg}`, 'usage: npm run image:context -- [--out DIR] [--host-git]');
  }
  const dir = await prepareImageContext({ out, hostGit });
  process.stdout.write(`${dir}\nbuild it with: docker build -t agora-app ${dir}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(
      e instanceof AgoraError ? `image:context: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}` : `${String((e as Error).stack ?? e)}\n`,
    );
    process.exitCode = 1;
  });
}
