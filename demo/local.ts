import { cpSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/program.js';
import { runGit } from '../src/git/git-cli.js';
import { openLocalStore } from '../src/git/local-store.js';
import { RunRefs } from '../src/runs/refs.js';
import { readRun } from '../src/runs/state-store.js';

/**
 * `npm run demo [-- <example>]`: copies an example (default offload-fanout) into a fresh git repository
 * in a temp dir, runs its plan end to end with `agora orch run`, and shows where everything landed.
 */

const examplesDir = resolve(fileURLToPath(new URL('../examples/', import.meta.url)));
const name = process.argv[2] ?? 'offload-fanout';
const example = join(examplesDir, name);
if (!existsSync(join(example, 'plan.json'))) {
  const known = readdirSync(examplesDir).filter((d) => existsSync(join(examplesDir, d, 'plan.json')));
  process.stderr.write(`demo: no example "${name}"; examples: ${known.join(', ')}\n`);
  process.exit(2);
}

const repo = mkdtempSync(join(tmpdir(), `agora-demo-${name}-`));
cpSync(example, repo, { recursive: true });
const git = (...args: string[]) =>
  runGit(args, {
    cwd: repo,
    env: { GIT_AUTHOR_NAME: 'Demo', GIT_AUTHOR_EMAIL: 'demo@example.invalid', GIT_COMMITTER_NAME: 'Demo', GIT_COMMITTER_EMAIL: 'demo@example.invalid' },
  });
await git('init', '--quiet', '--initial-branch=main');
await git('add', '--all');
await git('commit', '--quiet', '--message', `${name}: the example as shipped`);

process.stderr.write(`demo: ${name} in a fresh repository at ${repo}\n\n`);
const code = await main(['node', 'agora', 'orch', 'run', join(repo, 'plan.json'), '--repo', repo, '--config', join(repo, 'agora.config.mjs')]);

const runs = (await git('for-each-ref', '--format=%(refname)', 'refs/agora/runs/')).trim().split('\n').filter(Boolean);
const runRef = runs[runs.length - 1];
if (runRef) {
  const runId = runRef.slice('refs/agora/runs/'.length);
  const run = await readRun(await openLocalStore(repo), new RunRefs(), runId);
  const items = Object.values(run?.state.items ?? {});
  process.stdout.write(`\nItems of ${runId}:\n`);
  for (const i of items) {
    process.stdout.write(`  ${i.id.padEnd(20)} ${i.status.padEnd(9)} attempts ${i.attempts}  ${i.resultRef ?? i.reason ?? ''}\n`);
  }
  process.stdout.write(`\nIntegration (one commit per item, on top of the base):\n`);
  process.stdout.write(
    await git(
      'log',
      '--no-ext-diff',
      '--no-textconv',
      '--stat',
      '--format=%h %s%n%(trailers:only,unfold,separator=%x0a)',
      `main..refs/agora/integration/${runId}`,
    ),
  );
  process.stdout.write(`\nWhere the state lives (in ${repo}):\n`);
  process.stdout.write(await git('for-each-ref', '--format=  %(refname)  %(objectname:short)', 'refs/agora/'));
  process.stdout.write(`\nTry: git -C ${repo} log --oneline refs/agora/runs/${runId}\n`);
}
process.exit(code);
