import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RERUN_ACTION } from '../../src/github/agora-github.js';
import { trailers } from '../../src/git/trailers.js';
import { until, commandPlan, checkRuns, startAppWorld, type AppWorld, outcomesOf } from './app-world.js';
import { scaled } from '../support/eventually.js';

describe('the repository names its plan in .github/agora.yml', () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld({ agoraOptions: { maxItems: 3 } });
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it('runs the plan at the path the file names, and not a plan.json elsewhere', async () => {
    const sha = await w.sim.push(w.fullName, {
      branch: 'nightly',
      files: {
        '.github/agora.yml': '# where the plan lives\nplan: ops/nightly.json\n',
        'ops/nightly.json': commandPlan('nightly', [{ id: 'touch', run: 'echo n > n.txt', locks: ['n.txt'] }]),
        'plan.json': commandPlan('root', [{ id: 'other', run: 'true' }]),
      },
      message: 'A plan under ops/',
    });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'success', external_id: `nightly-${sha.slice(0, 12)}` });
    expect(checks.get('agora / touch')).toMatchObject({ conclusion: 'success' });
    expect(checks.has('agora / other')).toBe(false);
  });

  it('a bad .github/agora.yml gets one failed agora check naming each problem, and nothing runs', async () => {
    const sha = await w.sim.push(w.fullName, {
      branch: 'bad-config',
      files: { '.github/agora.yml': 'plan: ../outside.json\nqueue: fast\n', 'plan.json': commandPlan('bad', [{ id: 'never', run: 'true' }]) },
      message: 'A broken config',
    });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect([...checks.keys()]).toEqual(['agora']);
    const agora = checks.get('agora')!;
    expect(agora).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(agora.output.title).toBe('Invalid .github/agora.yml: 2 problems');
    expect(agora.output.summary).toContain('`.github/agora.yml $.plan`');
    expect(agora.output.summary).toContain('relative path inside the repository');
    // The message quotes the file, so it is shown as text: its backticks are escaped.
    expect(agora.output.summary).toMatch(/queue.*the file may set only \\`plan\\`/s);
  });

  it('a plan with more items than the app allows is refused at $.items, saying why and what to do', async () => {
    const items = ['a', 'b', 'c', 'd'].map((id) => ({ id, run: 'true' }));
    const sha = await w.sim.push(w.fullName, { branch: 'big', files: { 'plan.json': commandPlan('big', items) }, message: 'A big plan' });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect([...checks.keys()]).toEqual(['agora']);
    const agora = checks.get('agora')!;
    expect(agora).toMatchObject({ conclusion: 'failure' });
    expect(agora.output.summary).toContain('`$.items`');
    expect(agora.output.summary).toContain('4 items is too many for the GitHub App (at most 3)');
    expect(agora.output.summary).toContain('agora orch run');
  });

  it('a YAML syntax error is named with its line', async () => {
    const sha = await w.sim.push(w.fullName, { branch: 'yaml-syntax', files: { '.github/agora.yml': 'plan: [unclosed\n' }, message: 'Broken YAML' });
    await w.quiesce();
    const agora = (await checkRuns(w, sha)).get('agora')!;
    expect(agora).toMatchObject({ conclusion: 'failure' });
    expect(agora.output.summary).toMatch(/`\.github\/agora\.yml:\d+:\d+`/);
    expect(w.errors).toEqual([]);
  });
});

describe('Re-run plan on a red gate', () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld();
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it('runs the plan again on the commit a person pushed; the new patches land on top and the gate turns green', async () => {
    const text = commandPlan('grow', [{ id: 'append', run: 'echo line >> log.txt', locks: ['log.txt'] }]);
    const planSha = await w.sim.push(w.fullName, { branch: 'grow', files: { 'plan.json': text }, message: 'Growing plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'grow', base: 'main', title: 'Grow' });
    await w.quiesce();
    const human = await w.sim.push(w.fullName, { branch: 'grow', files: { 'README.md': '# edited on top\n' }, message: 'A person edits on top' });
    await w.quiesce();
    const red = (await checkRuns(w, human)).get('agora / audit')!;
    expect(red).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(w.sim.sim.state.checkRuns.get(red.id)!.actions).toEqual([RERUN_ACTION]);

    w.sim.clickCheckRunButton(w.fullName, red.id, RERUN_ACTION.identifier, 'octo');
    w.sim.clickCheckRunButton(w.fullName, red.id, RERUN_ACTION.identifier, 'octo'); // pressed twice: one run
    await until('the second run to end', async () => (await checkRuns(w, human)).get('agora')?.status === 'completed', w);
    await w.quiesce();
    const checks = await checkRuns(w, human);
    expect(checks.get('agora')).toMatchObject({ conclusion: 'success', external_id: `grow-${human.slice(0, 12)}` });
    expect(checks.get('agora / append')).toMatchObject({ conclusion: 'success' });
    const started = outcomesOf(w.agora).plans.filter((o) => o.kind === 'started');
    expect(started.map((o) => ('runId' in o ? o.runId : ''))).toEqual([`grow-${planSha.slice(0, 12)}`, `grow-${human.slice(0, 12)}`]);

    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
    expect(commits.map((c) => c.commit.message.split('\n')[0])).toEqual([
      'Growing plan',
      expect.stringMatching(/^append: /),
      'A person edits on top',
      expect.stringMatching(/^append: /),
    ]);
    expect(trailers(commits[3]!.commit.message).get('Agora-Run')).toBe(`grow-${human.slice(0, 12)}`);
    expect((await checkRuns(w, commits[3]!.sha)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(w.errors).toEqual([]);
  });
});
