import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorld, type World } from '@agora/github-sim/harness';

describe('check runs and check suites', () => {
  let w: World;
  const o = { owner: 'octo', repo: 'demo' };
  beforeAll(async () => {
    w = await startWorld();
  });
  afterAll(async () => {
    expect(w.sim.contractViolations.filter((v) => v.kind !== 'request')).toEqual([]);
    await w.close();
  });
  const received = (name: string): Record<string, unknown>[] => w.receiver.received.filter((r) => r.name === name).map((r) => r.payload);

  it('creates, updates, gets and lists check runs; the suite is implicit and completes with them', async () => {
    const a = await w.octokit.checks.create({ ...o, name: 'agora / a', head_sha: w.repo.headSha, status: 'queued', external_id: 'run1:a' });
    const b = await w.octokit.checks.create({ ...o, name: 'agora / b', head_sha: w.repo.headSha, status: 'in_progress' });
    expect(a.data.check_suite?.id).toBe(b.data.check_suite?.id);
    const upd = await w.octokit.checks.update({
      ...o,
      check_run_id: a.data.id,
      status: 'completed',
      conclusion: 'success',
      output: {
        title: 'done',
        summary: 'all good',
        annotations: [{ path: 'README.md', start_line: 1, end_line: 1, annotation_level: 'notice', message: 'hi' }],
      },
    });
    expect(upd.data).toMatchObject({ status: 'completed', conclusion: 'success', output: { annotations_count: 1 } });
    expect(upd.data.completed_at).toBeTruthy();
    await w.octokit.checks.update({
      ...o,
      check_run_id: a.data.id,
      output: { title: 't', summary: 's', annotations: [{ path: 'x', start_line: 2, end_line: 2, annotation_level: 'warning', message: 'm' }] },
    });
    const anns = await w.octokit.checks.listAnnotations({ ...o, check_run_id: a.data.id });
    expect(anns.data.map((x) => x.message)).toEqual(['hi', 'm']);
    const got = await w.octokit.checks.get({ ...o, check_run_id: a.data.id });
    expect(got.data.external_id).toBe('run1:a');
    const list = await w.octokit.checks.listForRef({ ...o, ref: 'main' });
    expect(list.data.total_count).toBe(2);
    const byName = await w.octokit.checks.listForRef({ ...o, ref: w.repo.headSha, check_name: 'agora / b' });
    expect(byName.data.check_runs.map((r) => r.id)).toEqual([b.data.id]);
    const suites = await w.octokit.checks.listSuitesForRef({ ...o, ref: w.repo.headSha });
    expect(suites.data.check_suites).toHaveLength(1);
    expect(suites.data.check_suites[0]).toMatchObject({ status: 'in_progress', head_branch: 'main', latest_check_runs_count: 2 });
    await w.octokit.checks.update({ ...o, check_run_id: b.data.id, conclusion: 'failure' });
    const suite = await w.octokit.checks.getSuite({ ...o, check_suite_id: a.data.check_suite!.id });
    expect(suite.data).toMatchObject({ status: 'completed', conclusion: 'failure' });
    const inSuite = await w.octokit.checks.listForSuite({ ...o, check_suite_id: suite.data.id });
    expect(inSuite.data.total_count).toBe(2);
    await w.sim.settle();
    expect(received('check_run').map((p) => p.action)).toEqual(['created', 'created', 'completed', 'completed']);
    const completedSuite = received('check_suite').find((p) => p.action === 'completed');
    expect(completedSuite).toMatchObject({ check_suite: { conclusion: 'failure', head_sha: w.repo.headSha } });
  });

  it('enforces GitHub limits: 65,535 bytes of text, 50 annotations a request, 3 actions (label/identifier 20, description 40)', async () => {
    const base = { ...o, name: 'limits', head_sha: w.repo.headSha };
    const ok = await w.octokit.checks.create({ ...base, output: { title: 't', summary: 'x'.repeat(65_535), text: 'y'.repeat(65_535) } });
    expect(ok.status).toBe(201);
    await expect(w.octokit.checks.create({ ...base, output: { title: 't', summary: 'x'.repeat(65_536) } })).rejects.toMatchObject({ status: 422 });
    await expect(
      w.octokit.checks.update({ ...o, check_run_id: ok.data.id, output: { title: 't', summary: 's', text: 'x'.repeat(65_536) } }),
    ).rejects.toMatchObject({ status: 422 });
    // Bytes, not characters: 21,846 three-byte characters are 65,538 bytes.
    await expect(w.octokit.checks.create({ ...base, output: { title: 't', summary: '…'.repeat(21_846) } })).rejects.toMatchObject({
      status: 422,
      message: expect.stringContaining('exceeds a maximum bytesize'),
    });
    expect((await w.octokit.checks.create({ ...base, output: { title: 't', summary: '…'.repeat(21_845) } })).status).toBe(201);
    const ann = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ path: 'a', start_line: i + 1, end_line: i + 1, annotation_level: 'notice' as const, message: `m${i}` }));
    expect((await w.octokit.checks.update({ ...o, check_run_id: ok.data.id, output: { title: 't', summary: 's', annotations: ann(50) } })).status).toBe(200);
    await expect(w.octokit.checks.update({ ...o, check_run_id: ok.data.id, output: { title: 't', summary: 's', annotations: ann(51) } })).rejects.toMatchObject(
      { status: 422 },
    );
    expect(
      (await w.octokit.checks.update({ ...o, check_run_id: ok.data.id, output: { title: 't', summary: 's', annotations: ann(50) } })).data.output
        .annotations_count,
    ).toBe(100);
    const act = (n: number) => Array.from({ length: n }, (_, i) => ({ label: `L${i}`, identifier: `id${i}`, description: 'd' }));
    expect((await w.octokit.checks.create({ ...base, actions: act(3) })).status).toBe(201);
    await expect(w.octokit.checks.create({ ...base, actions: act(4) })).rejects.toMatchObject({ status: 422 });
    await expect(w.octokit.checks.create({ ...base, actions: [{ label: 'x'.repeat(21), identifier: 'i', description: 'd' }] })).rejects.toMatchObject({
      status: 422,
    });
    await expect(w.octokit.checks.create({ ...base, actions: [{ label: 'l', identifier: 'i', description: 'd'.repeat(41) }] })).rejects.toMatchObject({
      status: 422,
    });
    await expect(w.octokit.checks.create({ ...base, head_sha: 'a'.repeat(40) })).rejects.toMatchObject({ status: 422 });
    // A check that asks for action must link where to act.
    await expect(w.octokit.checks.create({ ...base, conclusion: 'action_required' })).rejects.toMatchObject({
      status: 422,
      message: expect.stringContaining('details_url'),
    });
    expect((await w.octokit.checks.create({ ...base, conclusion: 'action_required', details_url: 'https://example.com/fix' })).status).toBe(201);
    await expect(w.octokit.checks.update({ ...o, check_run_id: ok.data.id, conclusion: 'action_required' })).rejects.toMatchObject({ status: 422 });
  });

  it('emits requested_action for button clicks and rerequested for re-runs, to the owning app only', async () => {
    const other = w.sim.createApp({ webhookUrl: w.receiver.url, secret: 'test-secret' });
    w.sim.installApp(other.appId, 'octo/demo');
    const run = await w.octokit.checks.create({
      ...o,
      name: 'buttons',
      head_sha: w.repo.headSha,
      actions: [{ label: 'Retry item', identifier: 'retry:a', description: 'Run it again' }],
    });
    // GitHub shows the buttons of a completed check run only, and re-runs only completed ones.
    expect(() => w.sim.clickCheckRunButton('octo/demo', run.data.id, 'retry:a')).toThrow(/only once it completed/);
    expect(() => w.sim.rerequestCheckRun('octo/demo', run.data.id)).toThrow(/Validation Failed/);
    await expect(w.octokit.checks.rerequestRun({ ...o, check_run_id: run.data.id })).rejects.toMatchObject({ status: 422 });
    for (const r of (await w.octokit.checks.listForRef({ ...o, ref: w.repo.headSha, filter: 'all' })).data.check_runs) {
      if (r.status !== 'completed') await w.octokit.checks.update({ ...o, check_run_id: r.id, conclusion: 'neutral' });
    }
    w.sim.clickCheckRunButton('octo/demo', run.data.id, 'retry:a');
    w.sim.rerequestCheckRun('octo/demo', run.data.id);
    expect(() => w.sim.clickCheckRunButton('octo/demo', run.data.id, 'nope')).toThrow();
    await w.octokit.checks.rerequestRun({ ...o, check_run_id: run.data.id });
    await w.sim.settle();
    const mine = received('check_run').filter((p) => (p.check_run as { id: number }).id === run.data.id);
    expect(mine.map((p) => p.action)).toEqual(['created', 'completed', 'requested_action', 'rerequested', 'rerequested']);
    expect(mine[2]).toMatchObject({ requested_action: { identifier: 'retry:a' }, installation: { id: w.installationId } });
    const otherDeliveries = w.sim.webhookDeliveries.filter((d) => d.appId === other.appId && d.event === 'check_run');
    expect(otherDeliveries).toEqual([]);
  });

  it('a branch push requests a check suite from apps that may write checks; suites can be rerequested', async () => {
    const sha = await w.sim.push('octo/demo', { branch: 'main', files: { 'c.txt': 'c' }, message: 'c' });
    await w.sim.settle();
    const requested = received('check_suite').filter((p) => p.action === 'requested');
    expect(requested.some((p) => (p.check_suite as { head_sha: string }).head_sha === sha)).toBe(true);
    const suites = await w.octokit.checks.listSuitesForRef({ ...o, ref: sha, app_id: w.app.appId });
    expect(suites.data.total_count).toBe(1);
    expect((await w.octokit.checks.rerequestSuite({ ...o, check_suite_id: suites.data.check_suites[0]!.id })).status).toBe(201);
    await w.sim.settle();
    expect(received('check_suite').some((p) => p.action === 'rerequested')).toBe(true);
  });

  it('lists check runs on a pull request head with pull_requests filled', async () => {
    const head = await w.sim.push('octo/demo', { branch: 'feat', files: { 'f.txt': 'f' }, message: 'f' });
    const pr = await w.sim.openPullRequest('octo/demo', { head: 'feat', base: 'main', title: 'Feat' });
    const run = await w.octokit.checks.create({ ...o, name: 'agora', head_sha: head });
    expect(run.data.pull_requests.map((p) => p.number)).toEqual([pr.number]);
  });
});

