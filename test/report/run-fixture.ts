import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { agora, git, makeRepo, tempDir } from '../support/repo.js';

/**
 * A real finished run for the report: `build` and `flaky` (which fails its first attempt and passes its
 * second) edit files under `src/`, `combine` wants the lock `src` and so waits for both, `broken` fails
 * with a log and a reason holding markup, and `after-broken` is skipped because of it. `build`'s log
 * (101 lines) and patch (402 added lines) are longer than the report shows.
 */

export const HOSTILE = '</script><img src=x onerror=alert(1)>';
/** Printed by \`build\`; the config declares REPORT_SECRET, which is set (to this) only when the report is made. */
export const LATER_SECRET = 'later-secret-4f9c1e';

export interface ReportRun {
  repo: string;
  runId: string;
}

/** `timeoutMs`: the run's bound (tests pass a scaled one; a script, outside vitest, its own). */
export async function reportRun(timeoutMs: number): Promise<ReportRun> {
  const mark = join(tempDir('agora-report-mark-'), 'flaky-ran-once');
  const plan = {
    id: 'report',
    queue: 'default',
    items: [
      {
        id: 'build',
        executor: 'command',
        inputs: { run: `printf "alpha\\n<b>bold</b>\\n" > src/a.txt; seq 1 400 >> src/a.txt; seq 1 100; echo ${LATER_SECRET}; echo built a.txt` },
        depends_on: [],
        resourceLocks: ['src/a.txt'],
      },
      {
        id: 'flaky',
        executor: 'command',
        inputs: {
          run: 'if [ -e "$MARK" ]; then echo beta > src/b.txt; echo second try passes; else touch "$MARK"; echo first try fails; exit 1; fi',
          env: { MARK: mark },
        },
        depends_on: [],
        resourceLocks: ['src/b.txt'],
        retry: { maxAttempts: 2, backoff: { initialSeconds: 0 } },
      },
      { id: 'combine', executor: 'command', inputs: { run: 'cat src/a.txt src/b.txt > src/all.txt' }, depends_on: [], resourceLocks: ['src'] },
      { id: 'broken', executor: 'command', inputs: { run: `echo '${HOSTILE}'; echo '${HOSTILE}' >&2; exit 3` }, depends_on: [], resourceLocks: [] },
      { id: 'after-broken', executor: 'command', inputs: { run: 'true' }, depends_on: ['broken'], resourceLocks: [] },
    ],
  };
  const repo = makeRepo({
    'src/.keep': '',
    'agora.config.mjs':
      "export const orch = { queues: { default: { concurrency: 3 } }, subagents: { unused: { command: ['true'], secrets: ['REPORT_SECRET'] } } };\n",
  });
  writeFileSync(join(repo, 'plan.json'), JSON.stringify(plan, null, 2));
  git(repo, 'add', 'plan.json');
  git(repo, 'commit', '--quiet', '-m', 'plan');
  const r = await agora(repo, ['orch', 'run', 'plan.json'], {}, timeoutMs);
  if (r.code !== 1) throw new Error(`the report fixture's run should fail (one item fails): exit ${r.code}\n${r.stderr}`);
  return { repo, runId: 'report-1' };
}
