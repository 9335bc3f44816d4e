import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Probot, ProbotOctokit } from 'probot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { EventOutcome, Octokit, PlanEvent } from '../../src/github/agora-github.js';
import { resolveOptions } from '../../src/github/app-options.js';
import { AppState } from '../../src/github/app-state.js';
import { handleOf } from '../../src/github/app-events.js';
import { intakePlanEvent } from '../../src/github/plan-intake.js';
import { resume } from '../../src/github/run-resume.js';
import { readRun } from '../../src/runs/state-store.js';
import { mirrorRef } from '../../src/git/refspec.js';
import { MAX_PLAN_BYTES } from '../../src/plan/parse.js';
import { startGitHubSim, type GitHubSim } from '@agora/github-sim';
import { scaled } from '../support/eventually.js';
import { appManifest } from './app-manifest.js';
import { EXAMPLE, commandPlan } from './app-world.js';
import { activeConstructs, renderedText, tableCells } from './markdown-reader.js';

/**
 * Plan intake alone (plan-intake.ts): one commit handed to `intakePlanEvent`, no webhook server and no
 * driver. Each refusal is read back twice: the outcome the App reports (a reason code or the problems
 * by JSON path) and the `agora` check a person sees on the commit, whose untrusted parts render as text.
 */

const HOSTILE = '`@octo-team` </details> <img src=x> [fix](https://evil.example) **now**';