describe('at most N check runs of one name in a suite (GitHub: 1,000)', () => {
  let w: World;
  const o = { owner: 'octo', repo: 'demo' };
  beforeAll(async () => {
    w = await startWorld({ checkRunsPerName: 3 });
  });
  afterAll(async () => w?.close());

  it('creating one more deletes the oldest of that name (404 from then on); other names and newer runs stay', async () => {
    const made: number[] = [];
    for (let i = 0; i < 5; i += 1)
      made.push((await w.octokit.checks.create({ ...o, name: 'agora / x', head_sha: w.repo.headSha, status: 'completed', conclusion: 'failure' })).data.id);
    const other = (await w.octokit.checks.create({ ...o, name: 'agora / y', head_sha: w.repo.headSha, status: 'queued' })).data.id;
    const listed = await w.octokit.paginate(w.octokit.checks.listForRef, { ...o, ref: w.repo.headSha, check_name: 'agora / x', filter: 'all', per_page: 100 });
    expect(listed.map((c) => c.id).sort()).toEqual(made.slice(2).sort());
    for (const gone of made.slice(0, 2)) {
      await expect(w.octokit.checks.get({ ...o, check_run_id: gone })).rejects.toMatchObject({ status: 404 });
      await expect(w.octokit.checks.update({ ...o, check_run_id: gone, status: 'completed', conclusion: 'success' })).rejects.toMatchObject({ status: 404 });
    }
    expect((await w.octokit.checks.get({ ...o, check_run_id: other })).data.name).toBe('agora / y');
    expect(w.sim.contractViolations).toEqual([]);
  });
});
