import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { agora, cleanupTempDirs, exited, git, makeRepo, startServe, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

describe('a run ref someone pointed at a commit Agora did not write', () => {
  it('status says the state commit is not an Agora state commit (a user error, exit 1), not an internal error', async () => {
    const repo = makeRepo({ 'README.md': 'x\n' });
    // A commit whose tree is the repository's own files: neither state.json nor run.json.
    const forged = git(repo, 'commit-tree', 'HEAD^{tree}', '-m', 'not a state commit').trim();
    git(repo, 'update-ref', 'refs/agora/runs/forged-1', forged);
    const r = await agora(repo, ['orch', 'status', 'forged-1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`agora: state commit ${forged} has no plan.json: not an Agora state commit`);
    expect(r.stderr).toContain("hint: restore the run's ref from a clone that has it, or remove the run");
  });
});

describe('a name with terminal escape sequences in a command line', () => {
  it('reaches stderr with its control characters shown as U+FFFD, so the message cannot drive the terminal', async () => {
    const repo = makeRepo({ 'README.md': 'x\n' });
    const hostile = 'run\u001b]0;pwned\u0007\u001b[2J';
    const r = await agora(repo, ['orch', 'validate', hostile]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^agora: /);
    expect(r.stderr).toContain('run\ufffd]0;pwned\ufffd\ufffd[2J');
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    expect(r.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    // As a run id it is refused as one Agora never makes, the name shown escaped.
    const asRun = await agora(repo, ['orch', 'status', hostile]);
    expect(asRun.code).toBe(1);
    expect(asRun.stderr).toMatch(/^agora: not a run id: /);
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    expect(asRun.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  });
});

describe('a log with terminal escape sequences', () => {
  it('`orch logs` shows its control characters as U+FFFD, piped too; `--raw` prints it as kept', async () => {
    const plan = {
      id: 'esc',
      queue: 'default',
      items: [
        {
          id: 'loud',
          executor: 'command',
          inputs: { run: "printf 'before\\033]0;owned-title\\007\\033[2J\\tafter\\r\\nnext\\n'" },
          depends_on: [],
          resourceLocks: [],
        },
      ],
    };
    const repo = makeRepo({ 'plan.json': JSON.stringify(plan) });
    expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).toBe(0);

    const shown = await agora(repo, ['orch', 'logs', 'esc-1', 'loud']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toBe('before\ufffd]0;owned-title\ufffd\ufffd[2J\tafter\ufffd\nnext\n');
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    expect(shown.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);

    const raw = await agora(repo, ['orch', 'logs', 'esc-1', 'loud', '--raw']);
    expect(raw.code).toBe(0);
    expect(raw.stdout).toBe('before\u001b]0;owned-title\u0007\u001b[2J\tafter\r\nnext\n');
  });
});

describe('a cancel reason with terminal escape sequences', () => {
  it('`orch run` shows the run ending with it, its control characters shown as U+FFFD', async () => {
    const started = join(tempDir('agora-hostile-reason-'), 'started');
    const plan = {
      id: 'why',
      queue: 'default',
      items: [{ id: 'long', executor: 'command', inputs: { run: `echo $$ > ${started}; sleep 300` }, depends_on: [], resourceLocks: [] }],
    };
    const repo = makeRepo({ 'plan.json': JSON.stringify(plan) });
    const running = agora(repo, ['orch', 'run', 'plan.json']);
    await eventually('the worker to start', () => existsSync(started) || undefined);
    const hostile = 'bye\u001b]0;owned-title\u0007\u001b[2J';
    expect((await agora(repo, ['orch', 'cancel', 'why-1', '--reason', hostile])).code).toBe(0);
    const ran = await running;
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain('run why-1: cancelled — cancelled: bye\ufffd]0;owned-title\ufffd\ufffd[2J');
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    expect(ran.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  });
});

describe("a worker's last log line with terminal escape sequences", () => {
  it("reaches serve's transition lines with its control characters shown as U+FFFD", async () => {
    const plan = {
      id: 'loudfail',
      queue: 'default',
      items: [{ id: 'loud', executor: 'command', inputs: { run: "printf 'x\\033]0;owned-title\\007\\033[2J\\n'; exit 1" }, depends_on: [], resourceLocks: [] }],
    };
    const repo = makeRepo({ 'plan.json': JSON.stringify(plan) });
    expect((await agora(repo, ['orch', 'submit', 'plan.json'])).code).toBe(0);
    const serve = startServe(repo);
    try {
      await eventually('the failure line', () =>
        serve
          .output()
          .split('\n')
          .find((l) => l.includes('running → failed')),
      );
    } finally {
      serve.kill('SIGKILL');
      await exited(serve);
    }
    const line = serve
      .output()
      .split('\n')
      .find((l) => l.includes('running → failed'))!;
    expect(line).toContain('x\ufffd]0;owned-title\ufffd\ufffd[2J');
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    expect(serve.output()).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  });
});
