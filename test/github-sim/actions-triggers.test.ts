/** Which pushes and pull request events create runs: branch and path filters, pull_request types. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorld, type World } from '@agora/github-sim/harness';

const o = { owner: 'octo', repo: 'demo' };
const job = `jobs:
  one:
    runs-on: [self-hosted, nowhere]
    steps:
      - run: echo hi
`;
const WORKFLOWS: Record<string, string> = {
  '.github/workflows/src-only.yml': `on:\n  push:\n    paths: ['src/**', '!src/generated/**']\n${job}`,
  '.github/workflows/not-docs.yml': `on:\n  push:\n    paths-ignore: ['docs/**', '**.md']\n${job}`,
  '.github/workflows/branches.yml': `on:\n  push:\n    branches: ['feat/**', '!feat/skip']\n${job}`,
  '.github/workflows/no-release.yml': `on:\n  push:\n    branches-ignore: ['release/**']\n${job}`,
  '.github/workflows/pr-src.yml': `on:\n  pull_request:\n    paths: ['src/**']\n${job}`,
  '.github/workflows/pr-closed.yml': `on:\n  pull_request:\n    types: [closed]\n${job}`,
};

describe('actions triggers: branch and path filters, pull_request types', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ files: { 'README.md': 'r', 'src/a.txt': 'a', ...WORKFLOWS } });
  });
  afterAll(async () => {
    expect(w.sim.contractViolations).toEqual([]);
    await w.close();
  });

  /** Runs per workflow file name, for the runs whose head is `sha`. */
  const runsFor = async (sha: string): Promise<string[]> => {
    const runs = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs', { ...o, head_sha: sha, per_page: 100 })).data.workflow_runs;
    return runs.map((r) => `${r.path.replace('.github/workflows/', '')}:${r.event}`).sort();
  };

  it('a push touching only ignored paths creates no run; paths and negated paths decide by the last match', async () => {
    const docs = await w.sim.push('octo/demo', { branch: 'main', files: { 'docs/guide.md': 'g', 'NOTES.md': 'n' }, message: 'docs only' });
    expect(await runsFor(docs)).toEqual(['no-release.yml:push']);
    const generated = await w.sim.push('octo/demo', { branch: 'main', files: { 'src/generated/x.ts': 'x' }, message: 'generated only' });
    expect(await runsFor(generated)).toEqual(['no-release.yml:push', 'not-docs.yml:push']);
    const src = await w.sim.push('octo/demo', { branch: 'main', files: { 'src/b.txt': 'b', 'docs/more.md': 'm' }, message: 'source and docs' });
    expect(await runsFor(src)).toEqual(['no-release.yml:push', 'not-docs.yml:push', 'src-only.yml:push']);
  });

  it('branches with a negation and branches-ignore', async () => {
    const feat = await w.sim.push('octo/demo', { branch: 'feat/one', files: { 'x.txt': '1' }, message: 'feat' });
    expect(await runsFor(feat)).toEqual(['branches.yml:push', 'no-release.yml:push', 'not-docs.yml:push']);
    const skip = await w.sim.push('octo/demo', { branch: 'feat/skip', files: { 'y.txt': '1' }, message: 'skip' });
    expect(await runsFor(skip)).toEqual(['no-release.yml:push', 'not-docs.yml:push']);
    const release = await w.sim.push('octo/demo', { branch: 'release/1.0', files: { 'z.txt': '1' }, message: 'release' });
    expect(await runsFor(release)).toEqual(['not-docs.yml:push']);
  });

  it('pull_request: paths over the whole pull request, the default types, and a workflow that asks for closed', async () => {
    const docsHead = await w.sim.push('octo/demo', { branch: 'pr-docs', files: { 'docs/pr.md': 'd' }, message: 'pr docs' });
    const docsPr = await w.sim.openPullRequest('octo/demo', { head: 'pr-docs', base: 'main', title: 'docs' });
    const srcHead = await w.sim.push('octo/demo', { branch: 'pr-src', files: { 'src/pr.txt': 's' }, message: 'pr src' });
    await w.sim.openPullRequest('octo/demo', { head: 'pr-src', base: 'main', title: 'src' });
    expect((await runsFor(docsHead)).filter((r) => r.endsWith(':pull_request'))).toEqual([]);
    expect((await runsFor(srcHead)).filter((r) => r.endsWith(':pull_request'))).toEqual(['pr-src.yml:pull_request']);
    // A later commit that touches only docs still runs: the filter sees every file of the pull request.
    const srcNext = await w.sim.push('octo/demo', { branch: 'pr-src', files: { 'docs/later.md': 'l' }, message: 'docs on the src pr' });
    expect((await runsFor(srcNext)).filter((r) => r.endsWith(':pull_request'))).toEqual(['pr-src.yml:pull_request']);
    // Closing is not a default type; only the workflow that names `closed` runs.
    await w.sim.setPullRequestState('octo/demo', docsPr.number, 'closed');
    expect((await runsFor(docsHead)).filter((r) => r.endsWith(':pull_request'))).toEqual(['pr-closed.yml:pull_request']);
  });
});
