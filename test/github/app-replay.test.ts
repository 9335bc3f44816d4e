import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trailers } from '../../src/git/trailers.js';
import { until, commandPlan, checkRuns, startAppWorld, type AppWorld } from './app-world.js';
import { scaled } from '../support/eventually.js';

/** A plan whose items write their files only once `marker` exists, so the test can push while they run. */
function gatedPlan(id: string, marker: string) {
  const wait = `while [ ! -e ${marker} ]; do sleep 0.1; done`;
  return commandPlan(id, [
    { id: 'write-a', run: `${wait}; echo from-agora > a.txt`, locks: ['a.txt'] },
    { id: 'write-lib', run: `${wait}; mkdir -p lib && echo helper > lib/help.txt`, locks: ['lib/'] },
  ]);
}

/** People push to the PR branch while the run works: the patches are replayed on top, or the clash is named. */
describe('a branch that moves during the run', () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld({ sign: true });
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it("gets the patches replayed onto its new head; the gate is green and names the people's commit as not audited", async () => {
    const marker = join(tmpdir(), `agora-replay-${process.pid}-1`);
    const planSha = await w.sim.push(w.fullName, { branch: 'moving', files: { 'plan.json': gatedPlan('moving', marker) }, message: 'Gated plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'moving', base: 'main', title: 'Moving' });
    await until('the items to run', async () => (await checkRuns(w, planSha)).get('agora / write-a')?.status === 'in_progress', w);
    const human = await w.sim.push(w.fullName, {
      branch: 'moving',
      files: { 'README.md': '# demo, edited by a person\n' },
      message: 'Fix the README',
      author: 'octo',
    });
    await writeFile(marker, '');
    await until('the run to end', async () => (await checkRuns(w, planSha)).get('agora')?.status === 'completed', w);
    await w.quiesce();
    await rm(marker, { force: true });

    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
    expect(commits.slice(0, 2).map((c) => c.sha)).toEqual([planSha, human]);
    const patches = commits.slice(2);
    expect(patches.map((c) => trailers(c.commit.message).get('Agora-Item')).sort()).toEqual(['write-a', 'write-lib']);
    const head = commits.at(-1)!.sha;
    const read = async (path: string) =>
      Buffer.from(
        ((await w.octokit.rest.repos.getContent({ owner: w.owner, repo: w.repo, path, ref: head })).data as { content: string }).content,
        'base64',
      ).toString();
    expect(await read('a.txt')).toBe('from-agora\n');
    expect(await read('lib/help.txt')).toBe('helper\n');
    expect(await read('README.md')).toBe('# demo, edited by a person\n');

    const run = (await checkRuns(w, planSha)).get('agora')!;
    expect(run).toMatchObject({ conclusion: 'success' });
    expect(run.output.summary).toContain(`replayed by tree surgery onto its head ${human.slice(0, 12)}`);
    const gate = (await checkRuns(w, head)).get('agora / audit')!;
    expect(gate).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(gate.output.summary).toContain('not audited');
    expect(gate.output.summary).toContain(`${human.slice(0, 12)} Fix the README`);
    expect(w.errors).toEqual([]);
  });

  it('keeps the patches at their ref when a person changed a patched path, naming the path, the item and the commit; the gate is red', async () => {
    const marker = join(tmpdir(), `agora-replay-${process.pid}-2`);
    const planSha = await w.sim.push(w.fullName, { branch: 'clash', files: { 'plan.json': gatedPlan('clash', marker) }, message: 'Gated plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'clash', base: 'main', title: 'Clash' });
    await until('the items to run', async () => (await checkRuns(w, planSha)).get('agora / write-a')?.status === 'in_progress', w);
    const human = await w.sim.push(w.fullName, { branch: 'clash', files: { 'a.txt': 'from a person\n' }, message: 'Write a.txt by hand', author: 'octo' });
    await writeFile(marker, '');
    await until('the run to end', async () => (await checkRuns(w, planSha)).get('agora')?.status === 'completed', w);
    await w.quiesce();
    await rm(marker, { force: true });

    const branchHead = (await w.octokit.rest.pulls.get({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data.head.sha;
    expect(branchHead).toBe(human); // nothing was pushed
    const run = (await checkRuns(w, planSha)).get('agora')!;
    expect(run.output.summary).toContain('People changed paths the patches change');
    expect(run.output.summary).toContain(`\`a.txt\` (item write-a), changed by ${human.slice(0, 12)}`);
    expect(run.output.summary).not.toContain('lib/help.txt');
    expect(run.output.summary).toContain(`refs/agora/integration/clash-${planSha.slice(0, 12)}`);
    const gate = (await checkRuns(w, human)).get('agora / audit')!;
    expect(gate).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(gate.output.summary).toContain(`commit ${human.slice(0, 12)} ("Write a.txt by hand") is not an audited patch`);
    expect(gate.output.summary).toMatch(/the patch of item write-a \([0-9a-f]{12}\) is not on the branch/);
    expect(w.errors).toEqual([]);
  });
});