describe('plan intake', () => {
  let sim: GitHubSim;
  let app: AppState;
  let octokit: Octokit;
  let cacheDir: string;
  let base: Omit<PlanEvent, 'branch' | 'headSha'>;
  let config: Awaited<ReturnType<typeof loadConfig>>;
  const fullName = 'octo/intake';

  beforeAll(async () => {
    sim = await startGitHubSim({ strict: true });
    // No webhook server: the test hands each commit to the intake itself.
    const manifest = appManifest();
    const gh = sim.createApp({ webhookUrl: 'http://127.0.0.1:9/none', secret: 's', name: 'agora', permissions: manifest.permissions, events: manifest.events });
    sim.setFaults({ dropWebhookRate: 1 });
    const repo = await sim.createRepo('octo', 'intake', { 'README.md': '# intake\n' });
    const installationId = sim.installApp(gh.appId, fullName);
    const probot = new Probot({
      appId: gh.appId,
      privateKey: gh.privateKey,
      secret: 's',
      baseUrl: sim.apiUrl,
      logLevel: 'fatal',
      Octokit: ProbotOctokit.defaults((o: { throttle?: object }) => ({ ...o, throttle: { ...o.throttle, enabled: false } })),
    });
    octokit = (await probot.auth(installationId)) as Octokit;
    const appClient = (await probot.auth()) as Octokit;
    const token = async () => (await appClient.rest.apps.createInstallationAccessToken({ installation_id: installationId })).data.token;
    cacheDir = await mkdtemp(join(tmpdir(), 'agora-intake-'));
    config = await loadConfig({ file: join(EXAMPLE, 'agora.config.mjs'), cwd: EXAMPLE });
    app = new AppState(resolveOptions({ cacheDir, config, maxItems: 3 }));
    base = {
      octokit,
      owner: 'octo',
      repo: 'intake',
      cloneUrl: `${sim.gitUrl}/${fullName}.git`,
      repositoryId: repo.id,
      htmlUrl: `https://github.example/${fullName}`,
      token,
    };
  }, scaled(60_000));
  afterAll(async () => {
    await sim?.close();
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  /** Pushes `files` on `branch` and hands the new commit to the intake. */
  async function intake(branch: string, files: Record<string, string>): Promise<{ sha: string; outcome: EventOutcome }> {
    const sha = await sim.push(fullName, { branch, files, message: `Push to ${branch}` });
    return { sha, outcome: await intakePlanEvent(app, { ...base, branch, headSha: sha }) };
  }

  async function agoraChecks(sha: string) {
    return (await octokit.rest.checks.listForRef({ owner: 'octo', repo: 'intake', ref: sha, per_page: 100 })).data.check_runs;
  }

  /** The one failed `agora` check on `sha`, and its problem rows' cells. */
  async function rejection(sha: string) {
    const checks = await agoraChecks(sha);
    expect(checks.map((c) => [c.name, c.status, c.conclusion])).toEqual([['agora', 'completed', 'failure']]);
    const { title, summary } = checks[0]!.output;
    const rows = (summary ?? '').split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| ---') && !/^\| (JSON path|where) \|/.test(l));
    return { title, summary: summary ?? '', rows: rows.map(tableCells) };
  }

  it('bad JSON: invalid at $ with the parser’s place, one failed agora check saying so', async () => {
    const { sha, outcome } = await intake('bad-json', { 'plan.json': '{"id": "x",\n' });
    expect(outcome).toEqual({ kind: 'invalid', problems: [{ path: '$', message: expect.stringMatching(/line 2, column 1|line 1/) }] });
    const { title, rows } = await rejection(sha);
    expect(title).toBe('Invalid plan: 1 problem');
    expect(rows).toHaveLength(1);
    expect(rows[0]![0]).toBe('`$`');
  });

  it('a plan over 5 MiB: plan-too-large at $, from the blob header', async () => {
    const head = '{"id":"big","queue":"default","items":[],"pad":"';
    const { sha, outcome } = await intake('too-big', { 'plan.json': `${head}${'x'.repeat(MAX_PLAN_BYTES - head.length)}"}` });
    expect(outcome).toMatchObject({ kind: 'invalid', problems: [{ path: '$', message: expect.stringContaining('the limit is 5 MiB') }] });
    expect((await rejection(sha)).summary).toContain('the limit is 5 MiB');
  });

  it('more items than the App allows (maxItems): refused at $.items, naming the cap and what to do', async () => {
    const items = ['a', 'b', 'c', 'd'].map((id) => ({ id, run: 'true' }));
    const { sha, outcome } = await intake('too-many', { 'plan.json': commandPlan('many', items) });
    expect(outcome).toEqual({
      kind: 'invalid',
      problems: [{ path: '$.items', message: expect.stringContaining('4 items is too many for the GitHub App (at most 3) (AGORA_MAX_ITEMS)') }],
    });
    const { rows } = await rejection(sha);
    expect(rows.map((r) => r[0])).toEqual(['`$.items`']);
    expect(renderedText(rows[0]![1]!)).toContain('agora orch run');
  });

  it.each([
    ['outside the repository', '../outside.json', /relative path inside the repository/],
    ['absolute', '/etc/plan.json', /relative path inside the repository/],
    ['not a .json file', 'ops/plan.yaml', /\.json/],
  ])('a plan path in .github/agora.yml that is %s: the config is rejected at $.plan, nothing is read there', async (_what, path, why) => {
    const { sha, outcome } = await intake(`path-${path.replace(/[^a-z]/g, '')}`, {
      '.github/agora.yml': `plan: ${path}\n`,
      'plan.json': commandPlan('p', [{ id: 'a', run: 'true' }]),
    });
    expect(outcome).toMatchObject({ kind: 'invalid', problems: [{ path: expect.stringContaining('$.plan'), message: expect.stringMatching(why) }] });
    const { title, rows } = await rejection(sha);
    expect(title).toBe('Invalid .github/agora.yml: 1 problem');
    expect(rows[0]![0]).toContain('$.plan');
  });

  it('a matrix file is read at the plan commit, not the branch head: three shards there make four items, over maxItems', async () => {
    const plan = JSON.stringify({
      id: 'shards',
      queue: 'default',
      items: [
        { id: 'count', executor: 'command', inputs: { run: 'true' }, matrix: { shard: { file: 'ci/shards.json' } }, depends_on: [], resourceLocks: [] },
        { id: 'reduce', executor: 'command', inputs: { run: 'true' }, depends_on: ['count'], resourceLocks: [] },
      ],
    });
    const planCommit = await sim.push(fullName, { branch: 'shards', files: { 'plan.json': plan, 'ci/shards.json': '["a", "b", "c"]' }, message: 'Plan' });
    // Above it, the list shrinks to one shard (the plan file unchanged): read there, the plan would fit and start.
    await sim.push(fullName, { branch: 'shards', files: { 'ci/shards.json': '["a"]' }, message: 'Fewer shards' });
    const outcome = await intakePlanEvent(app, { ...base, branch: 'shards', headSha: planCommit });
    expect(outcome).toEqual({
      kind: 'invalid',
      problems: [{ path: '$.items', message: expect.stringContaining('4 items is too many for the GitHub App (at most 3)') }],
    });
    expect((await rejection(planCommit)).rows.map((r) => r[0])).toEqual(['`$.items`']);
  });

  it('a missing or escaping matrix file: invalid at the matrix entry, naming the file, one failed agora check', async () => {
    const plan = (file: string) =>
      JSON.stringify({
        id: 'm',
        queue: 'default',
        items: [{ id: 'count', executor: 'command', inputs: { run: 'true' }, matrix: { shard: { file } }, depends_on: [], resourceLocks: [] }],
      });
    const missing = await intake('no-shards', { 'plan.json': plan('ci/none.json') });
    expect(missing.outcome).toEqual({
      kind: 'invalid',
      problems: [
        {
          path: '$.items[0].matrix.shard',
          message: expect.stringContaining(`the matrix file "ci/none.json" (read at base commit ${missing.sha.slice(0, 12)}) does not exist`),
        },
      ],
    });
    expect((await rejection(missing.sha)).rows.map((r) => r[0])).toEqual(['`$.items[0].matrix.shard`']);
    const escaping = await intake('escaping-shards', { 'plan.json': plan('../../etc/passwd') });
    expect(escaping.outcome).toMatchObject({
      kind: 'invalid',
      problems: [{ path: '$.items[0].matrix.shard.file', message: expect.stringContaining('".." segment') }],
    });
  });

  it('a problem quoting untrusted text (an unknown subagent) renders as that text: no mention, HTML, link or emphasis', async () => {
    const plan = {
      id: 'hostile',
      queue: 'default',
      items: [{ id: 'a', executor: 'dispatch', inputs: { subagent: HOSTILE }, depends_on: [], resourceLocks: [] }],
    };
    const { sha, outcome } = await intake('hostile', { 'plan.json': JSON.stringify(plan) });
    expect(outcome).toMatchObject({ kind: 'invalid', problems: [{ path: '$.items[0].inputs.subagent' }] });
    const message = (outcome as { problems: Array<{ message: string }> }).problems[0]!.message;
    expect(message).toContain(HOSTILE);
    const { rows } = await rejection(sha);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toHaveLength(2);
    expect(activeConstructs(rows[0]![1]!, 'table cell')).toEqual([]);
    expect(renderedText(rows[0]![1]!)).toBe(message);
  });

  it('a rejection is written once per commit: the same commit again is a duplicate, with no second check', async () => {
    const { sha } = await intake('twice', { 'plan.json': '[]' });
    expect(await intakePlanEvent(app, { ...base, branch: 'twice', headSha: sha })).toMatchObject({ kind: 'duplicate' });
    expect(await agoraChecks(sha)).toHaveLength(1);
  });

  it('a plan commit that is no longer its branch head, a newer plan commit above it: superseded, nothing written', async () => {
    const older = await sim.push(fullName, { branch: 'moved', files: { 'plan.json': commandPlan('old', [{ id: 'a', run: 'true' }]) }, message: 'Old plan' });
    const newer = await sim.push(fullName, { branch: 'moved', files: { 'plan.json': commandPlan('new', [{ id: 'b', run: 'true' }]) }, message: 'New plan' });
    const readme = await sim.push(fullName, { branch: 'moved', files: { 'README.md': '# later\n' }, message: 'Later' });
    const outcome = await intakePlanEvent(app, { ...base, branch: 'moved', headSha: older });
    expect(outcome).toEqual({ kind: 'ignored', code: 'superseded', why: expect.stringContaining(`(at ${newer.slice(0, 12)})`) });
    expect(outcome).not.toMatchObject({ why: expect.stringContaining(readme.slice(0, 12)) });
    expect(await agoraChecks(older)).toEqual([]);
    expect(sim.contractViolations).toEqual([]);
  });

  /** A process of its own, trusting the repository so that a plan's local item could start; and its clean-up. */
  async function ownProcess(): Promise<{ app: AppState; done: () => Promise<void> }> {
    const dir = await mkdtemp(join(tmpdir(), 'agora-intake-stopping-'));
    const own = new AppState(
      resolveOptions({ cacheDir: dir, config, policy: { trustedRepositoryIds: new Set([base.repositoryId!]), secretsByRepository: new Map() } }),
    );
    const done = async () => {
      await Promise.all([...own.active.values()].map((r) => r.stop('the test is over')));
      await own.idle();
      await own.releaseCacheDir();
      await rm(dir, { recursive: true, force: true });
    };
    return { app: own, done };
  }

  /** `octokit` whose `pick` call waits, once reached, until the test lets it go. */
  function gatedOctokit(pick: 'checks.create' | 'paginate') {
    let reached!: () => void;
    const atGate = new Promise<void>((resolve) => (reached = resolve));
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    const wait = async <T>(call: () => Promise<T>): Promise<T> => {
      reached();
      await held;
      return call();
    };
    const create = octokit.rest.checks.create;
    const paginate = octokit.paginate;
    const client = {
      ...octokit,
      ...(pick === 'paginate' ? { paginate: ((...args: Parameters<typeof paginate>) => wait(() => paginate(...args))) as typeof paginate } : {}),
      rest: {
        ...octokit.rest,
        checks: {
          ...octokit.rest.checks,
          ...(pick === 'checks.create' ? { create: ((params: Parameters<typeof create>[0]) => wait(() => create(params))) as typeof create } : {}),
        },
      },
    } as Octokit;
    return { client, atGate, letGo };
  }

  it('a process that begins stopping while it creates a run, or takes one over, drives none of it: the run waits on GitHub for the next process', async () => {
    const first = await ownProcess();
    const second = await ownProcess();
    try {
      // Creating: the run check's creation waits until the stop has begun.
      const creating = gatedOctokit('checks.create');
      const sha = await sim.push(fullName, {
        branch: 'stopping',
        files: { 'plan.json': commandPlan('stopping', [{ id: 'a', run: 'echo a > a.txt' }]) },
        message: 'Plan',
      });
      const ev = { ...base, octokit: creating.client, branch: 'stopping', headSha: sha };
      const outcome = intakePlanEvent(first.app, ev);
      await creating.atGate;
      first.app.closed = true; // what AgoraGitHub.close() does first, before it stops the runs it finds
      creating.letGo();
      const started = await outcome;
      expect(started).toMatchObject({ kind: 'started' });
      expect([...first.app.active.keys()]).toEqual([]);
      expect([...first.app.claimed]).toEqual([]);

      // Taking it over: the look for its check runs waits until that process's stop has begun.
      const taking = gatedOctokit('paginate');
      const repo = await second.app.repoFor({ ...ev, octokit: taking.client });
      const runId = (started as { runId: string }).runId;
      await repo.store.fetch([mirrorRef(repo.refs.run(runId))]);
      const stored = (await readRun(repo.store, repo.refs, runId))!;
      expect(stored.state.status).toBe('running');
      const resumed = resume(second.app, { ...handleOf(ev), octokit: taking.client }, repo, stored, 'stopping');
      await taking.atGate;
      second.app.closed = true;
      taking.letGo();
      expect(await resumed).toBe(false);
      expect([...second.app.active.keys()]).toEqual([]);
      expect([...second.app.claimed]).toEqual([]);
    } finally {
      await first.done();
      await second.done();
    }
  });
});
