import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { scaled } from '../support/eventually.js';
import { agora, cleanupTempDirs, git, makeRepo, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** A user error: non-zero exit, a message naming the input, a hint, and never a stack trace. */
function expectUserError(r: { code: number | null; stderr: string }, ...mentions: string[]) {
  expect(r.code).not.toBe(0);
  expect(r.code).not.toBe(70); // 70 = internal error
  expect(r.stderr).toMatch(/^agora: /);
  expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
  for (const m of mentions) expect(r.stderr).toContain(m);
}

describe('the CLI on bad input', () => {
  it('reports invalid JSON with line and column', async () => {
    const repo = makeRepo({ 'plan.json': '{\n  "id": "x",\n  "queue": "default"\n  "items": []\n}\n' });
    const r = await agora(repo, ['orch', 'validate', 'plan.json']);
    expectUserError(r, 'plan.json', 'line 4');
  });

  it('refuses a plan that gives a key twice, naming the key, its JSON path and both lines', async () => {
    const repo = makeRepo({ 'plan.json': '{\n  "id": "x",\n  "id": "y",\n  "items": []\n}\n' });
    const r = await agora(repo, ['orch', 'validate', 'plan.json']);
    expectUserError(r, 'plan.json: $.id: the key "id" appears twice in one object (line 2, column 3 and line 3, column 3)', 'keep one "id" at $ in plan.json');
  });

  it('refuses a plan nested 5,000 deep at validation, naming the JSON path (it used to run, then overflow orch audit)', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const repo = makeRepo({ 'plan.json': `{"id":"x","items":[{"id":"a","executor":"command","inputs":{"run":"true","x":${deep}}}]}` });
    const r = await agora(repo, ['orch', 'validate', 'plan.json']);
    expectUserError(r, 'plan.json: 1 problem', `$.items[0].inputs.x${'[0]'.repeat(60)}: nested deeper than 64 levels`);
  });

  it('keys generate --out creates a missing directory, and names a file given as the directory', async () => {
    const dir = tempDir();
    const made = await agora(dir, ['keys', 'generate', '--out', 'new/keys']);
    expect(made.stderr).toContain('keep');
    expect(made.code).toBe(0);
    const { readdirSync, writeFileSync } = await import('node:fs');
    expect(readdirSync(`${dir}/new/keys`).sort()).toEqual(['agora-signing.key.pem', 'agora-signing.pub.pem']);
    writeFileSync(`${dir}/afile`, '');
    expectUserError(await agora(dir, ['keys', 'generate', '--out', 'afile/keys']), `--out ${dir}/afile/keys is not a directory`);
  });

  it.skipIf(!existsSync('/proc/self'))("keys generate --out under /proc is refused at once (Node's recursive mkdir would spin there for ever)", async () => {
    const r = await agora(tempDir(), ['keys', 'generate', '--out', '/proc/agora-nowhere/keys'], {}, scaled(30_000));
    expectUserError(r, 'agora: --out /proc/agora-nowhere/keys needs /proc/agora-nowhere, which cannot be created: /proc takes no new directories');
    expect(r.code).toBe(1);
  });

  it('bad usage (an option value that cannot be read, options that do not go together) exits 2, as docs/cli.md says, before anything is read', async () => {
    const repo = makeRepo({}, 'offload-fanout');
    const cases: Array<[string[], string]> = [
      [['orch', 'gc', '--older-than', '5', '--discard-bundles'], 'agora: --older-than "5" is not an age'],
      [['orch', 'audit', 'ghost-1', '--rekor-entry-type', 'x'], 'agora: --rekor-entry-type "x" is not an entry type'],
      [['orch', 'audit', 'ghost-1', '--item', 'a', '--sign'], 'agora: --item and --sign do not go together'],
      [['orch', 'retry', 'ghost-1', 'a', '--failed'], '--failed: an item and --failed together'],
      [['orch', 'submit', 'plan.json', '--data', 'novalue'], 'agora: --data "novalue" is not key=value'],
      [['verify', 'nothere.json', '--plan-commit', 'abc'], 'agora: --plan-commit "abc" is not a full commit id'],
      [['verify', 'nothere.json', '--certificate-identity', 'me'], 'needs both --certificate-identity and --certificate-oidc-issuer'],
      [['init', 'p', '--template', 'nope'], 'agora: there is no template "nope"'],
    ];
    for (const [args, message] of cases) {
      const r = await agora(repo, args);
      expectUserError(r, message, 'hint: ');
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
    }
    expect(git(repo, 'for-each-ref', 'refs/agora').trim()).toBe('');
  });

  it('reports every DAG problem at once, with JSON paths, and the cycle', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'bad plan',
        queue: 'default',
        items: [
          { id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: ['c'], resourceLocks: ['../etc'] },
          { id: 'b', executor: 'command', inputs: { run: 'true' }, depends_on: ['a', 'ghost'], resourceLocks: [] },
          { id: 'c', executor: 'command', inputs: { run: 'true' }, depends_on: ['b'], resourceLocks: [] },
          { id: 'a', executor: 'teleport', inputs: {}, depends_on: [], resourceLocks: [] },
        ],
      }),
    });
    const r = await agora(repo, ['orch', 'validate', 'plan.json']);
    expectUserError(r, '$.id', '$.items[0].resourceLocks[0]', '$.items[1].depends_on[1]', '$.items[3].id', '$.items[3].executor', 'a → c → b → a');
  });

  it('validates a good plan and exits 0', async () => {
    const repo = makeRepo({}, 'offload-fanout');
    const r = await agora(repo, ['orch', 'validate', 'plan.json']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('valid — 4 items');
  });

  it('names a missing plan file, a missing repo, a missing config, an unknown run', async () => {
    const repo = makeRepo({}, 'offload-fanout');
    expectUserError(await agora(repo, ['orch', 'validate', 'nope.json']), 'nope.json', 'no such file');
    expectUserError(await agora(repo, ['orch', 'status', 'ghost-1']), 'no run ghost-1');
    expectUserError(await agora(repo, ['orch', 'run', 'plan.json', '--config', 'missing.mjs']), 'missing.mjs');
    const notRepo = tempDir();
    expectUserError(await agora(notRepo, ['orch', 'status']), 'not a git repository');
    expectUserError(await agora(repo, ['orch', 'status', '--repo', '/nonexistent/dir']), '/nonexistent/dir');
  });

  it('refuses a run id Agora never makes before it names a ref after it', async () => {
    const repo = makeRepo({}, 'offload-fanout');
    for (const args of [
      ['orch', 'status', '../../etc'],
      ['orch', 'status', ''],
      ['orch', 'logs', 'a b', 'item'],
      ['orch', 'report', 'x.lock'],
      ['orch', 'audit', 'a~1'],
      ['orch', 'cancel', '..'],
    ]) {
      const r = await agora(repo, args);
      expectUserError(r, 'agora: not a run id: ', 'hint: run ids look like <plan id>-<n>');
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).not.toContain('ref name');
    }
    // A run of a plan whose id has the most characters an id may: its run id is longer, and still one.
    const long = `${'a'.repeat(100)}-1`;
    const r = await agora(repo, ['orch', 'status', long]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no run ${long}`);
  });

  it('says an item skipped because of a failure never ran, and how to run it, when its log is asked for', async () => {
    const item = (id: string, run: string, depends_on: string[]) => ({ id, executor: 'command', inputs: { run }, depends_on, resourceLocks: [] });
    const repo = makeRepo({ 'plan.json': JSON.stringify({ id: 'fl', queue: 'default', items: [item('a', 'exit 1', []), item('b', 'true', ['a'])] }) });
    expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).toBe(1);
    const r = await agora(repo, ['orch', 'logs', 'fl-1', 'b']);
    expectUserError(r, 'b never ran: it was skipped', 'hint: `agora orch retry fl-1 --failed`');
  });

  it('takes a branch, a tag or a full ref as --base, and refuses an expression or a name that is none', async () => {
    const repo = makeRepo({}, 'offload-fanout');
    git(repo, 'tag', 'v1');
    const head = git(repo, 'rev-parse', 'HEAD').trim();
    for (const base of ['main', 'v1', 'refs/heads/main', head]) {
      const r = await agora(repo, ['orch', 'submit', 'plan.json', '--base', base]);
      expect({ base, code: r.code, stderr: r.stderr }).toEqual({ base, code: 0, stderr: '' });
    }
    for (const base of ['HEAD~1', 'nosuch'])
      expectUserError(
        await agora(repo, ['orch', 'submit', 'plan.json', '--base', base]),
        `--base ${base} names no commit`,
        'hint: pass HEAD, a branch or tag name',
      );
  });

  it('refuses to run in a repository with no commits, saying why', async () => {
    const repo = tempDir();
    const { execFileSync } = await import('node:child_process');
    execFileSync('git', ['init', '--quiet', repo]);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      `${repo}/plan.json`,
      JSON.stringify({ id: 'p', queue: 'default', items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }] }),
    );
    expectUserError(await agora(repo, ['orch', 'run', 'plan.json']), 'no commits');
  });

  it('bounds the log of a worker that prints megabytes', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'loud',
        queue: 'default',
        items: [{ id: 'spam', executor: 'command', inputs: { run: 'yes "line of noise" | head -c 8000000; echo END' }, depends_on: [], resourceLocks: [] }],
      }),
    });
    expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).toBe(0);
    const log = (await agora(repo, ['orch', 'logs', 'loud-1', 'spam'])).stdout;
    expect(log.length).toBeLessThan(1_100_000);
    expect(log).toMatch(/bytes elided/);
    expect(log.trimEnd().endsWith('END')).toBe(true);
  });

  it("submit --queue overrides the plan's queue; status without an id lists every run", async () => {
    const repo = makeRepo({}, 'pipeline');
    const submitted = await agora(repo, ['orch', 'submit', 'plan.json', '--queue', 'nightly']);
    expect(submitted.stdout.trim()).toBe('pipeline-1');
    expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).toBe(0); // serves pipeline-2 only
    const list = JSON.parse((await agora(repo, ['orch', 'status'])).stdout) as { runs: Array<{ runId: string; status: string }> };
    expect(list.runs).toEqual(
      expect.arrayContaining([expect.objectContaining({ runId: 'pipeline-2', status: 'done' }), { runId: 'pipeline-1', status: 'submitted' }]),
    );
    const { execFileSync } = await import('node:child_process');
    const queued = JSON.parse(execFileSync('git', ['show', 'refs/agora/inbox/pipeline-1:plan.json'], { cwd: repo, encoding: 'utf8' })) as { queue: string };
    expect(queued.queue).toBe('nightly');
  });
});
